import { LEASE_COLUMNS as COLUMNS, leaseWhere, patchColumns, type LeaseSqlDialect } from "./lease-sql.js";
import type { LeaseFilter, LeaseRow, LeaseState, LeaseStore } from "./types.js";
import type { PgExecutor, PgNames } from "./postgres-schema.js";

const NON_ACTIVE = ["pending", "revoking", "irrevocable"] as const;

/** PostgreSQL's spelling of the shared lease filter. */
const PG: LeaseSqlDialect = { placeholder: (n) => `$${n}`, contains: (h, n) => `strpos(${h}, ${n}) > 0`, always: "TRUE" };
const where = (filter: LeaseFilter) => leaseWhere(filter, PG);

/**
 * The lease table on PostgreSQL: the same rows, indexes and trigger-kept counts as SQLite's
 * (src/storage/sqlite-leases.ts), so start-up and `sys/leases/count` never scan every lease.
 */
export class PostgresLeaseStore implements LeaseStore {
  private readonly sql;

  constructor(
    private readonly db: PgExecutor,
    private readonly n: PgNames,
  ) {
    const t = n.leases;
    this.sql = {
      insert: `INSERT INTO ${t} (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
      get: `SELECT * FROM ${t} WHERE id = $1`,
      del: `DELETE FROM ${t} WHERE id = $1`,
      getMany: `SELECT * FROM ${t} WHERE id = ANY($1::text[])`,
      delMany: `DELETE FROM ${t} WHERE id = ANY($1::text[]) RETURNING id`,
      due: `SELECT id, due_at FROM ${t} WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2`,
      // The state as a literal, so the planner can prove that state's partial index applies.
      inState: (st: LeaseState) => `SELECT id FROM ${t} WHERE state = '${st}' AND id > $1 ORDER BY id LIMIT $2`,
      byState: `SELECT state, SUM(n)::bigint AS n FROM ${n.counts} GROUP BY state HAVING SUM(n) > 0`,
      byMount: `SELECT mount, SUM(n)::bigint AS n FROM ${n.counts} GROUP BY mount HAVING SUM(n) > 0`,
      byMountState: `SELECT mount, state, SUM(n)::bigint AS n FROM ${n.counts} GROUP BY mount, state HAVING SUM(n) > 0 ORDER BY mount, state`,
      total: `SELECT COALESCE(SUM(n), 0)::bigint AS n FROM ${n.counts}`,
      legacy: `SELECT * FROM ${t} WHERE creator IS NULL ORDER BY id LIMIT $1`,
      rewrite: `UPDATE ${t} SET token_accessor = $2, display_name = $3, metadata = $4, creator = $5 WHERE id = $1`,
    };
  }

  async insert(row: LeaseRow): Promise<void> {
    const r: LeaseRow = { creator: null, ...row };
    const values = COLUMNS.map((c) => r[c] ?? null);
    await this.db.write((tx) => tx.query({ name: `${this.n.prefix}:lease-insert`, text: this.sql.insert, values }), true);
  }

  async get(id: string): Promise<LeaseRow | undefined> {
    const { rows } = await this.db.read<LeaseRow>({ name: `${this.n.prefix}:lease-get`, text: this.sql.get, values: [id] });
    return rows[0];
  }

  async update(id: string, patch: Partial<Omit<LeaseRow, "id">>): Promise<void> {
    await this.updateWhere("id = $1", id, patch);
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.write((tx) => tx.query({ name: `${this.n.prefix}:lease-delete`, text: this.sql.del, values: [id] }), true);
    return (r.rowCount ?? 0) > 0;
  }

  // The batch operations are one statement each over an id array: one round trip, and under HA one
  // transaction with one fence check, however many leases a burst of expiries brings.

  async getMany(ids: readonly string[]): Promise<LeaseRow[]> {
    if (!ids.length) return [];
    return (await this.db.read<LeaseRow>({ name: `${this.n.prefix}:lease-get-many`, text: this.sql.getMany, values: [[...new Set(ids)]] })).rows;
  }

  async updateMany(ids: readonly string[], patch: Partial<Omit<LeaseRow, "id">>): Promise<void> {
    if (!ids.length) return;
    await this.updateWhere("id = ANY($1::text[])", [...new Set(ids)], patch);
  }

  async deleteMany(ids: readonly string[]): Promise<string[]> {
    if (!ids.length) return [];
    const r = await this.db.write((tx) => tx.query<{ id: string }>({ name: `${this.n.prefix}:lease-delete-many`, text: this.sql.delMany, values: [[...new Set(ids)]] }), true);
    return r.rows.map((row) => row.id);
  }

  /** One UPDATE of a patch's columns where `condition` (on `$1`) holds. */
  private async updateWhere(condition: string, key: unknown, patch: Partial<Omit<LeaseRow, "id">>): Promise<void> {
    // Column names come from the fixed list in lease-sql.ts, never from input.
    const cols = patchColumns(patch);
    if (!cols.length) return;
    const text = `UPDATE ${this.n.leases} SET ${cols.map((c, i) => `${c} = $${i + 2}`).join(", ")} WHERE ${condition}`;
    const values = [key, ...cols.map((c) => patch[c] ?? null)];
    await this.db.write((tx) => tx.query({ text, values }), true);
  }

  async due(until: number, limit: number): Promise<{ id: string; due_at: number }[]> {
    return (await this.db.read<{ id: string; due_at: number }>({ name: `${this.n.prefix}:lease-due`, text: this.sql.due, values: [until, limit] })).rows;
  }

  async select(filter: LeaseFilter, after: string, limit: number): Promise<string[]> {
    const w = where(filter);
    const k = w.params.length;
    const text = `SELECT id FROM ${this.n.leases} WHERE ${w.sql} AND id > $${k + 1} ORDER BY id LIMIT $${k + 2}`;
    return (await this.db.read<{ id: string }>({ text, values: [...w.params, after, limit] })).rows.map((r) => r.id);
  }

  async count(filter: LeaseFilter): Promise<number> {
    const w = where(filter);
    // No condition at all: the trigger-kept totals answer without a scan.
    if (w.params.length === 0) return (await this.db.read<{ n: number }>({ text: this.sql.total })).rows[0].n;
    return (await this.db.read<{ n: number }>({ text: `SELECT COUNT(*) AS n FROM ${this.n.leases} WHERE ${w.sql}`, values: w.params })).rows[0].n;
  }

  async stats(): Promise<{ byState: Record<string, number>; byMount: Record<string, number> }> {
    const [byState, byMount] = await Promise.all([
      this.db.read<{ state: string; n: number }>({ text: this.sql.byState }),
      this.db.read<{ mount: string; n: number }>({ text: this.sql.byMount }),
    ]);
    return {
      byState: Object.fromEntries(byState.rows.map((r) => [r.state, r.n])),
      byMount: Object.fromEntries(byMount.rows.map((r) => [r.mount, r.n])),
    };
  }

  async countsByMountAndState(): Promise<{ mount: string; state: string; n: number }[]> {
    return (await this.db.read<{ mount: string; state: string; n: number }>({ text: this.sql.byMountState })).rows;
  }

  async inState(state: LeaseState, after: string, limit: number): Promise<string[]> {
    if (state !== "active" && !(NON_ACTIVE as readonly string[]).includes(state)) throw new Error(`lease store: unknown state ${JSON.stringify(state)}`);
    return (await this.db.read<{ id: string }>({ text: this.sql.inState(state), values: [after, limit] })).rows.map((r) => r.id);
  }

  async legacyCreators(limit: number): Promise<LeaseRow[]> {
    return (await this.db.read<LeaseRow>({ text: this.sql.legacy, values: [limit] })).rows;
  }

  async rewriteCreators(rows: { id: string; token_accessor: string; display_name: string; metadata: string; creator: Buffer }[], finish: boolean): Promise<void> {
    if (rows.length) {
      await this.db.write(async (tx) => {
        for (const r of rows) await tx.query({ text: this.sql.rewrite, values: [r.id, r.token_accessor, r.display_name, r.metadata, r.creator] });
      });
    }
    // An UPDATE leaves the old row version (with the clear values) in the table's pages until
    // vacuumed, and VACUUM only marks that space reusable. VACUUM FULL rewrites the table from live
    // rows (owner's right; a short exclusive lock). The old values stay in WAL segments, archives and
    // replicas already written: that is the operator's to expire.
    if (finish) await this.db.pool.query(`VACUUM FULL ${this.n.leases}`);
  }
}
