/**
 * The PKI pages: the PKI engines the token can see, and one mount's issuers, certificates (subject,
 * SANs, expiry, revoked or not), its CRL (is each revoked serial in it?) and revocation of a
 * certificate after a confirmation, and what the OCSP responder says of each. Everything goes
 * through the public API (pki-api.ts, ocsp-lite.ts).
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { allows, capabilitiesOf } from "../api";
import { localTime, relativeTime } from "../format";
import { Link, Topbar } from "../components/shell";
import { Alert, Heading, MountList } from "./engine-common";
import { engineErrorText } from "./engine-mounts";
import { inCrl, listCertificates, listIssuers, readMountCrl, revokeCert, type PkiCert, type PkiIssuer } from "./pki-api";
import { askOcsp, type OcspStatus } from "./ocsp-lite";
import type { CrlSummary } from "./x509-lite";

/** How many certificates the page asks the OCSP responder about (one request each). */
const OCSP_LIMIT = 50;

/** `/ui/pki` (the mounts) or `/ui/pki/<mount>`. */
export function PkiPage(props: { token: string; mount?: string; onLogOut(why?: string): void }) {
  const { token, mount } = props;
  useEffect(() => {
    document.title = `${mount ? `${mount} · PKI` : "PKI"} · leasehold console`;
  }, [mount]);
  return (
    <>
      <Topbar token={token} current="pki" onLogOut={props.onLogOut} />
      <main class="page engine" key={mount ?? ""}>
        {mount === undefined ? <MountList token={token} type="pki" /> : <MountView token={token} mount={mount} />}
      </main>
    </>
  );
}

/** "in 3 days (12 Jan 2027, 10:00:00)" */
function When(props: { at: Date | number }) {
  const d = typeof props.at === "number" ? new Date(props.at * 1000) : props.at;
  return (
    <span title={d.toISOString()}>
      {localTime(d)} <span class="muted small">({relativeTime(d)})</span>
    </span>
  );
}

function OcspText(props: { status?: OcspStatus }) {
  const s = props.status;
  if (!s) return <span class="muted">–</span>;
  if (s.state === "revoked") return <span class="error-text">revoked</span>;
  if (s.state === "error") return <span class="muted" title={s.message}>no answer ({s.message})</span>;
  return <span>{s.state}</span>;
}

