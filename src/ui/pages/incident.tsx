import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { allows, ApiError, call, capabilitiesOf, messageOf, type VaultResponse } from "../api";
import { Link, Shell } from "../components/shell";
import { count, localTime, relativeTime } from "../format";

/**
 * Incident response: find every lease an identity holds (by mount, role, creator, metadata such as
 * a service account or a SPIFFE ID, time), check the dry run, then revoke them all with progress.
 * Uses leasehold's `sys/leasehold/leases/revoke` (sudo) and `sys/leasehold/leases` (sudo).
 */

const REVOKE_PATH = "sys/leasehold/leases/revoke";
const LIST_PATH = "sys/leasehold/leases";
const PAGE_SIZE = 25;
/** How often the remaining count is read while the revocation runs. */
const POLL_MS = 400;

/** The form's fields, as typed. */
interface SelectorForm {
  mount: string;
  role: string;
  path_prefix: string;
  token_accessor: string;
  auth_mount: string;
  display_name: string;
  metadata: string;
  issued_after: string;
  issued_before: string;
  kind: "" | "secret" | "token";
}

const EMPTY_FORM: SelectorForm = { mount: "", role: "", path_prefix: "", token_accessor: "", auth_mount: "", display_name: "", metadata: "", issued_after: "", issued_before: "", kind: "" };

/** The selector as the API takes it: only the fields given. Throws a message for a malformed metadata line. */
export function selectorOf(form: SelectorForm): Record<string, unknown> {
  const selector: Record<string, unknown> = {};
  for (const key of ["mount", "role", "path_prefix", "token_accessor", "auth_mount", "display_name", "issued_after", "issued_before", "kind"] as const) {
    const v = form[key].trim();
    if (v) selector[key] = v;
  }
  const metadata: Record<string, string> = {};
  for (const line of form.metadata.split(/\n/)) {
    const t = line.trim();
    if (!t) continue;
    const eq = t.indexOf("=");
    if (eq <= 0) throw new Error(`Metadata line "${t}" is not key=value: write one pair a line, e.g. service_account_name=payments.`);
    metadata[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  if (Object.keys(metadata).length) selector.metadata = metadata;
  return selector;
}

/** The listing's query string for a selector (metadata as `metadata.<key>=value`). */
function listQuery(selector: Record<string, unknown>, after: string, limit: number): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(selector)) {
    if (k === "metadata") for (const [mk, mv] of Object.entries(v as Record<string, string>)) q.set(`metadata.${mk}`, mv);
    else q.set(k, String(v));
  }
  if (after) q.set("after", after);
  q.set("limit", String(limit));
  return q.toString();
}

interface RevokeAnswer {
  dry_run: boolean;
  matched: number;
  revoked: number;
  failed: number;
  leases: string[];
  errors_sample?: { lease_id: string; error: string }[];
}

interface ListedLease {
  lease_id: string;
  kind: string;
  mount: string;
  role: string;
  state: string;
  issue_time: string;
  expire_time: string;
  display_name: string;
  token_accessor: string;
  revoke_error: string;
}

interface Listing {
  leases: ListedLease[];
  next_after: string | null;
  total: number;
}

/** What the token may do here. */
interface Rights {
  revoke: boolean;
  list: boolean;
}

type Progress = { state: "running"; total: number; remaining: number } | { state: "done"; answer: RevokeAnswer; warnings: string[] } | { state: "error"; message: string };

