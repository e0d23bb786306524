import { useState } from "preact/hooks";
import { api, apiError, type APIError } from "../api";
import type { User } from "../gen/hark/v1/user_pb";
import { useLocation } from "../router";
import { Empty, ErrorBox, JSONView, Link, Page, time, useLoad } from "../ui";

// Users lists the users of this environment: made by identify calls (from
// sources with identify on, or the API) and by inline recipients.
export function Users({ env }: { env: string }) {
  const [pages, setPages] = useState<string[]>([""]);
  const token = pages[pages.length - 1];
  const list = useLoad(() => api.users.listUsers({ environment: env, pageSize: 50, pageToken: token }), [env, token]);
  // ?user= opens one (a link from an audience's members).
  const { query } = useLocation();
  const [open, setOpen] = useState(query.get("user") ?? "");
  const users = list.data?.users ?? [];
  return (
    <Page
      title="Users"
      actions={
        <button type="button" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <p class="meta">
        The users of {env}. Tenants and objects have their own pages: <Link href="/tenants">Tenants</Link>,{" "}
        <Link href="/objects">Objects</Link>.
      </p>
      <ErrorBox error={list.error} />
      {list.data && users.length === 0 && (
        <Empty>
          No users in {env} yet. Turn on identify for a source and send an <code>identify</code> call, or use{" "}
          <code>hark users identify</code>.
        </Empty>
      )}
      {users.length > 0 && (
        <table class="list" id="users">
          <thead>
            <tr>
              <th>Id</th>
              <th>Name</th>
              <th>Email</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <>
                <tr class="clickable" data-id={u.id} onClick={() => setOpen(open === u.id ? "" : u.id)}>
                  <td>
                    <code>{u.id}</code>
                  </td>
                  <td>{u.name}</td>
                  <td>{u.email}</td>
                  <td class="nowrap">{time(u.updatedAt)}</td>
                </tr>
                {open === u.id && (
                  <tr class="detail">
                    <td colSpan={4}>
                      <UserDetail u={u} env={env} onDeleted={() => list.reload()} />
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
      <div class="row end">
        {pages.length > 1 && (
          <button type="button" onClick={() => setPages(pages.slice(0, -1))}>
            ← Previous
          </button>
        )}
        {list.data?.nextPageToken && (
          <button type="button" onClick={() => setPages([...pages, list.data!.nextPageToken])}>
            Next →
          </button>
        )}
      </div>
    </Page>
  );
}

// UserDetail is a user's fields, the objects they are subscribed to, and a
// delete (which, as Segment's delete and Knock's, also drops their
// subscriptions).
function UserDetail({ u, env, onDeleted }: { u: User; env: string; onDeleted: () => void }) {
  const subs = useLoad(() => api.objects.listUserSubscriptions({ environment: env, userId: u.id, pageSize: 100 }), [env, u.id]);
  const [error, setError] = useState<APIError>();
  const remove = async () => {
    if (!confirm(`Delete user ${u.id} and their subscriptions?`)) return;
    try {
      await api.users.deleteUser({ environment: env, id: u.id });
      onDeleted();
    } catch (e) {
      setError(apiError(e));
    }
  };
  const list = subs.data?.subscriptions ?? [];
  return (
    <div class="grid2">
      <JSONView value={{ phoneNumber: u.phoneNumber, locale: u.locale, timezone: u.timezone, avatar: u.avatar, properties: u.properties }} />
      <div>
        <h3>Subscriptions</h3>
        <ErrorBox error={subs.error ?? error} />
        {subs.data && list.length === 0 && <p class="muted">Subscribed to no object.</p>}
        {list.length > 0 && (
          <ul class="subs" id="user-subscriptions">
            {list.map((s) => (
              <li>
                <Link href={`/objects/${encodeURIComponent(s.collection)}/${encodeURIComponent(s.objectId)}`}>
                  {s.collection}/{s.objectId}
                </Link>
              </li>
            ))}
          </ul>
        )}
        <div class="row end">
          <button type="button" class="danger" id="delete-user" onClick={remove}>
            Delete user
          </button>
        </div>
      </div>
    </div>
  );
}