function MountView(props: { token: string; mount: string }) {
  const { token, mount } = props;
  const [issuers, setIssuers] = useState<PkiIssuer[] | undefined>();
  const [certs, setCerts] = useState<PkiCert[] | undefined>();
  const [crl, setCrl] = useState<CrlSummary | undefined>();
  const [ocsp, setOcsp] = useState<Record<string, OcspStatus>>({});
  const [errors, setErrors] = useState<{ issuers?: string; certs?: string; crl?: string }>({});
  const [mayRevoke, setMayRevoke] = useState(false);
  const [confirming, setConfirming] = useState<string | undefined>();
  const [status, setStatus] = useState<string | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const confirmButton = useRef<HTMLButtonElement>(null);

  const load = useCallback(async () => {
    const revokePath = `${mount}/revoke`;
    const [i, c, r, caps] = await Promise.allSettled([listIssuers(token, mount), listCertificates(token, mount), readMountCrl(token, mount), capabilitiesOf(token, [revokePath])]);
    setIssuers(i.status === "fulfilled" ? i.value : undefined);
    setCerts(c.status === "fulfilled" ? c.value : undefined);
    setCrl(r.status === "fulfilled" ? r.value : undefined);
    setErrors({
      issuers: i.status === "rejected" ? engineErrorText(i.reason, "list the issuers", `${mount}/issuers`) : undefined,
      certs: c.status === "rejected" ? engineErrorText(c.reason, "list the certificates", `${mount}/certs`) : undefined,
      crl: r.status === "rejected" ? engineErrorText(r.reason, "read the CRL", `${mount}/cert/crl`) : undefined,
    });
    // Without an answer, offer the action: the server still decides, and says why when it refuses.
    setMayRevoke(caps.status === "fulfilled" ? allows(caps.value[revokePath], "update") : true);
    if (i.status === "fulfilled" && c.status === "fulfilled") {
      const pems = new Map(i.value.map((x) => [x.id, x.pem]));
      const asked = await Promise.all(
        c.value.slice(0, OCSP_LIMIT).flatMap((cert) => {
          const pem = cert.issuerId && pems.get(cert.issuerId);
          return pem ? [askOcsp(mount, pem, cert.serial).then((s) => [cert.serial, s] as const)] : [];
        }),
      );
      setOcsp(Object.fromEntries(asked));
    }
  }, [token, mount]);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const revoke = async (serial: string) => {
    setActionError(undefined);
    setStatus(undefined);
    try {
      const at = await revokeCert(token, mount, serial);
      setConfirming(undefined);
      setStatus(`Certificate ${serial} revoked at ${localTime(new Date(at * 1000))}. The CRL was rebuilt and OCSP answers "revoked" from now on.`);
      await load();
    } catch (err) {
      setConfirming(undefined);
      setActionError(engineErrorText(err, "revoke this certificate", `${mount}/revoke`));
    }
  };

  const now = Date.now();
  const issuerSerials = new Set((issuers ?? []).map((i) => i.cert?.serial).filter(Boolean));
  return (
    <>
      <nav aria-label="Breadcrumb" class="breadcrumbs">
        <ol>
          <li>
            <Link to="/ui/pki">PKI</Link>
          </li>
          <li>
            <Link to={`/ui/pki/${encodeURIComponent(mount)}`}>{mount}</Link>
          </li>
        </ol>
      </nav>
      <Heading>{mount}/</Heading>
      <p class="status" role="status" data-testid="pki-status">
        {status}
      </p>
      <Alert text={actionError} testId="pki-action-error" />

      <section class="card" aria-labelledby="pki-issuers-title">
        <h2 id="pki-issuers-title">Issuers</h2>
        <Alert text={errors.issuers} testId="pki-issuers-error" />
        {issuers && issuers.length === 0 && (
          <p class="empty" data-testid="pki-no-issuers">
            No issuer yet. Generate a root with <code>leasehold write {mount}/root/generate/internal common_name=...</code> or import one.
          </p>
        )}
        {issuers && issuers.length > 0 && (
          <table class="leases" data-testid="pki-issuers">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Common name</th>
                <th scope="col">Expires</th>
                <th scope="col">Default</th>
              </tr>
            </thead>
            <tbody>
              {issuers.map((i) => (
                <tr key={i.id} data-issuer={i.id}>
                  <td>
                    {i.name || <span class="muted">(no name)</span>}
                    <br />
                    <code class="small muted">{i.id}</code>
                  </td>
                  <td>{i.cert?.commonName ?? "?"}</td>
                  <td>{i.cert ? <When at={i.cert.notAfter} /> : "?"}</td>
                  <td data-testid="pki-issuer-default">{i.isDefault ? "default" : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section class="card" aria-labelledby="pki-crl-title">
        <h2 id="pki-crl-title">Revocation</h2>
        <Alert text={errors.crl} testId="pki-crl-error" />
        {crl && (
          <p data-testid="pki-crl">
            CRL of the default issuer (<code>{mount}/crl</code>): {crl.revoked.size} revoked serial{crl.revoked.size === 1 ? "" : "s"}, issued <When at={crl.thisUpdate} />
            {crl.nextUpdate && (
              <>
                , next update <When at={crl.nextUpdate} />
              </>
            )}
            .
          </p>
        )}
        <p class="hint">
          OCSP: the column "OCSP" is the answer of the responder at <code>/v1/{mount}/ocsp</code> (no token needed) for each certificate listed (the first {OCSP_LIMIT}); its signature is not checked by the console. From a
          shell: <code>openssl ocsp -issuer ca.pem -cert cert.pem -url $VAULT_ADDR/v1/{mount}/ocsp</code>.
        </p>
      </section>

      <section class="card" aria-labelledby="pki-certs-title">
        <h2 id="pki-certs-title">Certificates</h2>
        {!mayRevoke && (
          <p class="forbidden" data-testid="pki-read-only">
            Your token may not revoke certificates here (<code>update</code> on <code>{mount}/revoke</code>).
          </p>
        )}
        <Alert text={errors.certs} testId="pki-certs-error" />
        {!certs && !errors.certs && <p class="muted">Loading…</p>}
        {certs && certs.length === 0 && (
          <p class="empty" data-testid="pki-no-certs">
            No stored certificate. Issue one with <code>leasehold write {mount}/issue/&lt;role&gt; common_name=...</code> (roles with <code>no_store</code> keep none).
          </p>
        )}
        {certs && certs.length > 0 && (
          <table class="leases" data-testid="pki-certs">
            <thead>
              <tr>
                <th scope="col">Serial</th>
                <th scope="col">Subject</th>
                <th scope="col">Names</th>
                <th scope="col">Not after</th>
                <th scope="col">State</th>
                <th scope="col">In CRL</th>
                <th scope="col">OCSP</th>
                <th scope="col">
                  <span class="visually-hidden">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {certs.map((c) => {
                const revoked = c.revocationTime > 0;
                const notAfter = c.cert?.notAfter ?? (c.expiration ? new Date(c.expiration * 1000) : undefined);
                const expired = notAfter !== undefined && notAfter.getTime() < now;
                const isCa = c.cert?.isCa || issuerSerials.has(c.serial);
                return (
                  <tr key={c.serial} data-serial={c.serial}>
                    <td>
                      <code class="break small">{c.serial}</code>
                    </td>
                    <td>{c.cert?.subject || <span class="muted">(empty subject)</span>}</td>
                    <td class="break">{c.cert?.sans.join(", ")}</td>
                    <td>{notAfter ? <When at={notAfter} /> : "?"}</td>
                    <td data-testid="pki-cert-state" class={revoked ? "error-text" : undefined}>
                      {revoked ? (
                        <>
                          revoked <When at={c.revocationTime} />
                        </>
                      ) : expired ? (
                        "expired"
                      ) : (
                        "valid"
                      )}
                      {isCa && <span class="muted small"> · CA</span>}
                    </td>
                    <td data-testid="pki-cert-crl">{crl ? (inCrl(crl, c.serial) ? "yes" : "no") : "?"}</td>
                    <td data-testid="pki-cert-ocsp">
                      <OcspText status={ocsp[c.serial]} />
                    </td>
                    <td>
                      {mayRevoke && !revoked && !isCa && confirming !== c.serial && (
                        <button type="button" class="secondary small-button" aria-label={`Revoke ${c.serial}`} onClick={() => (setConfirming(c.serial), setStatus(undefined))}>
                          Revoke
                        </button>
                      )}
                      {confirming === c.serial && (
                        <span class="confirm" role="group" aria-label="Confirm the revocation">
                          <span>Revoke for good? It goes into the CRL and cannot be undone.</span>{" "}
                          <button type="button" class="danger small-button" ref={confirmButton} onClick={() => void revoke(c.serial)}>
                            Yes, revoke
                          </button>{" "}
                          <button type="button" class="secondary small-button" onClick={() => setConfirming(undefined)}>
                            Cancel
                          </button>
                        </span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
