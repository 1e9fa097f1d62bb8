import { useCallback, useEffect, useState } from "preact/hooks";
import { DatabasePage } from "./pages/database";
import { IncidentPage } from "./pages/incident";
import { KvPage } from "./pages/kv";
import { LeaseBrowserPage, LeasePage } from "./pages/leases";
import { LoginPage, OidcCallbackPage } from "./pages/login";
import { OverviewPage } from "./pages/overview";
import { PkiPage } from "./pages/pki";
import { PoliciesPage } from "./pages/policies";
import { TokenPage } from "./pages/token";
import { navigate, useRoute } from "./router";
import { forgetToken, storeToken, storedToken } from "./session";

/** The console: a login page, then the pages a logged-in operator may see. */
export function App() {
  const route = useRoute();
  const [token, setToken] = useState<string | undefined>(storedToken);
  const [notice, setNotice] = useState<string | undefined>();

  const next = route.page === "login" ? route.next : undefined;
  const loggedIn = useCallback(
    (t: string) => {
      storeToken(t);
      setToken(t);
      setNotice(undefined);
      navigate(next ?? "", true);
    },
    [next],
  );
  // Stable, so the overview does not reload when the app re-renders.
  const logOut = useCallback((why?: string) => {
    forgetToken();
    setToken(undefined);
    setNotice(why);
    navigate("login", true);
  }, []);

  // Every page but the login page needs a token.
  useEffect(() => {
    if (!token && route.page !== "login" && route.page !== "oidc-callback") navigate(`login?next=${encodeURIComponent(location.pathname)}`, true);
  }, [token, route.page]);

  useEffect(() => {
    const titles: Partial<Record<string, string>> = { login: "Log in", overview: "Overview", incident: "Incident response", lease: "Lease", leases: "Leases", "oidc-callback": "Signing in", secrets: "Secrets", policies: "Policies", pki: "PKI", database: "Databases", token: "Token" };
    document.title = `${titles[route.page] ?? "Not found"} · leasehold console`;
  }, [route.page]);

  if (route.page === "oidc-callback") return <OidcCallbackPage mount={route.mount} onLoggedIn={loggedIn} />;
  if (route.page === "login" || !token) return <LoginPage onLoggedIn={loggedIn} notice={notice} />;
  if (route.page === "overview") return <OverviewPage token={token} onLogOut={logOut} />;
  if (route.page === "secrets") return <KvPage token={token} view={route.view} onLogOut={logOut} />;
  if (route.page === "policies") return <PoliciesPage token={token} view={route.view} onLogOut={logOut} />;
  if (route.page === "pki") return <PkiPage token={token} mount={route.mount} onLogOut={logOut} />;
  if (route.page === "database") return <DatabasePage token={token} mount={route.mount} onLogOut={logOut} />;
  if (route.page === "incident") return <IncidentPage token={token} onLogOut={logOut} />;
  if (route.page === "lease") return <LeasePage token={token} id={route.id} onLogOut={logOut} />;
  if (route.page === "token") return <TokenPage token={token} accessor={route.accessor} onLogOut={logOut} />;
  if (route.page === "leases") return <LeaseBrowserPage token={token} prefix={route.prefix} onLogOut={logOut} />;
  return (
    <main class="page narrow">
      <h1>Page not found</h1>
      <p>
        The console has no page at <code>{route.path}</code>.{" "}
        <a href="/ui/" onClick={(e) => (e.preventDefault(), navigate(""))}>
          Go to the overview
        </a>
        .
      </p>
    </main>
  );
}
