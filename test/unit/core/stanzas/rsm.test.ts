import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { xml } from "@xmpp/component";
import { parseRsm, rsmPage, rsmResult, RSM_NS, type RsmRequest } from "../../../../core/stanzas/rsm.ts";
import { isEstuaryError } from "../../../../core/errors.ts";

const items = (n: number) => Array.from({ length: n }, (_, i) => `item${String(i).padStart(3, "0")}`);
const id = (s: string) => s;
const kindOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return isEstuaryError(e) ? e.kind : "not an EstuaryError";
  }
};

describe("parsing <set/> (XEP-0059)", () => {
  it("reads max, after, before (empty = last page) and index", () => {
    const set = (...children: ReturnType<typeof xml>[]) => xml("set", { xmlns: RSM_NS }, ...children);
    expect(parseRsm(undefined)).toBeUndefined();
    expect(parseRsm(set(xml("max", {}, "10"), xml("after", {}, "x")))).toEqual({ max: 10, after: "x" });
    expect(parseRsm(set(xml("before")))).toEqual({ before: true });
    expect(parseRsm(set(xml("before", {}, "y"), xml("max", {}, "0")))).toEqual({ before: "y", max: 0 });
    expect(parseRsm(set(xml("index", {}, "7")))).toEqual({ index: 7 });
  });

  it("refuses a malformed request with bad-request", () => {
    const set = (...children: ReturnType<typeof xml>[]) => xml("set", { xmlns: RSM_NS }, ...children);
    for (const bad of [set(xml("max", {}, "-1")), set(xml("max", {}, "ten")), set(xml("index", {}, "1.5")), set(xml("after")), set(xml("after", {}, "a"), xml("before", {}, "b"))]) {
      expect(kindOf(() => parseRsm(bad))).toBe("bad-request");
    }
  });
});

describe("paging a list", () => {
  const all = items(5);

  it("pages forwards with after: 2 + 2 + 1, then an empty page after the last", () => {
    const p1 = rsmPage(all, id, { max: 2 }, { max: 100 });
    expect(p1).toEqual({ items: ["item000", "item001"], firstIndex: 0, count: 5 });
    const p2 = rsmPage(all, id, { max: 2, after: p1.items.at(-1)! }, { max: 100 });
    expect(p2).toEqual({ items: ["item002", "item003"], firstIndex: 2, count: 5 });
    const p3 = rsmPage(all, id, { max: 2, after: p2.items.at(-1)! }, { max: 100 });
    expect(p3).toEqual({ items: ["item004"], firstIndex: 4, count: 5 });
    const p4 = rsmPage(all, id, { max: 2, after: "item004" }, { max: 100 });
    expect(p4.items).toEqual([]);
    expect(p4.count).toBe(5);
  });

  it("pages backwards with before, and an empty <before/> is the last page (§2.3, §2.5)", () => {
    expect(rsmPage(all, id, { max: 2, before: true }, { max: 100 })).toEqual({ items: ["item003", "item004"], firstIndex: 3, count: 5 });
    expect(rsmPage(all, id, { max: 2, before: "item003" }, { max: 100 })).toEqual({ items: ["item001", "item002"], firstIndex: 1, count: 5 });
    expect(rsmPage(all, id, { max: 2, before: "item001" }, { max: 100 })).toEqual({ items: ["item000"], firstIndex: 0, count: 5 });
    expect(rsmPage(all, id, { max: 2, before: "item000" }, { max: 100 }).items).toEqual([]);
  });

  it("starts at index (§2.6); max 0 gives the count only (§2.7)", () => {
    expect(rsmPage(all, id, { max: 2, index: 3 }, { max: 100 }).items).toEqual(["item003", "item004"]);
    expect(rsmPage(all, id, { index: 9 }, { max: 100 }).items).toEqual([]);
    expect(rsmPage(all, id, { max: 0 }, { max: 100 })).toEqual({ items: [], firstIndex: 0, count: 5 });
  });

  it("caps the page at the service's maximum, asked or not (§2.1)", () => {
    const many = items(250);
    expect(rsmPage(many, id, undefined, { max: 100 }).items).toHaveLength(100);
    expect(rsmPage(many, id, { max: 1000 }, { max: 100 }).items).toHaveLength(100);
    expect(rsmPage(many, id, { max: 30 }, { max: 100 }).items).toHaveLength(30);
  });

  it("an unknown UID in after or before is item-not-found (§2.4)", () => {
    expect(kindOf(() => rsmPage(all, id, { after: "nope" }, { max: 100 }))).toBe("not-found");
    expect(kindOf(() => rsmPage(all, id, { before: "nope" }, { max: 100 }))).toBe("not-found");
  });

  it("paging forwards with after visits every item once, in order, for any list and page size", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1 }), { maxLength: 60 }), fc.integer({ min: 1, max: 20 }), (list, max) => {
        const seen: string[] = [];
        let req: RsmRequest = { max };
        for (let guard = 0; guard <= list.length + 1; guard++) {
          const page = rsmPage(list, id, req, { max: 100 });
          expect(page.count).toBe(list.length);
          expect(page.items.length).toBeLessThanOrEqual(max);
          if (page.items.length === 0) break;
          expect(page.firstIndex).toBe(seen.length);
          seen.push(...page.items);
          req = { max, after: page.items.at(-1)! };
        }
        expect(seen).toEqual(list);
      }),
    );
  });

  it("paging backwards with before visits every item once, from the end", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1 }), { maxLength: 60 }), fc.integer({ min: 1, max: 20 }), (list, max) => {
        const pages: string[][] = [];
        let req: RsmRequest = { max, before: true };
        for (let guard = 0; guard <= list.length + 1; guard++) {
          const page = rsmPage(list, id, req, { max: 100 });
          if (page.items.length === 0) break;
          expect(list.slice(page.firstIndex, page.firstIndex + page.items.length)).toEqual(page.items);
          pages.unshift(page.items);
          req = { max, before: page.items[0]! };
        }
        expect(pages.flat()).toEqual(list);
      }),
    );
  });
});

describe("describing a page", () => {
  it("has first (with its index), last and count; an empty page only the count", () => {
    const set = rsmResult({ items: ["b", "c"], firstIndex: 1, count: 4 }, id);
    expect(set.attrs.xmlns).toBe(RSM_NS);
    expect(set.getChildText("first")).toBe("b");
    expect(set.getChild("first")?.attrs.index).toBe("1");
    expect(set.getChildText("last")).toBe("c");
    expect(set.getChildText("count")).toBe("4");
    const empty = rsmResult({ items: [], firstIndex: 4, count: 4 }, id);
    expect(empty.getChild("first")).toBeUndefined();
    expect(empty.getChild("last")).toBeUndefined();
    expect(empty.getChildText("count")).toBe("4");
  });
});
