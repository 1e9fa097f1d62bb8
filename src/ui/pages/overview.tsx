import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { allows, ApiError, call, capabilitiesOf, messageOf, type Capabilities, type VaultResponse } from "../api";
import { KeyValues } from "../components/key-values";
import { Link, Topbar } from "../components/shell";
import { count, localTime, relativeTime } from "../format";
import { navigate } from "../router";

/** A section's data: loading, there, or why it is not shown. */
type Loaded<T> = { state: "loading" } | { state: "ok"; value: T } | { state: "forbidden"; why: string } | { state: "error"; message: string };

interface SealStatus {
  sealed: boolean;
  initialized: boolean;
  version: string;
  cluster_name?: string;
  storage_type?: string;
  type?: string;
  progress?: number;
  t?: number;
}

interface Leader {
  ha_enabled: boolean;
  is_self: boolean;
  active_time?: string;
  leader_address?: string;
  leader_cluster_address?: string;
}

interface LeaseCounts {
  lease_count: number;
  by_state: Record<string, number>;
  by_mount: Record<string, number>;
}

interface AuditDevice {
  type: string;
  description?: string;
  path?: string;
  options?: Record<string, string> | null;
  local?: boolean;
}

interface Self {
  display_name: string;
  policies: string[];
  expire_time?: string | null;
}

/** Paths whose access decides what the overview shows. */
const LEASE_COUNT_PATH = "sys/leases/count";
const AUDIT_PATH = "sys/audit";

function failure<T>(err: unknown, forbiddenWhy: string): Loaded<T> {
  if (err instanceof ApiError && err.forbidden) return { state: "forbidden", why: forbiddenWhy };
  return { state: "error", message: err instanceof Error ? err.message : String(err) };
}

/** The overview: seal and HA status, version, lease counts, audit devices. */
export function OverviewPage(props: { token: string; onLogOut(why?: string): void }) {
  const { token, onLogOut } = props;
  const [seal, setSeal] = useState<Loaded<SealStatus>>({ state: "loading" });
  const [leader, setLeader] = useState<Loaded<Leader>>({ state: "loading" });
  const [leases, setLeases] = useState<Loaded<LeaseCounts>>({ state: "loading" });
  const [audit, setAudit] = useState<Loaded<Record<string, AuditDevice>>>({ state: "loading" });
  const [refreshedAt, setRefreshedAt] = useState<Date | undefined>();
  // Bumped by Refresh: the lease sections below load themselves and reload when it changes.
  const [generation, setGeneration] = useState(0);
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    // The token first: an expired or revoked one sends the operator back to the login page.
    try {
      await call<VaultResponse<Self>>("GET", "auth/token/lookup-self", { token });
    } catch (err) {
      if (err instanceof ApiError && err.forbidden) return onLogOut("Your session ended: the token expired or was revoked. Log in again.");
    }
    let caps: Capabilities = {};
    try {
      caps = await capabilitiesOf(token, [LEASE_COUNT_PATH, AUDIT_PATH]);
    } catch {
      // Without the answer each section asks anyway and explains a 403.
      caps = { [LEASE_COUNT_PATH]: ["read"], [AUDIT_PATH]: ["read", "sudo"] };
    }
    await Promise.all([
      call<SealStatus>("GET", "sys/seal-status").then(
        (v) => setSeal({ state: "ok", value: v }),
        (err) => setSeal(failure(err, "")),
      ),
      call<Leader>("GET", "sys/leader").then(
        (v) => setLeader({ state: "ok", value: v }),
        (err) => setLeader(failure(err, "")),
      ),
      allows(caps[LEASE_COUNT_PATH], "read")
        ? call<VaultResponse<LeaseCounts>>("GET", LEASE_COUNT_PATH, { token }).then(
            (v) => setLeases({ state: "ok", value: v.data }),
            (err) => setLeases(failure(err, leasesWhy)),
          )
        : Promise.resolve(setLeases({ state: "forbidden", why: leasesWhy })),
      allows(caps[AUDIT_PATH], "read", "sudo")
        ? call<VaultResponse<Record<string, AuditDevice>>>("GET", AUDIT_PATH, { token }).then(
            (v) => setAudit({ state: "ok", value: v.data ?? {} }),
            (err) => setAudit(failure(err, auditWhy)),
          )
        : Promise.resolve(setAudit({ state: "forbidden", why: auditWhy })),
    ]);
    setRefreshedAt(new Date());
  }, [token, onLogOut]);

  useEffect(() => {
    heading.current?.focus();
    void load();
  }, [load]);

  return (
    <>
      <Topbar token={token} current="overview" onLogOut={onLogOut} />
      <main class="page">
        <div class="title-row">
          <h1 tabIndex={-1} ref={heading}>
            Overview
          </h1>
          <button type="button" class="secondary" onClick={() => (setGeneration((g) => g + 1), void load())}>
            Refresh
          </button>
        </div>
        <p class="hint" aria-live="polite">
          {refreshedAt ? `Updated ${localTime(refreshedAt)} (local time).` : "Loading…"}
        </p>
        <div class="grid">
          <Section id="status" title="Server">
            <Show loaded={seal}>{(s) => <StatusCard status={s} />}</Show>
          </Section>
          <Section id="ha" title="High availability">
            <Show loaded={leader}>{(l) => <LeaderCard leader={l} />}</Show>
          </Section>
          <Section id="leases" title="Leases" wide>
            <Show loaded={leases}>{(c) => <LeaseCountsCard counts={c} />}</Show>
          </Section>
          <IrrevocableSection key={`irrevocable-${generation}`} token={token} />
          <ExpiringSection key={`expiring-${generation}`} token={token} />
          <Section id="tokens" title="A token and what it created">
            <TokenLookupForm />
          </Section>
          <Section id="audit" title="Audit devices" wide>
            <Show loaded={audit}>{(a) => <AuditCard devices={a} />}</Show>
          </Section>
        </div>
      </main>
    </>
  );
}

