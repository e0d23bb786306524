// Shared pieces of the console's pages: loading state, errors next to
// fields, copy buttons, JSON and time display.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { apiError, type APIError } from "./api";
import { onLink } from "./router";

// useLoad runs load now and on reload(), keeping the last result.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): {
  data?: T;
  error?: APIError;
  loading: boolean;
  reload: () => void;
} {
  const [state, setState] = useState<{ data?: T; error?: APIError; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (e) => live && setState({ error: apiError(e), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { ...state, reload };
}

export function Link(props: { href: string; children: ComponentChildren; class?: string; id?: string }) {
  return (
    <a href={props.href} onClick={onLink} class={props.class} id={props.id}>
      {props.children}
    </a>
  );
}

export function ErrorBox({ error }: { error?: APIError }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {error.message}
    </div>
  );
}

// FormError shows an API error for a form whose fields show their own
// violations: the message, unless every violation is next to a field of
// shown, and the violations of fields the form does not have.
export function FormError({ error, shown }: { error?: APIError; shown: string[] }) {
  if (!error) return null;
  const fields = Object.keys(error.fields);
  const others = fields.filter((f) => !shown.includes(f));
  if (fields.length > 0 && others.length === 0) return null;
  return (
    <div class="error" role="alert">
      {others.length === 0
        ? error.message
        : others.map((f) => (
            <div>
              {f}: {error.fields[f]}
            </div>
          ))}
    </div>
  );
}

// FieldError shows the API's violation for one field, under the field.
export function FieldError({ error, field }: { error?: APIError; field: string }) {
  const msg = error?.fields[field];
  if (!msg) return null;
  return (
    <div class="field-error" data-field={field}>
      {msg}
    </div>
  );
}

export function Field(props: {
  label: string;
  field: string;
  error?: APIError;
  hint?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <label class={"field" + (props.error?.fields[props.field] ? " invalid" : "")}>
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint && <span class="hint">{props.hint}</span>}
      <FieldError error={props.error} field={props.field} />
    </label>
  );
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without clipboard access (plain http on another host), select the
      // text for a manual copy instead.
      const r = document.createRange();
      const el = document.querySelector(`[data-copy="${CSS.escape(text)}"]`);
      if (el) {
        r.selectNodeContents(el);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(r);
      }
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return (
    <button type="button" class="small" onClick={copy} title="Copy to the clipboard">
      {done ? "Copied" : label}
    </button>
  );
}

export function Code({ text }: { text: string }) {
  return (
    <div class="code">
      <code data-copy={text}>{text}</code>
      <CopyButton text={text} />
    </div>
  );
}

// segmentOrder puts a Segment event's keys in the spec's order; the API's
// Struct (a map) does not keep the sender's.
const segmentOrder = ["type", "event", "name", "userId", "anonymousId", "groupId", "previousId", "messageId", "timestamp", "properties", "traits", "context"];

function ordered(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(ordered);
  if (v === null || typeof v !== "object") return v;
  const rank = (k: string) => {
    const i = segmentOrder.indexOf(k);
    return i < 0 ? segmentOrder.length : i;
  };
  const keys = Object.keys(v).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = ordered((v as Record<string, unknown>)[k]);
  return out;
}

export function JSONView({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(ordered(value ?? null), null, 2)}</pre>;
}

export function time(t?: Timestamp): string {
  if (!t) return "";
  const d = timestampDate(t);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        <div class="actions">{props.actions}</div>
      </header>
      {props.children}
    </section>
  );
}

// Badge shows an enum value without its prefix, e.g. "PROCESSED".
export function Badge({ value, names }: { value: number; names: Record<number, string> }) {
  const full = names[value] ?? String(value);
  const short = full.replace(/^[A-Z_]*?_STATUS_|^[A-Z_]*?_TYPE_/, "").toLowerCase().replace(/_/g, " ");
  return <span class={"badge " + short.replace(/ /g, "-")}>{short}</span>;
}

// enumNames maps an enum object of the generated code to its names.
export function enumNames(e: Record<string, string | number>): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(e)) if (typeof v === "number") out[v] = k;
  return out;
}

export function useInterval(f: () => void, ms: number) {
  const ref = useRef(f);
  ref.current = f;
  useEffect(() => {
    const id = setInterval(() => ref.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}

// usePages loads the pages after a first one on demand ("Load older"),
// keeping them until the query changes.
export function usePages<T>(first: string | undefined, next: (token: string) => Promise<{ items: T[]; token: string }>, deps: unknown[]) {
  const [older, setOlder] = useState<T[]>([]);
  const [token, setToken] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<APIError>();
  useEffect(() => {
    setOlder([]);
    setToken(undefined);
    setError(undefined);
  }, deps);
  const cursor = token === undefined ? first : token;
  const more = async () => {
    if (!cursor) return;
    setLoading(true);
    try {
      const r = await next(cursor);
      setOlder((o) => [...o, ...r.items]);
      setToken(r.token);
    } catch (e) {
      setError(apiError(e));
    } finally {
      setLoading(false);
    }
  };
  return { older, more: cursor ? more : undefined, loading, error };
}

export function LoadOlder({ pages }: { pages: { more?: () => void; loading: boolean; error?: APIError } }) {
  return (
    <>
      <ErrorBox error={pages.error} />
      {pages.more && (
        <div class="row end">
          <button type="button" id="load-older" onClick={pages.more} disabled={pages.loading}>
            {pages.loading ? "Loading…" : "Load older"}
          </button>
        </div>
      )}
    </>
  );
}
