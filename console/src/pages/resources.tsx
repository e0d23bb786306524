// Tenants, objects (by collection, with their subscriptions) and audiences'
// members: what the action mappings (tenants_set, objects_set,
// objects_subscribe, audiences_add_member, …) and the API store, to read
// and to delete. Deleting asks first (the browser's confirm) and goes
// through the same API calls as the CLI; nothing here edits properties,
// which belong to the sender's events and hark's API.
import { useState } from "preact/hooks";
import { api, apiError, type APIError } from "../api";
import { navigate, useLocation } from "../router";
import { Empty, ErrorBox, JSONView, Link, Page, time, useLoad } from "../ui";

// usePager keeps the page tokens walked so far, for Previous / Next.
function usePager(deps: unknown[]) {
  const [state, setState] = useState<{ key: string; tokens: string[] }>({ key: "", tokens: [""] });
  const key = JSON.stringify(deps);
  const tokens = state.key === key ? state.tokens : [""];
  return {
    token: tokens[tokens.length - 1],
    prev: tokens.length > 1 ? () => setState({ key, tokens: tokens.slice(0, -1) }) : undefined,
    next: (t: string) => (t ? () => setState({ key, tokens: [...tokens, t] }) : undefined),
  };
}

function Pager({ prev, next }: { prev?: () => void; next?: () => void }) {
  if (!prev && !next) return null;
  return (
    <div class="row end">
      {prev && (
        <button type="button" onClick={prev}>
          ← Previous
        </button>
      )}
      {next && (
        <button type="button" onClick={next}>
          Next →
        </button>
      )}
    </div>
  );
}

// useRemove runs a confirmed delete and keeps its error.
function useRemove() {
  const [error, setError] = useState<APIError>();
  const run = async (question: string, f: () => Promise<unknown>, after: () => void) => {
    if (!confirm(question)) return;
    setError(undefined);
    try {
      await f();
      after();
    } catch (e) {
      setError(apiError(e));
    }
  };
  return { error, run };
}

function hasKeys(v: unknown) {
  return !!v && typeof v === "object" && Object.keys(v).length > 0;
}