const leasesWhy = "Your token may not read lease counts (sys/leases/count needs the read capability). Ask an operator for a policy that grants it.";
const auditWhy = "Your token may not list audit devices (sys/audit needs read and sudo). Ask an operator for a policy that grants them, or use a token that has them.";

function Section(props: { id: string; title: string; wide?: boolean; children: ComponentChildren }) {
  return (
    <section class={`card${props.wide ? " wide" : ""}`} aria-labelledby={`${props.id}-title`} id={props.id} data-section={props.id}>
      <h2 id={`${props.id}-title`}>{props.title}</h2>
      {props.children}
    </section>
  );
}

/** A section's content, or its loading, refusal or error message. */
function Show<T>(props: { loaded: Loaded<T>; children: (value: T) => ComponentChildren }) {
  const l = props.loaded;
  if (l.state === "loading") return <p class="muted">Loading…</p>;
  if (l.state === "forbidden")
    return (
      <p class="forbidden" data-state="forbidden">
        {l.why}
      </p>
    );
  if (l.state === "error")
    return (
      <p class="error" role="alert">
        Could not load this: {l.message}
      </p>
    );
  return <>{props.children(l.value)}</>;
}

function StatusCard(props: { status: SealStatus }) {
  const s = props.status;
  const state = !s.initialized ? "not initialized" : s.sealed ? "sealed" : "unsealed";
  return (
    <dl class="facts">
      <dt>Seal</dt>
      <dd>
        <span class={`badge ${s.sealed || !s.initialized ? "bad" : "good"}`} data-testid="seal-state">
          {state}
        </span>
        {s.sealed && s.initialized && <span class="muted"> unseal progress {s.progress ?? 0} of {s.t ?? "?"}</span>}
      </dd>
      <dt>Version</dt>
      <dd>{s.version}</dd>
      {s.cluster_name && (
        <>
          <dt>Cluster</dt>
          <dd>{s.cluster_name}</dd>
        </>
      )}
      {s.storage_type && (
        <>
          <dt>Storage</dt>
          <dd>{s.storage_type}</dd>
        </>
      )}
      {s.type && (
        <>
          <dt>Seal type</dt>
          <dd>{s.type}</dd>
        </>
      )}
    </dl>
  );
}

