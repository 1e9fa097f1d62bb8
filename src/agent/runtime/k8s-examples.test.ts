/**
 * The Kubernetes examples under scripts/k8s must stay usable: every agent config loads with the
 * real loader, its template renders, every manifest parses, and the manifests agree with the
 * configs (paths, audience, ConfigMap content).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadAgentConfig, type AgentConfig } from "../config.js";
import { renderTemplate, type SecretResult } from "../template/index.js";

const K8S_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../scripts/k8s");
const files = readdirSync(K8S_DIR);
const hclFiles = files.filter((f) => f.endsWith(".hcl")).sort();
const yamlFiles = files.filter((f) => f.endsWith(".yaml")).sort();

const text = (name: string): string => readFileSync(join(K8S_DIR, name), "utf8");
const load = (name: string): AgentConfig => loadAgentConfig(text(name), name);

/** A parsed manifest: `any` because the tests walk arbitrary Kubernetes objects, and the assertions check every field they read. */
type Manifest = any;

function manifests(name: string): Manifest[] {
  const docs = parseAllDocuments(text(name));
  return docs.map((doc) => {
    expect(doc.errors, `${name}: ${doc.errors.map((e) => e.message).join("; ")}`).toEqual([]);
    return doc.toJS();
  });
}

/** The pod spec of the only Deployment in `name`. */
function podSpec(name: string): Manifest {
  const [deployment] = manifests(name);
  return deployment.spec.template.spec;
}

describe("scripts/k8s agent configs", () => {
  it("has the sidecar and init variants", () => {
    expect(hclFiles).toEqual(["agent-config.hcl", "agent-init-config.hcl"]);
  });

  it.each(hclFiles)("%s loads with the agent config loader", (name) => {
    const config = load(name);
    expect(config.autoAuth.method).toMatchObject({ type: "kubernetes", mountPath: "auth/kubernetes", config: { role: "app", tokenPath: "/var/run/secrets/tokens/leasehold" } });
    expect(config.autoAuth.sinks).toEqual([{ type: "file", path: "/run/leasehold/token", mode: 0o600 }]);
    expect(config.templates.map((t) => [t.destination, t.perms])).toEqual([["/run/secrets/db.env", 0o640]]);
    expect(config.server).toMatchObject({ address: "https://leasehold.leasehold.svc:8200", caCert: "/etc/leasehold/tls/ca.crt" });
  });

  it("the sidecar keeps running and revokes on shutdown; the init variant exits after auth", () => {
    expect(load("agent-config.hcl")).toMatchObject({ exitAfterAuth: false, revokeOnShutdown: true });
    expect(load("agent-init-config.hcl")).toMatchObject({ exitAfterAuth: true, revokeOnShutdown: false });
  });

  it.each(hclFiles)("%s renders database credentials as an env file", async (name) => {
    const creds: SecretResult = { data: { username: "v-app-x1", password: "A1b2-C3d4" }, lease_id: "database/creds/app/abc", lease_duration: 3600, renewable: true };
    const read = async (path: string): Promise<SecretResult> => {
      if (path !== "database/creds/app") throw new Error(`unexpected read of ${path}`);
      return creds;
    };
    const source = { read, write: async (): Promise<SecretResult> => Promise.reject(new Error("unexpected write")) };
    const { text: rendered, secrets } = await renderTemplate(load(name).templates[0].template, { source, errorOnMissingKey: true });
    expect(rendered).toBe("DB_USERNAME=v-app-x1\nDB_PASSWORD=A1b2-C3d4\n");
    expect(secrets.map((s) => s.path)).toEqual(["database/creds/app"]);
  });
});

