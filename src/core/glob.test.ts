import { describe, expect, it } from "vitest";
import { globMatch } from "./glob.js";

describe("special-path patterns", () => {
  it("keeps exact and trailing-* prefix matching", () => {
    expect(globMatch("ca/pem", "ca/pem")).toBe(true);
    expect(globMatch("ca/pem", "ca/pem/x")).toBe(false);
    expect(globMatch("cert/*", "cert/01-02")).toBe(true);
    expect(globMatch("ocsp*", "ocsp/MEQw")).toBe(true);
    expect(globMatch("cert/*", "certs/")).toBe(false);
  });

  it("matches one non-empty segment with +", () => {
    expect(globMatch("issuer/+/pem", "issuer/default/pem")).toBe(true);
    expect(globMatch("issuer/+/pem", "issuer/a1b2/pem")).toBe(true);
    expect(globMatch("issuer/+/pem", "issuer//pem")).toBe(false);
    expect(globMatch("issuer/+/pem", "issuer/default/pem/x")).toBe(false);
    expect(globMatch("issuer/+/pem", "issuer/default/der")).toBe(false);
    expect(globMatch("issuer/+/pem", "issuer/pem")).toBe(false);
  });

  it("combines + with a trailing *", () => {
    expect(globMatch("issuer/+/crl*", "issuer/default/crl")).toBe(true);
    expect(globMatch("issuer/+/crl*", "issuer/default/crl/pem")).toBe(true);
    expect(globMatch("issuer/+/crl*", "issuer/default/issue/web")).toBe(false);
  });
});
