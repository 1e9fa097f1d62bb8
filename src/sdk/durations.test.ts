import { describe, expect, it } from "vitest";
import { formatDuration, MAX_DURATION_SECONDS, parseDuration } from "./durations.js";

describe("parseDuration", () => {
  it("reads seconds and Go duration strings as Vault does, truncating to whole seconds", () => {
    expect(parseDuration(90)).toBe(90);
    expect(parseDuration("90")).toBe(90);
    expect(parseDuration("1h30m")).toBe(5400);
    expect(parseDuration("2d")).toBe(172800);
    expect(parseDuration("1500ms")).toBe(1);
    expect(parseDuration("0.9s")).toBe(0);
    expect(parseDuration("")).toBe(0);
  });

  it("keeps fractions when asked (sub-second settings)", () => {
    expect(parseDuration("250ms", "min_backoff", { fractional: true })).toBe(0.25);
    expect(parseDuration("1.5s", "x", { fractional: true })).toBe(1.5);
    expect(parseDuration("1m0.5s", "x", { fractional: true })).toBe(60.5);
    expect(parseDuration(0.75, "x", { fractional: true })).toBe(0.75);
  });

  it("refuses what is not a duration, naming the field", () => {
    expect(() => parseDuration("5 minutes", "ttl")).toThrow('ttl: invalid duration "5 minutes"');
    expect(() => parseDuration(-1, "ttl")).toThrow("ttl: must be a non-negative duration");
    expect(() => parseDuration(true, "ttl")).toThrow(/ttl: expected a duration/);
    expect(() => parseDuration(`${MAX_DURATION_SECONDS + 1}`, "ttl")).toThrow(/out of range/);
  });

  it("formats as the vault CLI prints", () => {
    expect(formatDuration(3723)).toBe("1h2m3s");
    expect(formatDuration(60)).toBe("1m0s");
    expect(formatDuration(0)).toBe("0s");
  });
});
