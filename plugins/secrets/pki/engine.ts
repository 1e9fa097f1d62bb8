import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { InternalError, NotFound, UserError } from "../../../src/sdk/index.js";
import type { StorageView } from "../../../src/sdk/index.js";
import type { AiaUrls } from "./crypto/certificate.js";
import { buildCrl } from "./crypto/crl.js";
import { privateKeyFromPem, signerFor, specOfKey, spkiOfPrivateKey } from "./crypto/keys.js";
import { CERT_ID_HASHES, ocspError, ocspResponse, OCSPResponseStatus, parseOcspRequest, type OcspAnswer } from "./crypto/ocsp.js";
import { toPem } from "./crypto/pem.js";
import { formatSerial } from "./crypto/serial.js";
import { linkChains, loadIssuer, parseCaCertificate, type LoadedIssuer } from "./issuer.js";
import {
  defaultAutoTidy,
  defaultCrlConfig,
  type AutoTidyConfig,
  type CertRecord,
  type CrlConfig,
  type CrlRecord,
  type IssuerEntry,
  type IssuersConfig,
  type KeyEntry,
  type RevokedRecord,
  type Role,
  type TidyOptions,
  type UrlsConfig,
} from "./model.js";
import { LeafTemplate } from "./template.js";

/** Storage keys, relative to the mount's view. */
const K = {
  issuer: (id: string) => `issuers/${id}`,
  key: (id: string) => `keys/${id}`,
  role: (name: string) => `roles/${name}`,
  cert: (serial: string) => `certs/${serial}`,
  revoked: (serial: string) => `revoked/${serial}`,
  crl: (issuerId: string) => `crls/${issuerId}`,
  issuersConfig: "config/issuers",
  urls: "config/urls",
  crlConfig: "config/crl",
  autoTidy: "config/auto-tidy",
};

/** One lock for everything that changes revocation state or a CRL. */
const REVOCATION_LOCK = "lock/revocation";
const ISSUERS_LOCK = "lock/issuers";

export interface TidyStatus {
  safety_buffer: number | null;
  tidy_cert_store: boolean | null;
  tidy_revoked_certs: boolean | null;
  pause_duration: string | null;
  state: "Inactive" | "Running" | "Finished" | "Error" | "Cancelling" | "Cancelled";
  error: string | null;
  time_started: string | null;
  time_finished: string | null;
  message: string | null;
  cert_store_deleted_count: number;
  revoked_cert_deleted_count: number;
  missing_issuer_cert_count: number;
  last_auto_tidy_finished: string;
}

/**
 * The state of one PKI mount: issuers, keys, roles and configuration read from storage once and
 * kept in memory (this backend instance is the only writer of its storage view), revocation, CRLs,
 * OCSP and tidy. Paths call into it; it never touches another mount.
 */
export class PkiEngine {
  private issuersLoad?: Promise<Map<string, LoadedIssuer>>;
  private roles = new Map<string, Role | null>();
  private templates = new Map<string, LeafTemplate>();
  private urlsConfig?: UrlsConfig;
  private issuersConfigCache?: IssuersConfig;
  private crlConfigCache?: CrlConfig;
  private autoTidyCache?: AutoTidyConfig;
  private tidyRun?: Promise<void>;
  private cancelTidy = false;
  /** Issuers with revocations their CRL does not list yet (only with `auto_rebuild`). */
  private staleCrls = new Set<string>();
  lastAutoTidy = Date.now();
  tidyStatus: TidyStatus = {
    safety_buffer: null,
    tidy_cert_store: null,
    tidy_revoked_certs: null,
    pause_duration: null,
    state: "Inactive",
    error: null,
    time_started: null,
    time_finished: null,
    message: null,
    cert_store_deleted_count: 0,
    revoked_cert_deleted_count: 0,
    missing_issuer_cert_count: 0,
    last_auto_tidy_finished: new Date().toISOString(),
  };

  constructor(
    readonly storage: StorageView,
    readonly logger: Logger,
  ) {}

  // ------------------------------------------------------------------------------------------
  // Issuers and keys

