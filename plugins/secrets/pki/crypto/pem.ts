import { UserError } from "../../../../src/sdk/index.js";

/** PEM with 64-character lines and a trailing newline, as Go's `pem.Encode` writes it. */
export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString("base64");
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. Text between blocks is ignored (bundles often carry comments). */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2].replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new UserError(`invalid base64 in PEM block ${m[1]}`);
    out.push({ label: m[1], der: Buffer.from(body, "base64") });
  }
  return out;
}

/** The single block with one of `labels`; 400 when there is none. */
export function onePem(text: string, labels: string[], field: string): Buffer {
  const block = pemBlocks(text).find((b) => labels.includes(b.label));
  if (!block) throw new UserError(`${field}: no PEM block of type ${labels.join(" or ")} found`);
  return block.der;
}
