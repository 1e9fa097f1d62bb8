import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  Validity,
} from "@peculiar/asn1-x509";
import { describe, expect, it } from "vitest";
import { encodeGeneralNames, encodeName, extension, ipBytes, subjectKeyIdExtension } from "./certificate.js";
import { children, decodeOid, decodeString, oid, readElement, seq, smallInteger, time, tlv, unsignedInteger } from "./der.js";
import { formatSerial, newSerial, parseSerial } from "./serial.js";

const asn = (v: object) => Buffer.from(AsnConvert.serialize(v));

describe("DER writer matches the asn1-x509 encoding", () => {
  it("encodes names: PrintableString when possible, UTF8String otherwise, in Go's attribute order", () => {
    const atv = (type: string, value: AttributeValue) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
    const expected = new Name([
      atv("2.5.4.6", new AttributeValue({ printableString: "DE" })),
      atv("2.5.4.10", new AttributeValue({ printableString: "Example Org" })),
      atv("2.5.4.3", new AttributeValue({ utf8String: "bücher.example.com" })),
    ]);
    expect(encodeName({ commonName: "bücher.example.com", organization: ["Example Org"], country: ["DE"] }).toString("hex")).toBe(asn(expected).toString("hex"));
    expect(encodeName({}).toString("hex")).toBe("3000");
  });

  it("encodes SANs (DNS, email, IPv4, IPv6, URI) with their implicit tags", () => {
    const expected = new SubjectAlternativeName([
      new GeneralName({ dNSName: "a.example.com" }),
      new GeneralName({ rfc822Name: "ops@example.com" }),
      new GeneralName({ iPAddress: "10.1.2.3" }),
      new GeneralName({ iPAddress: "2001:db8::1" }),
      new GeneralName({ uniformResourceIdentifier: "spiffe://example.org/ns/prod/sa/web" }),
    ]);
    const ours = encodeGeneralNames({ dns: ["a.example.com"], email: ["ops@example.com"], ip: [ipBytes("10.1.2.3"), ipBytes("2001:db8::1")], uri: ["spiffe://example.org/ns/prod/sa/web"] });
    expect(ours.toString("hex")).toBe(asn(expected).toString("hex"));
  });

  it("encodes IPv6 forms, including embedded IPv4", () => {
    expect(ipBytes("::1").toString("hex")).toBe("00000000000000000000000000000001");
    expect(ipBytes("fe80::1:2").toString("hex")).toBe("fe800000000000000000000000010002");
    expect(ipBytes("::ffff:10.0.0.1").toString("hex")).toBe("00000000000000000000ffff0a000001");
    expect(ipBytes("2001:db8:0:0:1:0:0:1").toString("hex")).toBe("20010db8000000000001000000000001");
  });

  it("encodes validity as UTCTime before 2050 and GeneralizedTime from 2050", () => {
    const nb = new Date("2030-01-02T03:04:05Z");
    const na = new Date("2051-06-07T08:09:10Z");
    const expected = new Validity({ notBefore: nb, notAfter: na });
    expect(seq(time(nb), time(na)).toString("hex")).toBe(asn(expected).toString("hex"));
  });

  it("encodes extensions, critical or not", () => {
    const san = encodeGeneralNames({ dns: ["x.example.com"], email: [], ip: [], uri: [] });
    const expected = new Extension({ extnID: "2.5.29.17", critical: true, extnValue: new OctetString(san) });
    expect(extension("2.5.29.17", true, san).toString("hex")).toBe(asn(expected).toString("hex"));
    const ski = Buffer.alloc(20, 7);
    const expectedSki = new Extension({ extnID: "2.5.29.14", critical: false, extnValue: new OctetString(asn(new OctetString(ski))) });
    expect(subjectKeyIdExtension(ski).toString("hex")).toBe(asn(expectedSki).toString("hex"));
  });

  it("encodes integers minimally and OIDs with multi-byte arcs", () => {
    expect(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])).toString("hex")).toBe("02017f");
    expect(unsignedInteger(Buffer.from([0x80])).toString("hex")).toBe("02020080");
    expect(smallInteger(0).toString("hex")).toBe("020100");
    expect(oid("1.2.840.10045.4.3.2").toString("hex")).toBe("06082a8648ce3d040302");
    expect(oid("2.5.29.37.0").toString("hex")).toBe("0604551d2500");
  });

  it("writes every length form as asn1-schema does, at each boundary, from one part or several", () => {
    for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 70000]) {
      const content = Buffer.alloc(n, 0x5a);
      const expected = asn(new OctetString(content));
      expect(tlv(0x04, content).equals(expected), `length ${n}`).toBe(true);
      // The same bytes given in three parts, as seq() gets them: only the tag differs.
      const parts = [content.subarray(0, n >> 2), content.subarray(n >> 2, n >> 1), content.subarray(n >> 1)];
      const asSeq = seq(...parts);
      expect(asSeq[0]).toBe(0x30);
      expect(asSeq.subarray(1).equals(expected.subarray(1)), `seq of length ${n}`).toBe(true);
    }
  });

  it("writes and reads long lengths", () => {
    const big = seq(Buffer.alloc(70000, 1));
    const el = readElement(big);
    expect(el.end - el.contentStart).toBe(70000);
    expect(() => readElement(big.subarray(0, 100))).toThrow(/truncated/);
    expect(children(seq(smallInteger(1), smallInteger(2)), readElement(seq(smallInteger(1), smallInteger(2)))).length).toBe(2);
  });
});

