import { createHash, createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's default `scram_iterations`; RFC 7677 asks for at least 4096. */
export const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, all base64. PostgreSQL stores a
 * password that already has this shape as is, so `CREATE ROLE ... PASSWORD '<verifier>'` gives the
 * role the password without the plaintext ever reaching the server (or its `log_statement` log).
 *
 * PBKDF2 runs on the libuv thread pool (about 1.2 ms of CPU per verifier), not the event loop.
 * PostgreSQL runs SASLprep on the password at login; it is the identity for the ASCII passwords
 * the broker generates, which is all this is used for.
 */
export async function scramVerifier(password: string, opts: { iterations?: number; salt?: Buffer } = {}): Promise<string> {
  const iterations = opts.iterations ?? SCRAM_ITERATIONS;
  const salt = opts.salt ?? randomBytes(16);
  const salted = await pbkdf2Async(Buffer.from(password.normalize("NFKC"), "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
