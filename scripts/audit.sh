#!/usr/bin/env bash
# Dependency audit of what ships (production dependencies only):
#   npm audit --omit=dev --audit-level=high
# with a documented exception list, scripts/audit-allowlist.json:
#   { "exceptions": [ { "id": "GHSA-xxxx-xxxx-xxxx", "package": "name",
#                       "reason": "why it does not affect Estuary", "until": "YYYY-MM-DD" } ] }
# Every entry needs a reason and an expiry date; an expired entry no longer applies.
#
# Exit status:
#   0  no high/critical advisory outside the allowlist, or the audit service
#      could not be reached (a loud warning, so an offline build is not blocked;
#      the two cases are told apart: see below)
#   1  high/critical advisories found that are not allowlisted
#   2  this script is broken or misused (bad allowlist, no npm)
#
# "Could not reach the audit service" means npm produced no audit report
# (network error, proxy refusing the bulk advisory POST, registry 5xx); "advisories
# found" means npm produced a report (auditReportVersion) listing vulnerabilities.
#
# For testing this script: ESTUARY_AUDIT_REPORT=<file> reads a saved
# `npm audit --json` output instead of running npm.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ALLOWLIST="${ESTUARY_AUDIT_ALLOWLIST:-$ROOT/scripts/audit-allowlist.json}"
NODE="$ROOT/node_modules/.bin/node"
[ -x "$NODE" ] || NODE="$(command -v node)"

report="$(mktemp)"
errors="$(mktemp)"
trap 'rm -f "$report" "$errors"' EXIT

if [ -n "${ESTUARY_AUDIT_REPORT:-}" ]; then
  cp "$ESTUARY_AUDIT_REPORT" "$report"
else
  command -v npm >/dev/null || { echo "audit: npm not found" >&2; exit 2; }
  # --audit-level only changes npm's exit code; we decide from the JSON ourselves,
  # so the level is applied below (high and critical).
  (cd "$ROOT" && npm audit --omit=dev --audit-level=high --json >"$report" 2>"$errors")
fi

"$NODE" --input-type=module - "$report" "$ALLOWLIST" "$errors" <<'EOF'
import { readFileSync, existsSync } from "node:fs";
const [reportFile, allowFile, errFile] = process.argv.slice(2);
const LEVELS = new Set(["high", "critical"]);

let allow = [];
if (existsSync(allowFile)) {
  try {
    const parsed = JSON.parse(readFileSync(allowFile, "utf8"));
    allow = parsed.exceptions ?? [];
    for (const e of allow) {
      if (!e.id || !e.reason || !e.until || Number.isNaN(Date.parse(e.until))) {
        console.error(`audit: allowlist entry ${JSON.stringify(e)} needs id, reason and a valid until date`);
        process.exit(2);
      }
    }
  } catch (err) {
    console.error(`audit: cannot read ${allowFile}: ${err.message}`);
    process.exit(2);
  }
}

const text = readFileSync(reportFile, "utf8");
let report;
try {
  report = JSON.parse(text);
} catch {
  report = undefined;
}
if (!report || report.auditReportVersion === undefined || typeof report.vulnerabilities !== "object") {
  // npm printed an error object (or nothing): the advisory service was not reached.
  const why = report?.message ?? report?.error?.summary ?? (existsSync(errFile) ? readFileSync(errFile, "utf8").trim().split("\n").pop() : "") ?? "";
  console.warn("audit: WARNING: could not reach the npm audit service; dependencies were NOT audited.");
  if (why) console.warn(`audit: npm said: ${why}`);
  console.warn("audit: run scripts/audit.sh where registry.npmjs.org's /-/npm/v1/security/advisories/bulk is reachable.");
  process.exit(0);
}

const today = new Date();
const active = new Map();
for (const e of allow) {
  if (new Date(e.until) < today) console.warn(`audit: allowlist entry ${e.id} expired on ${e.until}; it no longer applies`);
  else active.set(e.id, e);
}

// Each vulnerable package lists its advisories in `via` (objects; strings point at other packages).
const advisories = new Map();
for (const [pkg, v] of Object.entries(report.vulnerabilities)) {
  for (const via of v.via ?? []) {
    if (typeof via !== "object" || !LEVELS.has(via.severity)) continue;
    const id = (via.url ?? "").split("/").pop() || String(via.source);
    const a = advisories.get(id) ?? { id, severity: via.severity, title: via.title, url: via.url, packages: new Set() };
    a.packages.add(pkg);
    advisories.set(id, a);
  }
}

const blocking = [...advisories.values()].filter((a) => !active.has(a.id));
for (const a of advisories.values()) {
  if (active.has(a.id)) console.log(`audit: allowed ${a.id} (${a.severity}) in ${[...a.packages].join(", ")}: ${active.get(a.id).reason}`);
}
if (blocking.length > 0) {
  console.error(`audit: ${blocking.length} high/critical advisories in production dependencies:`);
  for (const a of blocking) console.error(`  ${a.severity.padEnd(8)} ${a.id} ${a.title ?? ""} [${[...a.packages].join(", ")}] ${a.url ?? ""}`);
  process.exit(1);
}
const counts = report.metadata?.vulnerabilities ?? {};
console.log(`audit: no high/critical advisory outside the allowlist (all levels: ${JSON.stringify(counts)})`);
EOF
