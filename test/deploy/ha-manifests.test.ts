/**
 * The three-node examples (scripts/k8s/ha/ and docker/ha/) must stay deployable: every manifest
 * parses, the server config each node would run loads with the server's own loader (rendered the
 * way the pod's start command renders it), the probes and Services reach ports the config listens
 * on, and the selectors of the Services and the PodDisruptionBudget match the pods.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadStaticKey } from "../../src/core/seal.js";
import { loadServerConfig, type ServerConfig } from "../../src/server/config.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const K8S_DIR = join(ROOT, "scripts/k8s/ha");
const COMPOSE_DIR = join(ROOT, "docker/ha");
const PG_URL = "postgres://leasehold:secret@db.example:5432/leasehold";

/** A parsed manifest: `any` because the tests walk arbitrary Kubernetes and compose objects, and the assertions check every field they read. */
type Manifest = any;

/** Every document of a YAML file; merge keys (`<<: *anchor`) on, as compose reads them. */
function documents(file: string): Manifest[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true });
  return docs.map((doc) => {
    expect(doc.errors, `${file}: ${doc.errors.map((e) => e.message).join("; ")}`).toEqual([]);
    return doc.toJS();
  });
}

/** Loads a config with LEASEHOLD_PG_CONNECTION_URL set, as both examples provide it. */
function loadWithPgUrl(text: string, name: string): ServerConfig {
  const before = process.env.LEASEHOLD_PG_CONNECTION_URL;
  process.env.LEASEHOLD_PG_CONNECTION_URL = PG_URL;
  try {
    return loadServerConfig(text, name);
  } finally {
    if (before === undefined) delete process.env.LEASEHOLD_PG_CONNECTION_URL;
    else process.env.LEASEHOLD_PG_CONNECTION_URL = before;
  }
}

const port = (address: string): number => Number(/:(\d+)$/.exec(address)![1]);

