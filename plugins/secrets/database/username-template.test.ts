import { describe, expect, it } from "vitest";
import { postgresDatabasePlugin } from "../../database/postgres/index.js";
import { generatePassword } from "./password.js";
import { roleAllowed } from "./store.js";
import { UsernameTemplate, makeUsername, truncateBytes } from "./username-template.js";

const DEFAULT = new UsernameTemplate(postgresDatabasePlugin.usernames.defaultTemplate);

describe("username templates", () => {
  it("renders Vault's PostgreSQL default as in Vault's examples", () => {
    const now = Math.floor(Date.now() / 1000);
    const a = makeUsername(DEFAULT, { DisplayName: "token", RoleName: "myrolename" }, 63);
    expect(a).toMatch(/^v-token-myrolena-[A-Za-z0-9]{20}-(\d{10})$/);
    expect(Math.abs(Number(a.split("-").pop()) - now)).toBeLessThanOrEqual(1);
    const b = makeUsername(DEFAULT, { DisplayName: "amuchlonger_dispname", RoleName: "role-name-with-dashes" }, 63);
    expect(b).toMatch(/^v-amuchlon-role-nam-[A-Za-z0-9]{20}-\d{10}$/);
  });

  it("turns hostile display and role names into plain characters", () => {
    const name = makeUsername(DEFAULT, { DisplayName: `x"; DROP ROLE postgres; --`, RoleName: `r'\n;` }, 63);
    expect(name).toMatch(/^v-x___DROP-r___-[A-Za-z0-9]{20}-\d{10}$/);
    const t = new UsernameTemplate("{{.DisplayName}}");
    expect(makeUsername(t, { DisplayName: "a\u0000b\"c'd;e", RoleName: "" }, 63)).toBe("a_b_c_d_e");
  });

  it("supports Vault's functions, pipelines, parentheses and trimming", () => {
    const t = new UsernameTemplate(`  {{- .RoleName | uppercase | replace "-" "_" -}}  _{{ printf "%s.%d%%" (.DisplayName | lowercase) 7 }}_{{ truncate 3 "abcdef" }}_{{ .DisplayName | truncate_sha256 10 }}`);
    expect(t.render({ DisplayName: "ApProLe-Long-Name", RoleName: "my-role" })).toMatch(/^MY_ROLE_approle-long-name\.7%_abc_Ap[0-9a-f]{8}$/);
    expect(new UsernameTemplate('{{ timestamp "2006-01-02" }}').render({ DisplayName: "", RoleName: "" })).toBe(new Date().toISOString().slice(0, 10));
    expect(new UsernameTemplate("{{ uuid }}").render({ DisplayName: "", RoleName: "" })).toMatch(/^[0-9a-f-]{36}$/);
    expect(new UsernameTemplate("{{ random 5 | sha256 }}").render({ DisplayName: "", RoleName: "" })).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses broken templates with a message naming the field", () => {
    for (const bad of ["{{ .Nope }}", "{{ nope 1 }}", "{{ truncate }}", "{{ .RoleName", '{{ "x }}', "{{ (random 3 }}", "{{ }}", "{{ truncate 0 .RoleName }}"]) {
      expect(() => new UsernameTemplate(bad).render({ DisplayName: "d", RoleName: "r" }), bad).toThrow(/^username_template: /);
    }
  });

  it("keeps usernames within the byte limit without splitting a character", () => {
    expect(truncateBytes("ééé", 5)).toBe("éé");
    const long = makeUsername(new UsernameTemplate("{{ random 100 }}"), { DisplayName: "", RoleName: "" }, 63);
    expect(long).toHaveLength(63);
    expect(() => makeUsername(new UsernameTemplate("   "), { DisplayName: "", RoleName: "" }, 63)).toThrow(/empty username/);
  });
});

describe("passwords and allowed_roles", () => {
  it("generates passwords that meet the default policy", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = generatePassword();
      expect(p).toMatch(/^[A-Za-z0-9-]{24}$/);
      expect(p).toMatch(/[A-Z]/);
      expect(p).toMatch(/[a-z]/);
      expect(p).toMatch(/[0-9]/);
      expect(p).toContain("-");
      seen.add(p);
    }
    expect(seen.size).toBe(200);
  });

  it("matches names and globs", () => {
    expect(roleAllowed(["*"], "anything")).toBe(true);
    expect(roleAllowed(["app-*", "exact"], "app-web")).toBe(true);
    expect(roleAllowed(["app-*", "exact"], "exact")).toBe(true);
    expect(roleAllowed(["app-*", "exact"], "exactly")).toBe(false);
    expect(roleAllowed(["*-ro"], "billing-ro")).toBe(true);
    expect(roleAllowed(["a.b"], "aXb")).toBe(false);
    expect(roleAllowed([], "x")).toBe(false);
  });
});

describe("username template limits", () => {
  const fields = { DisplayName: "token", RoleName: "role" };
  const timed = (fn: () => unknown): number => {
    const t = process.hrtime.bigint();
    try {
      fn();
    } catch {
      // the error is checked by the caller
    }
    return Number(process.hrtime.bigint() - t) / 1e6;
  };

  it("refuses templates that grow strings exponentially, quickly and with a 400", () => {
    const grow = `{{ "x" ${'| replace "x" "xxxxxxxxxxxxxxxx" '.repeat(8)}}}`;
    const base64 = `{{ .RoleName ${"| base64 ".repeat(100)}| truncate 10 }}`;
    for (const src of [grow, base64]) {
      const t = new UsernameTemplate(src);
      expect(() => t.render(fields), src).toThrow(expect.objectContaining({ status: 400, message: expect.stringMatching(/^username_template: .*limit is 65536/) }));
      expect(timed(() => t.render(fields))).toBeLessThan(500);
    }
    // Many values, each under the per-value limit, still count against the render's total.
    const many = `{{ truncate 5 "a" }}${"{{ random 1024 | replace \"\" \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\" | truncate 1 }}".repeat(20)}`;
    expect(() => new UsernameTemplate(many).render(fields)).toThrow(/builds more than 1048576 characters in all/);
  });

  it("refuses oversized and deeply nested templates when parsed", () => {
    expect(() => new UsernameTemplate(`{{ ${"(".repeat(40)}"a"${")".repeat(40)} }}`)).toThrow(/nested deeper than 32/);
    expect(() => new UsernameTemplate("x".repeat(5000))).toThrow(/longer than 4096/);
  });

  it("positive control: ordinary templates are untouched by the limits", () => {
    expect(makeUsername(DEFAULT, fields, 63)).toMatch(/^v-token-role-[A-Za-z0-9]{20}-\d{10}$/);
    const t = new UsernameTemplate(`{{ printf "app-%s-%s" (.RoleName | replace "-" "_") (random 1024 | sha256 | truncate 8) }}`);
    expect(t.render({ DisplayName: "d", RoleName: "my-role" })).toMatch(/^app-my_role-[0-9a-f]{8}$/);
    expect(new UsernameTemplate(`{{ "x" ${'| replace "x" "xxxx" '.repeat(7)}| truncate 5 }}`).render(fields)).toBe("xxxxx"); // 4^7 = 16384 characters: under the limit
  });
});
