import { describe, expect, it } from "vitest";
import { hasLiteralPassword, redactConnectionUrl } from "./connection-url.js";

describe("connection_url redaction", () => {
  it("masks the whole password, however many @ and : it holds", () => {
    expect(redactConnectionUrl("postgresql://app:s3cr@t:x@db.example:5432/prod")).toBe("postgresql://app:*****@db.example:5432/prod");
    expect(redactConnectionUrl("postgresql://app:a%40b%2Fc@db:5432/prod?sslmode=require")).toBe("postgresql://app:*****@db:5432/prod?sslmode=require");
    expect(redactConnectionUrl("postgres://a@b:pw@db/x")).toBe("postgres://a@b:*****@db/x");
  });

  it("masks password query parameters, and leaves other parameters and @ in the path alone", () => {
    expect(redactConnectionUrl("postgresql://app@db/prod?password=hunter%402&application_name=a@b")).toBe("postgresql://app@db/prod?password=*****&application_name=a@b");
    expect(redactConnectionUrl("postgresql://db/prod?user=app&sslpassword=k3y#frag")).toBe("postgresql://db/prod?user=app&sslpassword=*****#frag");
    expect(redactConnectionUrl("postgresql://app@db:5432/prod")).toBe("postgresql://app@db:5432/prod");
  });

  it("shows templates as written", () => {
    const t = "postgresql://{{username}}:{{password}}@db:5432/prod";
    expect(redactConnectionUrl(t)).toBe(t);
    expect(hasLiteralPassword(t)).toBe(false);
    expect(redactConnectionUrl("postgresql://{{username}}:{{ password }}@db/prod?password={{password}}")).toBe("postgresql://{{username}}:{{ password }}@db/prod?password={{password}}");
    expect(redactConnectionUrl("postgresql://u:x{{password}}@db/p")).toBe("postgresql://u:*****@db/p");
  });

  it("over-masks a URL no parser accepts rather than show part of a password", () => {
    expect(redactConnectionUrl("postgresql://app:pa/ss@word@db/prod")).toBe("postgresql://app:*****@db/prod");
    expect(redactConnectionUrl("postgresql://app:pa ss@db:notaport/prod")).toBe("postgresql://app:*****@db:notaport/prod");
  });

  it("masks password= in key=value DSNs", () => {
    expect(redactConnectionUrl("host=db user=app password=s3cr@t dbname=prod")).toBe("host=db user=app password=***** dbname=prod");
    expect(redactConnectionUrl("host=db password = 'it\\'s a secret' sslpassword=x")).toBe("host=db password = ***** sslpassword=*****");
    expect(redactConnectionUrl("host=db mypassword=x")).toBe("host=db mypassword=x");
    expect(hasLiteralPassword("host=db user=app")).toBe(false);
    expect(hasLiteralPassword("host=db password={{password}}")).toBe(false);
  });
});
