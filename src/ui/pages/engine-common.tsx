/**
 * The parts the PKI and database pages share: the focused page heading (components/shell.tsx), an
 * error paragraph, and the list of one engine type's mounts.
 */
import { useEffect, useState } from "preact/hooks";
import { Heading, Link } from "../components/shell";
import { engineErrorText, engineMounts, type EngineMount } from "./engine-mounts";

export { Heading };

/** An error paragraph, or nothing. */
export function Alert(props: { text?: string; testId: string }) {
  if (!props.text) return null;
  return (
    <p class="error" role="alert" data-testid={props.testId}>
      {props.text}
    </p>
  );
}

const ENGINE_INFO: Record<string, { title: string; base: string; enable: string; blurb: string }> = {
  pki: { title: "PKI", base: "/ui/pki", enable: "leasehold secrets enable -max-lease-ttl=87600h pki", blurb: "Certificate authorities (PKI engines). Pick one to see its issuers, certificates and CRL." },
  database: { title: "Databases", base: "/ui/database", enable: "leasehold secrets enable database", blurb: "Database secret engines. Pick one to see its connections and roles." },
};

/** The mounts of one engine type, each a link to its page. */
export function MountList(props: { token: string; type: "pki" | "database" }) {
  const info = ENGINE_INFO[props.type]!;
  const [mounts, setMounts] = useState<EngineMount[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    engineMounts(props.token, props.type).then(setMounts, (err) => setError(engineErrorText(err, "list the secret engines", "sys/mounts")));
  }, [props.token, props.type]);
  return (
    <>
      <Heading>{info.title}</Heading>
      <p class="hint">{info.blurb}</p>
      <Alert text={error} testId={`${props.type}-error`} />
      {!mounts && !error && <p class="muted">Loading…</p>}
      {mounts && mounts.length === 0 && (
        <p class="empty" data-testid={`${props.type}-empty`}>
          No {props.type} engine is enabled, or your token may use none. Enable one with <code>{info.enable}</code>.
        </p>
      )}
      {mounts && mounts.length > 0 && (
        <ul class="kv-list" data-testid={`${props.type}-mounts`}>
          {mounts.map((m) => (
            <li key={m.path}>
              <Link to={`${info.base}/${encodeURIComponent(m.path)}`}>{m.path}/</Link>
              {m.description && <span class="muted small"> · {m.description}</span>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
