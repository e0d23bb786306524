import { useState } from "preact/hooks";
import { Code } from "@connectrpc/connect";
import { apiError, checkToken, setToken } from "../api";
import { navigate } from "../router";

// SignIn asks for the admin token and checks it against the API before
// keeping it (in sessionStorage only).
export function SignIn(props: { message: string; onSignedIn: () => void }) {
  const [t, setT] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await checkToken(t.trim());
      setToken(t.trim());
      props.onSignedIn();
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/sources", true);
    } catch (err) {
      const a = apiError(err);
      setError(
        a.code === Code.Unauthenticated
          ? "That is not hark's admin token. It is printed by the first `hark serve` and saved in <data-dir>/admin-token (or set with HARK_ADMIN_TOKEN)."
          : a.message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="signin">
      <form onSubmit={submit} class="card">
        <h1>hark</h1>
        <p>Sign in with the admin token. It stays in this tab only.</p>
        {props.message && !error && <div class="notice">{props.message}</div>}
        <label class="field">
          <span class="label">Admin token</span>
          <input
            id="token"
            type="password"
            autocomplete="current-password"
            value={t}
            onInput={(e) => setT(e.currentTarget.value)}
            autofocus
          />
        </label>
        {error && (
          <div class="error" role="alert" id="signin-error">
            {error}
          </div>
        )}
        <button type="submit" class="primary" disabled={busy || !t.trim()} id="sign-in">
          Sign in
        </button>
      </form>
    </div>
  );
}
