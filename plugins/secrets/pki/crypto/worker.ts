/**
 * A worker thread for the expensive part of P-256 issuance: it keeps a small pool of fresh P-256
 * key pairs (one message per 64 keys), checks CSR proofs of possession (JWK import and verification
 * cost several times a signature) and, for a CSR, signs the certificate in the same trip with issuer
 * keys it was handed once. Plain signatures are cheaper made on the event loop in batches than sent
 * here and back (sign-batch.ts), so the worker signs only after a proof check.
 *
 * Private keys stay in this process's memory (the worker is a thread, not a process); generated
 * keys are used once, then dropped with the response, as before. When a worker cannot be started
 * or fails, callers fall back to doing the work inline.
 */
import { createECDH, createPublicKey, sign, verify, type JsonWebKey, type KeyObject } from "node:crypto";
import { Worker } from "node:worker_threads";

/** The worker's code, plain CommonJS so it runs the same from sources (tsx, vitest) and from dist. */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const crypto = require("node:crypto");
const keys = new Map();
function verifies(p) {
  try {
    return crypto.verify(p.hash, Buffer.from(p.data), crypto.createPublicKey({ key: p.jwk, format: "jwk" }), Buffer.from(p.signature));
  } catch {
    return false;
  }
}
parentPort.on("message", (m) => {
  try {
    if (m.op === "keys") {
      // With each key, what the event loop would otherwise compute per certificate: its key
      // identifier and its SEC1 PEM, filled into the DER layout the main thread sent.
      const [prefix, middle] = m.sec1.map((b) => Buffer.from(b));
      const out = [];
      for (let i = 0; i < m.count; i++) {
        const ecdh = crypto.createECDH("prime256v1");
        const point = ecdh.generateKeys();
        let d = ecdh.getPrivateKey();
        if (d.length < 32) d = Buffer.concat([Buffer.alloc(32 - d.length), d]);
        const b64 = Buffer.concat([prefix, d, middle, point]).toString("base64");
        let pem = "-----BEGIN EC PRIVATE KEY-----\\n";
        for (let j = 0; j < b64.length; j += 64) pem += b64.slice(j, j + 64) + "\\n";
        out.push([d, point, crypto.hash("sha1", point, "buffer"), pem + "-----END EC PRIVATE KEY-----"]);
      }
      parentPort.postMessage({ id: m.id, keys: out });
    } else if (m.op === "key") {
      keys.set(m.keyId, crypto.createPrivateKey({ key: Buffer.from(m.der), format: "der", type: "pkcs8" }));
    } else if (m.op === "sign" || m.op === "verify") {
      // A batch: every request of this kind made during one turn of the main thread's event loop.
      const out = m.items.map((it) => {
        try {
          if (m.op === "verify") return { value: verifies(it) };
          // A CSR's proof of possession is checked first; when it fails nothing is signed.
          if (!verifies(it.proof)) return { value: null };
          return { value: crypto.sign(it.hash, Buffer.from(it.data), keys.get(it.keyId)) };
        } catch (err) {
          return { error: String(err && err.message || err) };
        }
      });
      parentPort.postMessage({ id: m.id, results: out });
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

/** Keys asked for at a time, and the pool size under which more are asked for. */
const BATCH = 64;
const LOW_WATER = 32;

interface Reply {
  id: number;
  keys?: [Uint8Array, Uint8Array, Uint8Array, string][];
  results?: { value?: unknown; error?: string }[];
  error?: string;
}

type BatchedOp = "sign" | "verify";

/** A request waiting for its batch: what goes to the worker, and how to do it here instead. */
interface Queued {
  item: Record<string, unknown>;
  inline: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

class CryptoWorker {
  private worker: Worker | undefined;
  private failed = false;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private readonly pool: PooledP256Key[] = [];
  private refilling = false;
  private readonly keyIds = new WeakMap<KeyObject, number>();
  private nextKeyId = 0;
  /** Requests made since the last flush, by kind: each kind goes to the worker in one message. */
  private readonly queues: Record<BatchedOp, Queued[]> = { sign: [], verify: [] };

  /**
   * A fresh P-256 key pair (32-byte scalar, uncompressed point); inline, without the extras, when
   * the worker is unavailable or its pool is empty. `sec1` is the DER of a P-256 SEC1 private key
   * around its scalar and its point (prefix, middle), which the worker fills in for `sec1Pem`.
   */
  async p256Key(sec1: readonly [Buffer, Buffer]): Promise<PooledP256Key> {
    const ready = this.pool.pop();
    if (this.pool.length < LOW_WATER) this.refill(sec1);
    if (ready) return ready;
    return inlineP256Key();
  }

  /**
   * Signs with `key` only if `proof` verifies (else `ProofRefused`), both in one trip to the worker
   * (the key is handed over once), inline when the worker is unavailable: a CSR's self-signature
   * and the certificate's cost one round trip.
   */
  async verifyThenSign(hash: string, data: Buffer, key: KeyObject, proof: Proof): Promise<Buffer> {
    const inline = () => (verifiesInline(proof) ? sign(hash, data, key) : null);
    const worker = this.ensure();
    let value: unknown;
    if (!worker) value = inline();
    else {
      let keyId = this.keyIds.get(key);
      if (keyId === undefined) {
        keyId = this.nextKeyId++;
        this.keyIds.set(key, keyId);
        worker.postMessage({ op: "key", keyId, der: key.export({ type: "pkcs8", format: "der" }) });
      }
      value = await this.batched("sign", { keyId, hash, data, proof }, inline);
    }
    if (value === null) throw new ProofRefused();
    return Buffer.from(value as Uint8Array);
  }

  /**
   * Verifies a signature with a public key given as a JWK (EC or OKP), on the worker: a CSR's
   * proof of possession costs more than the signature the certificate then gets.
   */
  async verify(proof: Proof): Promise<boolean> {
    if (!this.ensure()) return verifiesInline(proof);
    return (await this.batched("verify", { ...proof }, () => verifiesInline(proof))) === true;
  }

  /**
   * Requests made during one turn of the event loop travel in one message each way: a message
   * costs the event loop tens of microseconds, more than a P-256 signature costs the worker.
   * When the worker cannot answer, the request is done here rather than failed.
   */
  private batched(op: BatchedOp, item: Record<string, unknown>, inline: () => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const queue = this.queues[op];
      if (queue.length === 0) setImmediate(() => this.flush(op));
      queue.push({ item, inline, resolve, reject });
    });
  }

  private flush(op: BatchedOp): void {
    const batch = this.queues[op];
    this.queues[op] = [];
    if (!batch.length) return;
    const here = (q: Queued) => {
      try {
        q.resolve(q.inline());
      } catch (err) {
        q.reject(err);
      }
    };
    this.call({ op, items: batch.map((q) => q.item) }).then(
      (reply) =>
        batch.forEach((q, i) => {
          const r = reply.results?.[i];
          if (r && r.error === undefined) q.resolve(r.value);
          else here(q);
        }),
      () => batch.forEach(here),
    );
  }

  private refill(sec1: readonly [Buffer, Buffer]): void {
    if (this.refilling || !this.ensure()) return;
    this.refilling = true;
    this.call({ op: "keys", count: BATCH, sec1 })
      .then((reply) => {
        for (const [d, point, keyId, sec1Pem] of reply.keys ?? []) this.pool.push({ d: Buffer.from(d), point: Buffer.from(point), keyId: Buffer.from(keyId), sec1Pem });
      })
      .catch(() => undefined) // p256Key falls back to inline keys
      .finally(() => (this.refilling = false));
  }

  private call(message: Record<string, unknown>): Promise<Reply> {
    const worker = this.ensure();
    if (!worker) return Promise.reject(new Error("no crypto worker"));
    const id = this.seq++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private ensure(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.on("message", (reply: Reply) => {
        const waiter = this.pending.get(reply.id);
        if (!waiter) return;
        this.pending.delete(reply.id);
        if (reply.error !== undefined) waiter.reject(new Error(reply.error));
        else waiter.resolve(reply);
      });
      const fail = (err: Error) => {
        this.failed = true;
        this.worker = undefined;
        for (const waiter of this.pending.values()) waiter.reject(err);
        this.pending.clear();
      };
      worker.on("error", fail);
      worker.on("exit", (code) => fail(new Error(`crypto worker exited with code ${code}`)));
      worker.unref(); // never keeps the process alive (after the listeners: adding one can ref it again)
      this.worker = worker;
    } catch {
      this.failed = true;
    }
    return this.worker;
  }
}

/** A fresh P-256 key from the pool; `keyId` and `sec1Pem` come with the keys the worker made. */
export interface PooledP256Key {
  d: Buffer;
  point: Buffer;
  /** RFC 5280 §4.2.1.2 method 1: SHA-1 of the point. */
  keyId?: Buffer;
  /** The private key as SEC1 PEM ("EC PRIVATE KEY"), without a trailing newline. */
  sec1Pem?: string;
}

/** A signature to check with a public key given as a JWK (EC or OKP): a CSR's proof of possession. */
export interface Proof {
  hash: string | null;
  data: Buffer;
  jwk: JsonWebKey;
  signature: Buffer;
}

/** `sign` with a proof that does not verify: nothing was signed. */
export class ProofRefused extends Error {
  constructor() {
    super("proof of possession does not verify");
  }
}

function verifiesInline(p: Proof): boolean {
  try {
    return verify(p.hash, p.data, createPublicKey({ key: p.jwk, format: "jwk" }), p.signature);
  } catch {
    return false;
  }
}

function inlineP256Key(): PooledP256Key {
  const ecdh = createECDH("prime256v1");
  const point = ecdh.generateKeys();
  const d = ecdh.getPrivateKey();
  return { d: d.length < 32 ? Buffer.concat([Buffer.alloc(32 - d.length), d]) : d, point };
}

/** The process-wide worker (one thread serves every PKI mount). */
export const cryptoWorker = new CryptoWorker();
