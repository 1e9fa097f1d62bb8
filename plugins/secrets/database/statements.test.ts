import { describe, expect, it } from "vitest";
import { parseStatements, splitStatements } from "./statements.js";

describe("statement lists", () => {
  it("keeps list entries whole", () => {
    expect(parseStatements([" CREATE ROLE a; GRANT b TO a ", "", "SELECT 1"])).toEqual(["CREATE ROLE a; GRANT b TO a", "SELECT 1"]);
  });

  it("splits a string on top-level semicolons only", () => {
    const sql = `CREATE ROLE "a;b"; COMMENT ON ROLE x IS 'c;d''e;'; DO $body$ BEGIN PERFORM 1; END $body$; -- note; here
      SELECT $$x;y$$ /* a; b */ ;;`;
    expect(splitStatements(sql)).toEqual([`CREATE ROLE "a;b"`, `COMMENT ON ROLE x IS 'c;d''e;'`, "DO $body$ BEGIN PERFORM 1; END $body$", "-- note; here\n      SELECT $$x;y$$ /* a; b */"]);
  });

  it("decodes base64 and JSON arrays, as Vault accepts them", () => {
    const list = JSON.stringify(["CREATE ROLE a", "GRANT b TO a"]);
    expect(parseStatements(list)).toEqual(["CREATE ROLE a", "GRANT b TO a"]);
    expect(parseStatements(Buffer.from(list).toString("base64"))).toEqual(["CREATE ROLE a", "GRANT b TO a"]);
    expect(parseStatements(Buffer.from("CREATE ROLE a; GRANT b TO a;").toString("base64"))).toEqual(["CREATE ROLE a", "GRANT b TO a"]);
    // Not base64 (spaces) and not JSON: plain SQL.
    expect(parseStatements("[not json; still sql")).toEqual(["[not json", "still sql"]);
  });
});
