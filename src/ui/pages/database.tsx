/**
 * The database pages: the database engines the token can see, and one mount's connections (as the
 * server answers them: the password never, a password inside the URL masked) and roles (TTLs and
 * statements, read only), with "Rotate root" after a confirmation. Through database-api.ts.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { allows, capabilitiesOf } from "../api";
import { Link, Topbar } from "../components/shell";
import { durationText, listConnections, listRoles, readConnection, readRole, rotateRoot, type DbConnection, type DbRole } from "./database-api";
import { engineErrorText } from "./engine-mounts";
import { Alert, Heading, MountList } from "./engine-common";

/** `/ui/database` (the mounts) or `/ui/database/<mount>`. */
export function DatabasePage(props: { token: string; mount?: string; onLogOut(why?: string): void }) {
  const { token, mount } = props;
  useEffect(() => {
    document.title = `${mount ? `${mount} · Databases` : "Databases"} · leasehold console`;
  }, [mount]);
  return (
    <>
      <Topbar token={token} current="database" onLogOut={props.onLogOut} />
      <main class="page engine" key={mount ?? ""}>
        {mount === undefined ? <MountList token={token} type="database" /> : <MountView token={token} mount={mount} />}
      </main>
    </>
  );
}

interface Loaded<T> {
  name: string;
  value?: T;
  error?: string;
}

function Statements(props: { label: string; list: string[] | undefined }) {
  if (!props.list || props.list.length === 0) return null;
  return (
    <div class="statements">
      <h4>{props.label}</h4>
      <pre data-testid="db-statements">{props.list.join(";\n")}</pre>
    </div>
  );
}