describe("serial numbers", () => {
  it("are 16 bytes, positive, with a non-zero first byte, and unique", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const s = newSerial();
      expect(s.length).toBe(16);
      expect(s[0] & 0x80).toBe(0);
      expect(s[0]).not.toBe(0);
      seen.add(s.toString("hex"));
    }
    expect(seen.size).toBe(5000);
  });

  it("start with the issuance time, so later serials sort after earlier ones, and end with 80 random bits", () => {
    const t = Date.UTC(2026, 10, 22, 12, 0, 0);
    const a = newSerial(t);
    const b = newSerial(t + 1);
    expect(a.readUIntBE(0, 6)).toBe(t);
    expect(formatSerial(a) < formatSerial(b)).toBe(true); // the store's keys ascend with time
    expect(a[0]).toBe(0x01);
    // The same millisecond: same prefix, different random tails, and no tail repeats across many.
    const tails = new Set(Array.from({ length: 2000 }, () => newSerial(t).subarray(6).toString("hex")));
    expect(tails.size).toBe(2000);
    // Each of the 80 random bits takes both values across the sample (a stuck bit would show here).
    const ones = new Array(80).fill(0);
    for (const hex of tails) {
      const tail = Buffer.from(hex, "hex");
      for (let bit = 0; bit < 80; bit++) if (tail[bit >> 3] & (0x80 >> (bit & 7))) ones[bit]++;
    }
    for (const n of ones) expect(n).toBeGreaterThan(800);
    for (const n of ones) expect(n).toBeLessThan(1200);
  });

  it("print as Vault does and parse from colon, hyphen or plain hex", () => {
    expect(formatSerial(Buffer.from("00017fab", "hex"))).toBe("01:7f:ab");
    expect(parseSerial("01-7F-AB")).toBe("01:7f:ab");
    expect(parseSerial("17fab")).toBe("01:7f:ab");
    expect(() => parseSerial("zz:01")).toThrow(/invalid serial/);
  });
});

describe("DER reader helpers", () => {
  it("decodes OIDs back to their dotted form, large arcs and the 2.x first arc included", () => {
    for (const dotted of ["1.2.840.10045.4.3.2", "2.5.4.3", "1.3.6.1.4.1.311.21.7", "2.999.3", "0.9.2342.19200300.100.1.25", "1.2.840.113549.1.9.14"]) {
      expect(decodeOid(oid(dotted).subarray(2))).toBe(dotted);
    }
    expect(() => decodeOid(Buffer.from([0x2a, 0x86]))).toThrow(/malformed OID/);
    expect(() => decodeOid(Buffer.alloc(0))).toThrow(/malformed OID/);
  });

  it("decodes the string types a subject can carry as asn1-x509 does", () => {
    const cases: [number, Buffer, string][] = [
      [0x0c, Buffer.from("héllo ✓", "utf8"), "héllo ✓"],
      [0x13, Buffer.from("Printable 1", "latin1"), "Printable 1"],
      [0x16, Buffer.from("ia5@example.com", "latin1"), "ia5@example.com"],
      [0x14, Buffer.from([0x63, 0x61, 0x66, 0xe9]), "café"],
      [0x1e, Buffer.from([0x00, 0x68, 0x00, 0xe9, 0x27, 0x13]), "hé✓"],
      [0x1c, Buffer.from([0, 0, 0, 0x68, 0, 1, 0xf6, 0x00]), "h😀"],
    ];
    for (const [tag, bytes, text] of cases) {
      const der = tlv(tag, bytes);
      expect(decodeString(der, readElement(der)), `tag ${tag}`).toBe(text);
    }
  });
});
