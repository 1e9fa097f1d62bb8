import { UserError } from "./errors.js";

const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  "µs": 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

/** Go's longest duration (int64 nanoseconds, about 292 years); Vault cannot represent more. */
export const MAX_DURATION_SECONDS = 9_223_372_036;

/**
 * Parses a duration the way Vault does: an integer number of seconds (number or numeric string)
 * or a Go duration string such as `"90s"`, `"1h30m"`, `"72h"` (Vault also accepts `d`).
 * Returns whole seconds (fractions are truncated, as Vault does), or with `fractional` the exact
 * number of seconds (for settings that take sub-second values such as the agent's `"500ms"`).
 */
export function parseDuration(input: unknown, field = "duration", opts: { fractional?: boolean } = {}): number {
  const whole = (seconds: number) => (opts.fractional ? seconds : Math.floor(seconds + 1e-9));
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new UserError(`${field}: must be a non-negative duration`);
    return inRange(opts.fractional ? input : Math.floor(input), field, input);
  }
  if (typeof input !== "string") throw new UserError(`${field}: expected a duration such as 30, "30s", "15m" or "1h"`);
  const s = input.trim();
  if (s === "") return 0;
  if (/^\d+$/.test(s)) return inRange(parseInt(s, 10), field, input);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) throw new UserError(`${field}: invalid duration ${JSON.stringify(input)}`);
    total += parseFloat(m[1]) * UNIT_SECONDS[m[2]];
    pos = re.lastIndex;
  }
  if (!Number.isFinite(total)) throw new UserError(`${field}: invalid duration ${JSON.stringify(input)}`);
  return inRange(whole(total), field, input);
}

function inRange(seconds: number, field: string, input: unknown): number {
  if (seconds > MAX_DURATION_SECONDS) throw new UserError(`${field}: duration ${JSON.stringify(input)} is out of range (at most ${MAX_DURATION_SECONDS} seconds)`);
  return seconds;
}

/** Formats seconds as a Go-style duration (`1h2m3s`), as the `vault` CLI prints them. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return "0s";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${s}s`;
}
