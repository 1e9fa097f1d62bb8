import { useCallback, useEffect, useState } from "preact/hooks";
import { allows, ApiError, call, capabilitiesOf, messageOf, type Capabilities, type VaultResponse } from "../api";
import { KeyValues } from "../components/key-values";
import { Link, Shell } from "../components/shell";
import { count, localTime } from "../format";
import { duration } from "./leases";

/**
 * `/ui/tokens/<accessor>`: a token's details (`auth/token/lookup-accessor`), the leases it created
 * (`sys/leasehold/leases?token_accessor=`), and "revoke everything this token created"
 * (`auth/token/revoke-accessor`: the token, its children and all their leases).
 */

interface TokenDetails {
  accessor: string;
  display_name: string;
  policies: string[];
  creation_time: number;
  expire_time: string | null;
  ttl: number;
  meta: Record<string, string> | null;
  path: string;
  orphan: boolean;
  renewable: boolean;
}

interface CreatedLease {
  lease_id: string;
  kind: string;
  state: string;
  expire_time: string;
}

const LOOKUP_PATH = "auth/token/lookup-accessor";
const REVOKE_PATH = "auth/token/revoke-accessor";
const LISTING_PATH = "sys/leasehold/leases";
/** What the operator types to confirm. */
const CONFIRM_WORD = "revoke";
const PAGE = 100;

type Outcome = { kind: "ok" | "error"; text: string };

