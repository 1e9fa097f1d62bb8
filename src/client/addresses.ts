/**
 * Server address lists: `LEASEHOLD_ADDR=http://a:8200,http://b:8200`, the library's `addresses`
 * and the agent's `vault { addresses = [...] }` all end up here, so every entry is checked the
 * same way and an error names the entry that is wrong.
 */
import { ClientConfigError } from "./errors.js";

/**
 * One http(s) URL with a host, without trailing slashes (a path prefix is kept). `label` names
 * where it came from in the error (`LEASEHOLD_ADDR entry 2`, `addresses[1]`).
 */
export function checkAddress(value: string, label: string): string {
  const text = value.trim();
  if (text.includes(",")) {
    throw new ClientConfigError(`${label} ${JSON.stringify(value)} contains a comma: give several servers as a list (addresses: [...], or LEASEHOLD_ADDR=http://a:8200,http://b:8200)`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new ClientConfigError(`${label} ${JSON.stringify(value)} is not a server address: expected e.g. http://127.0.0.1:8200`, { cause });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ClientConfigError(`${label} ${JSON.stringify(value)} is not a server address: the scheme must be http or https`);
  }
  if (!url.host) throw new ClientConfigError(`${label} ${JSON.stringify(value)} is not a server address: it has no host`);
  return text.replace(/\/+$/, "");
}

/** Splits a comma-separated list (`LEASEHOLD_ADDR`, `-address`): entries trimmed, empty ones dropped, each checked. */
export function parseAddressList(raw: string, source: string): string[] {
  const entries = raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) throw new ClientConfigError(`${source}=${JSON.stringify(raw)} names no server address`);
  return checkAddresses(
    entries.map((e, i) => checkAddress(e, entries.length === 1 ? source : `${source} entry ${i + 1} of ${entries.length}`)),
    source,
  );
}

/**
 * Drops duplicates (keeping the first) and refuses a list that mixes http and https: a failover
 * must never move a client (and its token) from TLS to plain http.
 */
export function checkAddresses(addresses: readonly string[], source: string): string[] {
  const unique = [...new Set(addresses)];
  const schemes = new Set(unique.map((a) => new URL(a).protocol));
  if (schemes.size > 1) {
    throw new ClientConfigError(
      `${source} mixes http and https addresses (${unique.join(", ")}): use https for every server, so a failover never sends the token over plain http`,
    );
  }
  return unique;
}
