import { inject, describe, expect, it } from "vitest";
import pg from "pg";

describe("the test PostgreSQL server", () => {
  it("is a real PostgreSQL that enforces passwords", async () => {
    const url = inject("pgUrl");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
    expect(rows[0].v).toBeGreaterThanOrEqual(130000);
    await client.end();
    const wrong = new URL(url);
    wrong.password = "not-the-password";
    const bad = new pg.Client({ connectionString: wrong.toString() });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
  });
});
