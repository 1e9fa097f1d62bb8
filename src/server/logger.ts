import pino, { type Logger } from "pino";

/** Fields that may carry secrets: never logged in clear. */
const REDACT = [
  "token",
  "client_token",
  "password",
  "secret_id",
  "private_key",
  "*.token",
  "*.client_token",
  "*.password",
  "*.secret_id",
  "*.private_key",
  'req.headers["x-vault-token"]',
  "req.headers.authorization",
  'headers["x-vault-token"]',
  "headers.authorization",
];

/** JSON logs on stderr (stdout stays free for what the CLI prints), secrets redacted. */
export function createLogger(level = "info", destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { service: "leasehold" }, redact: { paths: REDACT, censor: "[redacted]" } }, destination as pino.DestinationStream);
}
