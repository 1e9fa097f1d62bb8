import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { combine, split } from "shamir-secret-sharing";
import { InternalError, UserError } from "../sdk/errors.js";
import { open, seal } from "./barrier.js";
import type { Barrier } from "./barrier.js";

/** Plain (unencrypted) physical entry: readable while sealed, holds no secret. */
const SEAL_CONFIG_PATH = "core/seal-config";
/** Root key wrapped by the static seal key (auto-unseal). */
const STATIC_ROOT_KEY_PATH = "core/static-root-key";

export interface SealConfig {
  type: "shamir" | "static";
  secret_shares: number;
  secret_threshold: number;
}

export interface UnsealProgress {
  progress: number;
  nonce: string;
}

/** Loads a static seal key file: 32 bytes raw, or 64 hex characters, or base64 of 32 bytes. */
export function loadStaticKey(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new UserError(`seal "static": cannot read key_file ${file}: ${(e as Error).message}`);
  }
  if (raw.length === 32) return raw;
  const text = raw.toString("utf8").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  const b64 = Buffer.from(text, "base64");
  if (b64.length === 32) return b64;
  throw new UserError(`seal "static": key_file ${file} must hold a 32-byte key (raw, 64 hex characters, or base64); generate one with: openssl rand -hex 32`);
}

/**
 * The seal: holds the root key only while unsealed. With Shamir, `sys/init` splits a random root key
 * into shares and `sys/unseal` combines a threshold of them. With a static key, the root key is
 * stored wrapped by that key and the server unseals itself at start-up; init then returns recovery
 * shares of the root key (they also unseal the store if the key file is lost).
 */
export class SealManager {
  private shares: Buffer[] = [];
  private nonce = "";

  constructor(
    private readonly barrier: Barrier,
    private readonly staticKey?: Buffer,
  ) {}

  get sealType(): "shamir" | "static" {
    return this.staticKey ? "static" : "shamir";
  }

  async config(): Promise<SealConfig | undefined> {
    const raw = await this.barrier.physical.get(SEAL_CONFIG_PATH);
    return raw ? (JSON.parse(raw.toString("utf8")) as SealConfig) : undefined;
  }

  async isInitialized(): Promise<boolean> {
    return (await this.config()) !== undefined;
  }

  /** Creates the root key and keyring; returns the unseal (or recovery) shares. Leaves the barrier unsealed. */
  async initialize(secretShares: number, secretThreshold: number): Promise<Buffer[]> {
    if (await this.isInitialized()) throw new UserError("Vault is already initialized");
    if (!Number.isInteger(secretShares) || secretShares < 1 || secretShares > 255) throw new UserError("secret_shares must be between 1 and 255");
    if (!Number.isInteger(secretThreshold) || secretThreshold < 1 || secretThreshold > secretShares) {
      throw new UserError("secret_threshold must be at least 1 and at most secret_shares");
    }
    if (secretShares > 1 && secretThreshold < 2) throw new UserError("secret_threshold must be greater than one for multiple shares");
    const rootKey = randomBytes(32);
    // shamir-secret-sharing checks `constructor === Uint8Array`, so a Buffer is refused: pass a plain copy.
    let shares: Buffer[];
    if (secretShares === 1) shares = [Buffer.from(rootKey)];
    else {
      const plain = new Uint8Array(rootKey);
      shares = (await split(plain, secretShares, secretThreshold)).map((s) => Buffer.from(s));
      plain.fill(0);
    }
    await this.barrier.initialize(rootKey);
    if (this.staticKey) await this.barrier.physical.put(STATIC_ROOT_KEY_PATH, seal(this.staticKey, 0, STATIC_ROOT_KEY_PATH, rootKey));
    const cfg: SealConfig = { type: this.sealType, secret_shares: secretShares, secret_threshold: secretThreshold };
    await this.barrier.physical.put(SEAL_CONFIG_PATH, Buffer.from(JSON.stringify(cfg)));
    rootKey.fill(0);
    return shares;
  }

  /** With a static seal: unseals from the wrapped root key. Returns false when there is nothing to do. */
  async autoUnseal(): Promise<boolean> {
    if (!this.staticKey || !this.barrier.sealed) return false;
    const wrapped = await this.barrier.physical.get(STATIC_ROOT_KEY_PATH);
    if (!wrapped) return false;
    let rootKey: Buffer;
    try {
      rootKey = open(this.staticKey, STATIC_ROOT_KEY_PATH, wrapped);
    } catch {
      throw new InternalError("seal \"static\": the key_file does not match this store (wrong key?)");
    }
    const ok = await this.barrier.unseal(rootKey);
    rootKey.fill(0);
    if (!ok) throw new InternalError("seal \"static\": the wrapped root key does not open the keyring");
    return true;
  }

  get progress(): UnsealProgress {
    return { progress: this.shares.length, nonce: this.nonce };
  }

  resetProgress(): void {
    this.shares = [];
    this.nonce = "";
  }

  /**
   * Adds one share (hex or base64). When the threshold is reached, combines and unseals.
   * A wrong combination resets progress and throws, as Vault does.
   */
  async submitShare(key: string): Promise<void> {
    const cfg = await this.config();
    if (!cfg) throw new UserError("Vault is not initialized");
    if (!this.barrier.sealed) return;
    const share = decodeShare(key);
    if (this.shares.some((s) => s.equals(share))) return; // Vault ignores a share it already has
    if (!this.nonce) this.nonce = randomUUID();
    this.shares.push(share);
    if (this.shares.length < cfg.secret_threshold) return;
    const collected = this.shares;
    this.resetProgress();
    let rootKey: Buffer;
    try {
      // Plain Uint8Array copies: the library refuses Buffers (see initialize).
      rootKey = cfg.secret_threshold === 1 ? collected[0] : Buffer.from(await combine(collected.map((s) => new Uint8Array(s))));
    } catch (e) {
      throw new UserError(`failed to combine unseal keys: ${(e as Error).message}`);
    }
    const ok = rootKey.length === 32 && (await this.barrier.unseal(rootKey));
    rootKey.fill(0);
    if (!ok) throw new UserError("failed to unseal: the unseal keys do not open the keyring (cipher: message authentication failed)");
  }
}

function decodeShare(key: string): Buffer {
  const k = key.trim();
  if (/^[0-9a-fA-F]+$/.test(k) && k.length % 2 === 0) return Buffer.from(k, "hex");
  if (/^[A-Za-z0-9+/=]+$/.test(k)) return Buffer.from(k, "base64");
  throw new UserError("'key' must be a valid hex or base64 string");
}
