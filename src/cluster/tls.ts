import "reflect-metadata";
import { X509Certificate as NodeX509, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/**
 * The cluster's TLS identity for node-to-node traffic (request forwarding): one key pair and one
 * self-signed certificate shared by every node of the cluster, kept in the barrier. Only a node
 * that is unsealed can read it, so only an unsealed node can complete the mutual TLS handshake of
 * the cluster listener, as client or as server (Vault keeps its cluster certificate the same way).
 *
 * The active node makes it the first time it becomes active, and again when it is about to expire;
 * a standby reads it when it forwards (and again when a handshake fails: the active may have made
 * a new one).
 */
export interface ClusterTlsMaterial {
  /** PEM certificate: presented by both ends and the only trust anchor of both. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

/** Where the barrier keeps it (encrypted like every barrier entry). */
export const CLUSTER_TLS_PATH = "core/cluster/tls";

/** The name both ends use for SNI and hostname verification (the certificate's only SAN). */
export const CLUSTER_SERVER_NAME = "leasehold-cluster";

const VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/** Made again by the active node when less than this is left. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** The barrier operations this module needs (the Barrier class has them). */
export interface BarrierJson {
  getJSON<T>(key: string): Promise<T | undefined>;
  putJSON(key: string, value: unknown): Promise<void>;
}

async function generate(now = new Date()): Promise<ClusterTlsMaterial> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const serial = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)));
  serial[0] &= 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString("hex"),
    name: `CN=${CLUSTER_SERVER_NAME}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + VALIDITY_MS),
    keys,
    signingAlgorithm: alg,
    extensions: [
      // Its own trust anchor: a CA that signs nothing but itself.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: CLUSTER_SERVER_NAME }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").trimEnd()}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem") + "\n", key };
}

function usable(m: ClusterTlsMaterial | undefined, now: Date): m is ClusterTlsMaterial {
  if (!m || typeof m.cert !== "string" || typeof m.key !== "string") return false;
  try {
    return new Date(new NodeX509(m.cert).validTo).getTime() - now.getTime() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/** The active node: the stored material, or a new one written to the barrier (a fenced write). */
export async function ensureClusterTls(barrier: BarrierJson, now = new Date()): Promise<ClusterTlsMaterial> {
  const stored = await barrier.getJSON<ClusterTlsMaterial>(CLUSTER_TLS_PATH);
  if (usable(stored, now)) return stored;
  const made = await generate(now);
  await barrier.putJSON(CLUSTER_TLS_PATH, made);
  return made;
}

/** A standby: the stored material, or undefined when the active has not made it yet. */
export async function loadClusterTls(barrier: BarrierJson): Promise<ClusterTlsMaterial | undefined> {
  const stored = await barrier.getJSON<ClusterTlsMaterial>(CLUSTER_TLS_PATH);
  return stored && typeof stored.cert === "string" && typeof stored.key === "string" ? stored : undefined;
}