function LeaderCard(props: { leader: Leader }) {
  const l = props.leader;
  if (!l.ha_enabled) return <p data-testid="ha-mode">Not enabled: this server runs as a single node.</p>;
  const since = l.is_self ? localTime(l.active_time) : undefined;
  return (
    <dl class="facts">
      <dt>This node</dt>
      <dd data-testid="ha-mode">
        <span class={`badge ${l.is_self ? "good" : "neutral"}`}>{l.is_self ? "active" : "standby"}</span>
      </dd>
      <dt>Active node</dt>
      <dd>{l.leader_address || <span class="muted">none at the moment (no node holds the lock)</span>}</dd>
      {l.leader_cluster_address && (
        <>
          <dt>Cluster address</dt>
          <dd>{l.leader_cluster_address}</dd>
        </>
      )}
      {since && (
        <>
          <dt>Active since</dt>
          <dd>
            {since} <span class="muted">({relativeTime(l.active_time!)})</span>
          </dd>
        </>
      )}
    </dl>
  );
}

const STATE_ORDER = ["active", "pending", "revoking", "irrevocable"];
const STATE_HELP: Record<string, string> = {
  active: "handed out, revoked at expiry",
  pending: "being issued",
  revoking: "revocation under way or retrying",
  irrevocable: "revocation failed repeatedly: retry or force-revoke",
};

