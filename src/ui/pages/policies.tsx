/**
 * The policies pages: the list of ACL policies with a form to create one, a policy's HCL in an
 * editor with line numbers (the server's refusal shown at the line it names, the text kept),
 * delete with a confirmation, and "what may this token do at this path" (sys/capabilities-self).
 * Edit and delete are only offered when capabilities-self says the token may use them.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { allows, ApiError, call, capabilitiesOf, type VaultResponse } from "../api";
import { navigate } from "../router";
import { Heading, Link, Topbar } from "../components/shell";
import { policyProblemOf, type PolicyProblem } from "./policy-error";
import type { PoliciesView } from "./policies-route";

function policyHref(name: string, creating = false): string {
  return `/ui/policies/${encodeURIComponent(name)}${creating ? "?new=1" : ""}`;
}

/** The API path of a policy, as capabilities are asked about it. */
function policyPath(name: string): string {
  return `sys/policies/acl/${name}`;
}

/** What a failed call says, with what to do next. */
function errorText(err: unknown, what: string, apiPath: string): string {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Your token may not ${what} (${apiPath}): ${err.message}. Ask an operator for a policy that grants it.`;
    if (err.status === 404) return `There is no policy at ${apiPath}. Check the name, or create it from the list of policies.`;
    if (err.status === 503) return `The server is sealed or in standby (${err.message}): unseal it or use the active node.`;
    return `Could not ${what}: ${err.message}.`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The policies section. */
export function PoliciesPage(props: { token: string; view: PoliciesView; onLogOut(why?: string): void }) {
  const { view, token } = props;
  const key = view.kind === "list" ? "list" : `${view.name}:${view.creating}`;
  useEffect(() => {
    document.title = `${view.kind === "list" ? "Policies" : `Policy ${view.name}`} · leasehold console`;
  }, [key]);
  return (
    <>
      <Topbar token={token} current="policies" onLogOut={props.onLogOut} />
      <main class="page policies" key={key}>
        {view.kind === "list" ? <PolicyList token={token} /> : <PolicyEditor token={token} name={view.name} creating={view.creating} />}
      </main>
    </>
  );
}


function PolicyList(props: { token: string }) {
  const { token } = props;
  const [names, setNames] = useState<string[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [newName, setNewName] = useState("");
  const [newError, setNewError] = useState<string | undefined>();

  useEffect(() => {
    call<VaultResponse<{ keys?: string[] }>>("GET", "sys/policies/acl?list=true", { token }).then(
      (answer) => setNames([...(answer.data?.keys ?? [])].sort()),
      (err) => (err instanceof ApiError && err.status === 404 ? setNames([]) : setError(errorText(err, "list policies", "sys/policies/acl"))),
    );
  }, [token]);

  return (
    <>
      <Heading>Policies</Heading>
      <p class="hint">ACL policies decide what each token may do on each path. Open one to read or change it.</p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!names && !error && <p class="muted">Loading…</p>}
      {names && names.length === 0 && <p class="empty">No policy is stored yet: create one below.</p>}
      {names && names.length > 0 && (
        <ul class="kv-list" data-testid="policy-list">
          {names.map((n) => (
            <li key={n}>
              <Link to={policyHref(n)}>{n}</Link>
            </li>
          ))}
        </ul>
      )}
      <section class="card" aria-labelledby="policy-create-title">
        <h2 id="policy-create-title">Create a policy</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            const n = newName.trim().toLowerCase();
            if (!/^[a-z0-9_.-]{1,128}$/.test(n)) return setNewError("Use 1 to 128 letters, digits, \"_\", \"-\" or \".\" for the name.");
            if (names?.includes(n)) return setNewError(`A policy named ${n} exists already: open it from the list to change it.`);
            navigate(policyHref(n, true));
          }}
        >
          <label for="policy-new-name">Name</label>
          <div class="inline-row">
            <input id="policy-new-name" value={newName} autocomplete="off" spellcheck={false} aria-describedby="policy-new-error" aria-invalid={newError ? true : undefined} onInput={(e) => (setNewName(e.currentTarget.value), setNewError(undefined))} />
            <button type="submit">Create</button>
          </div>
          <p id="policy-new-error" class="error" role="alert" hidden={!newError}>
            {newError}
          </p>
        </form>
      </section>
      <CapabilitiesBox token={token} />
    </>
  );
}

const NEW_POLICY_TEXT = `# Grants reading the secrets under secret/app/ (KV version 2)
path "secret/data/app/*" {
  capabilities = ["read"]
}
`;

/** One policy: its text in the editor, save and delete when the token may. */
function PolicyEditor(props: { token: string; name: string; creating: boolean }) {
  const { token, name, creating } = props;
  const [text, setText] = useState<string | undefined>(creating ? NEW_POLICY_TEXT : undefined);
  const [loadError, setLoadError] = useState<string | undefined>();
  const [caps, setCaps] = useState<string[] | undefined>();
  const [problem, setProblem] = useState<PolicyProblem | undefined>();
  const [saveError, setSaveError] = useState<string | undefined>();
  const [status, setStatus] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [confirmingDelete, setConfirmingDelete] = useState(false);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const isRoot = name === "root";

  const load = useCallback(async () => {
    const [policy, capabilities] = await Promise.allSettled([
      creating ? Promise.resolve(undefined) : call<VaultResponse<{ policy?: string; rules?: string }>>("GET", policyPath(name), { token }),
      capabilitiesOf(token, [policyPath(name)]),
    ]);
    if (policy.status === "fulfilled") {
      if (policy.value) setText(policy.value.data?.policy ?? policy.value.data?.rules ?? "");
    } else setLoadError(errorText(policy.reason, "read this policy", policyPath(name)));
    // Without an answer, offer nothing: the server would refuse anyway, and saying so is clearer.
    setCaps(capabilities.status === "fulfilled" ? capabilities.value[policyPath(name)] : []);
  }, [token, name, creating]);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (confirmingDelete) confirmButton.current?.focus();
  }, [confirmingDelete]);

  const canSave = !isRoot && caps !== undefined && (allows(caps, "update") || (creating && allows(caps, "create")));
  const canDelete = !isRoot && !creating && name !== "default" && caps !== undefined && allows(caps, "delete");

  const save = async () => {
    if (text === undefined) return;
    setBusy(true);
    setProblem(undefined);
    setSaveError(undefined);
    setStatus(undefined);
    try {
      await call("PUT", policyPath(name), { token, body: { policy: text } });
      if (creating) navigate(policyHref(name), true);
      else setStatus(`Saved policy ${name}. Tokens that carry it get the new rules at once.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) setProblem(policyProblemOf(err.errors[0] ?? err.message));
      else setSaveError(errorText(err, "save this policy", policyPath(name)));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setConfirmingDelete(false);
    setSaveError(undefined);
    try {
      await call("DELETE", policyPath(name), { token });
      navigate("/ui/policies");
    } catch (err) {
      setSaveError(errorText(err, "delete this policy", policyPath(name)));
    }
  };

  return (
    <>
      <nav aria-label="Breadcrumb" class="breadcrumbs">
        <ol>
          <li>
            <Link to="/ui/policies">Policies</Link>
          </li>
        </ol>
      </nav>
      <Heading>
        {creating ? "New policy " : "Policy "}
        <code>{name}</code>
      </Heading>
      {loadError && (
        <p class="error" role="alert">
          {loadError}
        </p>
      )}
      {isRoot && <p class="notice">The root policy grants everything and cannot be read or changed.</p>}
      {text !== undefined && !isRoot && (
        <section class="card" aria-label="Policy text">
          {caps !== undefined && !canSave && (
            <p class="forbidden" data-testid="policy-read-only">
              Read only: your token may not {creating ? "create" : "update"} <code>{policyPath(name)}</code>. Ask an operator for a policy that grants it.
            </p>
          )}
          <HclEditor text={text} onInput={setText} readOnly={!canSave} problem={problem} onSubmit={() => void (canSave && save())} />
          <p class="status" role="status" data-testid="policy-status">
            {status}
          </p>
          {saveError && (
            <p class="error" role="alert" data-testid="policy-save-error">
              {saveError}
            </p>
          )}
          <div class="form-actions">
            {canSave && (
              <button type="button" disabled={busy} onClick={() => void save()}>
                {busy ? "Saving…" : creating ? "Create policy" : "Save policy"}
              </button>
            )}
            {canDelete && !confirmingDelete && (
              <button type="button" class="danger" onClick={() => setConfirmingDelete(true)}>
                Delete policy
              </button>
            )}
          </div>
          {confirmingDelete && (
            <div role="group" aria-label="Confirm deletion" class="confirm">
              <p>
                Delete the policy <code>{name}</code>? Tokens that carry it lose what it granted at once; the text is gone.
              </p>
              <button type="button" class="danger" ref={confirmButton} onClick={() => void remove()}>
                Yes, delete {name}
              </button>{" "}
              <button type="button" class="secondary" onClick={() => setConfirmingDelete(false)}>
                Cancel
              </button>
            </div>
          )}
        </section>
      )}
      <CapabilitiesBox token={token} />
    </>
  );
}