function MountView(props: { token: string; mount: string }) {
  const { token, mount } = props;
  const [connections, setConnections] = useState<Loaded<DbConnection>[] | undefined>();
  const [roles, setRoles] = useState<Loaded<DbRole>[] | undefined>();
  const [errors, setErrors] = useState<{ config?: string; roles?: string }>({});
  const [mayRotate, setMayRotate] = useState<Record<string, boolean>>({});
  const [confirming, setConfirming] = useState<string | undefined>();
  const [status, setStatus] = useState<string | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const confirmButton = useRef<HTMLButtonElement>(null);

  const load = useCallback(async () => {
    const [c, r] = await Promise.allSettled([listConnections(token, mount), listRoles(token, mount)]);
    setErrors({
      config: c.status === "rejected" ? engineErrorText(c.reason, "list the connections", `${mount}/config`) : undefined,
      roles: r.status === "rejected" ? engineErrorText(r.reason, "list the roles", `${mount}/roles`) : undefined,
    });
    const names = c.status === "fulfilled" ? [...c.value].sort() : [];
    const roleNames = r.status === "fulfilled" ? [...r.value].sort() : [];
    const rotatePaths = names.map((n) => `${mount}/rotate-root/${n}`);
    const [conns, rs, caps] = await Promise.all([
      Promise.all(names.map((name) => readConnection(token, mount, name).then((value) => ({ name, value }), (err) => ({ name, error: engineErrorText(err, "read this connection", `${mount}/config/${name}`) })))),
      Promise.all(roleNames.map((name) => readRole(token, mount, name).then((value) => ({ name, value }), (err) => ({ name, error: engineErrorText(err, "read this role", `${mount}/roles/${name}`) })))),
      names.length ? capabilitiesOf(token, rotatePaths).catch(() => undefined) : Promise.resolve({}),
    ]);
    setConnections(c.status === "fulfilled" ? conns : undefined);
    setRoles(r.status === "fulfilled" ? rs : undefined);
    // Without an answer, offer the action: the server still decides, and says why when it refuses.
    setMayRotate(Object.fromEntries(names.map((n, i) => [n, caps ? allows((caps as Record<string, string[]>)[rotatePaths[i]!], "update") : true])));
  }, [token, mount]);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const rotate = async (name: string) => {
    setActionError(undefined);
    setStatus(undefined);
    try {
      await rotateRoot(token, mount, name);
      setConfirming(undefined);
      setStatus(`Rotated the root password of ${name}. The old password no longer logs in; the new one is known only to the broker.`);
      await load();
    } catch (err) {
      setConfirming(undefined);
      setActionError(engineErrorText(err, "rotate this connection's root password", `${mount}/rotate-root/${name}`));
    }
  };

  return (
    <>
      <nav aria-label="Breadcrumb" class="breadcrumbs">
        <ol>
          <li>
            <Link to="/ui/database">Databases</Link>
          </li>
          <li>
            <Link to={`/ui/database/${encodeURIComponent(mount)}`}>{mount}</Link>
          </li>
        </ol>
      </nav>
      <Heading>{mount}/</Heading>
      <p class="status" role="status" data-testid="db-status">
        {status}
      </p>
      <Alert text={actionError} testId="db-action-error" />

      <section class="card" aria-labelledby="db-config-title">
        <h2 id="db-config-title">Connections</h2>
        <Alert text={errors.config} testId="db-config-error" />
        {!connections && !errors.config && <p class="muted">Loading…</p>}
        {connections && connections.length === 0 && (
          <p class="empty" data-testid="db-no-connections">
            No connection yet. Configure one with <code>leasehold write {mount}/config/&lt;name&gt; plugin_name=postgresql-database-plugin connection_url=... username=... password=...</code>.
          </p>
        )}
        {connections?.map((c) => {
          const d = c.value;
          const details = d?.connection_details;
          return (
            <article class="db-item" key={c.name} data-connection={c.name} aria-labelledby={`db-conn-${c.name}`}>
              <h3 id={`db-conn-${c.name}`}>{c.name}</h3>
              <Alert text={c.error} testId="db-connection-error" />
              {d && (
                <dl class="facts">
                  <dt>Plugin</dt>
                  <dd>
                    {d.plugin_name}
                    {d.plugin_version ? ` ${d.plugin_version}` : ""}
                  </dd>
                  <dt>Connection URL</dt>
                  <dd>
                    <code class="break" data-testid="db-connection-url">
                      {details?.connection_url ?? ""}
                    </code>
                  </dd>
                  <dt>Root user</dt>
                  <dd>{details?.username ? <code>{details.username}</code> : <span class="muted">(in the URL: cannot be rotated)</span>}</dd>
                  <dt>Allowed roles</dt>
                  <dd data-testid="db-allowed-roles">{d.allowed_roles?.length ? d.allowed_roles.join(", ") : <span class="muted">none (no role may use this connection)</span>}</dd>
                  <dt>Verify connection</dt>
                  <dd>{d.verify_connection ? "yes" : "no"}</dd>
                  <dt>Password policy</dt>
                  <dd>{d.password_policy || <span class="muted">(built-in generator)</span>}</dd>
                  {details?.max_open_connections !== undefined && (
                    <>
                      <dt>Max open connections</dt>
                      <dd>{details.max_open_connections}</dd>
                    </>
                  )}
                </dl>
              )}
              {d && <Statements label="Root rotation statements" list={d.root_credentials_rotate_statements} />}
              {d && mayRotate[c.name] && details?.username && (
                <div class="danger-zone">
                  <p class="hint">
                    <strong>Rotate root</strong> sets a new random password for the root user ({details?.username ? <code>{details.username}</code> : "the configured user"}) in the database and keeps it only in the
                    broker: nobody, not even you, can read it afterwards, and the old password stops working at once. Do it right after configuring a connection with a password a person typed.
                  </p>
                  {confirming !== c.name ? (
                    <button type="button" class="secondary" onClick={() => (setConfirming(c.name), setStatus(undefined))}>
                      Rotate root of {c.name}
                    </button>
                  ) : (
                    <span role="group" aria-label="Confirm the rotation">
                      <span>Replace the root password of {c.name}? Anyone using the old one is locked out.</span>{" "}
                      <button type="button" class="danger" ref={confirmButton} onClick={() => void rotate(c.name)}>
                        Yes, rotate the root password
                      </button>{" "}
                      <button type="button" class="secondary" onClick={() => setConfirming(undefined)}>
                        Cancel
                      </button>
                    </span>
                  )}
                </div>
              )}
              {d && !mayRotate[c.name] && details?.username && (
                <p class="forbidden" data-testid="db-rotate-forbidden">
                  Your token may not rotate this root password (<code>update</code> on <code>{mount}/rotate-root/{c.name}</code>).
                </p>
              )}
            </article>
          );
        })}
      </section>

      <section class="card" aria-labelledby="db-roles-title">
        <h2 id="db-roles-title">Roles</h2>
        <p class="hint">Dynamic roles, read only: each request for credentials runs the creation statements for a new database user under a lease.</p>
        <Alert text={errors.roles} testId="db-roles-error" />
        {!roles && !errors.roles && <p class="muted">Loading…</p>}
        {roles && roles.length === 0 && (
          <p class="empty" data-testid="db-no-roles">
            No role yet. Create one with <code>leasehold write {mount}/roles/&lt;name&gt; db_name=... creation_statements=...</code>.
          </p>
        )}
        {roles?.map((r) => (
          <article class="db-item" key={r.name} data-role={r.name} aria-labelledby={`db-role-${r.name}`}>
            <h3 id={`db-role-${r.name}`}>{r.name}</h3>
            <Alert text={r.error} testId="db-role-error" />
            {r.value && (
              <>
                <dl class="facts">
                  <dt>Connection</dt>
                  <dd>{r.value.db_name}</dd>
                  <dt>Default TTL</dt>
                  <dd data-testid="db-role-ttl">{durationText(r.value.default_ttl)}</dd>
                  <dt>Max TTL</dt>
                  <dd>{durationText(r.value.max_ttl)}</dd>
                  {r.value.credential_type && (
                    <>
                      <dt>Credential type</dt>
                      <dd>{r.value.credential_type}</dd>
                    </>
                  )}
                </dl>
                <Statements label="Creation statements" list={r.value.creation_statements} />
                <Statements label="Revocation statements" list={r.value.revocation_statements} />
                <Statements label="Renew statements" list={r.value.renew_statements} />
                <Statements label="Rollback statements" list={r.value.rollback_statements} />
                {!r.value.revocation_statements?.length && <p class="muted small">No revocation statements: the default revocation ends the user's sessions and drops it.</p>}
              </>
            )}
          </article>
        ))}
      </section>
    </>
  );
}
