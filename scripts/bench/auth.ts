// Login throughput: jwt (JWKS cached) and approle logins per second through the HTTP API with 10
// concurrent clients (load generator in a separate process), as ratios to two baselines measured
// in the same run: jose's raw jwtVerify rate (same key, same token, 10 verifications in flight)
// and token creation alone (`auth/token/create` through the same HTTP API and load generator).
// `npm run bench -- auth [--seconds 5] [--concurrency 10]`
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { jwtVerify } from "jose";
import pino from "pino";
import { startDevServer } from "../../src/server/run.js";
import { startBenchIdp } from "./lib/auth-idp.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "../../node_modules/.bin/tsx");
const ROOT = "bench-root";

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  statuses: Record<string, number>;
}

async function load(url: string, seconds: number, concurrency: number, body: unknown, headers: Record<string, string> = {}): Promise<LoadResult> {
  const args = [join(here, "lib/auth-load.ts"), url, String(seconds), String(concurrency), JSON.stringify(body), ...Object.entries(headers).map(([k, v]) => `${k}=${v}`)];
  const { stdout } = await run(tsx, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${base}/v1/${path}`, { method, headers: { "X-Vault-Token": ROOT, "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : ((await res.json()) as Record<string, unknown>);
}

/** jose's verification rate with `concurrency` verifications in flight (webcrypto RSA runs on the thread pool). */
async function joseRate(token: string, key: CryptoKey, issuer: string, seconds: number, concurrency: number): Promise<number> {
  const opts = { algorithms: ["RS256"], issuer, audience: "leasehold" };
  for (let i = 0; i < 200; i++) await jwtVerify(token, key, opts);
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await jwtVerify(token, key, opts);
        n++;
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

const fmt = (r: LoadResult) => `${r.rps.toFixed(0)} logins/s (p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms)`;
const ratio = (a: number, b: number) => Number((a / b).toFixed(3));

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || dflt : dflt);
  const seconds = arg("--seconds", 5);
  const concurrency = arg("--concurrency", 10);

  const idp = await startBenchIdp();
  // The default login rate limit (20/s per address) would cap the run: lift it (0 = unlimited).
  const server = await startDevServer({ address: "127.0.0.1:0", rootTokenId: ROOT, logger: pino({ level: "silent" }), loginRateLimit: { rate: 0, burst: 0 } });
  const base = server.url;
  await api(base, "PUT", "sys/policies/acl/app", { policy: 'path "secret/data/app" { capabilities = ["read"] }' });

  await api(base, "POST", "sys/auth/approle", { type: "approle" });
  await api(base, "POST", "auth/approle/role/bench", { token_policies: "app", token_ttl: "1h" });
  const roleId = ((await api(base, "GET", "auth/approle/role/bench/role-id"))!.data as { role_id: string }).role_id;
  const secretId = ((await api(base, "POST", "auth/approle/role/bench/secret-id"))!.data as { secret_id: string }).secret_id;

  await api(base, "POST", "sys/auth/jwt", { type: "jwt" });
  await api(base, "POST", "auth/jwt/config", { jwks_url: idp.jwksUrl, bound_issuer: idp.url, jwt_supported_algs: "RS256" });
  await api(base, "POST", "auth/jwt/role/bench", { user_claim: "sub", bound_audiences: "leasehold", bound_claims: { team: "payments" }, token_policies: "app", token_ttl: "1h" });
  const jwt = await idp.sign({ sub: "svc-bench", aud: "leasehold", team: "payments" }, 3600);

  console.log(`load: ${seconds}s per run, ${concurrency} concurrent keep-alive clients, POST load generator in a separate process, login rate limit lifted`);
  const tokenCreate = () => load(`${base}/v1/auth/token/create`, seconds, concurrency, { policies: ["app"], ttl: "1h" }, { "X-Vault-Token": ROOT });
  const createBefore = await tokenCreate();
  console.log(`baseline auth/token/create:  ${fmt(createBefore).replace("logins", "tokens")} (before the logins)`);
  const approle = await load(`${base}/v1/auth/approle/login`, seconds, concurrency, { role_id: roleId, secret_id: secretId });
  console.log(`approle login:               ${fmt(approle)}`);
  const fetchesBefore = idp.fetches();
  const jwtRun = await load(`${base}/v1/auth/jwt/login`, seconds, concurrency, { role: "bench", jwt });
  const jwksFetches = idp.fetches() - fetchesBefore;
  console.log(`jwt login (JWKS cached):     ${fmt(jwtRun)}; JWKS fetches during the run: ${jwksFetches}`);
  // Measured again after the logins (the store has grown by then): the baseline is the mean of both.
  const createAfter = await tokenCreate();
  console.log(`baseline auth/token/create:  ${fmt(createAfter).replace("logins", "tokens")} (after the logins)`);
  const create = { rps: (createBefore.rps + createAfter.rps) / 2, errors: createBefore.errors + createAfter.errors };
  console.log(`approle login / token create: ${ratio(approle.rps, create.rps)}`);
  console.log(`jwt login / token create:     ${ratio(jwtRun.rps, create.rps)}`);

  await server.stop();
  const jose = await joseRate(jwt, idp.publicKey, idp.url, Math.min(seconds, 3), concurrency);
  await idp.close();
  console.log(`baseline jose jwtVerify:     ${jose.toFixed(0)} verifications/s (RS256, ${concurrency} in flight, in process)`);
  console.log(`jwt login / raw jwtVerify:    ${ratio(jwtRun.rps, jose)}`);
  const errors = create.errors + approle.errors + jwtRun.errors;
  if (errors) console.log(`WARNING: ${errors} non-200 answers (statuses: ${JSON.stringify({ createBefore: createBefore.statuses, createAfter: createAfter.statuses, approle: approle.statuses, jwt: jwtRun.statuses })})`);

  console.log(
    JSON.stringify({
      benchmark: "auth",
      seconds,
      concurrency,
      token_create_rps: Math.round(create.rps),
      token_create_rps_before: Math.round(createBefore.rps),
      token_create_rps_after: Math.round(createAfter.rps),
      approle_login_rps: Math.round(approle.rps),
      jwt_login_rps: Math.round(jwtRun.rps),
      jose_verify_rps: Math.round(jose),
      approle_to_token_create: ratio(approle.rps, create.rps),
      jwt_to_token_create: ratio(jwtRun.rps, create.rps),
      jwt_to_jose_verify: ratio(jwtRun.rps, jose),
      approle_to_jose_verify: ratio(approle.rps, jose),
      approle_p99_ms: Number(approle.p99_ms.toFixed(2)),
      jwt_p99_ms: Number(jwtRun.p99_ms.toFixed(2)),
      jwks_fetches_during_jwt_run: jwksFetches,
      errors,
    }),
  );
}
