import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, call, listKeys, messageOf, type VaultResponse } from "../api";
import { Link, Shell } from "../components/shell";
import { count, localTime } from "../format";
import { navigate } from "../router";

/** One lease (`sys/leases/lookup`), with renew and revoke; and a browser of lease ids by prefix. */

interface LeaseLookup {
  id: string;
  issue_time: string;
  expire_time: string | null;
  last_renewal: string | null;
  renewable: boolean;
  ttl: number;
  /** leasehold's extras: pending, active, revoking, irrevocable; with the last revocation error. */
  state?: string;
  revoke_attempts?: number;
  revoke_error?: string;
}

/** "1h 02m 05s" for a number of seconds (0 and below: "expired"). */
export function duration(seconds: number): string {
  if (seconds <= 0) return "expired";
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const two = (n: number) => String(n).padStart(2, "0");
  if (d) return `${d}d ${h}h ${two(m)}m`;
  if (h) return `${h}h ${two(m)}m ${two(s)}s`;
  if (m) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

/** The current time, ticking every second while the page shows it. */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

type Outcome = { kind: "ok" | "warn" | "error"; text: string };

/** `/ui/leases/<lease id>`: details, live TTL, renew, revoke. */
export function LeasePage(props: { token: string; id: string; onLogOut(why?: string): void }) {
  const { token, id } = props;
  const [lease, setLease] = useState<LeaseLookup | undefined>();
  const [loadError, setLoadError] = useState<string | undefined>();
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const [increment, setIncrement] = useState("");
  const [confirmRevoke, setConfirmRevoke] = useState(false);
  const [busy, setBusy] = useState(false);
  const now = useNow();

  const load = useCallback(async () => {
    try {
      const answer = await call<VaultResponse<LeaseLookup>>("PUT", "sys/leases/lookup", { token, body: { lease_id: id } });
      setLease(answer.data);
      setLoadError(undefined);
    } catch (err) {
      setLease(undefined);
      if (err instanceof ApiError && err.status === 400) setLoadError(`There is no lease ${id} (the server said: ${err.message}): it was revoked, it expired, or the id is mistyped.`);
      else if (err instanceof ApiError && err.forbidden) setLoadError(`Your token may not look up leases (sys/leases/lookup needs the update capability): ${err.message}.`);
      else setLoadError(messageOf(err));
    }
  }, [token, id]);

  useEffect(() => {
    setOutcome(undefined);
    setConfirmRevoke(false);
    void load();
  }, [load]);

  const renew = async () => {
    setBusy(true);
    setOutcome(undefined);
    try {
      const body: Record<string, unknown> = { lease_id: id };
      if (increment.trim()) body.increment = /^\d+$/.test(increment.trim()) ? Number(increment.trim()) : increment.trim();
      const answer = await call<{ lease_duration: number; warnings?: string[] | null }>("PUT", "sys/leases/renew", { token, body });
      const warnings = answer.warnings?.length ? ` ${answer.warnings.join(" ")}` : "";
      setOutcome({ kind: warnings ? "warn" : "ok", text: `Renewed: the lease now lasts ${duration(answer.lease_duration)} from now.${warnings}` });
      await load();
    } catch (err) {
      setOutcome({ kind: "error", text: `Not renewed: ${messageOf(err)}` });
    } finally {
      setBusy(false);
    }
  };

  const revoke = async () => {
    setBusy(true);
    setOutcome(undefined);
    try {
      await call("PUT", "sys/leases/revoke", { token, body: { lease_id: id } });
      setConfirmRevoke(false);
      setOutcome({ kind: "ok", text: "Revoked: the credential it named no longer works." });
      await load();
    } catch (err) {
      setOutcome({ kind: "error", text: `Not revoked: ${messageOf(err)}` });
    } finally {
      setBusy(false);
    }
  };

  const expires = lease?.expire_time ? new Date(lease.expire_time).getTime() : undefined;
  const ttl = expires === undefined ? undefined : Math.max(0, Math.round((expires - now) / 1000));
  const parent = id.includes("/") ? id.slice(0, id.lastIndexOf("/") + 1) : "";

  return (
    <Shell token={token} current="leases" title="Lease" onLogOut={props.onLogOut}>
      <p>
        <code data-testid="lease-id" class="break">
          {id}
        </code>
      </p>
      {parent && (
        <p class="small">
          <Link to={`leases?prefix=${encodeURIComponent(parent)}`}>Other leases under {parent}</Link>
        </p>
      )}
      {loadError && (
        <p class="error" role="alert" data-testid="lease-error">
          {loadError}
        </p>
      )}
      {lease && (
        <section class="card" aria-labelledby="lease-title" data-testid="lease">
          <h2 id="lease-title">Details</h2>
          <dl class="facts">
            <dt>Time to live</dt>
            <dd data-testid="lease-ttl">{ttl === undefined ? "never expires" : duration(ttl)}</dd>
            <dt>Expires</dt>
            <dd data-testid="lease-expires">{localTime(lease.expire_time ?? undefined) ?? "never"} (local time)</dd>
            <dt>Issued</dt>
            <dd>{localTime(lease.issue_time) ?? "—"}</dd>
            <dt>Last renewed</dt>
            <dd data-testid="lease-renewed">{localTime(lease.last_renewal ?? undefined) ?? "never"}</dd>
            <dt>Renewable</dt>
            <dd data-testid="lease-renewable">{lease.renewable ? "yes" : "no"}</dd>
            {lease.state && (
              <>
                <dt>State</dt>
                <dd data-testid="lease-state">
                  <span class={`state state-${lease.state}`}>{lease.state}</span>
                  {lease.revoke_attempts ? ` after ${lease.revoke_attempts} revocation attempt${lease.revoke_attempts === 1 ? "" : "s"}` : ""}
                  {lease.revoke_error && <span class="small error-text"> {lease.revoke_error}</span>}
                </dd>
              </>
            )}
          </dl>
          <div class="actions">
            <form
              class="inline"
              onSubmit={(e) => {
                e.preventDefault();
                void renew();
              }}
            >
              <label for="increment">Increment</label>
              <input id="increment" placeholder="e.g. 1h (empty: the lease's TTL)" value={increment} onInput={(e) => setIncrement(e.currentTarget.value)} />
              <button type="submit" disabled={busy || !lease.renewable} title={lease.renewable ? undefined : "This lease is not renewable."}>
                Renew
              </button>
            </form>
            {confirmRevoke ? (
              <span class="confirm-inline">
                <span>Revoke this lease now?</span>
                <button type="button" class="danger" disabled={busy} onClick={() => void revoke()}>
                  Yes, revoke
                </button>
                <button type="button" class="secondary" onClick={() => setConfirmRevoke(false)}>
                  Cancel
                </button>
              </span>
            ) : (
              <button type="button" class="danger" disabled={busy} onClick={() => setConfirmRevoke(true)}>
                Revoke…
              </button>
            )}
          </div>
        </section>
      )}
      {outcome && (
        <p class={outcome.kind === "error" ? "error" : outcome.kind === "warn" ? "warn" : "ok"} role={outcome.kind === "error" ? "alert" : "status"} data-testid="lease-outcome">
          {outcome.text}
        </p>
      )}
    </Shell>
  );
}

const BROWSE_PAGE = 50;

/** `/ui/leases?prefix=...`: the lease ids under a prefix (`LIST sys/leases/lookup/<prefix>`, sudo). */
export function LeaseBrowserPage(props: { token: string; prefix: string; onLogOut(why?: string): void }) {
  const { token } = props;
  const prefix = props.prefix.replace(/^\/+/, "");
  const [keys, setKeys] = useState<string[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [page, setPage] = useState(0);
  const [typed, setTyped] = useState(prefix);

  useEffect(() => {
    setKeys(undefined);
    setError(undefined);
    setPage(0);
    setTyped(prefix);
    listKeys(token, `sys/leases/lookup/${prefix}`).then(setKeys, (err) => {
      setError(err instanceof ApiError && err.forbidden ? `Your token may not list leases (sys/leases/lookup/${prefix} needs list and sudo): ${err.message}.` : messageOf(err));
    });
  }, [token, prefix]);

  const go = (p: string) => navigate(p ? `leases?prefix=${encodeURIComponent(p)}` : "leases");
  const shown = keys?.slice(page * BROWSE_PAGE, (page + 1) * BROWSE_PAGE) ?? [];
  const up = prefix ? prefix.replace(/[^/]+\/$/, "") : undefined;

  return (
    <Shell token={token} current="leases" title="Leases" onLogOut={props.onLogOut}>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const p = typed.trim().replace(/^\/+/, "");
          go(p && !p.endsWith("/") ? `${p}/` : p);
        }}
      >
        <label for="prefix">Prefix</label>
        <input id="prefix" placeholder="database/creds/" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} spellcheck={false} />
        <button type="submit">Browse</button>
      </form>
      <p class="hint">
        {prefix ? (
          <>
            Under <code>{prefix}</code>
            {up !== undefined && (
              <>
                {" "}
                · <a href="#up" onClick={(e) => (e.preventDefault(), go(up))}>up one level</a>
              </>
            )}
          </>
        ) : (
          "Mounts and paths that hold leases. Open a folder, or a lease to renew or revoke it."
        )}
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {keys && keys.length === 0 && <p class="muted">No lease under this prefix.</p>}
      {keys && keys.length > 0 && (
        <>
          <ul class="ids" data-testid="lease-keys">
            {shown.map((k) => (
              <li key={k}>
                {k.endsWith("/") ? (
                  <a href={`/ui/leases?prefix=${encodeURIComponent(prefix + k)}`} onClick={(e) => (e.preventDefault(), go(prefix + k))}>
                    <code>{k}</code>
                  </a>
                ) : (
                  <Link to={`leases/${prefix}${k}`}>
                    <code>{k}</code>
                  </Link>
                )}
              </li>
            ))}
          </ul>
          <div class="pager">
            <span class="hint">
              {count(page * BROWSE_PAGE + 1)}–{count(page * BROWSE_PAGE + shown.length)} of {count(keys.length)}
            </span>
            <button type="button" class="secondary" disabled={page === 0} onClick={() => setPage(page - 1)}>
              Previous
            </button>
            <button type="button" class="secondary" disabled={(page + 1) * BROWSE_PAGE >= keys.length} onClick={() => setPage(page + 1)}>
              Next
            </button>
          </div>
        </>
      )}
    </Shell>
  );
}