/** Pixels per line of the editor (styles.css sets the same line-height and padding). */
const LINE_HEIGHT = 20;
const PADDING_TOP = 8;

/**
 * A textarea with line numbers beside it. The server's refusal, when it names a line, is marked in
 * the gutter and written beside that line; it is also said below the editor with a "Go to line" button.
 * Ctrl+S (or Cmd+S) saves.
 */
function HclEditor(props: { text: string; onInput(text: string): void; readOnly: boolean; problem?: PolicyProblem; onSubmit(): void }) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const lines = props.text.split("\n").length;
  const p = props.problem;
  const where = p?.line ? `Line ${p.line}${p.column ? `, column ${p.column}` : ""}` : undefined;

  const goToLine = (line: number) => {
    const el = area.current;
    if (!el) return;
    const offset = props.text.split("\n").slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    el.focus();
    el.setSelectionRange(offset, offset);
  };

  return (
    <>
      <label id="policy-text-label" for="policy-text">
        Policy (HCL or JSON)
      </label>
      <div class="hcl-editor">
        <div class="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => (
            <div key={i} class={p?.line === i + 1 ? "bad" : undefined} data-line={i + 1}>
              {p?.line === i + 1 ? "⚠ " : ""}
              {i + 1}
            </div>
          ))}
        </div>
        <textarea
          id="policy-text"
          ref={area}
          value={props.text}
          readOnly={props.readOnly}
          wrap="off"
          spellcheck={false}
          autocomplete="off"
          rows={Math.min(Math.max(lines + 1, 8), 30)}
          aria-invalid={p ? true : undefined}
          aria-describedby={p ? "policy-problem" : undefined}
          onInput={(e) => props.onInput(e.currentTarget.value)}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
            setScrollTop(e.currentTarget.scrollTop);
          }}
          onKeyDown={(e) => {
            if ((e.ctrlKey || e.metaKey) && e.key === "s") {
              e.preventDefault();
              props.onSubmit();
            }
          }}
        />
        {p?.line && (
          <div class="line-problem" aria-hidden="true" data-testid="policy-line-problem" data-line={p.line} style={{ top: `${PADDING_TOP + p.line * LINE_HEIGHT - scrollTop}px` }}>
            ↑ {where}: {p.message}
          </div>
        )}
      </div>
      {p && (
        <div id="policy-problem" class="error" role="alert" data-testid="policy-problem">
          The server refused the policy{where ? ` at ${where.toLowerCase()}` : ""}: {p.message}. Nothing was saved; correct the text and save again.{" "}
          {p.line && (
            <button type="button" class="secondary small-button" onClick={() => goToLine(p.line!)}>
              Go to line {p.line}
            </button>
          )}
        </div>
      )}
    </>
  );
}

