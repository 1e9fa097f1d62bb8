import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key made by the openssl command line, as PEM text and files. */
export interface Issued {
  name: string;
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface LeafOptions {
  cn: string;
  /** openssl subjectAltName entries, e.g. `URI:spiffe://example.org/ns/prod/sa/web`, `DNS:web.internal`, `IP:127.0.0.1`. */
  sans?: string[];
  ou?: string;
  /** Negative: already expired (notAfter in the past). */
  days?: number;
  eku?: "clientAuth" | "serverAuth" | "serverAuth,clientAuth";
}

/**
 * A throw-away PKI made with the real `openssl` binary (independent of our own code): CAs,
 * intermediates and leaves with SANs, in a temporary directory.
 */
export class OpensslPki {
  readonly dir = mkdtempSync(join(tmpdir(), "leasehold-auth-pki-"));
  private serial = 1000;

  private run(args: string[]): void {
    execFileSync("openssl", args, { cwd: this.dir, stdio: ["ignore", "ignore", "pipe"] });
  }

  private files(name: string) {
    return { certFile: join(this.dir, `${name}.pem`), keyFile: join(this.dir, `${name}.key`), csr: join(this.dir, `${name}.csr`), ext: join(this.dir, `${name}.ext`) };
  }

  private read(name: string): Issued {
    const f = this.files(name);
    return { name, cert: readFileSync(f.certFile, "utf8"), key: readFileSync(f.keyFile, "utf8"), certFile: f.certFile, keyFile: f.keyFile };
  }

  /** A self-signed root CA. */
  rootCa(name: string, cn: string): Issued {
    const f = this.files(name);
    writeFileSync(f.ext, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n");
    this.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f.keyFile, "-out", f.certFile, "-subj", `/CN=${cn}`, "-days", "30", "-extensions", "v3_ca_custom", "-config", this.reqConfig(f.ext)]);
    return this.read(name);
  }

  /** An intermediate CA signed by `parent`. */
  intermediateCa(name: string, cn: string, parent: Issued): Issued {
    return this.signed(name, `/CN=${cn}`, parent, 30, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
  }

  /** An end-entity certificate signed by `parent`. */
  leaf(name: string, parent: Issued, o: LeafOptions): Issued {
    const ext = [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${o.eku ?? "clientAuth"}`,
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
      ...(o.sans?.length ? [`subjectAltName=${o.sans.join(",")}`] : []),
    ].join("\n");
    return this.signed(name, `/CN=${o.cn}${o.ou ? `/OU=${o.ou}` : ""}`, parent, o.days ?? 30, ext + "\n");
  }

  private signed(name: string, subj: string, parent: Issued, days: number, ext: string): Issued {
    const f = this.files(name);
    writeFileSync(f.ext, ext);
    this.run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f.keyFile, "-out", f.csr, "-subj", subj]);
    this.run(["x509", "-req", "-in", f.csr, "-CA", parent.certFile, "-CAkey", parent.keyFile, "-set_serial", String(this.serial++), "-days", String(days), "-extfile", f.ext, "-out", f.certFile]);
    return this.read(name);
  }

  /** A minimal req config holding the CA extensions for `req -x509`. */
  private reqConfig(extFile: string): string {
    const path = `${extFile}.cnf`;
    writeFileSync(path, `[req]\ndistinguished_name=dn\n[dn]\n[v3_ca_custom]\n${readFileSync(extFile, "utf8")}`);
    return path;
  }
}
