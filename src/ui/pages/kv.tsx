/**
 * The secrets pages for KV version 2 mounts: the mounts, a folder's secrets, one secret (values
 * masked until revealed one by one, its versions, delete and undelete), and the editor that writes
 * a new version. Everything goes through the public API with the operator's token (kv-api.ts).
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { allows, capabilitiesOf } from "../api";
import { localTime, relativeTime } from "../format";
import { navigate } from "../router";
import { Heading, Link, Topbar } from "../components/shell";
import { deleteLatest, kvErrorText, kvMounts, listSecrets, readMetadata, readSecret, undeleteVersions, writeSecret, type KvMetadata, type KvMount, type KvSecret } from "./kv-api";
import { kvHref, type KvView } from "./kv-route";

/** The secrets section: which view the address names. */
export function KvPage(props: { token: string; view: KvView; onLogOut(why?: string): void }) {
  const { view, token } = props;
  const key = view.kind === "mounts" ? "mounts" : `${view.kind}:${view.mount}:${view.kind === "show" ? `${view.path}@${view.version ?? ""}` : view.dir}`;
  useEffect(() => {
    document.title = `${view.kind === "mounts" ? "Secrets" : view.kind === "show" ? view.path : `${view.mount}/${view.dir}`} · leasehold console`;
  }, [key]);
  return (
    <>
      <Topbar token={token} current="secrets" onLogOut={props.onLogOut} />
      <main class="page kv" key={key}>
        {view.kind === "mounts" && <MountsView token={token} />}
        {view.kind === "list" && <FolderView token={token} mount={view.mount} dir={view.dir} />}
        {view.kind === "new" && <NewSecretView token={token} mount={view.mount} dir={view.dir} />}
        {view.kind === "show" && <SecretView token={token} mount={view.mount} path={view.path} version={view.version} />}
      </main>
    </>
  );
}


/** Secrets › mount › folder › ... as links. */
function Breadcrumbs(props: { mount?: string; path?: string }) {
  const parts = (props.path ?? "").split("/").filter(Boolean);
  return (
    <nav aria-label="Breadcrumb" class="breadcrumbs">
      <ol>
        <li>
          <Link to={kvHref({ kind: "mounts" })}>Secrets</Link>
        </li>
        {props.mount !== undefined && (
          <li>
            <Link to={kvHref({ kind: "list", mount: props.mount, dir: "" })}>{props.mount}</Link>
          </li>
        )}
        {props.mount !== undefined &&
          parts.map((p, i) => (
            <li key={i}>
              <Link to={kvHref({ kind: "list", mount: props.mount!, dir: `${parts.slice(0, i + 1).join("/")}/` })}>{p}</Link>
            </li>
          ))}
      </ol>
    </nav>
  );
}

function Alert(props: { text?: string; testId?: string }) {
  if (!props.text) return null;
  return (
    <p class="error" role="alert" data-testid={props.testId ?? "kv-error"}>
      {props.text}
    </p>
  );
}

