// The console's shell: sign-in, the navigation, the environment picker and
// the router that picks a page.
import { render } from "preact";
import "./style.css";
import { useEffect, useState } from "preact/hooks";
import { api, onUnauthenticated, signOut, token } from "./api";
import { navigate, useLocation } from "./router";
import { Link, useLoad } from "./ui";
import { SignIn } from "./pages/signin";
import { Sources, SourceDetail } from "./pages/sources";
import { Events, EventDetail } from "./pages/events";
import { EventTypes } from "./pages/eventtypes";
import { Triggers, TriggerEditor } from "./pages/triggers";
import { Workflows } from "./pages/workflows";
import { Runs } from "./pages/runs";
import { Users } from "./pages/users";
import { Audiences, ObjectDetail, Objects, TenantDetail, Tenants } from "./pages/resources";
import { Destinations, DestinationDetail } from "./pages/destinations";
import { Refusals } from "./pages/refusals";

// The pages of the navigation; their first path segments are console.Pages
// on the Go side.
const nav: [string, string][] = [
  ["/sources", "Sources"],
  ["/events", "Event log"],
  ["/event-types", "Unique events"],
  ["/triggers", "Triggers"],
  ["/workflows", "Workflows"],
  ["/runs", "Runs"],
  ["/users", "Users"],
  ["/tenants", "Tenants"],
  ["/objects", "Objects"],
  ["/audiences", "Audiences"],
  ["/destinations", "Destinations"],
  ["/refusals", "Refused deliveries"],
];

const envKey = "hark.environment";

function route(path: string, env: string) {
  const parts = path.split("/").filter(Boolean);
  // Ids are encoded in paths (/objects/<collection>/<id>); a malformed
  // escape is kept as typed rather than breaking the page.
  const [page, id, sub] = parts.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  switch (page) {
    case "sources":
      return id ? <SourceDetail id={id} env={env} /> : <Sources env={env} />;
    case "events":
      return id ? <EventDetail id={id} env={env} /> : <Events env={env} />;
    case "event-types":
      return <EventTypes env={env} />;
    case "triggers":
      return id ? <TriggerEditor id={id === "new" ? "" : id} env={env} /> : <Triggers env={env} />;
    case "workflows":
      return <Workflows env={env} />;
    case "runs":
      return <Runs env={env} />;
    case "users":
      return <Users env={env} />;
    case "tenants":
      return id ? <TenantDetail id={id} env={env} /> : <Tenants env={env} />;
    case "objects":
      return id && sub ? <ObjectDetail collection={id} id={sub} env={env} /> : <Objects env={env} />;
    case "audiences":
      return <Audiences env={env} />;
    case "destinations":
      return id ? <DestinationDetail id={id} env={env} /> : <Destinations env={env} />;
    case "refusals":
      return <Refusals env={env} />;
    default:
      return <Sources env={env} />;
  }
}

function Shell() {
  const { path, query } = useLocation();
  const [env, setEnv] = useState(query.get("env") ?? sessionStorage.getItem(envKey) ?? "development");
  // A link may name the environment ("View in environment"): it becomes the
  // picked one.
  const linked = query.get("env");
  useEffect(() => {
    if (linked && linked !== env) pick(linked);
  }, [linked]);
  const envs = useLoad(() => api.environments.listEnvironments({ pageSize: 100 }), []);
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [path]);
  const pick = (e: string) => {
    sessionStorage.setItem(envKey, e);
    setEnv(e);
  };
  return (
    <div class="shell">
      <header class="top">
        <button type="button" class="menu-toggle" aria-label="Menu" onClick={() => setMenu(!menu)}>
          ☰
        </button>
        <Link href="/sources" class="brand">
          hark
        </Link>
        <label class="env">
          <span>Environment</span>
          <select id="environment" value={env} onChange={(e) => pick(e.currentTarget.value)}>
            {(envs.data?.environments ?? [{ slug: env, name: env }]).map((e) => (
              <option value={e.slug}>{e.name || e.slug}</option>
            ))}
          </select>
        </label>
        <button type="button" class="link" id="sign-out" onClick={() => signOut("You signed out.")}>
          Sign out
        </button>
      </header>
      <nav class={"side" + (menu ? " open" : "")}>
        {nav.map(([href, label]) => (
          <Link href={href} class={path === href || path.startsWith(href + "/") ? "active" : ""}>
            {label}
          </Link>
        ))}
      </nav>
      <main>{route(path, env)}</main>
    </div>
  );
}

function App() {
  const { path } = useLocation();
  const [message, setMessage] = useState("");
  // Set during render, not in an effect: the pages' effects (their first
  // API calls) run before this component's.
  onUnauthenticated((m) => {
    setMessage(m);
    // Several calls of a page fail at once: the first one decides where
    // to come back to.
    if (location.pathname.startsWith("/sign-in")) return;
    navigate("/sign-in?next=" + encodeURIComponent(location.pathname + location.search), true);
  });
  if (!token() || path.startsWith("/sign-in")) {
    return <SignIn message={message} onSignedIn={() => setMessage("")} />;
  }
  return <Shell />;
}

render(<App />, document.getElementById("app")!);