  /** Every issuer of this mount, parsed and linked into chains (cached until an issuer changes). */
  issuers(): Promise<Map<string, LoadedIssuer>> {
    this.issuersLoad ??= this.loadIssuers().catch((err) => {
      this.issuersLoad = undefined;
      throw err;
    });
    return this.issuersLoad;
  }

  private async loadIssuers(): Promise<Map<string, LoadedIssuer>> {
    const out = new Map<string, LoadedIssuer>();
    for (const id of await this.storage.list("issuers/")) {
      const entry = await this.storage.getJSON<IssuerEntry>(K.issuer(id));
      if (!entry) continue;
      const der = Buffer.from(entry.certificate.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
      let signer;
      if (entry.key_id) {
        const key = await this.storage.getJSON<KeyEntry>(K.key(entry.key_id));
        if (key) signer = signerFor(privateKeyFromPem(key.private_key));
      }
      out.set(id, loadIssuer(entry, der, signer));
    }
    linkChains([...out.values()]);
    return out;
  }

  /** Drops cached issuers and everything derived from them (templates). */
  invalidateIssuers(): void {
    this.issuersLoad = undefined;
    this.issuersConfigCache = undefined;
    this.templates.clear();
  }

  async issuersConfig(): Promise<IssuersConfig> {
    this.issuersConfigCache ??= (await this.storage.getJSON<IssuersConfig>(K.issuersConfig)) ?? { default: "", default_follows_latest_issuer: false };
    return this.issuersConfigCache;
  }

  async setIssuersConfig(config: IssuersConfig): Promise<void> {
    await this.storage.putJSON(K.issuersConfig, config);
    this.invalidateIssuers();
  }

  /** An issuer by `default`, id or name. 400 when there is none (Vault's wording). */
  async resolveIssuer(ref: string): Promise<LoadedIssuer> {
    const all = await this.issuers();
    let issuer: LoadedIssuer | undefined;
    if (ref === "" || ref === "default") {
      const id = (await this.issuersConfig()).default;
      issuer = id ? all.get(id) : undefined;
      if (!issuer) throw new UserError("no default issuer currently configured: generate or import a CA first (root/generate, intermediate/set-signed, config/ca)");
    } else {
      issuer = all.get(ref) ?? [...all.values()].find((i) => i.entry.issuer_name !== "" && i.entry.issuer_name === ref);
      if (!issuer) throw new UserError(`unable to find issuer ${JSON.stringify(ref)}`);
    }
    return issuer;
  }

  /** The default issuer, or undefined when the mount has none yet (unauthenticated fetches answer 404). */
  async defaultIssuer(): Promise<LoadedIssuer | undefined> {
    const id = (await this.issuersConfig()).default;
    return id ? (await this.issuers()).get(id) : undefined;
  }

  /** Stores a CA private key; the same key imported twice is stored once. Returns its id and whether it existed. */
  async addKey(pem: string, name = ""): Promise<{ id: string; existing: boolean }> {
    const key = privateKeyFromPem(pem);
    const spec = specOfKey(key);
    const spki = spkiOfPrivateKey(key);
    for (const id of await this.storage.list("keys/")) {
      const other = await this.storage.getJSON<KeyEntry>(K.key(id));
      if (other && spkiOfPrivateKey(privateKeyFromPem(other.private_key)).equals(spki)) return { id, existing: true };
    }
    const id = randomUUID();
    const pkcs8 = key.export({ type: "pkcs8", format: "pem" }) as string;
    await this.storage.putJSON(K.key(id), { key_id: id, key_name: name, key_type: spec.type, key_bits: spec.bits, private_key: pkcs8 } satisfies KeyEntry);
    return { id, existing: false };
  }

  /** The id of the stored key whose public half is `spki`, if any. */
  async keyForSpki(spki: Buffer): Promise<string | undefined> {
    for (const id of await this.storage.list("keys/")) {
      const entry = await this.storage.getJSON<KeyEntry>(K.key(id));
      if (entry && spkiOfPrivateKey(privateKeyFromPem(entry.private_key)).equals(spki)) return id;
    }
    return undefined;
  }

  async keyEntry(id: string): Promise<KeyEntry | undefined> {
    return this.storage.getJSON<KeyEntry>(K.key(id));
  }

  /**
   * Records a CA certificate as an issuer (linked to its key when this mount holds it). The first
   * issuer of a mount becomes the default, as in Vault; later ones only when asked.
   */
  async addIssuer(der: Buffer, opts: { name?: string; makeDefault?: boolean } = {}): Promise<{ id: string; existing: boolean; keyId: string }> {
    const ca = parseCaCertificate(der);
    if (!ca.isCa) throw new UserError("refusing to import a certificate that is not a CA (basic constraints CA:TRUE is required)");
    return this.storage.withLock(ISSUERS_LOCK, async () => {
      for (const issuer of (await this.issuers()).values()) {
        if (issuer.der.equals(der)) return { id: issuer.id, existing: true, keyId: issuer.entry.key_id };
      }
      const name = opts.name ?? "";
      if (name === "default") throw new UserError("issuer_name may not be the reserved value \"default\"");
      if (name && [...(await this.issuers()).values()].some((i) => i.entry.issuer_name === name)) throw new UserError(`an issuer named ${JSON.stringify(name)} already exists`);
      const keyId = (await this.keyForSpki(ca.parts.spki)) ?? "";
      const id = randomUUID();
      const entry: IssuerEntry = {
        issuer_id: id,
        issuer_name: name,
        certificate: toPem("CERTIFICATE", der).trimEnd(),
        key_id: keyId,
        leaf_not_after_behavior: "truncate",
        usage: "read-only,issuing-certificates,crl-signing,ocsp-signing",
      };
      await this.storage.putJSON(K.issuer(id), entry);
      const config = await this.issuersConfig();
      const hasDefault = config.default !== "" && (await this.issuers()).has(config.default);
      if (!hasDefault || opts.makeDefault || config.default_follows_latest_issuer) await this.storage.putJSON(K.issuersConfig, { ...config, default: id });
      this.invalidateIssuers();
      return { id, existing: false, keyId };
    });
  }

  async updateIssuer(id: string, patch: Partial<Pick<IssuerEntry, "issuer_name" | "leaf_not_after_behavior" | "usage">>): Promise<void> {
    await this.storage.withLock(ISSUERS_LOCK, async () => {
      const entry = await this.storage.getJSON<IssuerEntry>(K.issuer(id));
      if (!entry) throw new NotFound();
      await this.storage.putJSON(K.issuer(id), { ...entry, ...patch });
      this.invalidateIssuers();
    });
  }

  async deleteIssuer(id: string): Promise<boolean> {
    return this.storage.withLock(ISSUERS_LOCK, async () => {
      await this.storage.delete(K.issuer(id));
      await this.storage.delete(K.crl(id));
      const config = await this.issuersConfig();
      const wasDefault = config.default === id;
      if (wasDefault) await this.storage.putJSON(K.issuersConfig, { ...config, default: "" });
      this.invalidateIssuers();
      return wasDefault;
    });
  }

  /** `DELETE root`: every issuer, key and CRL goes; issued certificates and revocations stay. */
  async deleteAllIssuers(): Promise<void> {
    await this.storage.withLock(ISSUERS_LOCK, async () => {
      for (const id of await this.storage.list("issuers/")) await this.storage.delete(K.issuer(id));
      for (const id of await this.storage.list("keys/")) await this.storage.delete(K.key(id));
      for (const id of await this.storage.list("crls/")) await this.storage.delete(K.crl(id));
      await this.storage.delete(K.issuersConfig);
      this.invalidateIssuers();
    });
  }

  // ------------------------------------------------------------------------------------------
  // Roles and configuration

  async role(name: string): Promise<Role | undefined> {
    if (!this.roles.has(name)) this.roles.set(name, (await this.storage.getJSON<Role>(K.role(name))) ?? null);
    return this.roles.get(name) ?? undefined;
  }

  async putRole(name: string, role: Role): Promise<void> {
    await this.storage.putJSON(K.role(name), role);
    this.roles.set(name, role);
    this.dropTemplates(name);
  }

  async deleteRole(name: string): Promise<void> {
    await this.storage.delete(K.role(name));
    this.roles.delete(name);
    this.dropTemplates(name);
  }

  async listRoles(): Promise<string[]> {
    return this.storage.list("roles/");
  }

  private dropTemplates(role: string): void {
    for (const key of this.templates.keys()) if (key.endsWith(`\n${role}`)) this.templates.delete(key);
  }

  /** The role's constant certificate parts for `issuer`, built on first use. */
  async template(issuer: LoadedIssuer, roleName: string, role: Role): Promise<LeafTemplate> {
    const key = `${issuer.id}\n${roleName}`;
    let t = this.templates.get(key);
    if (!t || t.issuer !== issuer) {
      t = new LeafTemplate(issuer, role, await this.aiaUrls());
      this.templates.set(key, t);
    }
    return t;
  }

  async urls(): Promise<UrlsConfig> {
    this.urlsConfig ??= (await this.storage.getJSON<UrlsConfig>(K.urls)) ?? { issuing_certificates: [], crl_distribution_points: [], ocsp_servers: [] };
    return this.urlsConfig;
  }

  async aiaUrls(): Promise<AiaUrls> {
    const u = await this.urls();
    return { issuingCertificates: u.issuing_certificates, crlDistributionPoints: u.crl_distribution_points, ocspServers: u.ocsp_servers };
  }

  async setUrls(urls: UrlsConfig): Promise<void> {
    await this.storage.putJSON(K.urls, urls);
    this.urlsConfig = urls;
    this.templates.clear();
  }

  async crlConfig(): Promise<CrlConfig> {
    this.crlConfigCache ??= { ...defaultCrlConfig(), ...((await this.storage.getJSON<Partial<CrlConfig>>(K.crlConfig)) ?? {}) };
    return this.crlConfigCache;
  }

  async setCrlConfig(config: CrlConfig): Promise<void> {
    await this.storage.putJSON(K.crlConfig, config);
    this.crlConfigCache = config;
  }

  async autoTidy(): Promise<AutoTidyConfig> {
    this.autoTidyCache ??= { ...defaultAutoTidy(), ...((await this.storage.getJSON<Partial<AutoTidyConfig>>(K.autoTidy)) ?? {}) };
    return this.autoTidyCache;
  }

  async setAutoTidy(config: AutoTidyConfig): Promise<void> {
    await this.storage.putJSON(K.autoTidy, config);
    this.autoTidyCache = config;
  }

  // ------------------------------------------------------------------------------------------
  // The certificate store

  async storeCert(serial: string, record: CertRecord): Promise<void> {
    await this.storage.putJSON(K.cert(serial), record);
  }

  async cert(serial: string): Promise<CertRecord | undefined> {
    return this.storage.getJSON<CertRecord>(K.cert(serial));
  }

  async revocation(serial: string): Promise<RevokedRecord | undefined> {
    return this.storage.getJSON<RevokedRecord>(K.revoked(serial));
  }

  async listCerts(): Promise<string[]> {
    return this.storage.list("certs/");
  }

  async listRevoked(): Promise<string[]> {
    return this.storage.list("revoked/");
  }

  // ------------------------------------------------------------------------------------------
  // Revocation and CRLs

  /**
   * Revokes a serial. Idempotent: a second call returns the first revocation. A certificate that
   * has already expired is not added (nothing left to protect, as in Vault). `fallback` carries
   * what a lease recorded, for a certificate that was signed but never stored (a crash or a
   * failed request between signing and storing): it is revoked all the same.
   *
   * `rebuild: "now"` (pki/revoke) rebuilds the CRL before returning, as Vault does. `"soon"` (lease
   * revocations, which come in bursts when a mount is disabled or a prefix revoked) marks the CRL
   * stale and rebuilds once for the whole burst; a CRL read in between rebuilds first, and OCSP
   * reads revocations directly, so no client ever sees a stale answer.
   */
  async revoke(serial: string, fallback?: { issuerId: string; notAfter: number }, rebuild: "now" | "soon" = "now"): Promise<{ record?: RevokedRecord; expired: boolean; alreadyRevoked: boolean }> {
    const outcome = await this.storage.withLock(REVOCATION_LOCK, async () => {
      const existing = await this.revocation(serial);
      if (existing) return { record: existing, expired: false, alreadyRevoked: true, issuerId: undefined };
      const stored = await this.cert(serial);
      const issuerId = stored?.issuer_id ?? fallback?.issuerId;
      const notAfter = stored?.not_after ?? fallback?.notAfter;
      if (!issuerId || notAfter === undefined) throw new UserError(`certificate with serial ${serial} not found`);
      for (const issuer of (await this.issuers()).values()) {
        if (issuer.serial === serial && issuer.id === issuerId) throw new UserError("issuers cannot be revoked through revoke; delete the issuer instead");
      }
      if (notAfter * 1000 <= Date.now()) return { record: undefined, expired: true, alreadyRevoked: false, issuerId: undefined };
      const record: RevokedRecord = { issuer_id: issuerId, revoked_at_ms: Date.now(), not_after: notAfter };
      await this.storage.putJSON(K.revoked(serial), record);
      this.staleCrls.add(issuerId);
      return { record, expired: false, alreadyRevoked: false, issuerId };
    });
    // Vault's rule: with auto_rebuild the CRL catches up on its schedule (maintain); otherwise at once.
    if (outcome.issuerId && !(await this.crlConfig()).auto_rebuild) {
      if (rebuild === "now") await this.rebuildCrl(outcome.issuerId).catch((err) => this.logger.error({ err }, "pki: CRL rebuild after revocation failed"));
      else this.scheduleRebuild();
    }
    return outcome;
  }

  private rebuildTimer?: NodeJS.Timeout;
  private burstStartedAt = 0;

  /**
   * One rebuild of every stale CRL shortly after a burst of revocations ends: 50 ms after the last
   * revocation, at the latest one second after the first (a long burst still publishes its CRL).
   */
  private scheduleRebuild(): void {
    const now = Date.now();
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    else this.burstStartedAt = now;
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      void (async () => {
        for (const id of [...this.staleCrls]) await this.rebuildCrl(id);
      })().catch((err) => this.logger.error({ err }, "pki: CRL rebuild after lease revocations failed"));
    }, Math.max(0, Math.min(50, this.burstStartedAt + 1000 - now)));
    this.rebuildTimer.unref();
  }

  /** Stops timers (the mount is going away). */
  close(): void {
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    this.rebuildTimer = undefined;
  }

  /** Rebuilds one issuer's CRL (or every issuer's with a key). */
  async rebuildCrl(issuerId?: string): Promise<void> {
    const all = await this.issuers();
    const targets = issuerId ? [all.get(issuerId)].filter((i): i is LoadedIssuer => !!i) : [...all.values()];
    await this.storage.withLock(REVOCATION_LOCK, async () => {
      // Revocations take the same lock, so everything revoked before this point is in the listing.
      const revoked: { serial: string; record: RevokedRecord }[] = [];
      for (const serial of await this.listRevoked()) {
        const record = await this.revocation(serial);
        if (record) revoked.push({ serial, record });
      }
      const config = await this.crlConfig();
      for (const issuer of targets) {
        if (!issuer.signer) continue;
        const previous = await this.storage.getJSON<CrlRecord>(K.crl(issuer.id));
        const now = new Date();
        const number = (previous?.number ?? 0) + 1;
        const entries = config.disable
          ? []
          : revoked.filter((r) => r.record.issuer_id === issuer.id).map((r) => ({ serialHex: r.serial.replace(/:/g, ""), revokedAt: new Date(r.record.revoked_at_ms) }));
        const nextUpdate = new Date(now.getTime() + config.expiry * 1000);
        const der = await buildCrl({ issuerName: issuer.parts.subjectName, issuerKeyId: issuer.keyId, signer: issuer.signer, number, thisUpdate: now, nextUpdate, entries });
        await this.storage.putJSON(K.crl(issuer.id), { der: der.toString("base64"), number, this_update: now.getTime(), next_update: nextUpdate.getTime() } satisfies CrlRecord);
      }
      // Only now: a CRL read during the rebuild must still see the stored CRL as stale.
      for (const t of targets) this.staleCrls.delete(t.id);
    });
  }

  /** The issuer's CRL as DER. An expired or missing CRL is rebuilt first: we never serve a stale one. */
  async crl(issuer: LoadedIssuer): Promise<Buffer> {
    if (!issuer.signer) throw new UserError(`issuer ${issuer.id} has no private key in this mount, so it has no CRL here`);
    // The marker first, the record second: a rebuild that ends in between stored a CRL listing the revocation.
    const marked = this.staleCrls.has(issuer.id);
    let record = await this.storage.getJSON<CrlRecord>(K.crl(issuer.id));
    const stale = marked && !(await this.crlConfig()).auto_rebuild;
    if (!record || stale || record.next_update <= Date.now()) {
      await this.rebuildCrl(issuer.id);
      record = await this.storage.getJSON<CrlRecord>(K.crl(issuer.id));
      if (!record) throw new InternalError("CRL rebuild produced nothing");
    }
    return Buffer.from(record.der, "base64");
  }

  // ------------------------------------------------------------------------------------------
  // OCSP

  /** Answers a DER OCSP request (RFC 6960) with a DER OCSP response; errors are OCSP statuses, not HTTP ones. */
  async ocsp(requestDer: Buffer): Promise<Buffer> {
    if ((await this.crlConfig()).ocsp_disable) return ocspError(OCSPResponseStatus.unauthorized);
    const request = parseOcspRequest(requestDer);
    if (!request) return ocspError(OCSPResponseStatus.malformedRequest);
    const all = [...(await this.issuers()).values()];
    let responder: LoadedIssuer | undefined;
    const answers: OcspAnswer[] = [];
    for (const certId of request.certIds) {
      const alg = CERT_ID_HASHES[certId.hashAlgorithm.algorithm];
      const nameHash = Buffer.from(certId.issuerNameHash.buffer);
      const keyHash = Buffer.from(certId.issuerKeyHash.buffer);
      const issuer = alg ? all.find((i) => i.certIdHashes.get(alg)!.name.equals(nameHash) && i.certIdHashes.get(alg)!.key.equals(keyHash)) : undefined;
      // Vault's rule: a certificate from an issuer this mount does not know is `unauthorized`.
      if (!issuer || !issuer.signer || (responder && responder !== issuer)) return ocspError(OCSPResponseStatus.unauthorized);
      responder = issuer;
      const serial = formatSerial(Buffer.from(certId.serialNumber));
      const revoked = await this.revocation(serial);
      if (revoked && revoked.issuer_id === issuer.id) answers.push({ certId, state: { status: "revoked", revokedAt: new Date(revoked.revoked_at_ms) } });
      else if ((await this.cert(serial))?.issuer_id === issuer.id) answers.push({ certId, state: { status: "good" } });
      else answers.push({ certId, state: { status: "unknown" } });
    }
    if (!responder?.signer) return ocspError(OCSPResponseStatus.unauthorized);
    return ocspResponse({
      signer: responder.signer,
      responderKeyHash: responder.certIdHashes.get("sha1")!.key,
      answers,
      nonce: request.nonce,
      now: new Date(),
      validFor: (await this.crlConfig()).ocsp_expiry,
    });
  }

  // ------------------------------------------------------------------------------------------
  // Tidy

  /** Starts a tidy in the background. 400 when one is already running (Vault answers the same). */
  startTidy(opts: TidyOptions, auto = false): void {
    if (this.tidyRun) throw new UserError("a tidy operation is already running");
    this.cancelTidy = false;
    this.tidyStatus = {
      ...this.tidyStatus,
      safety_buffer: opts.safety_buffer,
      tidy_cert_store: opts.tidy_cert_store,
      tidy_revoked_certs: opts.tidy_revoked_certs,
      pause_duration: `${opts.pause_duration}s`,
      state: "Running",
      error: null,
      time_started: new Date().toISOString(),
      time_finished: null,
      message: "Tidying certificate store",
      cert_store_deleted_count: 0,
      revoked_cert_deleted_count: 0,
      missing_issuer_cert_count: 0,
    };
    this.tidyRun = this.runTidy(opts)
      .then(() => {
        this.tidyStatus.state = this.cancelTidy ? "Cancelled" : "Finished";
      })
      .catch((err: unknown) => {
        this.tidyStatus.state = "Error";
        this.tidyStatus.error = (err as Error).message;
        this.logger.error({ err }, "pki: tidy failed");
      })
      .finally(() => {
        this.tidyStatus.time_finished = new Date().toISOString();
        if (auto) {
          this.lastAutoTidy = Date.now();
          this.tidyStatus.last_auto_tidy_finished = this.tidyStatus.time_finished;
        }
        this.tidyRun = undefined;
      });
  }

  /** Resolves when the running tidy (if any) has finished. */
  async tidyDone(): Promise<void> {
    await this.tidyRun;
  }

  requestTidyCancel(): void {
    if (this.tidyRun) {
      this.cancelTidy = true;
      this.tidyStatus.state = "Cancelling";
    }
  }

  private async runTidy(opts: TidyOptions): Promise<void> {
    const cutoff = Date.now() - opts.safety_buffer * 1000;
    const pause = () => (opts.pause_duration > 0 ? new Promise((r) => setTimeout(r, opts.pause_duration * 1000)) : Promise.resolve());
    if (opts.tidy_cert_store) {
      const serials = await this.listCerts();
      for (const [i, serial] of serials.entries()) {
        if (this.cancelTidy) return;
        this.tidyStatus.message = `Tidying certificate store: checking entry ${i + 1} of ${serials.length}`;
        const record = await this.cert(serial);
        if (record && record.not_after * 1000 < cutoff) {
          await this.storage.delete(K.cert(serial));
          this.tidyStatus.cert_store_deleted_count++;
        }
        await pause();
      }
    }
    if (opts.tidy_revoked_certs) {
      const issuers = await this.issuers();
      const touched = new Set<string>();
      await this.storage.withLock(REVOCATION_LOCK, async () => {
        const serials = await this.listRevoked();
        for (const [i, serial] of serials.entries()) {
          if (this.cancelTidy) return;
          this.tidyStatus.message = `Tidying revoked certificates: checking certificate ${i + 1} of ${serials.length}`;
          const record = await this.revocation(serial);
          if (!record) continue;
          if (!issuers.has(record.issuer_id)) this.tidyStatus.missing_issuer_cert_count++;
          if (record.not_after * 1000 < cutoff) {
            await this.storage.delete(K.revoked(serial));
            await this.storage.delete(K.cert(serial));
            touched.add(record.issuer_id);
            this.tidyStatus.revoked_cert_deleted_count++;
          }
        }
      });
      for (const id of touched) if (issuers.has(id)) await this.rebuildCrl(id);
    }
  }

  /**
   * The periodic work of a mount (node-cron calls it): automatic tidy once `interval_duration`
   * has passed since the last one, and CRL rebuilds inside `auto_rebuild_grace_period` of expiry.
   */
  async maintain(): Promise<void> {
    const auto = await this.autoTidy();
    if (auto.enabled && !this.tidyRun && Date.now() - this.lastAutoTidy >= auto.interval_duration * 1000) {
      this.startTidy(auto, true);
    }
    const crl = await this.crlConfig();
    if (crl.auto_rebuild) {
      for (const issuer of (await this.issuers()).values()) {
        if (!issuer.signer) continue;
        const record = await this.storage.getJSON<CrlRecord>(K.crl(issuer.id));
        if (this.staleCrls.has(issuer.id) || !record || record.next_update - crl.auto_rebuild_grace_period * 1000 <= Date.now()) await this.rebuildCrl(issuer.id);
      }
    }
  }
}
