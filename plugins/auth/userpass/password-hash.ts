import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Password hashing for userpass: scrypt (memory-hard, built into Node), a random 16-byte salt per
 * password, and the cost parameters stored with the hash, in the PHC string format
 * `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (unpadded base64), so that the cost can be raised later
 * without breaking the hashes already stored: each is verified with its own parameters and
 * re-hashed at the current cost on the next successful login (`needsRehash`).
 *
 * Vault hashes with bcrypt (cost 10); scrypt at N=2^15, r=8, p=1 is the OWASP minimum for scrypt
 * and costs 32 MiB and about a tenth of a second of one core per hash.
 */

/** Cost parameters: N = 2^ln, block size r, parallelism p. */
export interface ScryptCost {
  ln: number;
  r: number;
  p: number;
}

/** The cost new hashes are made with. */
export const CURRENT_COST: ScryptCost = { ln: 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Refuse stored parameters beyond this (a tampered or corrupt entry must not exhaust memory). */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;

/**
 * How many hashes may run at once on this process. Each takes 32 MiB and one of libuv's four
 * thread-pool threads; a burst of logins must leave the pool to file I/O and the other crypto.
 */
const MAX_CONCURRENT_HASHES = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function withHashSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT_HASHES) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function derive(password: string, salt: Buffer, cost: ScryptCost, keyBytes: number): Promise<Buffer> {
  const N = 2 ** cost.ln;
  // scrypt needs 128·N·r bytes; Node's default `maxmem` (32 MiB) is exactly that at N=2^15, r=8 and refuses it.
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r };
  return withHashSlot(
    () =>
      new Promise((resolve, reject) => {
        scrypt(password, salt, keyBytes, options, (err, key) => (err ? reject(err) : resolve(key)));
      }),
  );
}

const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");

/** Hashes `password` with a fresh salt at the current cost. */
export async function hashPassword(password: string, cost: ScryptCost = CURRENT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, cost, KEY_BYTES);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${b64(salt)}$${b64(key)}`;
}

interface ParsedHash {
  cost: ScryptCost;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
  if (!m) return undefined;
  const cost = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (cost.ln < 1 || cost.ln > MAX_LN || cost.r < 1 || cost.r > MAX_R || cost.p < 1 || cost.p > MAX_P) return undefined;
  const key = Buffer.from(m[5], "base64");
  if (key.length < 16) return undefined;
  return { cost, salt: Buffer.from(m[4], "base64"), key };
}

/**
 * A hash of a password nobody knows, at the current cost: verifying against it costs what a real
 * verification costs, so a login for a user that does not exist takes as long as a wrong password.
 */
let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(32).toString("hex")));
}

/**
 * True when `password` matches `stored`. With `stored` undefined (no such user, or an entry whose
 * hash cannot be read) it still spends one full derivation and answers false.
 */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parsed = stored === undefined ? undefined : parseHash(stored);
  const target = parsed ?? parseHash(await dummyHash())!;
  const key = await derive(password, target.salt, target.cost, target.key.length);
  const same = timingSafeEqual(key, target.key);
  return parsed !== undefined && same;
}

/** True when `stored` was made with a lower cost than the current one (re-hash it after a successful login). */
export function needsRehash(stored: string): boolean {
  const parsed = parseHash(stored);
  if (!parsed) return true;
  const { ln, r, p } = parsed.cost;
  return ln < CURRENT_COST.ln || r < CURRENT_COST.r || p < CURRENT_COST.p || parsed.salt.length < SALT_BYTES || parsed.key.length < KEY_BYTES;
}

/** Computes the dummy hash ahead of the first login, so that first login is not slower when the user is unknown. */
export function warmUpDummyHash(): Promise<void> {
  return dummyHash().then(() => undefined);
}