/** The current time, ticking every second for the TTL countdown. */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** A token's page, found by its accessor (the token itself is never shown). */
export function TokenPage(props: { token: string; accessor: string; onLogOut(why?: string): void }) {
  const { token, accessor } = props;
  const [details, setDetails] = useState<TokenDetails | undefined>();
  const [detailsError, setDetailsError] = useState<string | undefined>();
  const [leases, setLeases] = useState<{ items: CreatedLease[]; total: number } | undefined>();
  const [leasesError, setLeasesError] = useState<string | undefined>();
  const [caps, setCaps] = useState<Capabilities>({});
  const [confirmation, setConfirmation] = useState("");
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const now = useNow();

  const load = useCallback(async () => {
    const mine = await capabilitiesOf(token, [LOOKUP_PATH, REVOKE_PATH, LISTING_PATH]).catch(() => ({ [LOOKUP_PATH]: ["update"], [LISTING_PATH]: ["read", "sudo"], [REVOKE_PATH]: [] }) as Capabilities);
    setCaps(mine);
    try {
      const answer = await call<VaultResponse<TokenDetails>>("PUT", LOOKUP_PATH, { token, body: { accessor } });
      setDetails(answer.data);
      setDetailsError(undefined);
    } catch (err) {
      setDetails(undefined);
      if (err instanceof ApiError && err.forbidden && allows(mine[LOOKUP_PATH], "update"))
        setDetailsError(`There is no token with accessor ${accessor} (the server said: ${err.message}): it was revoked, it expired, or the accessor is mistyped.`);
      else if (err instanceof ApiError && err.forbidden) setDetailsError(`Your token may not look up tokens by accessor (${LOOKUP_PATH} needs update). Ask an operator for a policy that grants it.`);
      else if (err instanceof ApiError && err.status === 400) setDetailsError(`There is no token with accessor ${accessor} (the server said: ${err.message}): it was revoked, it expired, or the accessor is mistyped.`);
      else setDetailsError(messageOf(err));
    }
    if (!allows(mine[LISTING_PATH], "read", "sudo")) {
      setLeases(undefined);
      setLeasesError(`Your token may not list leases (${LISTING_PATH} needs read and sudo).`);
      return;
    }
    try {
      const q = new URLSearchParams({ token_accessor: accessor, limit: String(PAGE) });
      const answer = await call<VaultResponse<{ leases: CreatedLease[]; total: number }>>("GET", `${LISTING_PATH}?${q}`, { token });
      setLeases({ items: answer.data.leases, total: answer.data.total });
      setLeasesError(undefined);
    } catch (err) {
      setLeases(undefined);
      setLeasesError(`Could not list its leases: ${messageOf(err)}`);
    }
  }, [token, accessor]);

  useEffect(() => {
    setOutcome(undefined);
    setConfirmation("");
    void load();
  }, [load]);

  const revokeAll = async (e: Event) => {
    e.preventDefault();
    if (confirmation.trim() !== CONFIRM_WORD) return;
    setBusy(true);
    setOutcome(undefined);
    const before = leases?.total;
    try {
      await call("PUT", REVOKE_PATH, { token, body: { accessor } });
      setConfirmation("");
      setOutcome({ kind: "ok", text: `Revoked: the token, its child tokens${before !== undefined ? ` and the ${count(before)} lease${before === 1 ? "" : "s"} it created` : " and every lease they created"} are gone.` });
    } catch (err) {
      setOutcome({ kind: "error", text: `Not revoked: ${messageOf(err)}. Leases whose revocation failed stay scheduled for retry; check the overview's irrevocable leases.` });
    } finally {
      setBusy(false);
      await load();
    }
  };

  const expires = details?.expire_time ? new Date(details.expire_time).getTime() : undefined;
  const ttl = expires === undefined ? undefined : Math.max(0, Math.round((expires - now) / 1000));
  const meta = Object.entries(details?.meta ?? {});
  const mayRevoke = allows(caps[REVOKE_PATH], "update");

  return (
    <Shell token={token} current="incident" title="Token" onLogOut={props.onLogOut}>
      <p>
        Accessor <code data-testid="token-accessor" class="break">{accessor}</code>
      </p>
      {outcome && (
        <p class={outcome.kind} role={outcome.kind === "error" ? "alert" : "status"} data-testid="token-outcome">
          {outcome.text}
        </p>
      )}
      {detailsError && (
        <p class="error" role="alert" data-testid="token-error">
          {detailsError}
        </p>
      )}
      {details && (
        <section class="card" aria-labelledby="token-details-title" data-testid="token-details">
          <h2 id="token-details-title">Details</h2>
          <dl class="facts">
            <dt>Display name</dt>
            <dd data-testid="token-display-name">{details.display_name || "—"}</dd>
            <dt>Policies</dt>
            <dd data-testid="token-policies">{details.policies.join(", ") || "none"}</dd>
            <dt>Time to live</dt>
            <dd data-testid="token-ttl">{ttl === undefined ? "never expires" : duration(ttl)}</dd>
            <dt>Created</dt>
            <dd>{localTime(details.creation_time * 1000) ?? "—"} (local time)</dd>
            <dt>Expires</dt>
            <dd>{localTime(details.expire_time ?? undefined) ?? "never"}</dd>
            <dt>Created at</dt>
            <dd>
              <code>{details.path || "—"}</code>
              {details.orphan ? " (orphan)" : ""}
            </dd>
            <dt>Metadata</dt>
            <dd data-testid="token-meta">
              <KeyValues entries={meta} />
            </dd>
          </dl>
        </section>
      )}
      <section class="card" aria-labelledby="token-leases-title" data-testid="token-leases">
        <h2 id="token-leases-title">Leases it created</h2>
        {leasesError && <p class="forbidden">{leasesError}</p>}
        {leases && leases.total === 0 && <p data-testid="token-leases-empty">No lease: this token holds nothing that needs revoking.</p>}
        {leases && leases.total > 0 && (
          <table>
            <caption data-testid="token-leases-count">
              {count(leases.total)} {leases.total === 1 ? "lease" : "leases"}
              {leases.total > leases.items.length ? ` (the first ${leases.items.length} shown; the incident page lists them all)` : ""}
            </caption>
            <thead>
              <tr>
                <th scope="col">Lease</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {leases.items.map((l) => (
                <tr key={l.lease_id}>
                  <th scope="row">
                    <Link to={`leases/${l.lease_id}`}>
                      <code class="break">{l.lease_id}</code>
                    </Link>
                  </th>
                  <td>{l.kind}</td>
                  <td>
                    <span class={`state state-${l.state}`}>{l.state}</span>
                  </td>
                  <td>{localTime(l.expire_time) ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {details && mayRevoke && (
        <section class="card danger-zone" aria-labelledby="token-revoke-title" data-testid="token-revoke">
          <h2 id="token-revoke-title">Revoke everything this token created</h2>
          <p>Revokes the token, every token created from it, and every lease any of them created. Applications using them lose access at once. This cannot be undone.</p>
          <form onSubmit={(e) => void revokeAll(e)}>
            <label for="token-revoke-confirm">
              Type <strong>{CONFIRM_WORD}</strong> to confirm
            </label>
            <div class="inline-row">
              <input id="token-revoke-confirm" autocomplete="off" value={confirmation} onInput={(e) => setConfirmation((e.target as HTMLInputElement).value)} />
              <button type="submit" class="danger" disabled={busy || confirmation.trim() !== CONFIRM_WORD}>
                Revoke everything this token created
              </button>
            </div>
          </form>
        </section>
      )}
      {details && !mayRevoke && <p class="forbidden">Your token may not revoke tokens by accessor ({REVOKE_PATH} needs update).</p>}
    </Shell>
  );
}
