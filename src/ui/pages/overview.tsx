import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { allows, ApiError, call, capabilitiesOf, type Capabilities, type VaultResponse } from "../api";
import { Link, NAV_LINKS } from "../components/shell";
import { count, localTime, relativeTime } from "../format";

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
  const [self, setSelf] = useState<Self | undefined>();
  const [seal, setSeal] = useState<Loaded<SealStatus>>({ state: "loading" });
  const [leader, setLeader] = useState<Loaded<Leader>>({ state: "loading" });
  const [leases, setLeases] = useState<Loaded<LeaseCounts>>({ state: "loading" });
  const [audit, setAudit] = useState<Loaded<Record<string, AuditDevice>>>({ state: "loading" });
  const [refreshedAt, setRefreshedAt] = useState<Date | undefined>();
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    // The token first: an expired or revoked one sends the operator back to the login page.
    try {
      const me = await call<VaultResponse<Self>>("GET", "auth/token/lookup-self", { token });
      setSelf(me.data);
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
      <header class="topbar">
        <a class="brand" href="/ui/">
          leasehold
        </a>
        <nav aria-label="Console">
          <a href="/ui/" aria-current="page">
            Overview
          </a>
          {NAV_LINKS.filter((l) => l.id !== "overview").map((l) => (
            <Link key={l.id} to={l.path}>
              {l.label}
            </Link>
          ))}
        </nav>
        <div class="who">
          {self && (
            <span>
              Signed in as <strong>{self.display_name || "token"}</strong>
              <span class="policies"> ({self.policies.join(", ")})</span>
            </span>
          )}
          <button type="button" class="secondary" onClick={() => onLogOut("You are logged out. The token was forgotten by this tab; it was not revoked.")}>
            Log out
          </button>
        </div>
      </header>
      <main class="page">
        <div class="title-row">
          <h1 tabIndex={-1} ref={heading}>
            Overview
          </h1>
          <button type="button" class="secondary" onClick={() => void load()}>
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
              {d.options && Object.keys(d.options).length ? (
                Object.entries(d.options).map(([k, v]) => (
                  <div key={k}>
                    <code>
                      {k}={v}
                    </code>
                  </div>
                ))
              ) : (
                <span class="muted">none</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
