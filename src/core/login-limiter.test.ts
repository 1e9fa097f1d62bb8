import { describe, expect, it } from "vitest";
import { addressAllowed, parseCidrs } from "../sdk/cidr.js";
import { LoginLimiter } from "./login-limiter.js";

describe("LoginLimiter", () => {
  it("allows a burst, then refuses with 429 until the bucket refills", () => {
    const l = new LoginLimiter(2, 3);
    const t = 1_000_000;
    for (let i = 0; i < 3; i++) l.take("10.0.0.1", t);
    expect(() => l.take("10.0.0.1", t)).toThrow(expect.objectContaining({ status: 429 }));
    l.take("10.0.0.2", t); // other addresses have their own bucket
    l.take("10.0.0.1", t + 500); // 0.5 s at 2/s refills one
    expect(() => l.take("10.0.0.1", t + 500)).toThrow(/rate limit/);
  });
  it("treats an IPv4-mapped address as the IPv4 client, and 0 as unlimited", () => {
    const l = new LoginLimiter(1, 1);
    l.take("::ffff:10.1.1.1", 0);
    expect(() => l.take("10.1.1.1", 0)).toThrow();
    const free = new LoginLimiter(0, 0);
    for (let i = 0; i < 100; i++) free.take("10.0.0.1", 0);
  });
});

describe("CIDR binding", () => {
  it("matches addresses against blocks, IPv4 and IPv6", () => {
    expect(addressAllowed("10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(addressAllowed("::ffff:10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(addressAllowed("11.1.2.3", ["10.0.0.0/8", "192.168.1.1"])).toBe(false);
    expect(addressAllowed("192.168.1.1", ["10.0.0.0/8", "192.168.1.1"])).toBe(true);
    expect(addressAllowed("::1", ["::1/128"])).toBe(true);
    expect(addressAllowed("127.0.0.1", [])).toBe(true);
  });
  it("refuses malformed blocks with a message naming them", () => {
    expect(() => parseCidrs(["10.0.0.0/33"])).toThrow(/10\.0\.0\.0\/33/);
    expect(() => parseCidrs(["example.com"], "token_bound_cidrs")).toThrow(/token_bound_cidrs: "example.com"/);
  });
});