/** "What may this token do at this path": sys/capabilities-self for one path. */
function CapabilitiesBox(props: { token: string }) {
  const [path, setPath] = useState("");
  const [answer, setAnswer] = useState<{ path: string; caps: string[] } | undefined>();
  const [error, setError] = useState<string | undefined>();
  return (
    <section class="card capabilities" aria-labelledby="caps-title" data-testid="capabilities-box">
      <h2 id="caps-title">What may this token do at a path?</h2>
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          const p = path.trim().replace(/^\/+/, "").replace(/^v1\//, "");
          if (!p) return setError("Type an API path, such as secret/data/app/db or sys/policies/acl/dev.");
          setError(undefined);
          try {
            const caps = await capabilitiesOf(props.token, [p]);
            setAnswer({ path: p, caps: caps[p] ?? [] });
          } catch (err) {
            setAnswer(undefined);
            setError(errorText(err, "ask about capabilities", "sys/capabilities-self"));
          }
        }}
      >
        <label for="caps-path">Path</label>
        <div class="inline-row">
          <input id="caps-path" value={path} placeholder="secret/data/app/db" autocomplete="off" spellcheck={false} onInput={(e) => setPath(e.currentTarget.value)} />
          <button type="submit">Check</button>
        </div>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div aria-live="polite">
        {answer && (
          <p data-testid="capabilities-result" data-capabilities={answer.caps.join(",")}>
            On <code>{answer.path}</code> this token may:{" "}
            {answer.caps.length === 0 || answer.caps.includes("deny") ? (
              <strong>nothing (deny)</strong>
            ) : answer.caps.includes("root") ? (
              <strong>everything (root)</strong>
            ) : (
              answer.caps.map((c) => (
                <span key={c} class="badge neutral cap">
                  {c}
                </span>
              ))
            )}
          </p>
        )}
      </div>
    </section>
  );
}