/** The incident-response page. */
export function IncidentPage(props: { token: string; onLogOut(why?: string): void }) {
  const { token } = props;
  const [rights, setRights] = useState<Rights | undefined>();
  const [form, setForm] = useState<SelectorForm>(EMPTY_FORM);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  /** The selector of the last search: what "Revoke all" revokes, whatever is typed since. */
  const [found, setFound] = useState<{ selector: Record<string, unknown>; matched: number; sample: string[] } | undefined>();
  const [listing, setListing] = useState<Listing | undefined>();
  const [pages, setPages] = useState<string[]>([""]);
  const [confirmation, setConfirmation] = useState("");
  const [progress, setProgress] = useState<Progress | undefined>();
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    capabilitiesOf(token, [REVOKE_PATH, LIST_PATH]).then(
      (caps) => setRights({ revoke: allows(caps[REVOKE_PATH], "update", "sudo"), list: allows(caps[LIST_PATH], "read", "sudo") }),
      () => setRights({ revoke: false, list: false }),
    );
    return () => {
      alive.current = false;
    };
  }, [token]);

  const loadPage = useCallback(
    async (selector: Record<string, unknown>, after: string) => {
      const answer = await call<VaultResponse<Listing>>("GET", `${LIST_PATH}?${listQuery(selector, after, PAGE_SIZE)}`, { token });
      setListing(answer.data);
      return answer.data;
    },
    [token],
  );

  const find = async () => {
    setError(undefined);
    setProgress(undefined);
    setConfirmation("");
    let selector: Record<string, unknown>;
    try {
      selector = selectorOf(form);
    } catch (err) {
      setError(messageOf(err));
      return;
    }
    if (Object.keys(selector).length === 0) {
      setError("Give at least one selector field: an empty selector would match every lease, which the server refuses.");
      return;
    }
    setBusy(true);
    try {
      let matched: number;
      let sample: string[] = [];
      if (rights?.revoke) {
        const dry = await call<VaultResponse<RevokeAnswer>>("POST", REVOKE_PATH, { token, body: { selector, dry_run: true } });
        matched = dry.data.matched;
        sample = dry.data.leases ?? [];
        setListing(undefined);
        if (rights.list) await loadPage(selector, "");
      } else {
        const first = await loadPage(selector, "");
        matched = first.total;
        sample = first.leases.map((l) => l.lease_id);
      }
      setPages([""]);
      setFound({ selector, matched, sample });
    } catch (err) {
      setFound(undefined);
      setListing(undefined);
      setError(err instanceof ApiError && err.forbidden ? `${err.message}: your token may not search leases (sys/leasehold/leases needs read and sudo).` : messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const revokeAll = async () => {
    if (!found) return;
    const { selector, matched } = found;
    setProgress({ state: "running", total: matched, remaining: matched });
    // The POST answers once every matched lease is revoked or has failed; meanwhile the listing's
    // `total` (same filters) says how many are still there.
    let finished = false;
    const poll = async () => {
      while (!finished && alive.current) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        if (finished || !rights?.list) return;
        try {
          const answer = await call<VaultResponse<Listing>>("GET", `${LIST_PATH}?${listQuery(selector, "", 1)}`, { token });
          if (!finished) setProgress({ state: "running", total: matched, remaining: Math.min(matched, answer.data.total) });
        } catch {
          // A failed poll only delays the bar: the POST's answer is what counts.
        }
      }
    };
    void poll();
    try {
      const answer = await call<VaultResponse<RevokeAnswer>>("POST", REVOKE_PATH, { token, body: { selector } });
      finished = true;
      setProgress({ state: "done", answer: answer.data, warnings: answer.warnings ?? [] });
      setConfirmation("");
      if (rights?.list) await loadPage(selector, "").catch(() => undefined);
    } catch (err) {
      finished = true;
      setProgress({ state: "error", message: messageOf(err) });
    }
  };

  const set = (key: keyof SelectorForm) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [key]: e.currentTarget.value });
  const confirmWord = found ? String(found.matched) : "";
  const running = progress?.state === "running";

  return (
    <Shell token={token} current="incident" title="Incident response" onLogOut={props.onLogOut}>
      <p class="hint">Find every lease an identity holds, check how many a revocation would touch, then revoke them all. All fields are combined with AND.</p>
      {rights && !rights.revoke && (
        <p class="forbidden" data-testid="revoke-forbidden">
          Your token may not revoke by selector: <code>{REVOKE_PATH}</code> needs the update and sudo capabilities. {rights.list ? "You can still search and look at the leases." : <>Searching needs read and sudo on <code>{LIST_PATH}</code>.</>} Ask an operator for a policy that grants them.
        </p>
      )}
      <section class="card" aria-labelledby="selector-title">
        <h2 id="selector-title">Selector</h2>
        <form
          class="selector"
          onSubmit={(e) => {
            e.preventDefault();
            void find();
          }}
        >
          <div class="fields">
            <Field id="sel-mount" label="Mount" hint="database/" value={form.mount} onInput={set("mount")} />
            <Field id="sel-role" label="Role" hint="ro" value={form.role} onInput={set("role")} />
            <Field id="sel-path_prefix" label="Path prefix" hint="database/creds/ro" value={form.path_prefix} onInput={set("path_prefix")} />
            <Field id="sel-token_accessor" label="Token accessor" hint="the creating token's accessor" value={form.token_accessor} onInput={set("token_accessor")} />
            <Field id="sel-auth_mount" label="Auth mount" hint="kubernetes" value={form.auth_mount} onInput={set("auth_mount")} />
            <Field id="sel-display_name" label="Display name" hint="approle" value={form.display_name} onInput={set("display_name")} />
            <Field id="sel-issued_after" label="Issued after" hint="2026-12-07T09:00:00Z or unix seconds" value={form.issued_after} onInput={set("issued_after")} />
            <Field id="sel-issued_before" label="Issued before" hint="2026-12-07T10:00:00Z or unix seconds" value={form.issued_before} onInput={set("issued_before")} />
            <div class="field">
              <label for="sel-kind">Kind</label>
              <select id="sel-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.currentTarget.value as SelectorForm["kind"] })}>
                <option value="">secrets and tokens</option>
                <option value="secret">secrets only</option>
                <option value="token">tokens only</option>
              </select>
            </div>
            <div class="field wide">
              <label for="sel-metadata">Metadata (key=value, one a line)</label>
              <textarea id="sel-metadata" rows={3} spellcheck={false} placeholder={"service_account_name=payments\nservice_account_namespace=prod\nspiffe_id=spiffe://example.org/ns/prod/sa/web"} value={form.metadata} onInput={set("metadata")} />
              <p class="hint small">The creating token's metadata: a login's (service account, role name, SPIFFE ID) or the meta given to auth/token/create. Tokens carry their own metadata too: choose "secrets only" to leave the tokens alone.</p>
            </div>
          </div>
          <p class="error" role="alert" hidden={!error}>
            {error}
          </p>
          <button type="submit" disabled={busy || running || !rights || (!rights.revoke && !rights.list)}>
            {busy ? "Finding…" : "Find"}
          </button>
        </form>
      </section>

      {found && (
        <section class="card" aria-labelledby="matches-title" data-testid="matches">
          <h2 id="matches-title">Matches</h2>
          <p data-testid="match-count">
            <strong>{count(found.matched)}</strong> {found.matched === 1 ? "lease matches" : "leases match"} this selector{rights?.revoke ? " (dry run: nothing was revoked)" : ""}.
            {progress?.state === "done" && " The list below is what is left after the revocation."}
          </p>
          {listing ? (
            <LeaseTable
              listing={listing}
              pageIndex={pages.length - 1}
              onNext={() => {
                if (!listing.next_after) return;
                const after = listing.next_after;
                setPages([...pages, after]);
                void loadPage(found.selector, after);
              }}
              onPrevious={() => {
                const rest = pages.slice(0, -1);
                setPages(rest);
                void loadPage(found.selector, rest[rest.length - 1] ?? "");
              }}
            />
          ) : (
            found.sample.length > 0 && (
              <ul class="ids" data-testid="sample">
                {found.sample.map((id) => (
                  <li key={id}>
                    <Link to={`leases/${id}`}>
                      <code>{id}</code>
                    </Link>
                  </li>
                ))}
              </ul>
            )
          )}
          {rights?.revoke && found.matched > 0 && progress?.state !== "done" && (
            <form
              class="revoke-confirm"
              onSubmit={(e) => {
                e.preventDefault();
                if (confirmation.trim() === confirmWord) void revokeAll();
              }}
            >
              <label for="confirm-count">
                Type <strong>{confirmWord}</strong>, the number of leases, to revoke them all
              </label>
              <input id="confirm-count" inputMode="numeric" autocomplete="off" value={confirmation} onInput={(e) => setConfirmation(e.currentTarget.value)} disabled={running} aria-describedby="confirm-hint" />
              <p id="confirm-hint" class="hint small">
                Every credential and token they name stops working. Leases issued since the search that match the selector are revoked too.
              </p>
              <button type="submit" class="danger" disabled={running || confirmation.trim() !== confirmWord}>
                Revoke all {count(found.matched)}
              </button>
            </form>
          )}
        </section>
      )}

      {progress && <ProgressCard progress={progress} />}
    </Shell>
  );
}