/** Selector ⊆ labels. */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe("scripts/k8s/ha", () => {
  const files = readdirSync(K8S_DIR).filter((f) => f.endsWith(".yaml")).sort();
  const all = files.flatMap((f) => documents(join(K8S_DIR, f)));
  const byKind = (kind: string): Manifest[] => all.filter((m) => m.kind === kind);
  const [statefulSet] = byKind("StatefulSet");
  const [configMap] = byKind("ConfigMap");
  const pod = statefulSet.spec.template;
  const container = pod.spec.containers[0];
  const mountOf = (volume: string): string => container.volumeMounts.find((m: Manifest) => m.name === volume).mountPath;
  const volumeOf = (pred: (v: Manifest) => boolean): Manifest => pod.spec.volumes.find(pred);

  // Run the container's start script as the pod would, with the mount paths moved to a temporary
  // directory and `node` replaced by a stub that records how the server would be started.
  let work: string;
  const rendered = new Map<string, { config: string; argv: string[] }>();
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "leasehold-ha-k8s-"));
    const templateMount = mountOf(volumeOf((v) => v.configMap?.name === configMap.metadata.name).name);
    const renderMount = mountOf(volumeOf((v) => v.emptyDir?.medium === "Memory").name);
    const bin = join(work, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "node"), '#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGV_FILE"\n');
    chmodSync(join(bin, "node"), 0o755);
    expect(container.command.slice(0, 2)).toEqual(["/usr/bin/tini", "--"]);
    const shell = container.command.slice(2);
    for (const podName of ["leasehold-0", "leasehold-1", "leasehold-2"]) {
      const dir = join(work, podName);
      const [templateDir, renderDir] = [join(dir, "template"), join(dir, "render")];
      mkdirSync(templateDir, { recursive: true });
      mkdirSync(renderDir);
      for (const [key, value] of Object.entries<string>(configMap.data)) writeFileSync(join(templateDir, key), value);
      const script = (container.args[0] as string).replaceAll(templateMount, templateDir).replaceAll(renderMount, renderDir);
      const argvFile = join(dir, "argv");
      execFileSync(shell[0], [...shell.slice(1), script], {
        env: { PATH: `${bin}:${process.env.PATH}`, POD_NAME: podName, POD_NAMESPACE: "leasehold", ARGV_FILE: argvFile },
      });
      const argv = readFileSync(argvFile, "utf8").trimEnd().split("\n");
      const configArg = argv.find((a) => a.startsWith("-config="))!;
      rendered.set(podName, { config: readFileSync(configArg.slice("-config=".length), "utf8"), argv: argv.map((a) => a.replaceAll(renderDir, renderMount)) });
    }
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("holds the StatefulSet, ConfigMap, both Services and the PodDisruptionBudget, all in one namespace", () => {
    expect(all.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(["ConfigMap/leasehold-server", "PodDisruptionBudget/leasehold", "Service/leasehold", "Service/leasehold-internal", "StatefulSet/leasehold"]);
    // The namespace of ../serviceaccount.yaml, whose account the pods run as.
    expect(new Set(all.map((m) => m.metadata.namespace))).toEqual(new Set(["leasehold"]));
    expect(pod.spec.serviceAccountName).toBe("leasehold");
  });

  it("starts the server with the rendered config, each pod with its own stable addresses", () => {
    const apiAddrs = new Set<string>();
    for (const [podName, { config: text, argv }] of rendered) {
      expect(argv).toEqual(["dist/src/cli/main.js", "server", `-config=${mountOf("config")}/leasehold.hcl`]);
      expect(text).not.toContain("${");
      const config = loadWithPgUrl(text, `${podName}.hcl`);
      expect(config.storage).toMatchObject({ type: "postgresql", haEnabled: true, connectionUrl: PG_URL });
      expect(config.apiAddr).toBe(`https://${podName}.leasehold-internal.leasehold.svc:8200`);
      expect(config.clusterAddr).toBe(`https://${podName}.leasehold-internal.leasehold.svc:8201`);
      apiAddrs.add(config.apiAddr!);
    }
    expect(apiAddrs.size).toBe(3);
    // The addresses name the StatefulSet's pods behind its headless Service.
    expect(statefulSet.spec.serviceName).toBe("leasehold-internal");
    expect(statefulSet.spec.replicas).toBe(3);
    expect(statefulSet.metadata.name).toBe("leasehold");
  });

  it("gets the connection URL from a Secret, and mounts the files the config names", () => {
    const env = Object.fromEntries(container.env.map((e: Manifest) => [e.name, e]));
    expect(env.LEASEHOLD_PG_CONNECTION_URL.valueFrom.secretKeyRef).toEqual({ name: "leasehold-postgres", key: "connection-url" });
    expect(env.POD_NAME.valueFrom.fieldRef.fieldPath).toBe("metadata.name");
    expect(env.POD_NAMESPACE.valueFrom.fieldRef.fieldPath).toBe("metadata.namespace");
    const config = loadWithPgUrl(rendered.get("leasehold-0")!.config, "leasehold-0.hcl");
    const mounted = (file: string, secretKey: (v: Manifest) => boolean) => {
      const mount = container.volumeMounts.find((m: Manifest) => file.startsWith(`${m.mountPath}/`));
      expect(mount, `nothing mounted at ${file}`).toBeDefined();
      const volume = volumeOf((v) => v.name === mount.name);
      expect(volume.secret, `${file} comes from a Secret`).toBeDefined();
      expect(secretKey(volume.secret)).toBe(true);
    };
    const listener = config.listeners[0];
    const fileName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
    // A kubernetes.io/tls Secret has exactly these keys.
    mounted(listener.tlsCertFile!, (s) => s.secretName === "leasehold-tls" && fileName(listener.tlsCertFile!) === "tls.crt");
    mounted(listener.tlsKeyFile!, (s) => s.secretName === "leasehold-tls" && fileName(listener.tlsKeyFile!) === "tls.key");
    mounted(env.LEASEHOLD_CACERT.value, (s) => s.secretName === "leasehold-tls");
    mounted(config.seal!.keyFile, (s) => s.secretName === "leasehold-unseal" && s.items.some((i: Manifest) => i.path === fileName(config.seal!.keyFile)));
  });

  it("probes the API listener: ready when unsealed (active or standby), alive unless the process stops answering", () => {
    const config = loadWithPgUrl(rendered.get("leasehold-0")!.config, "leasehold-0.hcl");
    const listener = config.listeners[0];
    const ports = Object.fromEntries(container.ports.map((p: Manifest) => [p.name, p.containerPort]));
    expect(ports.http).toBe(port(listener.address));
    expect(ports.cluster).toBe(port(listener.clusterAddress!));
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet.port).toBe("http");
      expect(probe.httpGet.scheme).toBe(listener.tlsDisable ? "HTTP" : "HTTPS");
    }
    const query = (path: string) => {
      const url = new URL(path, "https://x");
      expect(url.pathname).toBe("/v1/sys/health");
      return Object.fromEntries(url.searchParams);
    };
    // Standbys ready (429 otherwise); sealed (503) and uninitialised (501) not ready.
    expect(query(container.readinessProbe.httpGet.path)).toEqual({ standbyok: "true" });
    // Standby, sealed and uninitialised all count as alive.
    expect(query(container.livenessProbe.httpGet.path)).toEqual({ standbyok: "true", sealedcode: "200", uninitcode: "200" });
  });

  it("lets SIGTERM hand the lock over and keeps pods apart, non-root on a read-only root file system", () => {
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(15);
    const preStopSleep = Number(container.lifecycle.preStop.exec.command[1]);
    // The drain (at most 5 s) must fit after the preStop pause.
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(preStopSleep + 5);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    const antiAffinity = pod.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    expect(antiAffinity[0].topologyKey).toBe("kubernetes.io/hostname");
    expect(selects(antiAffinity[0].labelSelector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(statefulSet.spec.podManagementPolicy).toBe("Parallel");
  });

  it("the Services and the PodDisruptionBudget select the StatefulSet's pods", () => {
    const labels = pod.metadata.labels;
    expect(selects(statefulSet.spec.selector.matchLabels, labels)).toBe(true);
    const [pdb] = byKind("PodDisruptionBudget");
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, labels)).toBe(true);
    const services = Object.fromEntries(byKind("Service").map((s) => [s.metadata.name, s]));
    const containerPorts = new Set(container.ports.map((p: Manifest) => p.name));
    for (const service of Object.values<Manifest>(services)) {
      expect(selects(service.spec.selector, labels), service.metadata.name).toBe(true);
      for (const p of service.spec.ports) expect(containerPorts.has(p.targetPort), `${service.metadata.name} → ${p.targetPort}`).toBe(true);
    }
    expect(services.leasehold.spec.ports.map((p: Manifest) => p.port)).toEqual([8200]);
    const headless = services["leasehold-internal"].spec;
    expect(headless).toMatchObject({ clusterIP: "None", publishNotReadyAddresses: true });
    expect(headless.ports.map((p: Manifest) => p.port)).toEqual([8200, 8201]);
  });
});

