import { describe, expect, it } from "vitest";
import { addressAllowed, blockWithin, normaliseAddress, parseCidr, parseCidrs, parseIp } from "./cidr.js";

/** What a block parses to, written back as text (so a table can say what each entry means). */
function show(raw: string): string | undefined {
  const b = parseCidr(raw);
  if (!b) return undefined;
  const addr = b.family === 4 ? b.bytes.join(".") : Array.from({ length: 8 }, (_, i) => ((b.bytes[2 * i] << 8) | b.bytes[2 * i + 1]).toString(16)).join(":");
  return `${addr}/${b.prefix}`;
}

describe("parseCidr: as strict as Go's net.ParseCIDR / net.ParseIP", () => {
  it("accepts blocks and bare addresses", () => {
    const good: [string, string][] = [
      ["10.0.0.0/8", "10.0.0.0/8"],
      ["10.1.2.3/8", "10.1.2.3/8"], // host bits set: Go keeps the address and masks when matching
      ["0.0.0.0/0", "0.0.0.0/0"],
      ["127.0.0.1", "127.0.0.1/32"],
      ["255.255.255.255/32", "255.255.255.255/32"],
      ["::1", "0:0:0:0:0:0:0:1/128"],
      ["::/0", "0:0:0:0:0:0:0:0/0"],
      ["2001:DB8::/32", "2001:db8:0:0:0:0:0:0/32"],
      ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0/128"],
      ["0001:2:3:4:5:6:7:8/64", "1:2:3:4:5:6:7:8/64"],
      ["::1.2.3.4/120", "0:0:0:0:0:0:102:304/120"],
      // IPv4-mapped IPv6 is the IPv4 block it maps.
      ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
      ["::ffff:a00:1", "10.0.0.1/32"],
      ["::FFFF:10.0.0.1/128", "10.0.0.1/32"],
      ["::ffff:0:0/80", "0:0:0:0:0:ffff:0:0/80"], // shorter than /96: an IPv6 block
    ];
    for (const [raw, want] of good) expect(show(raw), raw).toBe(want);
  });

  it("refuses every half-parsable form", () => {
    const bad = [
      "", "/", "/8", "10.0.0.1/", "10.0.0.0/ 8", "10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0.0 /8", "10.0.0.0/+8", "10.0.0.0/-1",
      "10.0.0.0/0x10", "10.0.0.0/1e1", "10.0.0.0/8.0", "10.0.0.0/08", "10.0.0.0/00", "10.0.0.0/33", "10.0.0.0/4294967304",
      "10.0.0.0/8/8", "10.0.0.0//8", "010.0.0.1", "10.0.0.01/32", "10.0.0", "10.0.0.0.0", "10.0.0.256", "1.2.3.-4", "0x0a.0.0.1",
      "10.0.0.1:80", "[::1]", "::1/129", "::1/0128", "fe80::1%eth0", "fe80::1%eth0/64", "1::2::3", ":1::", "1:2:3:4:5:6:7:8::",
      "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "::ffff:010.0.0.1", "::1.2.3", "1.2.3.4::", "example.com", "localhost",
      "١٠.0.0.0/8", "10.0.0.0/８",
    ];
    for (const raw of bad) expect(parseCidr(raw), JSON.stringify(raw)).toBeUndefined();
  });

  it("parses plain addresses the same way", () => {
    expect(parseIp("192.168.1.1")?.family).toBe(4);
    expect(parseIp("::")?.family).toBe(6);
    expect(parseIp("192.168.01.1")).toBeUndefined();
    expect(parseIp("1.2.3.4/32")).toBeUndefined();
  });

  it("names the bad entry and the field in a UserError", () => {
    expect(() => parseCidrs(["10.0.0.0/8", "10.0.0.1/"], "token_bound_cidrs")).toThrow(expect.objectContaining({ status: 400, message: expect.stringMatching(/^token_bound_cidrs: "10\.0\.0\.1\/" has an invalid prefix length/) }));
    expect(() => parseCidrs(["10.0.0.0/0x10"], "cidr_list")).toThrow(/^cidr_list: "10\.0\.0\.0\/0x10" has an invalid prefix length \(expected decimal digits from 0 to 32/);
    expect(() => parseCidrs(["::/129"])).toThrow(/invalid prefix length .* 0 to 128/);
    expect(parseCidrs(["10.0.0.0/8", "::1"])).toHaveLength(2);
  });
});

describe("addressAllowed", () => {
  it("matches by leading bits, per family", () => {
    expect(addressAllowed("10.255.0.1", ["10.0.0.0/8"])).toBe(true);
    expect(addressAllowed("11.0.0.1", ["10.0.0.0/8"])).toBe(false);
    expect(addressAllowed("10.0.0.129", ["10.0.0.128/25"])).toBe(true);
    expect(addressAllowed("10.0.0.127", ["10.0.0.128/25"])).toBe(false);
    expect(addressAllowed("127.0.0.1", ["127.0.0.1"])).toBe(true);
    expect(addressAllowed("127.0.0.2", ["127.0.0.1"])).toBe(false);
    expect(addressAllowed("2001:db8::5", ["2001:db8::/32"])).toBe(true);
    expect(addressAllowed("2001:db9::5", ["2001:db8::/32"])).toBe(false);
    expect(addressAllowed("1.2.3.4", ["0.0.0.0/0"])).toBe(true);
    expect(addressAllowed("::1", ["0.0.0.0/0"])).toBe(false);
  });

  it("treats an IPv4-mapped client as its IPv4 address, and IPv6 blocks as IPv6 only", () => {
    expect(addressAllowed("::ffff:127.0.0.1", ["127.0.0.1/32"])).toBe(true);
    expect(addressAllowed("::ffff:127.0.0.1", ["::ffff:127.0.0.0/104"])).toBe(true);
    expect(addressAllowed("127.0.0.1", ["::ffff:127.0.0.1"])).toBe(true);
    expect(addressAllowed("127.0.0.1", ["::/0"])).toBe(false);
    expect(addressAllowed("::ffff:127.0.0.1", ["::/0"])).toBe(false);
    expect(addressAllowed("fe80::1%eth0", ["fe80::/10"])).toBe(true);
    expect(normaliseAddress("::ffff:10.0.0.1")).toBe("10.0.0.1");
    expect(normaliseAddress("::1")).toBe("::1");
  });

  it("fails closed on entries stored before parsing was strict", () => {
    // `10.0.0.1/` used to read as /0 (every address); now it matches nothing.
    expect(addressAllowed("192.168.7.7", ["10.0.0.1/"])).toBe(false);
    expect(addressAllowed("10.0.0.1", ["10.0.0.1/", "10.0.0.1"])).toBe(true);
    expect(addressAllowed("10.0.0.1", [])).toBe(true);
    expect(addressAllowed("not-an-address", ["0.0.0.0/0"])).toBe(false);
  });

  it("tells when a block lies inside another", () => {
    const b = (s: string) => parseCidr(s)!;
    expect(blockWithin(b("10.1.0.0/16"), b("10.0.0.0/8"))).toBe(true);
    expect(blockWithin(b("10.0.0.0/8"), b("10.1.0.0/16"))).toBe(false);
    expect(blockWithin(b("10.1.2.3"), b("10.1.2.3/32"))).toBe(true);
    expect(blockWithin(b("::ffff:10.1.2.3"), b("10.0.0.0/8"))).toBe(true);
    expect(blockWithin(b("11.0.0.0/16"), b("10.0.0.0/8"))).toBe(false);
  });
});