function Field(props: { id: string; label: string; hint: string; value: string; onInput(e: { currentTarget: { value: string } }): void }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input id={props.id} value={props.value} placeholder={props.hint} spellcheck={false} autocomplete="off" onInput={props.onInput} />
    </div>
  );
}

function LeaseTable(props: { listing: Listing; pageIndex: number; onNext(): void; onPrevious(): void }) {
  const { listing } = props;
  const first = props.pageIndex * PAGE_SIZE + 1;
  return (
    <>
      <table class="leases" data-testid="match-table">
        <thead>
          <tr>
            <th scope="col">Lease</th>
            <th scope="col">State</th>
            <th scope="col">Role</th>
            <th scope="col">Display name</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {listing.leases.map((l) => (
            <tr key={l.lease_id}>
              <td>
                <Link to={`leases/${l.lease_id}`}>
                  <code>{l.lease_id}</code>
                </Link>
              </td>
              <td>
                <span class={`state state-${l.state}`}>{l.state}</span>
                {l.revoke_error && <span class="small error-text"> {l.revoke_error}</span>}
              </td>
              <td>{l.role || "—"}</td>
              <td>{l.token_accessor ? <Link to={`tokens/${encodeURIComponent(l.token_accessor)}`}>{l.display_name || "token"}</Link> : l.display_name || "—"}</td>
              <td title={localTime(l.expire_time)}>{relativeTime(l.expire_time) ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        <span class="hint" data-testid="page-range">
          {listing.leases.length ? `${count(first)}–${count(first + listing.leases.length - 1)} of ${count(listing.total)}` : "No lease left."}
        </span>
        <button type="button" class="secondary" disabled={props.pageIndex === 0} onClick={props.onPrevious}>
          Previous
        </button>
        <button type="button" class="secondary" disabled={!listing.next_after} onClick={props.onNext}>
          Next
        </button>
      </div>
    </>
  );
}

function ProgressCard(props: { progress: Progress }) {
  const p = props.progress;
  return (
    <section class="card" aria-labelledby="progress-title" data-testid="revocation">
      <h2 id="progress-title">Revocation</h2>
      {p.state === "running" && (
        <>
          <progress max={p.total} value={p.total - p.remaining} aria-labelledby="progress-text" />
          <p id="progress-text" aria-live="polite" data-testid="progress-text">
            Revoking… {count(p.total - p.remaining)} of {count(p.total)} done.
          </p>
        </>
      )}
      {p.state === "done" && (
        <>
          <progress max={Math.max(1, p.answer.matched)} value={p.answer.revoked + p.answer.failed} />
          <p role="status" data-testid="revoke-result" class={p.answer.failed ? "warn" : "ok"}>
            {count(p.answer.revoked)} of {count(p.answer.matched)} revoked{p.answer.failed ? `, ${count(p.answer.failed)} failed` : ""}.
          </p>
          {p.warnings.map((w) => (
            <p class="warn" key={w}>
              {w}
            </p>
          ))}
          {p.answer.errors_sample && p.answer.errors_sample.length > 0 && (
            <table class="leases" data-testid="failures">
              <caption>Failures (first {p.answer.errors_sample.length}): they stay scheduled and are retried with backoff.</caption>
              <thead>
                <tr>
                  <th scope="col">Lease</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {p.answer.errors_sample.map((f) => (
                  <tr key={f.lease_id}>
                    <td>
                      <Link to={`leases/${f.lease_id}`}>
                        <code>{f.lease_id}</code>
                      </Link>
                    </td>
                    <td>{f.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {p.state === "error" && (
        <p class="error" role="alert">
          The revocation did not finish: {p.message}. Some leases may be revoked already: search again to see what is left.
        </p>
      )}
    </section>
  );
}
