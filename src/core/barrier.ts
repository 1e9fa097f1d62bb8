import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from "node:crypto";
import { SealedError, InternalError } from "../sdk/errors.js";
import type { StorageView } from "../sdk/types.js";
import type { PhysicalStorage } from "../storage/types.js";

const VERSION = 2;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 4 + NONCE_BYTES;
/** Physical key of the keyring, encrypted under the root key. */
export const KEYRING_PATH = "core/keyring";

interface KeyringFile {
  activeTerm: number;
  keys: { term: number; key: string; installTime: string }[];
}

/**
 * Nonces are drawn from the CSPRNG 512 at a time: one `randomBytes` call per entry cost about 4 µs,
 * most of it call overhead. Each nonce is used once; they are as random as before.
 */
const noncePool = Buffer.alloc(NONCE_BYTES * 512);
let nonceOffset = noncePool.length;
function freshNonce(): Buffer {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(nonceOffset, nonceOffset + NONCE_BYTES));
  noncePool.fill(0, nonceOffset, nonceOffset + NONCE_BYTES);
  nonceOffset += NONCE_BYTES;
  return nonce;
}

/** AES-256-GCM with the storage key as additional data, so a ciphertext cannot be moved to another key. */
export function seal(key: Buffer, term: number, path: string, plaintext: Buffer): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(path, "utf8"));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(VERSION, 0);
  header.writeUInt32BE(term, 1);
  nonce.copy(header, 5);
  return Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Reads the key term a ciphertext was written with. */
export function termOf(ciphertext: Buffer): number {
  if (ciphertext.length < HEADER_BYTES + TAG_BYTES || ciphertext.readUInt8(0) !== VERSION) {
    throw new InternalError("storage entry is not a barrier ciphertext (corrupt store?)");
  }
  return ciphertext.readUInt32BE(1);
}

/** Inverse of `seal`; throws when the key is wrong or the data was tampered with. */
export function open(key: Buffer, path: string, ciphertext: Buffer): Buffer {
  termOf(ciphertext);
  const nonce = ciphertext.subarray(5, HEADER_BYTES);
  const tag = ciphertext.subarray(ciphertext.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(Buffer.from(path, "utf8"));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext.subarray(HEADER_BYTES, ciphertext.length - TAG_BYTES)), decipher.final()]);
}

/**
 * The barrier: everything written through it is encrypted with the active keyring key. The keyring
 * itself is encrypted with the root key, which only an unsealed server holds in memory.
 */
export class Barrier {
  private keys = new Map<number, Buffer>();
  private activeTerm = 0;

  constructor(readonly physical: PhysicalStorage) {}

  get sealed(): boolean {
    return this.activeTerm === 0;
  }

  /** Creates a fresh keyring under `rootKey` and leaves the barrier unsealed. */
  async initialize(rootKey: Buffer): Promise<void> {
    const ring: KeyringFile = { activeTerm: 1, keys: [{ term: 1, key: randomBytes(32).toString("base64"), installTime: new Date().toISOString() }] };
    await this.physical.put(KEYRING_PATH, seal(rootKey, 0, KEYRING_PATH, Buffer.from(JSON.stringify(ring))));
    this.load(ring);
  }

  async isInitialized(): Promise<boolean> {
    return (await this.physical.get(KEYRING_PATH)) !== undefined;
  }

  /** Loads the keyring with `rootKey`. Returns false when the key does not open it. */
  async unseal(rootKey: Buffer): Promise<boolean> {
    const blob = await this.physical.get(KEYRING_PATH);
    if (!blob) throw new InternalError("the store has no keyring: run sys/init first");
    let ring: KeyringFile;
    try {
      ring = JSON.parse(open(rootKey, KEYRING_PATH, blob).toString("utf8")) as KeyringFile;
    } catch {
      return false;
    }
    this.load(ring);
    return true;
  }

  private load(ring: KeyringFile): void {
    this.keys = new Map(ring.keys.map((k) => [k.term, Buffer.from(k.key, "base64")]));
    this.activeTerm = ring.activeTerm;
  }

  /** Forgets every key. */
  seal(): void {
    for (const k of this.keys.values()) k.fill(0);
    this.keys.clear();
    this.activeTerm = 0;
  }

  private assertUnsealed(): void {
    if (this.sealed) throw new SealedError();
  }

  async get(key: string): Promise<Buffer | undefined> {
    this.assertUnsealed();
    const blob = await this.physical.get(key);
    return blob ? this.decrypt(key, blob) : undefined;
  }

  encrypt(key: string, value: Buffer): Buffer {
    this.assertUnsealed();
    return seal(this.keys.get(this.activeTerm)!, this.activeTerm, key, value);
  }

  /** Opens a ciphertext made by `encrypt` for the same `key`. */
  decrypt(key: string, blob: Buffer): Buffer {
    this.assertUnsealed();
    const k = this.keys.get(termOf(blob));
    if (!k) throw new InternalError(`no barrier key for term ${termOf(blob)} (entry ${key})`);
    return open(k, key, blob);
  }

  async put(key: string, value: Buffer): Promise<void> {
    await this.physical.put(key, this.encrypt(key, value));
  }

  async delete(key: string): Promise<void> {
    this.assertUnsealed();
    await this.physical.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.assertUnsealed();
    return this.physical.list(prefix);
  }

  /** Atomic multi-key write through the barrier (null deletes). */
  async batch(ops: { key: string; value: Buffer | null }[]): Promise<void> {
    this.assertUnsealed();
    await this.physical.batch(ops.map((op) => ({ key: op.key, value: op.value === null ? null : this.encrypt(op.key, op.value) })));
  }

  /** A view that sees only keys under `prefix` (which ends with `/`). */
  view(prefix: string): StorageView {
    return new PrefixedView(this, prefix);
  }
}

/** In-process async mutexes keyed by storage path. */
class KeyLocks {
  private tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
const locks = new KeyLocks();

class PrefixedView implements StorageView {
  constructor(private readonly barrier: Barrier, private readonly prefix: string) {}
  get(key: string) {
    return this.barrier.get(this.prefix + key);
  }
  put(key: string, value: Buffer) {
    return this.barrier.put(this.prefix + key, value);
  }
  delete(key: string) {
    return this.barrier.delete(this.prefix + key);
  }
  list(prefix: string) {
    return this.barrier.list(this.prefix + prefix);
  }
  async getJSON<T>(key: string): Promise<T | undefined> {
    const raw = await this.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw.toString("utf8")) as T);
  }
  putJSON(key: string, value: unknown) {
    return this.put(key, Buffer.from(JSON.stringify(value), "utf8"));
  }
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return locks.run(this.prefix + key, fn);
  }
}