describe("docker/ha/compose.yaml", () => {
  const [compose] = documents(join(COMPOSE_DIR, "compose.yaml"));
  const nodeNames = Object.keys(compose.services).filter((name) => name.startsWith("leasehold-")).sort();
  /** The config file a node mounts at the path the image's CMD reads. */
  const configOf = (name: string): { file: string; config: ServerConfig } => {
    const mount = (compose.services[name].volumes as string[]).find((v) => v.split(":")[1] === "/etc/leasehold/leasehold.hcl");
    expect(mount, `${name} mounts no config at /etc/leasehold/leasehold.hcl`).toBeDefined();
    const file = join(COMPOSE_DIR, mount!.split(":")[0]);
    return { file, config: loadWithPgUrl(readFileSync(file, "utf8"), file) };
  };

  it("has PostgreSQL and three leasehold nodes built from the repository's Dockerfile", () => {
    expect(nodeNames).toEqual(["leasehold-1", "leasehold-2", "leasehold-3"]);
    expect(compose.services.postgres.image).toMatch(/^postgres:\d+/);
    expect(compose.services.postgres.healthcheck.test).toContain("pg_isready");
    for (const name of nodeNames) {
      const node = compose.services[name];
      expect(resolve(COMPOSE_DIR, node.build.context, node.build.dockerfile)).toBe(join(ROOT, "Dockerfile"));
      expect(node.depends_on.postgres.condition).toBe("service_healthy");
      expect(node.environment.LEASEHOLD_PG_CONNECTION_URL).toMatch(/^postgres:\/\/leasehold:.*@postgres:5432\/leasehold$/);
    }
  });

  it("each node's config loads, with ha_enabled and its own api_addr and cluster_addr naming its service", () => {
    const apiAddrs = new Set<string>();
    for (const name of nodeNames) {
      const { config } = configOf(name);
      expect(config.storage).toMatchObject({ type: "postgresql", haEnabled: true, connectionUrl: PG_URL });
      expect(new URL(config.apiAddr!).host).toBe(`${name}:8200`);
      expect(new URL(config.clusterAddr!).host).toBe(`${name}:8201`);
      expect(port(config.listeners[0].address)).toBe(8200);
      expect(port(config.listeners[0].clusterAddress!)).toBe(8201);
      apiAddrs.add(config.apiAddr!);
    }
    expect(apiAddrs.size).toBe(3);
  });

  it("health-checks each node on sys/health with standbyok, on the port its listener uses", () => {
    for (const name of nodeNames) {
      const { config } = configOf(name);
      const test = (compose.services[name].healthcheck.test as string[]).join(" ");
      const url = /(https?:\/\/[^'"\s]+)/.exec(test)![1];
      expect(new URL(url).pathname).toBe("/v1/sys/health");
      expect(new URL(url).searchParams.get("standbyok")).toBe("true");
      expect(Number(new URL(url).port)).toBe(port(config.listeners[0].address));
      expect(new URL(url).protocol).toBe(config.listeners[0].tlsDisable ? "http:" : "https:");
    }
  });

  it("every node reads the unseal key from the volume the key generator writes", () => {
    const keygen = compose.services["unseal-key"];
    const keyDir = (keygen.volumes as string[])[0].split(":");
    const script = keygen.entrypoint.join(" ");
    for (const name of nodeNames) {
      const { config } = configOf(name);
      expect(config.seal?.type).toBe("static");
      expect(script).toContain(JSON.stringify(config.seal!.keyFile));
      expect(config.seal!.keyFile.startsWith(`${keyDir[1]}/`)).toBe(true);
      expect(compose.services[name].volumes).toContain(`${keyDir[0]}:${keyDir[1]}:ro`);
      expect(compose.services[name].depends_on["unseal-key"].condition).toBe("service_completed_successfully");
    }
  });

  it("the key generator writes a key the server's seal accepts, once", () => {
    const keygen = compose.services["unseal-key"];
    const dir = mkdtempSync(join(tmpdir(), "leasehold-ha-key-"));
    try {
      const [cmd, flag, source] = keygen.entrypoint as string[];
      // Run the generator's own script against a temporary directory (the chown needs root: skipped by stubbing it).
      const script = source.replaceAll("/etc/leasehold/seal", dir).replace("fs.chownSync(file, 1000, 1000);", "");
      execFileSync(process.execPath, [flag, script]);
      expect(cmd).toBe("node");
      const first = readFileSync(join(dir, "unseal.key"), "utf8");
      expect(first.trim()).toMatch(/^[0-9a-f]{64}$/);
      expect(loadStaticKey(join(dir, "unseal.key"))).toHaveLength(32);
      execFileSync(process.execPath, [flag, script]);
      expect(readFileSync(join(dir, "unseal.key"), "utf8")).toBe(first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
