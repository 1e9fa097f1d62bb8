/**
 * A TLS key and certificate from the PKI engine that stay fresh: a new pair is issued at about two
 * thirds of the certificate's lifetime, and servers and clients pick it up without a restart.
 *
 *   const tlsCert = await tlsCertificate(lh, "web", { common_name: "api.internal", ttl: "1h" });
 *   const server = https.createServer(tlsCert.serverOptions({ requestCert: true }), handler);
 *   tlsCert.attach(server);                                     // server.setSecureContext on rotation
 *   https.request({ ..., secureContext: tlsCert.secureContext }); // a client always uses the current pair
 */
import * as tls from "node:tls";
import type { IssuedCertificate, Leasehold, Secret } from "./leasehold.js";
import { LeaseKeeper, certificateLifetime } from "./lease-keeper.js";

export interface TlsCertificateOptions {
  /** The PKI mount; `pki` unless given. */
  mount?: string;
  /** Fraction of the certificate's lifetime after which a new one is issued: 0.7 (less up to 0.05 of jitter) unless given. */
  threshold?: number;
  /** Extra options for every secure context (ciphers, `requestCert`'s CA list, ...). */
  contextOptions?: tls.SecureContextOptions;
  onRotated?(certificate: IssuedCertificate): void;
  onError?(error: Error, info: { expired: boolean }): void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The current key pair of a role, and what TLS code needs of it. */
export class TlsCertificate {
  private context: tls.SecureContext;
  private readonly servers = new Set<tls.Server>();
  private keeper: LeaseKeeper<Secret<IssuedCertificate>> | undefined;

  /** @internal use `tlsCertificate()` */
  constructor(
    private issued: Secret<IssuedCertificate>,
    private readonly options: TlsCertificateOptions,
  ) {
    this.context = tls.createSecureContext(this.contextOptions());
  }

  /** PEM certificate followed by the chain (without the root). */
  get certificate(): string {
    return this.issued.data.certificate;
  }

  get privateKey(): string {
    return this.issued.data.private_key;
  }

  /** The issuing CA and chain, to trust peers with certificates of the same PKI. */
  get ca(): string[] {
    const chain = this.issued.data.ca_chain?.length ? this.issued.data.ca_chain : [this.issued.data.issuing_ca];
    return chain.filter(Boolean);
  }

  get serialNumber(): string {
    return this.issued.data.serial_number;
  }

  /** Unix seconds. */
  get expiration(): number {
    return this.issued.data.expiration;
  }

  /** A secure context with the current pair (for `https.request({ secureContext })`, `tls.connect`). */
  get secureContext(): tls.SecureContext {
    return this.context;
  }

  /** Options for `https.createServer`/`tls.createServer` with the current pair and CA; `extra` is merged in. */
  serverOptions(extra: tls.TlsOptions = {}): tls.TlsOptions {
    return { ...this.contextOptions(), ...extra };
  }

  /** Gives `server` each new pair (`server.setSecureContext`) until `stop()`. */
  attach(server: tls.Server): void {
    this.servers.add(server);
    server.once("close", () => this.servers.delete(server));
  }

  /** Stops issuing new pairs. */
  async stop(): Promise<void> {
    await this.keeper?.stop();
    this.servers.clear();
  }

  /** @internal */
  start(keeper: LeaseKeeper<Secret<IssuedCertificate>>): void {
    this.keeper = keeper;
  }

  /** @internal */
  rotate(next: Secret<IssuedCertificate>): void {
    this.issued = next;
    this.context = tls.createSecureContext(this.contextOptions());
    for (const server of this.servers) server.setSecureContext(this.contextOptions());
    this.options.onRotated?.(next.data);
  }

  private contextOptions(): tls.SecureContextOptions {
    return { key: this.privateKey, cert: this.certificate, ca: this.ca, ...this.options.contextOptions };
  }
}

/** Issues a pair from `<mount>/issue/<role>` with `params` and keeps it fresh. */
export async function tlsCertificate(lh: Leasehold, role: string, params: Record<string, unknown>, options: TlsCertificateOptions = {}): Promise<TlsCertificate> {
  const issue = () => lh.pki.issue(role, params, { mount: options.mount });
  const first = await issue();
  const cert = new TlsCertificate(first, options);
  const keeper = new LeaseKeeper<Secret<IssuedCertificate>>({
    initial: first,
    // Certificates are not renewed: the lifetime that matters is the certificate's own.
    lease: (s) => certificateLifetime(s.data as unknown as Record<string, unknown>),
    renew: () => Promise.reject(new Error("certificates are not renewable")),
    fetch: issue,
    threshold: options.threshold ?? 0.7,
    minBackoffMs: options.minBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
    onReplaced: (next) => cert.rotate(next),
    onError: (err, info) => options.onError?.(err, { expired: info.expired }),
  }).start();
  cert.start(keeper);
  return cert;
}
