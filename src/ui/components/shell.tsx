import { useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { ApiError, call, type VaultResponse } from "../api";
import { navigate } from "../router";

/** The console's pages in the top bar: path under /ui/ and label. */
export const NAV_LINKS: { path: string; label: string; id: string }[] = [
  { id: "overview", path: "", label: "Overview" },
  { id: "secrets", path: "secrets", label: "Secrets" },
  { id: "pki", path: "pki", label: "PKI" },
  { id: "database", path: "database", label: "Databases" },
  { id: "policies", path: "policies", label: "Policies" },
  { id: "leases", path: "leases", label: "Leases" },
  { id: "incident", path: "incident", label: "Incident response" },
];

/** A link inside the console that navigates without reloading the page. */
export function Link(props: { to: string; children: ComponentChildren; class?: string; current?: boolean; testId?: string }) {
  const href = props.to.startsWith("/") ? props.to : `/ui/${props.to}`;
  return (
    <a
      href={href}
      class={props.class}
      data-testid={props.testId}
      aria-current={props.current ? "page" : undefined}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {props.children}
    </a>
  );
}

/**
 * The bar at the top of every logged-in page: the console's sections (`current` marks the page's),
 * who is logged in (an expired or revoked token sends the operator back to the login page), log out.
 */
export function Topbar(props: { token: string; current: string; onLogOut(why?: string): void }) {
  const { token, onLogOut } = props;
  const [self, setSelf] = useState<{ display_name: string; policies: string[] } | undefined>();

  useEffect(() => {
    let live = true;
    call<VaultResponse<{ display_name: string; policies: string[] }>>("GET", "auth/token/lookup-self", { token }).then(
      (me) => live && setSelf(me.data),
      (err) => {
        if (live && err instanceof ApiError && err.forbidden) onLogOut("Your session ended: the token expired or was revoked. Log in again.");
      },
    );
    return () => {
      live = false;
    };
  }, [token, onLogOut]);

  return (
    <header class="topbar">
      <Link class="brand" to="">
        leasehold
      </Link>
      <nav aria-label="Console">
        {NAV_LINKS.map((l) => (
          <Link key={l.id} to={l.path} current={l.id === props.current}>
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
  );
}

/**
 * The frame of a logged-in page: the top bar and the page's heading, focused on arrival so a
 * screen reader announces the new page.
 */
export function Shell(props: { token: string; current: string; title: string; onLogOut(why?: string): void; actions?: ComponentChildren; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    heading.current?.focus();
  }, [props.title]);

  return (
    <>
      <Topbar token={props.token} current={props.current} onLogOut={props.onLogOut} />
      <main class="page">
        <div class="title-row">
          <h1 tabIndex={-1} ref={heading}>
            {props.title}
          </h1>
          {props.actions}
        </div>
        {props.children}
      </main>
    </>
  );
}

/** A page's heading, focused when the page opens so screen readers and the keyboard start there. */
export function Heading(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  );
}