function MountsView(props: { token: string }) {
  const [mounts, setMounts] = useState<KvMount[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    kvMounts(props.token).then(setMounts, (err) => setError(kvErrorText(err, "list the secret engines", "sys/mounts")));
  }, [props.token]);
  return (
    <>
      <Heading>Secrets</Heading>
      <p class="hint">Key/value secret engines (KV). Pick one to browse its secrets.</p>
      <Alert text={error} />
      {!mounts && !error && <p class="muted">Loading…</p>}
      {mounts && mounts.length === 0 && (
        <p class="empty" data-testid="kv-empty">
          No KV secret engine is enabled, or your token may use none. Enable one with <code>leasehold secrets enable -path=secret kv-v2</code>.
        </p>
      )}
      {mounts && mounts.length > 0 && (
        <ul class="kv-list" data-testid="kv-mounts">
          {mounts.map((m) => (
            <li key={m.path}>
              {m.version === "2" ? <Link to={kvHref({ kind: "list", mount: m.path, dir: "" })}>{m.path}/</Link> : <span>{m.path}/</span>}
              <span class="muted small">
                {" "}
                KV version {m.version}
                {m.version !== "2" && " (not browsable in the console yet: use the CLI)"}
                {m.description && ` · ${m.description}`}
              </span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function FolderView(props: { token: string; mount: string; dir: string }) {
  const { token, mount, dir } = props;
  const [keys, setKeys] = useState<string[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    listSecrets(token, mount, dir).then(
      (k) => setKeys([...k].sort((a, b) => Number(b.endsWith("/")) - Number(a.endsWith("/")) || a.localeCompare(b))),
      (err) => setError(kvErrorText(err, "list the secrets here", `${mount}/metadata/${dir}`)),
    );
  }, [token, mount, dir]);
  const newHref = kvHref({ kind: "new", mount, dir });
  return (
    <>
      <Breadcrumbs mount={mount} path={dir} />
      <div class="title-row">
        <Heading>
          {mount}/{dir}
        </Heading>
        <Link to={newHref} class="button-link" testId="kv-create">
          Create a secret
        </Link>
      </div>
      <Alert text={error} />
      {!keys && !error && <p class="muted">Loading…</p>}
      {keys && keys.length === 0 && (
        <p class="empty" data-testid="kv-empty">
          No secrets here yet: <Link to={newHref}>create one</Link>.
        </p>
      )}
      {keys && keys.length > 0 && (
        <ul class="kv-list" data-testid="kv-keys">
          {keys.map((k) => (
            <li key={k}>
              {k.endsWith("/") ? (
                <Link to={kvHref({ kind: "list", mount, dir: dir + k })}>
                  <span aria-hidden="true">▸ </span>
                  {k}
                </Link>
              ) : (
                <Link to={kvHref({ kind: "show", mount, path: dir + k })}>{k}</Link>
              )}
              <span class="muted small">{k.endsWith("/") ? " folder" : " secret"}</span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function NewSecretView(props: { token: string; mount: string; dir: string }) {
  const { token, mount, dir } = props;
  return (
    <>
      <Breadcrumbs mount={mount} path={dir} />
      <Heading>New secret</Heading>
      <SecretEditor
        pathPrefix={`${mount}/${dir}`}
        rows={[{ key: "", value: "" }]}
        submitLabel="Save secret"
        onCancel={() => navigate(kvHref({ kind: "list", mount, dir }))}
        onSave={async (data, name) => {
          const path = dir + name;
          await writeSecret(token, mount, path, data);
          navigate(kvHref({ kind: "show", mount, path }));
        }}
        errorText={(err, name) => kvErrorText(err, "write this secret", `${mount}/data/${dir}${name}`)}
      />
    </>
  );
}

/** A value as the editor and the reveal show it: strings as they are, anything else as JSON. */
function asText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

const MASK = "••••••••";

function SecretView(props: { token: string; mount: string; path: string; version?: number }) {
  const { token, mount, path, version } = props;
  const [secret, setSecret] = useState<KvSecret | undefined>();
  const [metadata, setMetadata] = useState<KvMetadata | undefined>();
  const [metadataNote, setMetadataNote] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const [status, setStatus] = useState<string | undefined>();
  const [revealed, setRevealed] = useState<Set<string>>(new Set());
  const [editing, setEditing] = useState(false);
  const [confirmingDelete, setConfirmingDelete] = useState(false);
  const [may, setMay] = useState({ write: false, delete: false, undelete: false });
  const confirmButton = useRef<HTMLButtonElement>(null);
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";

  const load = useCallback(async () => {
    setError(undefined);
    const dataPath = `${mount}/data/${path}`;
    const undeletePath = `${mount}/undelete/${path}`;
    const [s, m, c] = await Promise.allSettled([readSecret(token, mount, path, version), readMetadata(token, mount, path), capabilitiesOf(token, [dataPath, undeletePath])]);
    // Without an answer, offer everything: the server still decides, and says why when it refuses.
    const caps = c.status === "fulfilled" ? c.value : { [dataPath]: ["root"], [undeletePath]: ["root"] };
    setMay({ write: allows(caps[dataPath], "update") || allows(caps[dataPath], "create"), delete: allows(caps[dataPath], "delete"), undelete: allows(caps[undeletePath], "update") });
    if (s.status === "fulfilled") setSecret(s.value);
    else setError(kvErrorText(s.reason, "read this secret", `${mount}/data/${path}`));
    if (m.status === "fulfilled") {
      setMetadata(m.value);
      setMetadataNote(undefined);
    } else {
      setMetadata(undefined);
      setMetadataNote(kvErrorText(m.reason, "read this secret's versions", `${mount}/metadata/${path}`));
    }
  }, [token, mount, path, version]);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (confirmingDelete) confirmButton.current?.focus();
  }, [confirmingDelete]);

  const act = async (work: () => Promise<void>, done: string, what: string, apiPath: string) => {
    setActionError(undefined);
    setStatus(undefined);
    try {
      await work();
      setStatus(done);
      await load();
    } catch (err) {
      setActionError(kvErrorText(err, what, apiPath));
    }
  };

  const shown = secret?.metadata.version;
  const latest = metadata?.current_version;
  const entries = secret?.data ? Object.entries(secret.data).sort(([a], [b]) => a.localeCompare(b)) : [];

  return (
    <>
      <Breadcrumbs mount={mount} path={dir} />
      <div class="title-row">
        <Heading>{path.slice(dir.length)}</Heading>
        {secret && !editing && may.write && (
          <button type="button" onClick={() => (setEditing(true), setStatus(undefined))}>
            Write a new version
          </button>
        )}
      </div>
      <p class="hint">
        <code>
          {mount}/{path}
        </code>
        {shown !== undefined && <span data-testid="kv-shown-version"> · version {shown}</span>}
        {secret && localTime(secret.metadata.created_time) && (
          <span>
            {" "}
            · written {localTime(secret.metadata.created_time)} ({relativeTime(secret.metadata.created_time)})
          </span>
        )}
      </p>
      <Alert text={error} />
      {secret && !may.write && (
        <p class="forbidden" data-testid="kv-read-only">
          Read only: your token may not write <code>{mount}/data/{path}</code>{may.delete ? "" : " or delete its versions"}. Ask an operator for a policy that grants it.
        </p>
      )}
      <Alert text={actionError} testId="kv-action-error" />
      <p class="status" role="status" data-testid="kv-status">
        {status}
      </p>
      {version !== undefined && latest !== undefined && version !== latest && (
        <p class="notice">
          This is an older version. The latest is version {latest}: <Link to={kvHref({ kind: "show", mount, path })}>open it</Link>.
        </p>
      )}
      {secret && !secret.data && (
        <p class="notice" data-testid="kv-deleted">
          {secret.metadata.destroyed
            ? `Version ${shown} was destroyed: its data is gone for good. Write a new version, or open an older one below.`
            : `Version ${shown} was deleted ${localTime(secret.metadata.deletion_time) ?? ""}. Readers get "not found" until you undelete it.`}{" "}
          {!secret.metadata.destroyed && may.undelete && (
            <button type="button" onClick={() => void act(() => undeleteVersions(token, mount, path, [shown!]), `Version ${shown} is back.`, "undelete this version", `${mount}/undelete/${path}`)}>
              Undelete version {shown}
            </button>
          )}
        </p>
      )}
      {editing && secret && (
        <section class="card" aria-labelledby="kv-editor-title">
          <h2 id="kv-editor-title">New version</h2>
          <p class="hint">Saving writes version {(latest ?? shown ?? 0) + 1} with exactly these keys; older versions stay readable.</p>
          <SecretEditor
            rows={entries.length ? entries.map(([k, v]) => ({ key: k, value: asText(v) })) : [{ key: "", value: "" }]}
            submitLabel="Save new version"
            onCancel={() => setEditing(false)}
            onSave={async (data) => {
              const n = await writeSecret(token, mount, path, data);
              setEditing(false);
              setRevealed(new Set());
              setStatus(`Saved version ${n}.`);
              if (version !== undefined) navigate(kvHref({ kind: "show", mount, path }));
              else await load();
            }}
            errorText={(err) => kvErrorText(err, "write a new version", `${mount}/data/${path}`)}
          />
        </section>
      )}
      {secret?.data && !editing && (
        <section class="card" aria-labelledby="kv-values-title">
          <h2 id="kv-values-title">Values</h2>
          {entries.length === 0 ? (
            <p class="empty">This version holds no keys. Write a new version to add some.</p>
          ) : (
            <table data-testid="kv-values" class="kv-values">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Value</th>
                  <th scope="col">
                    <span class="visually-hidden">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {entries.map(([k, v]) => {
                  const open = revealed.has(k);
                  return (
                    <tr key={k} data-key={k}>
                      <th scope="row">
                        <code>{k}</code>
                      </th>
                      <td>
                        <code class={open ? "secret-value" : "masked"} data-testid="kv-value" aria-label={open ? undefined : `value of ${k}, hidden`}>
                          {open ? asText(v) : MASK}
                        </code>
                      </td>
                      <td>
                        <button
                          type="button"
                          class="secondary small-button"
                          aria-pressed={open}
                          aria-label={`${open ? "Hide" : "Reveal"} the value of ${k}`}
                          onClick={() => {
                            const next = new Set(revealed);
                            if (open) next.delete(k);
                            else next.add(k);
                            setRevealed(next);
                          }}
                        >
                          {open ? "Hide" : "Reveal"}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
          {may.delete && shown !== undefined && (latest === undefined || shown === latest) && (
            <div class="danger-zone">
              {!confirmingDelete ? (
                <button type="button" class="danger" onClick={() => setConfirmingDelete(true)}>
                  Delete version {shown}
                </button>
              ) : (
                <div role="group" aria-label="Confirm deletion" class="confirm">
                  <p>
                    Delete version {shown} of <code>{path}</code>? Readers get "not found" for it until you undelete it; older versions stay.
                  </p>
                  <button
                    type="button"
                    class="danger"
                    ref={confirmButton}
                    onClick={() => {
                      setConfirmingDelete(false);
                      void act(() => deleteLatest(token, mount, path), `Version ${shown} was deleted.`, "delete this version", `${mount}/data/${path}`);
                    }}
                  >
                    Yes, delete version {shown}
                  </button>{" "}
                  <button type="button" class="secondary" onClick={() => setConfirmingDelete(false)}>
                    Cancel
                  </button>
                </div>
              )}
            </div>
          )}
        </section>
      )}
      <section class="card" aria-labelledby="kv-versions-title">
        <h2 id="kv-versions-title">Versions</h2>
        {metadataNote && <p class="forbidden">{metadataNote}</p>}
        {metadata && (
          <table data-testid="kv-versions">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(metadata.versions)
                .map(([n, info]) => [Number(n), info] as const)
                .sort((a, b) => b[0] - a[0])
                .map(([n, info]) => {
                  const state = info.destroyed ? "destroyed" : info.deletion_time ? "deleted" : n === metadata.current_version ? "current" : "older";
                  return (
                    <tr key={n} data-version={n} class={n === shown ? "selected-row" : undefined}>
                      <th scope="row">{n}</th>
                      <td>
                        {localTime(info.created_time)} <span class="muted small">({relativeTime(info.created_time)})</span>
                      </td>
                      <td data-testid="kv-version-state">
                        <span class={`badge ${state === "current" ? "good" : state === "older" ? "neutral" : "bad"}`}>{state}</span>
                        {state === "deleted" && <span class="muted small"> {localTime(info.deletion_time)}</span>}
                      </td>
                      <td>
                        {n === shown ? (
                          <span class="muted small">shown</span>
                        ) : (
                          <Link to={kvHref({ kind: "show", mount, path, version: n === metadata.current_version ? undefined : n })}>Open version {n}</Link>
                        )}
                        {state === "deleted" && may.undelete && (
                          <>
                            {" "}
                            <button type="button" class="secondary small-button" onClick={() => void act(() => undeleteVersions(token, mount, path, [n]), `Version ${n} is back.`, "undelete this version", `${mount}/undelete/${path}`)}>
                              Undelete version {n}
                            </button>
                          </>
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

interface Row {
  id: number;
  key: string;
  value: string;
}

let nextRowId = 1;

/**
 * Key/value rows with labelled inputs, values masked unless "Show values" is ticked. With
 * `pathPrefix` it also asks for the secret's name (a new secret).
 */
function SecretEditor(props: {
  rows: { key: string; value: string }[];
  pathPrefix?: string;
  submitLabel: string;
  onSave(data: Record<string, string>, name: string): Promise<void>;
  onCancel(): void;
  errorText(err: unknown, name: string): string;
}) {
  const [rows, setRows] = useState<Row[]>(() => props.rows.map((r) => ({ ...r, id: nextRowId++ })));
  const [name, setName] = useState("");
  const [showValues, setShowValues] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const focusRow = useRef<number | undefined>(undefined);
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => first.current?.focus(), []);
  useEffect(() => {
    if (focusRow.current !== undefined) {
      document.getElementById(`kv-key-${focusRow.current}`)?.focus();
      focusRow.current = undefined;
    }
  }, [rows]);

  const update = (id: number, field: "key" | "value", value: string) => setRows(rows.map((r) => (r.id === id ? { ...r, [field]: value } : r)));

  const submit = async (e: Event) => {
    e.preventDefault();
    const cleanName = name.trim().replace(/^\/+|\/+$/g, "");
    if (props.pathPrefix !== undefined && !cleanName) return setError("Give the secret a name (a path such as app/database, relative to this folder).");
    const filled = rows.filter((r) => r.key.trim() !== "" || r.value !== "");
    const data: Record<string, string> = {};
    for (const r of filled) {
      const k = r.key.trim();
      if (!k) return setError("A row has a value but no key: give it a key or remove the row.");
      if (k in data) return setError(`The key "${k}" is there twice: keys must be unique within a secret.`);
      data[k] = r.value;
    }
    if (Object.keys(data).length === 0) return setError("Add at least one key with its value.");
    setBusy(true);
    setError(undefined);
    try {
      await props.onSave(data, cleanName);
    } catch (err) {
      setError(props.errorText(err, cleanName));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="kv-editor" onSubmit={(e) => void submit(e)} aria-describedby="kv-editor-error" data-testid="kv-editor">
      {props.pathPrefix !== undefined && (
        <>
          <label for="kv-name">Path</label>
          <div class="prefixed">
            <span aria-hidden="true">{props.pathPrefix}</span>
            <input id="kv-name" ref={first} value={name} required autocomplete="off" spellcheck={false} onInput={(e) => setName(e.currentTarget.value)} aria-describedby="kv-name-hint" />
          </div>
          <p id="kv-name-hint" class="hint">
            The secret's name in this folder; slashes make sub-folders (app/database).
          </p>
        </>
      )}
      <fieldset>
        <legend>Keys and values</legend>
        {rows.map((r, i) => (
          <div class="kv-row" key={r.id}>
            <label for={`kv-key-${r.id}`} class="visually-hidden">
              Key {i + 1}
            </label>
            <input
              id={`kv-key-${r.id}`}
              ref={i === 0 && props.pathPrefix === undefined ? first : undefined}
              placeholder="key"
              autocomplete="off"
              spellcheck={false}
              value={r.key}
              onInput={(e) => update(r.id, "key", e.currentTarget.value)}
            />
            <label for={`kv-value-${r.id}`} class="visually-hidden">
              Value {i + 1}
            </label>
            {showValues ? (
              <input id={`kv-value-${r.id}`} type="text" placeholder="value" autocomplete="off" spellcheck={false} value={r.value} onInput={(e) => update(r.id, "value", e.currentTarget.value)} />
            ) : (
              <input id={`kv-value-${r.id}`} type="password" placeholder="value" autocomplete="off" spellcheck={false} value={r.value} onInput={(e) => update(r.id, "value", e.currentTarget.value)} />
            )}
            <button type="button" class="secondary small-button" aria-label={`Remove row ${i + 1}`} disabled={rows.length === 1} onClick={() => setRows(rows.filter((x) => x.id !== r.id))}>
              Remove
            </button>
          </div>
        ))}
        <div class="kv-editor-tools">
          <button
            type="button"
            class="secondary"
            onClick={() => {
              const row = { id: nextRowId++, key: "", value: "" };
              focusRow.current = row.id;
              setRows([...rows, row]);
            }}
          >
            Add a key
          </button>
          <label class="checkbox">
            <input type="checkbox" checked={showValues} onChange={(e) => setShowValues(e.currentTarget.checked)} /> Show values while editing
          </label>
        </div>
      </fieldset>
      <p id="kv-editor-error" class="error" role="alert" hidden={!error} data-testid="kv-editor-error">
        {error}
      </p>
      <div class="form-actions">
        <button type="submit" disabled={busy}>
          {busy ? "Saving…" : props.submitLabel}
        </button>
        <button type="button" class="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
