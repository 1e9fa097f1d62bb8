import { randomFillSync } from "node:crypto";
import { UserError } from "../../../../src/sdk/index.js";

/** Serials come from a pool of random bytes refilled 64 KiB at a time (one syscall per 4,096 certificates). */
const pool = Buffer.allocUnsafe(65536);
let poolPos = pool.length;

/**
 * 16 random bytes with the top bit cleared (a positive INTEGER, RFC 5280 §4.1.2.2 allows 20 octets)
 * and a non-zero first byte, so the serial always has the same 16-byte form in DER and in text.
 */
export function newSerial(): Buffer {
  for (;;) {
    if (poolPos + 16 > pool.length) {
      randomFillSync(pool);
      poolPos = 0;
    }
    const s = Buffer.from(pool.subarray(poolPos, poolPos + 16));
    poolPos += 16;
    s[0] &= 0x7f;
    if (s[0] !== 0) return s;
  }
}

/** Vault's text form: lowercase hex pairs joined by `:`, without leading zero bytes. */
export function formatSerial(bytes: Buffer): string {
  if (bytes.length === 0) return "";
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let out = HEX_PAIRS[bytes[i]];
  for (i++; i < bytes.length; i++) out += ":" + HEX_PAIRS[bytes[i]];
  return out;
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Accepts `xx:xx:..`, `xx-xx-..` or plain hex; returns the canonical `xx:xx` form. */
export function parseSerial(input: string): string {
  const hex = input.trim().toLowerCase().replace(/[:-]/g, "");
  if (hex === "" || !/^[0-9a-f]+$/.test(hex)) throw new UserError(`invalid serial number ${JSON.stringify(input)}: expected hexadecimal pairs separated by ':' or '-'`);
  return formatSerial(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
}

/** The serial's magnitude bytes from its text form. */
export function serialBytes(formatted: string): Buffer {
  return Buffer.from(formatted.replace(/:/g, ""), "hex");
}
