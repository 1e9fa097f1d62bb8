import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../sdk/errors.js";
import { loadAgentConfig, type AgentConfig, type LoadAgentConfigOptions } from "./config.js";
import { TemplateError, renderTemplate, type SecretSource } from "./template/index.js";

const TEMPLATE_FILES: Record<string, string> = {
  "/etc/leasehold/db.ctmpl": '{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}\n{{ end }}',
  "/etc/leasehold/bad.ctmpl": "ok\nline two {{ .x | toUpperr }}\n",
};

const readFile = (path: string): string => {
  if (!Object.hasOwn(TEMPLATE_FILES, path)) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  return TEMPLATE_FILES[path];
};

function load(text: string, fileName = "agent.hcl", options: LoadAgentConfigOptions = { readFile }): AgentConfig {
  return loadAgentConfig(text, fileName, options);
}

/** The UserError message loading produces (fails the test when it loads). */
function configError(text: string, fileName = "agent.hcl"): string {
  try {
    load(text, fileName);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected loadAgentConfig to fail");
}

/** A config without the parsed templates, for comparing with toEqual. */
function plain(config: AgentConfig): unknown {
  return {
    ...config,
    templates: config.templates.map(({ template, ...rest }) => ({ ...rest, templateName: template.name })),
    envTemplates: config.envTemplates.map(({ template, ...rest }) => ({ ...rest, templateName: template.name })),
  };
}

/** A source answering every read with the same credentials, for rendering loaded templates. */
const source: SecretSource = {
  read: async () => ({ data: { username: "v-app", password: "pw" }, lease_id: "l", lease_duration: 60, renewable: true }),
  write: async (_path, data) => ({ data: { certificate: `CERT ${data.common_name}`, private_key: "KEY", issuing_ca: "CA" }, lease_id: "", lease_duration: 60, renewable: false }),
};

const FULL_HCL = `# leasehold agent: database credentials and a certificate for the app
pid_file           = "/run/leasehold-agent.pid"
exit_after_auth    = false
revoke_on_shutdown = true
log_level          = "warning"

vault {
  address         = "https://leasehold.example:8200"
  ca_cert         = "/etc/leasehold/ca.pem"
  client_cert     = "/etc/leasehold/agent.pem"
  client_key      = "/etc/leasehold/agent-key.pem"
  tls_skip_verify = false
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path  = "/auth/approle-prod/"
    namespace   = "team-a"
    min_backoff = "2s"
    max_backoff = "1m"
    exit_on_err = true
    config = {
      role_id_file_path                   = "/etc/leasehold/role-id"
      secret_id_file_path                 = "/etc/leasehold/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/run/leasehold/token"
      mode = 0640
    }
  }

  sink "file" {
    config = {
      path = "/home/app/.leasehold-token"
      mode = "0600"
    }
  }
}

template_config {
  exit_on_retry_failure         = true
  static_secret_render_interval = "10m"
  lease_renewal_threshold       = 0.85
  max_connections_per_host      = 20
}

template {
  source               = "/etc/leasehold/db.ctmpl"
  destination          = "/run/secrets/db.env"
  perms                = "0600"
  error_on_missing_key = true
  backup               = true
  exec {
    command = ["systemctl", "reload", "app"]
    timeout = "15s"
  }
}

template {
  contents = <<EOT
{{ with pkiCert "pki/issue/web" "common_name=web.example.com" "ttl=24h" }}{{ .Cert }}{{ .Key }}{{ end }}
EOT
  destination      = "/run/tls/web.pem"
  perms            = 0640
  create_dest_dirs = false
  command          = "nginx -s reload"
  command_timeout  = "5s"
}

env_template "DB_USER" {
  contents             = "{{ with secret \\"database/creds/app\\" }}{{ .Data.username }}{{ end }}"
  error_on_missing_key = true
}

env_template "DB_PASSWORD" {
  contents = "{{ with secret \\"database/creds/app\\" }}{{ .Data.password }}{{ end }}"
}

exec {
  command                   = ["/usr/local/bin/app", "--port", "8080"]
  restart_on_secret_changes = "never"
  restart_stop_signal       = "INT"
}
`;

const FULL_JSON = JSON.stringify({
  pid_file: "/run/leasehold-agent.pid",
  exit_after_auth: false,
  revoke_on_shutdown: true,
  log_level: "warning",
  vault: {
    address: "https://leasehold.example:8200",
    ca_cert: "/etc/leasehold/ca.pem",
    client_cert: "/etc/leasehold/agent.pem",
    client_key: "/etc/leasehold/agent-key.pem",
    tls_skip_verify: false,
    retry: { num_retries: 5 },
  },
  auto_auth: {
    method: [
      {
        type: "approle",
        mount_path: "/auth/approle-prod/",
        namespace: "team-a",
        min_backoff: "2s",
        max_backoff: 60,
        exit_on_err: true,
        config: { role_id_file_path: "/etc/leasehold/role-id", secret_id_file_path: "/etc/leasehold/secret-id", remove_secret_id_file_after_reading: false },
      },
    ],
    sink: [
      { type: "file", config: { path: "/run/leasehold/token", mode: 640 } },
      { type: "file", config: { path: "/home/app/.leasehold-token", mode: "0600" } },
    ],
  },
  template_config: { exit_on_retry_failure: true, static_secret_render_interval: "10m", lease_renewal_threshold: 0.85, max_connections_per_host: 20 },
  template: [
    {
      source: "/etc/leasehold/db.ctmpl",
      destination: "/run/secrets/db.env",
      perms: "0600",
      error_on_missing_key: true,
      backup: true,
      exec: { command: ["systemctl", "reload", "app"], timeout: "15s" },
    },
    {
      contents: '{{ with pkiCert "pki/issue/web" "common_name=web.example.com" "ttl=24h" }}{{ .Cert }}{{ .Key }}{{ end }}\n',
      destination: "/run/tls/web.pem",
      perms: 640,
      create_dest_dirs: false,
      command: "nginx -s reload",
      command_timeout: "5s",
    },
  ],
  env_template: {
    DB_USER: { contents: '{{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}', error_on_missing_key: true },
    DB_PASSWORD: { contents: '{{ with secret "database/creds/app" }}{{ .Data.password }}{{ end }}' },
  },
  exec: { command: ["/usr/local/bin/app", "--port", "8080"], restart_on_secret_changes: "never", restart_stop_signal: "INT" },
});

const FULL_EXPECTED = {
  server: {
    block: "vault",
    address: "https://leasehold.example:8200",
    caCert: "/etc/leasehold/ca.pem",
    clientCert: "/etc/leasehold/agent.pem",
    clientKey: "/etc/leasehold/agent-key.pem",
    tlsSkipVerify: false,
    numRetries: 5,
  },
  autoAuth: {
    method: {
      type: "approle",
      mountPath: "auth/approle-prod",
      namespace: "team-a",
      minBackoffSeconds: 2,
      maxBackoffSeconds: 60,
      exitOnError: true,
      config: { roleIdFilePath: "/etc/leasehold/role-id", secretIdFilePath: "/etc/leasehold/secret-id", removeSecretIdFileAfterReading: false },
    },
    sinks: [
      { type: "file", path: "/run/leasehold/token", mode: 0o640 },
      { type: "file", path: "/home/app/.leasehold-token", mode: 0o600 },
    ],
  },
  templateConfig: { exitOnRetryFailure: true, staticSecretRenderIntervalSeconds: 600, leaseRenewalThreshold: 0.85, maxConnectionsPerHost: 20 },
  templates: [
    {
      source: "/etc/leasehold/db.ctmpl",
      templateName: "/etc/leasehold/db.ctmpl",
      destination: "/run/secrets/db.env",
      perms: 0o600,
      createDestDirs: true,
      errorOnMissingKey: true,
      backup: true,
      exec: { command: { type: "argv", argv: ["systemctl", "reload", "app"] }, timeoutSeconds: 15 },
    },
    {
      contents: '{{ with pkiCert "pki/issue/web" "common_name=web.example.com" "ttl=24h" }}{{ .Cert }}{{ .Key }}{{ end }}\n',
      destination: "/run/tls/web.pem",
      perms: 0o640,
      createDestDirs: false,
      errorOnMissingKey: false,
      backup: false,
      exec: { command: { type: "shell", script: "nginx -s reload" }, timeoutSeconds: 5 },
    },
  ],
  envTemplates: [
    { name: "DB_USER", contents: '{{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}', errorOnMissingKey: true },
    { name: "DB_PASSWORD", contents: '{{ with secret "database/creds/app" }}{{ .Data.password }}{{ end }}', errorOnMissingKey: false },
  ],
  exec: { command: { type: "argv", argv: ["/usr/local/bin/app", "--port", "8080"] }, restartOnSecretChanges: "never", restartStopSignal: "SIGINT" },
  exitAfterAuth: false,
  pidFile: "/run/leasehold-agent.pid",
  revokeOnShutdown: true,
  logLevel: "warn",
};

describe("loadAgentConfig: a full config", () => {
  it("reads the HCL form", () => {
    const config = load(FULL_HCL);
    expect(plain(config)).toEqual({
      ...FULL_EXPECTED,
      templates: [FULL_EXPECTED.templates[0], { ...FULL_EXPECTED.templates[1], templateName: "agent.hcl" }],
      envTemplates: FULL_EXPECTED.envTemplates.map((e) => ({ ...e, templateName: "agent.hcl" })),
    });
  });

  it("reads the JSON form into the same config", () => {
    const config = load(FULL_JSON, "agent.json");
    expect(plain(config)).toEqual({
      ...FULL_EXPECTED,
      templates: [FULL_EXPECTED.templates[0], { ...FULL_EXPECTED.templates[1], templateName: "agent.json template[1].contents" }],
      envTemplates: FULL_EXPECTED.envTemplates.map((e) => ({ ...e, templateName: `agent.json env_template "${e.name}".contents` })),
    });
  });

  it("treats text starting with { as JSON whatever the file name", () => {
    expect(load(FULL_JSON, "agent.conf").server.address).toBe("https://leasehold.example:8200");
  });

  it("parses the templates, ready to render", async () => {
    const config = load(FULL_HCL);
    expect((await renderTemplate(config.templates[0].template, { source })).text).toBe("DB_USER=v-app\n");
    expect((await renderTemplate(config.templates[1].template, { source })).text).toBe("CERT web.example.com\nKEY\n\n");
    expect((await renderTemplate(config.envTemplates[1].template, { source })).text).toBe("pw");
  });

  it("reads template sources from disk by default", async () => {
    const dir = mkdtempSync(join(tmpdir(), "leasehold-agent-config-"));
    try {
      const file = join(dir, "app.ctmpl");
      writeFileSync(file, "user={{ (secret \"database/creds/app\").Data.username }}");
      const config = loadAgentConfig(`${AUTH}\ntemplate {\n  source = ${JSON.stringify(file)}\n  destination = "/tmp/x"\n}\n`, "agent.hcl");
      expect((await renderTemplate(config.templates[0].template, { source })).text).toBe("user=v-app");
      expect(configError(`${AUTH}\ntemplate {\n  source = ${JSON.stringify(join(dir, "missing.ctmpl"))}\n  destination = "/tmp/x"\n}\n`)).toMatch(
        /^agent\.hcl:7: template: cannot read the template ".*missing\.ctmpl": ENOENT/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The smallest valid config (5 lines); tests append to it from line 6. */
const AUTH = `auto_auth {
  method "approle" {
    config = { role_id_file_path = "/etc/role-id" }
  }
}`;

describe("loadAgentConfig: defaults and accepted forms", () => {
  it("fills defaults for a minimal config", () => {
    expect(plain(load(AUTH))).toEqual({
      server: { tlsSkipVerify: false, numRetries: 12 },
      autoAuth: {
        method: { type: "approle", mountPath: "auth/approle", minBackoffSeconds: 1, maxBackoffSeconds: 300, exitOnError: false, config: { roleIdFilePath: "/etc/role-id", removeSecretIdFileAfterReading: true } },
        sinks: [],
      },
      templates: [],
      envTemplates: [],
      templateConfig: { exitOnRetryFailure: false, staticSecretRenderIntervalSeconds: 300, leaseRenewalThreshold: 0.9 },
      exitAfterAuth: false,
      revokeOnShutdown: false,
    });
  });

  it("accepts a leasehold block in place of vault", () => {
    expect(load(`${AUTH}\nleasehold {\n  address = "http://127.0.0.1:8200"\n}`).server).toEqual({ block: "leasehold", address: "http://127.0.0.1:8200", tlsSkipVerify: false, numRetries: 12 });
  });

  it("reads addresses (leasehold's extension) after address, in HCL and JSON", () => {
    const hcl = load(`${AUTH}\nvault {\n  address   = "https://a.example:8200"\n  addresses = ["https://b.example:8200", " https://c.example:8200 "]\n}`).server;
    expect([hcl.address, hcl.addresses]).toEqual(["https://a.example:8200", ["https://b.example:8200", "https://c.example:8200"]]);
    expect(load(`${AUTH}\nvault {\n  addresses = ["http://127.0.0.1:8200"]\n}`).server).toEqual({ block: "vault", addresses: ["http://127.0.0.1:8200"], tlsSkipVerify: false, numRetries: 12 });
  });

  it("reads num_retries 0 as the default and -1 as no retries", () => {
    expect(load(`${AUTH}\nvault {\n  retry { num_retries = 0 }\n}`).server.numRetries).toBe(12);
    expect(load(`${AUTH}\nvault {\n  retry { num_retries = -1 }\n}`).server.numRetries).toBe(0);
  });

  it("keeps sub-second durations (Go units), as Vault Agent does", () => {
    const config = load(`auto_auth {
  method "approle" {
    min_backoff = "250ms"
    max_backoff = "1.5s"
    config {
      role_id_file_path = "/etc/role-id"
    }
  }
}
template_config {
  static_secret_render_interval = "1m30s"
}`);
    expect(config.autoAuth.method.minBackoffSeconds).toBe(0.25);
    expect(config.autoAuth.method.maxBackoffSeconds).toBe(1.5);
    expect(config.templateConfig.staticSecretRenderIntervalSeconds).toBe(90);
  });

  it("accepts method { type = ... } and sink { type = ... }, and config as a block", () => {
    const config = load(`auto_auth {
  method {
    type = "kubernetes"
    config {
      role = "app"
    }
  }
  sink {
    type = "file"
    config = { path = "/run/token" }
  }
}`);
    expect(config.autoAuth).toEqual({
      method: { type: "kubernetes", mountPath: "auth/kubernetes", minBackoffSeconds: 1, maxBackoffSeconds: 300, exitOnError: false, config: { role: "app", tokenPath: "/var/run/secrets/kubernetes.io/serviceaccount/token" } },
      sinks: [{ type: "file", path: "/run/token", mode: 0o640 }],
    });
  });

  it("accepts a type attribute that repeats the label", () => {
    expect(load(`auto_auth {\n  method "jwt" {\n    type = "jwt"\n    config = { role = "r", path = "/var/run/jwt" }\n  }\n}`).autoAuth.method).toEqual({
      type: "jwt",
      mountPath: "auth/jwt",
      minBackoffSeconds: 1,
      maxBackoffSeconds: 300,
      exitOnError: false,
      config: { role: "r", path: "/var/run/jwt", removeJwtAfterReading: true },
    });
  });

  it("reads kubernetes with its token path, and jwt without removing the token", () => {
    const k8s = load(`auto_auth {\n  method "kubernetes" {\n    mount_path = "auth/k8s"\n    config = { role = "app", token_path = "/var/run/secrets/tokens/leasehold" }\n  }\n}`);
    expect(k8s.autoAuth.method).toMatchObject({ type: "kubernetes", mountPath: "auth/k8s", config: { role: "app", tokenPath: "/var/run/secrets/tokens/leasehold" } });
    const jwt = load(`auto_auth {\n  method "jwt" {\n    config = { role = "r", path = "/t", remove_jwt_after_reading = false }\n  }\n}`);
    expect(jwt.autoAuth.method).toMatchObject({ type: "jwt", config: { role: "r", path: "/t", removeJwtAfterReading: false } });
  });

  it("reads cert with its own certificate, or with the vault block's", () => {
    const own = load(`auto_auth {\n  method "cert" {\n    config = { name = "web", ca_cert = "/ca.pem", client_cert = "/c.pem", client_key = "/k.pem" }\n  }\n}`);
    expect(own.autoAuth.method).toEqual({ type: "cert", mountPath: "auth/cert", minBackoffSeconds: 1, maxBackoffSeconds: 300, exitOnError: false, config: { name: "web", caCert: "/ca.pem", clientCert: "/c.pem", clientKey: "/k.pem" } });
    const fromVault = load(`vault {\n  client_cert = "/c.pem"\n  client_key = "/k.pem"\n}\nauto_auth {\n  method "cert" {}\n}`);
    expect(fromVault.autoAuth.method).toMatchObject({ type: "cert", config: {} });
  });

  it("reads file modes as octal digits in every spelling", () => {
    const modes = ["0640", "640", "0o640", "0640", "640"].map((m, i) => (i < 3 ? `"${m}"` : m));
    for (const m of modes) {
      expect(load(`${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  perms = ${m}\n}`).templates[0].perms).toBe(0o640);
    }
    expect(load(`${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  perms = 0\n}`).templates[0].perms).toBe(0);
  });

  it("accepts Go's boolean spellings and durations in seconds", () => {
    const config = load(`${AUTH}\nexit_after_auth = "t"\nrevoke_on_shutdown = 1\ntemplate_config {\n  static_secret_render_interval = 90\n}`);
    expect([config.exitAfterAuth, config.revokeOnShutdown, config.templateConfig.staticSecretRenderIntervalSeconds]).toEqual([true, true, 90]);
  });

  it("accepts exec without env templates, and a template exec given as a shell string", () => {
    const config = load(`${AUTH}\nexec {\n  command = "exec /app"\n}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec { command = "kill -HUP 1" }\n}`);
    expect(config.exec).toEqual({ command: { type: "shell", script: "exec /app" }, restartOnSecretChanges: "always", restartStopSignal: "SIGTERM" });
    expect(config.templates[0].exec).toEqual({ command: { type: "shell", script: "kill -HUP 1" }, timeoutSeconds: 30 });
  });

  it("parses templates with custom delimiters", async () => {
    const config = load(`${AUTH}\ntemplate {\n  contents = "{{ x }} [[ (secret \\"p\\").Data.username ]]"\n  destination = "/x"\n  left_delimiter = "[["\n  right_delimiter = "]]"\n}`);
    expect((await renderTemplate(config.templates[0].template, { source })).text).toBe("{{ x }} v-app");
  });
});

describe("loadAgentConfig: template errors point into the right file", () => {
  it("a heredoc template reports the config file's line and column", () => {
    expect(configError(`${AUTH}\ntemplate {\n  destination = "/x"\n  contents = <<EOT\nfirst line\n  second {{ .x | toUpperr }}\nEOT\n}`)).toBe(
      'agent.hcl:10:18: function "toUpperr" not defined (did you mean "toUpper"?)',
    );
  });

  it("an indented heredoc counts the indentation it removed", () => {
    expect(configError(`${AUTH}\ntemplate {\n  destination = "/x"\n  contents = <<-EOT\n    first\n      {{ nope }}\n    EOT\n}`)).toBe('agent.hcl:10:10: function "nope" not defined');
  });

  it("a quoted template with escapes reports the column in the config file", () => {
    expect(configError(`${AUTH}\ntemplate {\n  destination = "/x"\n  contents = "a\\tb\\n{{ \\"x\\" | nope }}"\n}`)).toBe('agent.hcl:8:32: function "nope" not defined');
  });

  it("an unclosed block in inline contents points at its opening", () => {
    expect(configError(`${AUTH}\nenv_template "X" {\n  contents = "{{ if true }}x"\n}\nexec {\n  command = ["/app"]\n}`)).toBe("agent.hcl:7:18: {{if}} has no matching {{end}}");
  });

  it("a JSON template names its place in the file", () => {
    const json = JSON.stringify({ auto_auth: { method: { approle: { config: { role_id_file_path: "/r" } } } }, template: [{ destination: "/x", contents: "\n {{ nope }}" }] });
    expect(configError(json, "agent.json")).toBe('agent.json template[0].contents:2:5: function "nope" not defined');
  });

  it("a source template reports its own file, line and column", () => {
    let err: unknown;
    try {
      load(`${AUTH}\ntemplate {\n  source = "/etc/leasehold/bad.ctmpl"\n  destination = "/x"\n}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as Error).message).toBe('/etc/leasehold/bad.ctmpl:2:18: function "toUpperr" not defined (did you mean "toUpper"?)');
  });

  it("render errors of inline templates also point into the config", async () => {
    const config = load(`${AUTH}\ntemplate {\n  destination = "/x"\n  contents = <<EOT\n{{ (secret "p").Data.nope }}\nEOT\n  error_on_missing_key = true\n}`);
    await expect(renderTemplate(config.templates[0].template, { source, errorOnMissingKey: true })).rejects.toThrow('agent.hcl:9:4: at <(secret "p").Data.nope>: map has no entry for key "nope"');
  });
});

describe("loadAgentConfig: errors name the file, line and key", () => {
  const method = (inner: string) => `auto_auth {\n  method "approle" {\n${inner}\n  }\n}`;
  const cases: [name: string, text: string, message: string][] = [
    // top level
    ["an unknown key, with a suggestion", `${AUTH}\nexit_afer_auth = true`, 'agent.hcl:6: unknown key "exit_afer_auth" (did you mean "exit_after_auth"?)'],
    ["an unknown key", `${AUTH}\nfrobnicate = 1`, 'agent.hcl:6: unknown key "frobnicate"'],
    ["a Vault Agent cache block", `${AUTH}\ncache {\n  use_auto_auth_token = true\n}`, "agent.hcl:6: cache is not supported: leasehold agent has no caching proxy: remove the cache block"],
    ["a Vault Agent listener block", `${AUTH}\nlistener "tcp" {\n  address = "127.0.0.1:8100"\n}`, "agent.hcl:6: listener is not supported: leasehold agent has no API proxy, so no listener: remove the listener block"],
    ["both vault and leasehold", `${AUTH}\nvault {}\nleasehold {}`, "agent.hcl:7: use either a vault block or a leasehold block, not both (they configure the same connection)"],
    ["two vault blocks", `${AUTH}\nvault {}\nvault {}`, "agent.hcl:7: only one vault block is allowed (found 2)"],
    ["vault as an attribute", `${AUTH}\nvault = "https://x"`, 'agent.hcl:6: vault: expected a block such as vault { ... }, got string "https://x"'],
    ["a misspelt vault key", `${AUTH}\nvault {\n  adress = "https://x:8200"\n}`, 'agent.hcl:7: unknown key "adress" in vault (did you mean "address"?)'],
    ["a vault address that is not a URL", `${AUTH}\nvault {\n  address = "leasehold:8200"\n}`, 'agent.hcl:7: vault: address must be a URL such as "https://leasehold.example:8200", got "leasehold:8200"'],
    ["vault addresses that is not a list", `${AUTH}\nvault {\n  addresses = "https://a:8200,https://b:8200"\n}`, 'agent.hcl:7: vault: addresses must be a list of URLs such as ["https://a.example:8200", "https://b.example:8200"], got string "https://a:8200,https://b:8200"'],
    ["an empty addresses list", `${AUTH}\nvault {\n  addresses = []\n}`, 'agent.hcl:7: vault: addresses must be a list of URLs such as ["https://a.example:8200", "https://b.example:8200"], got an empty list'],
    ["a bad entry in addresses", `${AUTH}\nvault {\n  addresses = ["https://a:8200", "b:8200"]\n}`, 'agent.hcl:7: vault: addresses[1] must be a URL such as "https://leasehold.example:8200", got "b:8200"'],
    ["address and addresses mixing http and https", `${AUTH}\nvault {\n  address = "https://a:8200"\n  addresses = ["http://b:8200"]\n}`, "agent.hcl:8: vault: address and addresses mix http and https: use https for every server, so a failover never sends the token over plain http"],
    ["a client certificate without its key", `${AUTH}\nleasehold {\n  client_cert = "/c.pem"\n}`, "agent.hcl:7: leasehold: client_key is required with client_cert"],
    ["tls_skip_verify that is not a boolean", `${AUTH}\nvault {\n  tls_skip_verify = "sometimes"\n}`, 'agent.hcl:7: vault: tls_skip_verify must be true or false, got string "sometimes"'],
    ["num_retries below -1", `${AUTH}\nvault {\n  retry {\n    num_retries = -2\n  }\n}`, "agent.hcl:8: vault retry: num_retries must be -1 (no retries), 0 (the default, 12) or more, got -2"],
    ["num_retries that is not a number", `${AUTH}\nvault {\n  retry {\n    num_retries = "many"\n  }\n}`, 'agent.hcl:8: vault retry: num_retries must be a whole number, got string "many"'],
    ["an unknown retry key", `${AUTH}\nvault {\n  retry {\n    attempts = 3\n  }\n}`, 'agent.hcl:8: unknown key "attempts" in vault retry'],
    ["pid_file that is empty", `${AUTH}\npid_file = ""`, "agent.hcl:6: pid_file must not be empty"],
    ["a log level that does not exist", `${AUTH}\nlog_level = "loud"`, 'agent.hcl:6: log_level must be one of trace, debug, info, warn, error, got "loud"'],
    ["a broken HCL file", "auto_auth {", 'agent.hcl:1:12: expected "}" to close the block'],

    // auto_auth
    ["no auto_auth", 'pid_file = "/x"', 'agent.hcl: no auto_auth block: add auto_auth { method "approle" { config = { ... } } } so the agent can log in'],
    ["two auto_auth blocks", `${AUTH}\nauto_auth {}`, "agent.hcl:6: only one auto_auth block is allowed (found 2)"],
    ["a misspelt auto_auth key", "auto_auth {\n  sinks {}\n}", 'agent.hcl:2: unknown key "sinks" in auto_auth (did you mean "sink"?)'],
    ["no method", "auto_auth {\n}", 'agent.hcl:1: auto_auth: a method block is required, such as method "approle" { config = { role_id_file_path = "..." } }'],
    ["two methods", `auto_auth {\n  method "jwt" {}\n  method "kubernetes" {}\n}`, "agent.hcl:3: auto_auth: only one method block is allowed (found 2)"],
    ["a method type leasehold does not support", 'auto_auth {\n  method "token_file" {}\n}', 'agent.hcl:2: auto_auth method "token_file" is not supported (supported: approle, kubernetes, jwt, cert)'],
    ["a misspelt method type", 'auto_auth {\n  method {\n    type = "aprole"\n  }\n}', 'agent.hcl:3: auto_auth method "aprole" is not supported (supported: approle, kubernetes, jwt, cert) (did you mean "approle"?)'],
    ["a method without a type", "auto_auth {\n  method {\n    mount_path = \"auth/x\"\n  }\n}", 'agent.hcl:2: method needs a type: write method "<type>" { ... } or method { type = "<type>" ... }'],
    ["a type that contradicts the label", 'auto_auth {\n  method "jwt" {\n    type = "approle"\n  }\n}', 'agent.hcl:3: method "jwt": type = "approle" contradicts the label'],
    ["a method as an attribute", 'auto_auth {\n  method = "approle"\n}', 'agent.hcl:2: expected a block such as method "<type>" { ... }, got string "approle"'],
    ["an unknown method key", method('    wrap_ttl = "5m"\n    config = { role_id_file_path = "/r" }'), 'agent.hcl:3: unknown key "wrap_ttl" in method "approle"'],
    ["approle without config", method('    mount_path = "auth/approle"'), 'agent.hcl:2: method "approle": config is required'],
    ["config that is not an object", method('    config = "role"'), 'agent.hcl:3: method "approle": config must be an object such as config = { ... }, got string "role"'],
    ["a misspelt config key", method('    config = {\n      role_id_file_path = "/r"\n      secret_id_file_pth = "/s"\n    }'), 'agent.hcl:5: unknown key "secret_id_file_pth" in method "approle" config (did you mean "secret_id_file_path"?)'],
    ["approle without role_id_file_path", method('    config = {\n      secret_id_file_path = "/s"\n    }'), 'agent.hcl:3: method "approle" config: role_id_file_path is required (the file holding the role ID)'],
    ["remove_secret_id_file_after_reading that is not a boolean", method('    config = {\n      role_id_file_path = "/r"\n      remove_secret_id_file_after_reading = "maybe"\n    }'), 'agent.hcl:5: method "approle" config: remove_secret_id_file_after_reading must be true or false, got string "maybe"'],
    ["kubernetes without role", 'auto_auth {\n  method "kubernetes" {\n    config = {\n      token_path = "/t"\n    }\n  }\n}', 'agent.hcl:3: method "kubernetes" config: role is required (the role to log in with)'],
    ["jwt without path", 'auto_auth {\n  method "jwt" {\n    config = { role = "r" }\n  }\n}', 'agent.hcl:3: method "jwt" config: path is required (the file holding the JWT)'],
    ["cert without a client certificate anywhere", 'auto_auth {\n  method "cert" {\n    config = { name = "web" }\n  }\n}', 'agent.hcl:2: method "cert": a client certificate is required: set client_cert and client_key in its config or in the vault block'],
    ["cert with a certificate but no key", 'auto_auth {\n  method "cert" {\n    config = {\n      client_cert = "/c.pem"\n    }\n  }\n}', 'agent.hcl:4: method "cert" config: client_key is required with client_cert'],
    ["an empty mount_path", method('    mount_path = "/"\n    config = { role_id_file_path = "/r" }'), 'agent.hcl:3: method "approle": mount_path must not be empty'],
    ["a backoff that is not a duration", method('    min_backoff = "soon"\n    config = { role_id_file_path = "/r" }'), 'agent.hcl:3: method "approle": min_backoff: invalid duration "soon"'],
    ["max_backoff below min_backoff", method('    min_backoff = "10s"\n    max_backoff = "5s"\n    config = { role_id_file_path = "/r" }'), 'agent.hcl:4: method "approle": max_backoff (5s) must be at least min_backoff (10s)'],
    ["a sink type other than file", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "unix" {\n    config = { path = "/s" }\n  }\n}`, 'agent.hcl:5: sink type "unix" is not supported (supported: file)'],
    ["a sink without a path", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "file" {\n    config = {\n      mode = "0600"\n    }\n  }\n}`, 'agent.hcl:6: sink "file" config: path is required (the file the token is written to)'],
    ["a sink mode with a digit above 7", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "file" {\n    config = {\n      path = "/s"\n      mode = 0999\n    }\n  }\n}`, 'agent.hcl:8: sink "file" config: mode must be an octal file mode such as "0640", got number 999'],
    ["a sink mode written as letters", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "file" {\n    config = {\n      path = "/s"\n      mode = "rw-r-----"\n    }\n  }\n}`, 'agent.hcl:8: sink "file" config: mode must be an octal file mode such as "0640", got string "rw-r-----"'],
    ["two sinks on one path", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "file" {\n    config = { path = "/s" }\n  }\n  sink "file" {\n    config = { path = "/s" }\n  }\n}`, 'agent.hcl:5: auto_auth: two sinks write to "/s"'],
    ["an unknown sink key", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/r" }\n  }\n  sink "file" {\n    wrap_ttl = "5m"\n    config = { path = "/s" }\n  }\n}`, 'agent.hcl:6: unknown key "wrap_ttl" in sink "file"'],

    // templates
    ["a template without destination", `${AUTH}\ntemplate {\n  contents = "x"\n}`, "agent.hcl:6: template: destination is required (the file to render)"],
    ["a template with source and contents", `${AUTH}\ntemplate {\n  source = "/a"\n  contents = "x"\n  destination = "/x"\n}`, "agent.hcl:8: template: set source or contents, not both"],
    ["a template with neither source nor contents", `${AUTH}\ntemplate {\n  destination = "/x"\n}`, "agent.hcl:6: template: source (a template file) or contents (the template itself) is required"],
    ["a misspelt template key", `${AUTH}\ntemplate {\n  contents = "x"\n  destinaton = "/x"\n}`, 'agent.hcl:8: unknown key "destinaton" in template (did you mean "destination"?)'],
    ["contents that is not a string", `${AUTH}\ntemplate {\n  contents = ["x"]\n  destination = "/x"\n}`, "agent.hcl:7: template: contents must be a string, got a list"],
    ["template perms with setuid", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  perms = "4755"\n}`, 'agent.hcl:9: template: perms must be at most 0777 (no setuid, setgid or sticky bits), got string "4755"'],
    ["template perms as a boolean", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  perms = true\n}`, 'agent.hcl:9: template: perms must be an octal file mode such as "0640", got boolean true'],
    ["two templates on one destination", `${AUTH}\ntemplate {\n  contents = "a"\n  destination = "/x"\n}\ntemplate {\n  contents = "b"\n  destination = "/x"\n}`, 'agent.hcl:12: two templates render to "/x" (the first on line 6)'],
    ["create_dest_dirs that is not a boolean", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  create_dest_dirs = "yes please"\n}`, 'agent.hcl:9: template: create_dest_dirs must be true or false, got string "yes please"'],
    ["a template exec without command", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec {\n    timeout = "5s"\n  }\n}`, "agent.hcl:9: template exec: command is required"],
    ["a template exec with an unknown key", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec {\n    command = ["a"]\n    retries = 2\n  }\n}`, 'agent.hcl:11: unknown key "retries" in template exec'],
    ["an empty command list", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec {\n    command = []\n  }\n}`, 'agent.hcl:10: template exec: command must be a list of strings such as ["/usr/bin/app", "--flag"] (or one shell command line), got a list'],
    ["a command list with a number", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec {\n    command = ["kill", 1]\n  }\n}`, 'agent.hcl:10: template exec: command must be a list of strings such as ["/usr/bin/app", "--flag"] (or one shell command line), got a list'],
    ["an exec timeout of zero", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  exec {\n    command = ["a"]\n    timeout = "0s"\n  }\n}`, 'agent.hcl:11: template exec: timeout must be at least 1ms, got string "0s"'],
    ["both exec and command", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  command = "a"\n  exec {\n    command = ["a"]\n  }\n}`, "agent.hcl:9: template: use exec { command = [...] } or the older command, not both"],
    ["command_timeout without command", `${AUTH}\ntemplate {\n  contents = "x"\n  destination = "/x"\n  command_timeout = "5s"\n}`, "agent.hcl:9: template: command_timeout needs command (or use exec { command, timeout })"],

    // env_template and exec
    ["an env_template name that is not a variable name", `${AUTH}\nenv_template "DB-USER" {\n  contents = "x"\n}\nexec {\n  command = ["/app"]\n}`, 'agent.hcl:6: env_template "DB-USER": not a valid environment variable name (letters, digits and _, not starting with a digit)'],
    ["an env_template defined twice", `${AUTH}\nenv_template "A" {\n  contents = "x"\n}\nenv_template "A" {\n  contents = "y"\n}\nexec {\n  command = ["/app"]\n}`, 'agent.hcl:9: env_template "A" is defined twice'],
    ["an env_template with a file template key", `${AUTH}\nenv_template "A" {\n  contents = "x"\n  destination = "/x"\n}\nexec {\n  command = ["/app"]\n}`, 'agent.hcl:8: unknown key "destination" in env_template "A"'],
    ["an env_template without label", `${AUTH}\nenv_template {\n  contents = "x"\n}`, 'agent.hcl:6: env_template "contents": expected a block such as env_template "<label>" { ... }, got string "x"'],
    ["env_template without exec", `${AUTH}\nenv_template "A" {\n  contents = "x"\n}`, "agent.hcl:6: env_template needs an exec block: the variables are given to the process the agent runs (add exec { command = [...] })"],
    ["exec without command", `${AUTH}\nexec {\n  restart_on_secret_changes = "always"\n}`, 'agent.hcl:6: exec: command is required (the process to run, such as command = ["/app/server"])'],
    ["two exec blocks", `${AUTH}\nexec {\n  command = ["/a"]\n}\nexec {\n  command = ["/b"]\n}`, "agent.hcl:9: only one exec block is allowed (found 2)"],
    ["restart_on_secret_changes that is neither always nor never", `${AUTH}\nexec {\n  command = ["/a"]\n  restart_on_secret_changes = "sometimes"\n}`, 'agent.hcl:8: exec: restart_on_secret_changes must be "always" or "never", got "sometimes"'],
    ["an unknown stop signal", `${AUTH}\nexec {\n  command = ["/a"]\n  restart_stop_signal = "SIGNOPE"\n}`, 'agent.hcl:8: exec: restart_stop_signal: unknown signal "SIGNOPE" (such as "SIGTERM", "SIGINT", "SIGHUP")'],
    ["a misspelt exec key", `${AUTH}\nexec {\n  command = ["/a"]\n  restart_stop_signl = "SIGINT"\n}`, 'agent.hcl:8: unknown key "restart_stop_signl" in exec (did you mean "restart_stop_signal"?)'],
    ["exit_after_auth with exec", `${AUTH}\nexit_after_auth = true\nexec {\n  command = ["/a"]\n}`, "agent.hcl:7: exit_after_auth = true stops the agent after logging in, so it cannot run exec"],

    // template_config
    ["a misspelt template_config key", `${AUTH}\ntemplate_config {\n  exit_on_retry_failur = true\n}`, 'agent.hcl:7: unknown key "exit_on_retry_failur" in template_config (did you mean "exit_on_retry_failure"?)'],
    ["a render interval of zero", `${AUTH}\ntemplate_config {\n  static_secret_render_interval = "0s"\n}`, 'agent.hcl:7: template_config: static_secret_render_interval must be at least 1ms, got string "0s"'],
    ["a lease renewal threshold above 1", `${AUTH}\ntemplate_config {\n  lease_renewal_threshold = 1.5\n}`, "agent.hcl:7: template_config: lease_renewal_threshold must be a number greater than 0 and at most 1 (a fraction of the lease), got number 1.5"],
    ["max_connections_per_host of zero", `${AUTH}\ntemplate_config {\n  max_connections_per_host = 0\n}`, "agent.hcl:7: template_config: max_connections_per_host must be at least 1, got 0"],
    ["two template_config blocks", `${AUTH}\ntemplate_config {}\ntemplate_config {}`, "agent.hcl:7: only one template_config block is allowed (found 2)"],
  ];

  it.each(cases)("%s", (_name, text, message) => {
    expect(configError(text)).toBe(message);
  });

  it("JSON errors name the file without a line", () => {
    expect(configError(JSON.stringify({ auto_auth: { method: { approle: { config: { role_id_file_path: "/r" } } } }, exit_afer_auth: true }), "agent.json")).toBe(
      'agent.json: unknown key "exit_afer_auth" (did you mean "exit_after_auth"?)',
    );
    expect(configError(JSON.stringify({ auto_auth: { method: [{ type: "approle", config: {} }] } }), "agent.json")).toBe(
      "agent.json: method \"approle\" config: role_id_file_path is required (the file holding the role ID)",
    );
  });

  it("reports invalid JSON", () => {
    expect(configError("{ nope", "agent.json")).toMatch(/^agent\.json: invalid JSON: /);
  });
});
