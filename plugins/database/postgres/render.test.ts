import { describe, expect, it } from "vitest";
import { formatExpiration, joinStatements, renderStatement } from "./render.js";

const values = { name: 'v-x"; DROP ROLE postgres; --', password: "SCRAM-SHA-256$4096:abc$def:ghi", expiration: "2030-01-02 03:04:05+0000" };

describe("renderStatement", () => {
  it("renders Vault-style quoted placeholders with identifier and literal quoting", () => {
    const sql = renderStatement(`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, values);
    expect(sql).toBe(`CREATE ROLE "v-x""; DROP ROLE postgres; --" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi' VALID UNTIL '2030-01-02 03:04:05+0000';`);
  });

  it("quotes bare placeholders by kind, and {{username}} is {{name}}", () => {
    expect(renderStatement("GRANT app TO {{username}}", values)).toBe(`GRANT app TO "v-x""; DROP ROLE postgres; --"`);
    expect(renderStatement("ALTER ROLE {{name}} VALID UNTIL {{expiration}}", values)).toBe(`ALTER ROLE "v-x""; DROP ROLE postgres; --" VALID UNTIL '2030-01-02 03:04:05+0000'`);
  });

  it("uses literal quoting for a name inside single quotes and escapes inside longer strings", () => {
    expect(renderStatement("SELECT 1 WHERE usename = '{{name}}'", { name: "o'neil" })).toBe("SELECT 1 WHERE usename = 'o''neil'");
    expect(renderStatement("COMMENT ON ROLE {{name}} IS 'issued to {{name}} by leasehold'", { name: "o'neil" })).toBe(`COMMENT ON ROLE "o'neil" IS 'issued to o''neil by leasehold'`);
    expect(renderStatement(`SELECT "prefix_{{name}}"`, { name: 'a"b' })).toBe(`SELECT "prefix_a""b"`);
    expect(renderStatement(`SELECT E'x {{name}}'`, { name: "a\\'b" })).toBe(`SELECT E'x a\\\\''b'`);
  });

  it("renders inside dollar-quoted bodies and refuses values that would close them", () => {
    expect(renderStatement(`DO $$ BEGIN CREATE ROLE "{{name}}"; END $$`, { name: "r1" })).toBe(`DO $$ BEGIN CREATE ROLE "r1"; END $$`);
    expect(() => renderStatement(`DO $$ BEGIN CREATE ROLE "{{name}}"; END $$`, { name: "a$$b" })).toThrow(/end it early/);
  });

  it("leaves comments and unknown braces alone, and refuses missing values and NUL", () => {
    expect(renderStatement("SELECT 1 -- {{password}}\n, {{other}}", {})).toBe("SELECT 1 -- {{password}}\n, {{other}}");
    expect(() => renderStatement("SELECT {{password}}", { name: "x" })).toThrow(/not available/);
    expect(() => renderStatement("SELECT {{name}}", { name: "a\0b" })).toThrow(/NUL/);
  });

  it("joins statements so that a trailing comment cannot swallow the separator", () => {
    expect(joinStatements(["SELECT 1 -- one", " ", "SELECT 2;"])).toBe("SELECT 1 -- one\n;\nSELECT 2;");
  });

  it("formats expirations as Vault does, in UTC", () => {
    expect(formatExpiration(new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 999)))).toBe("2030-01-02 03:04:05+0000");
  });
});
