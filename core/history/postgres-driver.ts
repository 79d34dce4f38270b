/**
 * The archive's SQL on PostgreSQL through `pg` (node-postgres), the driver
 * @keyv/postgres already brings in. archive.ts writes `?` placeholders (no
 * `?` ever appears inside its SQL otherwise); they become `$1…$n` here.
 *
 * `pg` ships no TypeScript declarations (and @types/pg is not installed), so
 * it is loaded through a computed specifier, typed by the few members we use
 * (https://node-postgres.com/apis/pool): `new Pool({ connectionString })`,
 * `pool.query(text, values) → { rows, rowCount }`, `pool.end()`. Loading it
 * lazily also keeps it out of SQLite-only runs.
 */
import type { SqlDriver, SqlValue } from "./archive.ts";

interface PgPool {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): unknown;
}

interface PgModule {
  Pool: new (options: { connectionString: string; max?: number }) => PgPool;
}

/** `?` → `$n`, in order. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export async function openPostgresDriver(url: string): Promise<SqlDriver> {
  const specifier = "pg";
  const pg = ((await import(specifier)) as { default: PgModule }).default;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // An idle client's connection dropping must not crash the process (node-postgres docs: "Pool" → error event);
  // the next query gets a fresh connection or fails into the caller.
  pool.on("error", () => undefined);
  let closed = false;
  return {
    dialect: "postgres",
    async all<T>(sql: string, params: SqlValue[]): Promise<T[]> {
      return (await pool.query(numberPlaceholders(sql), params)).rows as T[];
    },
    async run(sql: string, params: SqlValue[]): Promise<number> {
      return (await pool.query(numberPlaceholders(sql), params)).rowCount ?? 0;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