function LeaseCountsCard(props: { counts: LeaseCounts }) {
  const c = props.counts;
  if (c.lease_count === 0) return <p data-testid="lease-total">No leases: nothing handed out is waiting for revocation.</p>;
  const states = Object.keys(c.by_state).sort((a, b) => (STATE_ORDER.indexOf(a) + 1 || 99) - (STATE_ORDER.indexOf(b) + 1 || 99));
  const mounts = Object.entries(c.by_mount).sort((a, b) => b[1] - a[1]);
  return (
    <>
      <p data-testid="lease-total">
        <strong>{count(c.lease_count)}</strong> {c.lease_count === 1 ? "lease" : "leases"} in all.
      </p>
      <div class="tables">
        <table>
          <caption>By state</caption>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Leases
              </th>
            </tr>
          </thead>
          <tbody>
            {states.map((s) => (
              <tr key={s} class={s === "irrevocable" && c.by_state[s] > 0 ? "alert-row" : undefined}>
                <th scope="row">
                  {s}
                  {STATE_HELP[s] && <span class="muted small"> {STATE_HELP[s]}</span>}
                </th>
                <td class="num">{count(c.by_state[s])}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table data-testid="leases-by-mount">
          <caption>By mount</caption>
          <thead>
            <tr>
              <th scope="col">Mount</th>
              <th scope="col" class="num">
                Leases
              </th>
            </tr>
          </thead>
          <tbody>
            {mounts.map(([mount, n]) => (
              <tr key={mount}>
                <th scope="row">
                  <Link to={`leases?prefix=${encodeURIComponent(mount)}`}>
                    <code>{mount}</code>
                  </Link>
                </th>
                <td class="num">{count(n)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function AuditCard(props: { devices: Record<string, AuditDevice> }) {
  const entries = Object.entries(props.devices).filter(([, d]) => d && typeof d === "object" && "type" in d);
  if (entries.length === 0)
    return (
      <p class="warn" data-testid="audit-empty">
        No audit device is enabled: requests are not being recorded. Enable one, e.g. <code>leasehold audit enable file file_path=/var/log/leasehold/audit.log</code>.
      </p>
    );
  return (
    <table data-testid="audit-devices">
      <thead>
        <tr>
          <th scope="col">Path</th>
          <th scope="col">Type</th>
          <th scope="col">Description</th>
          <th scope="col">Options</th>
        </tr>
      </thead>
      <tbody>
        {entries.map(([path, d]) => (
          <tr key={path}>
            <th scope="row">
              <code>{path}</code>
            </th>
            <td>{d.type}</td>
            <td>{d.description || <span class="muted">none</span>}</td>
            <td>
              <KeyValues entries={Object.entries(d.options ?? {})} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** An irrevocable lease as `sys/leases?type=irrevocable` lists it. */
interface IrrevocableLease {
  lease_id: string;
  mount: string;
  expire_time: string;
  error: string;
  revoke_attempts?: number;
}

/** One row of `sys/leasehold/leases`. */
interface ListedLease {
  lease_id: string;
  kind: string;
  mount: string;
  role: string;
  state: string;
  expire_time: string;
  display_name: string;
  token_accessor: string;
}

const IRREVOCABLE_PATH = "sys/leases";
const REVOKE_PATH = "sys/leases/revoke";
const LISTING_PATH = "sys/leasehold/leases";
/** The listing has no expiry filter: the overview reads at most this many active leases and keeps those expiring within the hour. */
export const EXPIRING_SCAN_LIMIT = 5000;
const EXPIRING_PAGE = 1000;
const EXPIRING_SHOWN = 50;
const HOUR_MS = 3600_000;

const irrevocableWhy = "Your token may not list irrevocable leases (sys/leases needs read and sudo). Ask an operator for a policy that grants them.";
const expiringWhy = "Your token may not list leases (sys/leasehold/leases needs read and sudo). Ask an operator for a policy that grants them.";

/** The current time, ticking every second while a countdown is shown. */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** "in 12m 05s" from seconds. */
function countdown(seconds: number): string {
  if (seconds <= 0) return "now";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const two = (n: number) => String(n).padStart(2, "0");
  return h ? `in ${h}h ${two(m)}m` : m ? `in ${m}m ${two(s)}s` : `in ${s}s`;
}

/**
 * Irrevocable leases with their last error: Retry (`sys/leases/revoke`, which tries the engine
 * again) and Force revoke (`sys/leases/revoke-force/<id>`, which removes the record even though the
 * credential may still exist), each shown only when the token may use it.
 */
export function IrrevocableSection(props: { token: string }) {
  const { token } = props;
  const [loaded, setLoaded] = useState<Loaded<IrrevocableLease[]>>({ state: "loading" });
  const [caps, setCaps] = useState<Capabilities>({});
  const [confirming, setConfirming] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | undefined>();
  const [outcome, setOutcome] = useState<{ kind: "ok" | "error"; text: string } | undefined>();

  const load = useCallback(async () => {
    let mine: Capabilities = {};
    try {
      mine = await capabilitiesOf(token, [IRREVOCABLE_PATH, REVOKE_PATH]);
    } catch {
      mine = { [IRREVOCABLE_PATH]: ["read", "sudo"], [REVOKE_PATH]: [] };
    }
    if (!allows(mine[IRREVOCABLE_PATH], "read", "sudo")) return setLoaded({ state: "forbidden", why: irrevocableWhy });
    try {
      const answer = await call<VaultResponse<{ leases: IrrevocableLease[] }>>("GET", `${IRREVOCABLE_PATH}?type=irrevocable&limit=100`, { token });
      const leases = answer.data?.leases ?? [];
      // Force revocation is decided per lease: a policy may allow it under one mount only.
      if (leases.length) {
        try {
          Object.assign(mine, await capabilitiesOf(token, leases.map((l) => `sys/leases/revoke-force/${l.lease_id}`)));
        } catch {
          // Without the answer no force action is offered.
        }
      }
      setCaps(mine);
      setLoaded({ state: "ok", value: leases });
    } catch (err) {
      setLoaded(failure(err, irrevocableWhy));
    }
  }, [token]);

  useEffect(() => {
    void load();
  }, [load]);

  const act = async (id: string, force: boolean) => {
    setBusy(id);
    setOutcome(undefined);
    try {
      if (force) await call("PUT", `sys/leases/revoke-force/${id.split("/").map(encodeURIComponent).join("/")}`, { token });
      else await call("PUT", REVOKE_PATH, { token, body: { lease_id: id } });
      setConfirming(undefined);
      setOutcome({ kind: "ok", text: force ? `Force-revoked ${id}: its record is gone. Check that the credential no longer exists in the system that issued it.` : `Revoked ${id}: the engine revoked the credential this time.` });
    } catch (err) {
      setOutcome({ kind: "error", text: force ? `Not removed: ${messageOf(err)}` : `Retry failed, the lease stays irrevocable: ${messageOf(err)}` });
    } finally {
      setBusy(undefined);
      await load();
    }
  };

  return (
    <Section id="irrevocable" title="Irrevocable leases" wide>
      {outcome && (
        <p class={outcome.kind} role={outcome.kind === "error" ? "alert" : "status"} data-testid="irrevocable-outcome">
          {outcome.text}
        </p>
      )}
      <Show loaded={loaded}>
        {(leases) =>
          leases.length === 0 ? (
            <p data-testid="irrevocable-empty">None: every revocation so far succeeded or is still being retried.</p>
          ) : (
            <table data-testid="irrevocable-table">
              <thead>
                <tr>
                  <th scope="col">Lease</th>
                  <th scope="col">Last error</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {leases.map((l) => {
                  const mayRetry = allows(caps[REVOKE_PATH], "update");
                  const mayForce = allows(caps[`sys/leases/revoke-force/${l.lease_id}`], "update", "sudo");
                  return (
                    <tr key={l.lease_id} data-lease={l.lease_id}>
                      <th scope="row">
                        <Link to={`leases/${l.lease_id}`}>
                          <code class="break">{l.lease_id}</code>
                        </Link>
                        {l.revoke_attempts ? <div class="muted small">{l.revoke_attempts} attempts</div> : null}
                      </th>
                      <td class="error-text" data-testid="irrevocable-error">
                        {l.error || "no error recorded"}
                      </td>
                      <td>
                        {!mayRetry && !mayForce && <span class="muted small">Your token may not revoke it (sys/leases/revoke needs update).</span>}
                        {mayRetry && (
                          <button type="button" class="secondary small-button" disabled={busy !== undefined} onClick={() => void act(l.lease_id, false)}>
                            Retry
                          </button>
                        )}{" "}
                        {mayForce && confirming !== l.lease_id && (
                          <button type="button" class="danger small-button" disabled={busy !== undefined} onClick={() => setConfirming(l.lease_id)}>
                            Force revoke
                          </button>
                        )}
                        {mayForce && confirming === l.lease_id && (
                          <div role="group" aria-label={`Confirm force revocation of ${l.lease_id}`} class="confirm">
                            <p>Force revocation deletes leasehold's record of this lease without revoking the credential: if the engine never succeeded, the credential may still exist and must be removed by hand in the system that issued it.</p>
                            <button type="button" class="danger small-button" disabled={busy !== undefined} onClick={() => void act(l.lease_id, true)}>
                              Remove the record
                            </button>{" "}
                            <button type="button" class="secondary small-button" onClick={() => setConfirming(undefined)}>
                              Cancel
                            </button>
                          </div>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Show>
    </Section>
  );
}

/**
 * Active leases expiring within the next hour, soonest first, with a live countdown. The listing
 * has no expiry filter, so this pages through active leases (up to EXPIRING_SCAN_LIMIT) and filters here.
 */
export function ExpiringSection(props: { token: string }) {
  const { token } = props;
  const [loaded, setLoaded] = useState<Loaded<{ leases: ListedLease[]; scanned: number; truncated: boolean }>>({ state: "loading" });
  const now = useNow();

  const load = useCallback(async () => {
    try {
      const caps = await capabilitiesOf(token, [LISTING_PATH]).catch(() => ({ [LISTING_PATH]: ["read", "sudo"] }) as Capabilities);
      if (!allows(caps[LISTING_PATH], "read", "sudo")) return setLoaded({ state: "forbidden", why: expiringWhy });
      const until = Date.now() + HOUR_MS;
      const soon: ListedLease[] = [];
      let after = "";
      let scanned = 0;
      let truncated = false;
      for (;;) {
        const q = new URLSearchParams({ state: "active", limit: String(EXPIRING_PAGE) });
        if (after) q.set("after", after);
        const page = await call<VaultResponse<{ leases: ListedLease[]; next_after: string | null }>>("GET", `${LISTING_PATH}?${q}`, { token });
        scanned += page.data.leases.length;
        for (const l of page.data.leases) if (new Date(l.expire_time).getTime() <= until) soon.push(l);
        if (!page.data.next_after) break;
        if (scanned >= EXPIRING_SCAN_LIMIT) {
          truncated = true;
          break;
        }
        after = page.data.next_after;
      }
      soon.sort((a, b) => new Date(a.expire_time).getTime() - new Date(b.expire_time).getTime());
      setLoaded({ state: "ok", value: { leases: soon, scanned, truncated } });
    } catch (err) {
      setLoaded(failure(err, expiringWhy));
    }
  }, [token]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <Section id="expiring" title="Expiring in the next hour" wide>
      <Show loaded={loaded}>
        {({ leases, scanned, truncated }) => (
          <>
            {truncated && (
              <p class="warn" data-testid="expiring-truncated">
                Only the first {count(scanned)} active leases (by id) were read: there may be more expiring soon. Use the incident page or <code>leasehold lease list</code> to see them all.
              </p>
            )}
            {leases.length === 0 ? (
              <p data-testid="expiring-empty">No lease expires within the next hour.</p>
            ) : (
              <table data-testid="expiring-table">
                <caption>
                  {count(leases.length)} {leases.length === 1 ? "lease expires" : "leases expire"} within the hour
                  {leases.length > EXPIRING_SHOWN ? ` (the ${EXPIRING_SHOWN} soonest shown)` : ""}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Lease</th>
                    <th scope="col">Expires</th>
                    <th scope="col">Created by</th>
                  </tr>
                </thead>
                <tbody>
                  {leases.slice(0, EXPIRING_SHOWN).map((l) => (
                    <tr key={l.lease_id} data-lease={l.lease_id}>
                      <th scope="row">
                        <Link to={`leases/${l.lease_id}`}>
                          <code class="break">{l.lease_id}</code>
                        </Link>
                      </th>
                      <td>
                        <span data-testid="expiring-countdown">{countdown(Math.round((new Date(l.expire_time).getTime() - now) / 1000))}</span>
                        <div class="muted small">{localTime(l.expire_time)}</div>
                      </td>
                      <td>
                        {l.token_accessor ? (
                          <Link to={`tokens/${encodeURIComponent(l.token_accessor)}`} testId="creator-link">
                            {l.display_name || "token"}
                          </Link>
                        ) : (
                          <span class="muted">{l.display_name || "unknown"}</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Show>
    </Section>
  );
}

/** Opens a token's page from its accessor. */
function TokenLookupForm() {
  const [accessor, setAccessor] = useState("");
  return (
    <form
      class="inline-row"
      onSubmit={(e) => {
        e.preventDefault();
        if (accessor.trim()) navigate(`tokens/${encodeURIComponent(accessor.trim())}`);
      }}
    >
      <label for="token-accessor">Token accessor</label>
      <input id="token-accessor" placeholder="token accessor" value={accessor} onInput={(e) => setAccessor((e.target as HTMLInputElement).value)} />
      <button type="submit" class="secondary">
        Open token
      </button>
    </form>
  );
}
