import { afterAll, describe, expect, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import { Scratch } from "./helpers.js";

/**
 * `leasehold agent` refuses a bad config before doing anything: it exits non-zero with a message
 * that names the file, the place and the problem. Run in-process (nothing starts, nothing listens).
 */
const scratch = new Scratch();

afterAll(() => scratch.cleanup());

async function agentCli(...args: string[]): Promise<{ code: number; err: string }> {
  const io = memoryIo({ env: {}, homeDir: scratch.dir });
  const code = await runCli(["agent", ...args], io);
  return { code, err: io.err() };
}

const AUTO_AUTH = `
auto_auth {
  method "approle" {
    config = { role_id_file_path = "/nonexistent/role-id" }
  }
}
`;

describe("leasehold agent config errors", () => {
  it("an unknown key: exit 1, the file, line and key, and a suggestion", async () => {
    const config = scratch.write(
      "unknown-key.hcl",
      `vault {
  address = "http://127.0.0.1:1"
}
${AUTO_AUTH}
template {
  destinaton = "/tmp/x"
  contents   = "x"
}
`,
    );
    const { code, err } = await agentCli(`-config=${config}`);
    expect(code).toBe(1);
    expect(err).toContain(`${config}:12: `);
    expect(err).toContain('unknown key "destinaton" in template');
    expect(err).toContain('did you mean "destination"?');
  });

  it("a template syntax error: exit 1, with the template's line and column in the config file", async () => {
    const config = scratch.write(
      "bad-template.hcl",
      `${AUTO_AUTH}
template {
  destination = "/tmp/x"
  contents    = <<EOT
USER={{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}
PASS={{ with secret "database/creds/app" }}{{ .Data.password }
EOT
}
`,
    );
    const { code, err } = await agentCli(`-config=${config}`);
    expect(code).toBe(1);
    // Line 12 of the file is the template's second line; column 44 is the unclosed action's "{{".
    expect(err).toContain(`${config}:12:44: unclosed action`);
  });

  it("an unknown template function: exit 1, named with its position", async () => {
    const config = scratch.write(
      "bad-function.hcl",
      `${AUTO_AUTH}
template {
  destination = "/tmp/x"
  contents    = "{{ with secret \\"secret/app\\" }}{{ .Data.data.x | toYaml }}{{ end }}"
}
`,
    );
    const { code, err } = await agentCli(`-config=${config}`);
    expect(code).toBe(1);
    expect(err).toMatch(/:10:\d+: .*toYaml/);
  });

  it("no -config: exit 2 (usage), saying how to pass it", async () => {
    const { code, err } = await agentCli();
    expect(code).toBe(2);
    expect(err).toContain("-config=FILE");
  });

  it("a config file that does not exist: exit 1, naming it", async () => {
    const missing = scratch.path("missing.hcl");
    const { code, err } = await agentCli(`-config=${missing}`);
    expect(code).toBe(1);
    expect(err).toContain(`cannot read the agent config ${missing}`);
  });

  it("a missing auto_auth block: exit 1, saying what to add", async () => {
    const config = scratch.write("no-auth.hcl", `vault { address = "http://127.0.0.1:1" }\n`);
    const { code, err } = await agentCli(`-config=${config}`);
    expect(code).toBe(1);
    expect(err).toContain("no auto_auth block");
  });
});
