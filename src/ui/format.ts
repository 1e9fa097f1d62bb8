/** Times and numbers as a person reads them: local time zone, the browser's locale. */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A timestamp in local time, or undefined for Go's zero time (`0001-01-01T00:00:00Z`) and garbage. */
export function localTime(value: string | number | Date | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return undefined;
  return dateTime.format(d);
}

/** "3 minutes ago" / "in 2 hours" from now. */
export function relativeTime(value: string | Date, now = Date.now()): string | undefined {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return undefined;
  const seconds = Math.round((d.getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(seconds, "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  return rtf.format(Math.round(seconds / 86400), "day");
}

const integer = new Intl.NumberFormat();

/** 12,345 */
export function count(n: number): string {
  return integer.format(n);
}
