import { webcrypto } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CRLNumber, id_ce_cRLNumber } from "@peculiar/asn1-x509";
import { AuthorityKeyIdentifierExtension, Extension, Name, X509CrlGenerator } from "@peculiar/x509";
import { arrayBuffer } from "./der.js";
import type { Signer } from "./keys.js";

export interface CrlEntry {
  /** Serial as plain hex. */
  serialHex: string;
  revokedAt: Date;
}

export interface CrlSpec {
  /** DER of the issuer's subject Name, copied so the CRL names its issuer byte for byte. */
  issuerName: Buffer;
  issuerKeyId: Buffer;
  signer: Signer;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** WebCrypto handles of issuer keys, made once per key object (@peculiar/x509 signs with WebCrypto). */
const webKeys = new WeakMap<object, Promise<CryptoKey>>();

function webKeyOf(signer: Signer): Promise<CryptoKey> {
  let key = webKeys.get(signer.key);
  if (!key) {
    const pkcs8 = signer.key.export({ type: "pkcs8", format: "der" });
    key = webcrypto.subtle.importKey("pkcs8", pkcs8, signer.webCrypto.importParams as unknown as Parameters<typeof webcrypto.subtle.importKey>[2], false, ["sign"]) as Promise<CryptoKey>;
    webKeys.set(signer.key, key);
  }
  return key;
}

function seconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** A v2 CRL with the CRL number and authority key identifier extensions (RFC 5280 §5.2.1, §5.2.3). */
export async function buildCrl(spec: CrlSpec): Promise<Buffer> {
  const crl = await X509CrlGenerator.create({
    issuer: new Name(arrayBuffer(spec.issuerName)),
    thisUpdate: seconds(spec.thisUpdate),
    nextUpdate: seconds(spec.nextUpdate),
    entries: spec.entries.map((e) => ({ serialNumber: e.serialHex, revocationDate: seconds(e.revokedAt) })),
    extensions: [
      new AuthorityKeyIdentifierExtension(spec.issuerKeyId.toString("hex")),
      new Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(spec.number))),
    ],
    signingKey: await webKeyOf(spec.signer),
    signingAlgorithm: spec.signer.webCrypto.signParams as unknown as Algorithm,
  });
  return Buffer.from(crl.rawData);
}