export function Tenants({ env }: { env: string }) {
  const pager = usePager([env]);
  const list = useLoad(() => api.tenants.listTenants({ environment: env, pageSize: 50, pageToken: pager.token }), [env, pager.token]);
  const tenants = list.data?.tenants ?? [];
  return (
    <Page
      title="Tenants"
      actions={
        <button type="button" id="refresh" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <p class="meta">The tenants of {env}: set by Segment group calls, tenants_set triggers, inline tenants of runs, or the API.</p>
      <ErrorBox error={list.error} />
      {list.data && tenants.length === 0 && (
        <Empty>
          No tenants in {env} yet. Add a <Link href="/triggers/new">trigger</Link> with the tenants_set action, turn on group for a
          Segment source, or use <code>hark tenants set</code>.
        </Empty>
      )}
      {tenants.length > 0 && (
        <table class="list" id="tenants">
          <thead>
            <tr>
              <th>Id</th>
              <th>Name</th>
              <th>Properties</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {tenants.map((t) => (
              <tr class="clickable" data-id={t.id} onClick={() => navigate("/tenants/" + encodeURIComponent(t.id))}>
                <td>
                  <Link href={"/tenants/" + encodeURIComponent(t.id)}>
                    <code>{t.id}</code>
                  </Link>
                </td>
                <td>{t.name}</td>
                <td class="muted">{Object.keys(t.properties ?? {}).join(", ")}</td>
                <td class="nowrap">{time(t.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager prev={pager.prev} next={pager.next(list.data?.nextPageToken ?? "")} />
    </Page>
  );
}

export function TenantDetail({ id, env }: { id: string; env: string }) {
  const r = useLoad(() => api.tenants.getTenant({ environment: env, id }), [env, id]);
  const remove = useRemove();
  const t = r.data?.tenant;
  return (
    <Page
      title={t ? t.name || t.id : "Tenant"}
      actions={
        <>
          <Link href="/tenants">← Tenants</Link>
          {t && (
            <button
              type="button"
              class="danger"
              id="delete"
              onClick={() =>
                remove.run(`Delete tenant ${id}? Runs already started keep it; new ones naming it set it again.`, () => api.tenants.deleteTenant({ environment: env, id }), () => navigate("/tenants"))
              }
            >
              Delete
            </button>
          )}
        </>
      }
    >
      <ErrorBox error={r.error ?? remove.error} />
      {t && (
        <div class="card" id="tenant">
          <dl class="props">
            <dt>Id</dt>
            <dd>
              <code>{t.id}</code>
            </dd>
            <dt>Name</dt>
            <dd>{t.name || <span class="muted">none</span>}</dd>
            <dt>Created</dt>
            <dd>{time(t.createdAt)}</dd>
            <dt>Updated</dt>
            <dd>{time(t.updatedAt)}</dd>
          </dl>
          <h2>Properties</h2>
          <JSONView value={t.properties ?? {}} />
          {hasKeys(t.settings) && (
            <>
              <h2>Settings</h2>
              <JSONView value={t.settings} />
            </>
          )}
        </div>
      )}
    </Page>
  );
}

// Objects lists one collection's objects: hark has no list of collections
// (Knock has none either), so the page asks for one, and remembers the
// last in the link.
export function Objects({ env }: { env: string }) {
  const { query } = useLocation();
  const collection = query.get("collection") ?? "";
  const pager = usePager([env, collection]);
  const list = useLoad(
    () => (collection ? api.objects.listObjects({ environment: env, collection, pageSize: 50, pageToken: pager.token }) : Promise.resolve(undefined)),
    [env, collection, pager.token],
  );
  const objects = list.data?.objects ?? [];
  const href = (id: string) => `/objects/${encodeURIComponent(collection)}/${encodeURIComponent(id)}`;
  return (
    <Page
      title="Objects"
      actions={
        <button type="button" id="refresh" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <LookupForm id="collection-form" inputId="collection" label="Collection" placeholder="Collection, e.g. projects" value={collection} to={(v) => "/objects?collection=" + encodeURIComponent(v)} />
      <ErrorBox error={list.error} />
      {!collection && <Empty>Objects live in collections (projects, teams, …): enter one to list its objects.</Empty>}
      {list.data && objects.length === 0 && (
        <Empty>
          No objects in {collection} in {env}. Add a <Link href="/triggers/new">trigger</Link> with the objects_set action, or use{" "}
          <code>hark objects set {collection}</code>.
        </Empty>
      )}
      {objects.length > 0 && (
        <table class="list" id="objects">
          <thead>
            <tr>
              <th>Id</th>
              <th>Properties</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {objects.map((o) => (
              <tr class="clickable" data-id={o.id} onClick={() => navigate(href(o.id))}>
                <td>
                  <Link href={href(o.id)}>
                    <code>{o.id}</code>
                  </Link>
                </td>
                <td class="muted">{Object.keys(o.properties ?? {}).join(", ")}</td>
                <td class="nowrap">{time(o.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager prev={pager.prev} next={pager.next(list.data?.nextPageToken ?? "")} />
    </Page>
  );
}

// ObjectDetail shows an object and its subscribers (the recipients a run
// for the object fans out to), each removable.
export function ObjectDetail({ collection, id, env }: { collection: string; id: string; env: string }) {
  const r = useLoad(() => api.objects.getObject({ environment: env, collection, id }), [env, collection, id]);
  const pager = usePager([env, collection, id]);
  const subs = useLoad(
    () => api.objects.listSubscriptions({ environment: env, collection, id, pageSize: 50, pageToken: pager.token }),
    [env, collection, id, pager.token],
  );
  const remove = useRemove();
  const o = r.data?.object;
  const back = "/objects?collection=" + encodeURIComponent(collection);
  const subscriptions = subs.data?.subscriptions ?? [];
  return (
    <Page
      title={o ? `${collection} / ${o.id}` : "Object"}
      actions={
        <>
          <Link href={back}>← {collection}</Link>
          {o && (
            <button
              type="button"
              class="danger"
              id="delete"
              onClick={() =>
                remove.run(
                  `Delete ${collection}/${id} and its subscriptions?`,
                  () => api.objects.deleteObject({ environment: env, collection, id }),
                  () => navigate(back),
                )
              }
            >
              Delete
            </button>
          )}
        </>
      }
    >
      <ErrorBox error={r.error ?? remove.error} />
      {o && (
        <div class="card" id="object">
          <dl class="props">
            <dt>Collection</dt>
            <dd>
              <code>{o.collection}</code>
            </dd>
            <dt>Id</dt>
            <dd>
              <code>{o.id}</code>
            </dd>
            <dt>Recipient</dt>
            <dd>
              <code>{JSON.stringify({ collection: o.collection, id: o.id })}</code>
            </dd>
            <dt>Updated</dt>
            <dd>{time(o.updatedAt)}</dd>
          </dl>
          <h2>Properties</h2>
          <JSONView value={o.properties ?? {}} />
        </div>
      )}
      {o && (
        <>
          <h2>Subscriptions</h2>
          <ErrorBox error={subs.error} />
          {subs.data && subscriptions.length === 0 && (
            <Empty>
              No subscribers: a run for this object reaches no one. Add them with an objects_subscribe trigger or{" "}
              <code>
                hark objects subscribe {collection} {id}
              </code>
              .
            </Empty>
          )}
          {subscriptions.length > 0 && (
            <table class="list" id="subscriptions">
              <thead>
                <tr>
                  <th>Recipient</th>
                  <th class="wide-only">Properties</th>
                  <th class="wide-only">Since</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {subscriptions.map((s) => (
                  <tr data-id={s.recipient}>
                    <td>
                      <code>{s.recipient}</code>
                    </td>
                    <td class="muted wide-only">{hasKeys(s.properties) ? JSON.stringify(s.properties) : ""}</td>
                    <td class="nowrap wide-only">{time(s.createdAt)}</td>
                    <td class="num">
                      <button
                        type="button"
                        class="small danger unsubscribe"
                        onClick={() =>
                          remove.run(
                            `Unsubscribe ${s.recipient} from ${collection}/${id}?`,
                            () => api.objects.deleteSubscriptions({ environment: env, collection, id, recipients: [s.recipient] }),
                            () => subs.reload(),
                          )
                        }
                      >
                        Unsubscribe
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <Pager prev={pager.prev} next={pager.next(subs.data?.nextPageToken ?? "")} />
        </>
      )}
    </Page>
  );
}

// Audiences lists the environment's audiences and one audience's members.
// Audiences exist by their members (adding the first creates one; removing
// the last removes it from the list).
export function Audiences({ env }: { env: string }) {
  const { query } = useLocation();
  const key = query.get("key") ?? "";
  const keys = useLoad(() => api.audiences.listAudiences({ environment: env, pageSize: 100 }), [env, key]);
  const pager = usePager([env, key]);
  const list = useLoad(
    () => (key ? api.audiences.listAudienceMembers({ environment: env, key, pageSize: 50, pageToken: pager.token }) : Promise.resolve(undefined)),
    [env, key, pager.token],
  );
  const remove = useRemove();
  const members = list.data?.members ?? [];
  return (
    <Page
      title="Audiences"
      actions={
        <button type="button" id="refresh" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <LookupForm id="audience-form" inputId="audience-key" label="Audience key" placeholder="Audience key, e.g. beta-testers" value={key} to={(v) => "/audiences?key=" + encodeURIComponent(v)} />
      <ErrorBox error={list.error ?? remove.error} />
      {!key && <Empty>Pick an audience, or enter an audience's key, to list its members.</Empty>}
      {!key && (keys.data?.keys.length ?? 0) > 0 && (
        <ul id="audience-keys" class="keys">
          {keys.data?.keys.map((k) => (
            <li key={k}>
              <Link href={"/audiences?key=" + encodeURIComponent(k)}>{k}</Link>
            </li>
          ))}
        </ul>
      )}
      {list.data && members.length === 0 && (
        <Empty>
          No members in {key} in {env}. Add them with an audiences_add_member <Link href="/triggers/new">trigger</Link> or{" "}
          <code>hark audiences add {key}</code>.
        </Empty>
      )}
      {members.length > 0 && (
        <table class="list" id="members">
          <thead>
            <tr>
              <th>User</th>
              <th>Tenant</th>
              <th class="wide-only">Added</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr data-id={m.userId + "/" + m.tenant}>
                <td>
                  <Link href={"/users?user=" + encodeURIComponent(m.userId)}>
                    <code>{m.userId}</code>
                  </Link>
                </td>
                <td>{m.tenant ? <Link href={"/tenants/" + encodeURIComponent(m.tenant)}>{m.tenant}</Link> : <span class="muted">none</span>}</td>
                <td class="nowrap wide-only">{time(m.createdAt)}</td>
                <td class="num">
                  <button
                    type="button"
                    class="small danger remove-member"
                    onClick={() =>
                      remove.run(
                        `Remove ${m.userId}${m.tenant ? ` (tenant ${m.tenant})` : ""} from ${key}?`,
                        () => api.audiences.removeAudienceMembers({ environment: env, key, members: [{ userId: m.userId, tenant: m.tenant }] }),
                        () => list.reload(),
                      )
                    }
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager prev={pager.prev} next={pager.next(list.data?.nextPageToken ?? "")} />
    </Page>
  );
}

// LookupForm asks for the key a page lists by (a collection, an audience)
// and navigates to the page for it.
function LookupForm(props: { id: string; inputId: string; label: string; placeholder: string; value: string; to: (v: string) => string }) {
  const [typed, setTyped] = useState(props.value);
  return (
    <form
      class="filters"
      id={props.id}
      onSubmit={(e) => {
        e.preventDefault();
        navigate(props.to(typed.trim()), true);
      }}
    >
      <input id={props.inputId} placeholder={props.placeholder} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} aria-label={props.label} />
      <button type="submit">Show</button>
    </form>
  );
}