describe("scripts/k8s manifests", () => {
  it("each file parses and holds the expected kinds", () => {
    const kinds = Object.fromEntries(yamlFiles.map((f) => [f, manifests(f).map((m) => m.kind)]));
    expect(kinds).toEqual({
      "configmap.yaml": ["ConfigMap"],
      "deployment-init.yaml": ["Deployment"],
      "deployment-sidecar.yaml": ["Deployment"],
      "rbac.yaml": ["ClusterRoleBinding"],
      "serviceaccount.yaml": ["ServiceAccount", "ServiceAccount"],
    });
  });

  it("the ConfigMap holds the .hcl files verbatim", () => {
    const [cm] = manifests("configmap.yaml");
    expect(cm.data).toEqual({ "agent.hcl": text("agent-config.hcl"), "agent-init.hcl": text("agent-init-config.hcl") });
  });

  it("the reviewer binding grants system:auth-delegator to the broker's service account", () => {
    const [binding] = manifests("rbac.yaml");
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" });
    const accounts = manifests("serviceaccount.yaml").map((sa) => ({ kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace }));
    expect(accounts).toContainEqual(binding.subjects[0]);
  });

  describe.each([
    { file: "deployment-sidecar.yaml", container: "leasehold-agent", configKey: "agent.hcl", hcl: "agent-config.hcl" },
    { file: "deployment-init.yaml", container: "leasehold-agent-init", configKey: "agent-init.hcl", hcl: "agent-init-config.hcl" },
  ])("$file", ({ file, container, configKey, hcl }) => {
    const spec = podSpec(file);
    const agent = spec.initContainers.find((c: Manifest) => c.name === container);
    const app = spec.containers.find((c: Manifest) => c.name === "app");
    const volume = (name: string): Manifest => spec.volumes.find((v: Manifest) => v.name === name);
    /** The volume mounted at the directory holding `path` in container `c`. */
    const volumeAt = (c: Manifest, path: string): Manifest => {
      const mount = c.volumeMounts.find((m: Manifest) => path.startsWith(`${m.mountPath}/`));
      expect(mount, `${c.name} has no mount for ${path}`).toBeDefined();
      return volume(mount.name);
    };
    const config = load(hcl);

    it("runs the agent from the image with the ConfigMap's config", () => {
      expect(agent.image).toBe("leasehold:latest");
      expect(agent.args).toEqual(["agent", "-config", `/etc/leasehold/${configKey}`]);
      const sources = volumeAt(agent, `/etc/leasehold/${configKey}`).projected.sources;
      expect(sources).toContainEqual({ configMap: { name: "leasehold-agent", items: [{ key: configKey, path: configKey }] } });
      expect(sources).toContainEqual({ configMap: { name: "leasehold-ca", items: [{ key: "ca.crt", path: "tls/ca.crt" }] } });
    });

    it("gives the agent a projected token for the leasehold audience where its config reads it", () => {
      const method = config.autoAuth.method;
      if (method.type !== "kubernetes") throw new Error("expected the kubernetes method");
      const { sources } = volumeAt(agent, method.config.tokenPath).projected;
      expect(sources).toEqual([{ serviceAccountToken: { path: "leasehold", audience: "leasehold", expirationSeconds: 600 } }]);
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.serviceAccountName).toBe("app");
    });

    it("keeps the token sink and the rendered file in memory, the file shared with the app", () => {
      expect(volumeAt(agent, config.autoAuth.sinks[0].path).emptyDir.medium).toBe("Memory");
      const destination = config.templates[0].destination;
      const shared = volumeAt(agent, destination);
      expect(shared.emptyDir.medium).toBe("Memory");
      expect(volumeAt(app, destination)).toBe(shared);
      expect(app.volumeMounts.every((m: Manifest) => m.readOnly === true)).toBe(true);
    });

    it("runs both containers as non-root with read-only root file systems and resource requests", () => {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
      for (const c of [agent, app]) {
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      }
    });
  });

  it("the sidecar is a native sidecar that holds the app back until the file is rendered", () => {
    const agent = podSpec("deployment-sidecar.yaml").initContainers[0];
    expect(agent.restartPolicy).toBe("Always");
    expect(agent.startupProbe.exec.command).toEqual(["test", "-s", "/run/secrets/db.env"]);
  });

  it("the init variant's agent runs to completion (no restartPolicy: Always)", () => {
    expect(podSpec("deployment-init.yaml").initContainers[0].restartPolicy).toBeUndefined();
  });
});
