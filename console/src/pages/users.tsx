import { useState } from "preact/hooks";
import { api } from "../api";
import { Empty, ErrorBox, JSONView, Page, time, useLoad } from "../ui";

// Users lists the users of this environment: made by identify calls (from
// sources with identify on, or the API) and by inline recipients.
export function Users({ env }: { env: string }) {
  const [pages, setPages] = useState<string[]>([""]);
  const token = pages[pages.length - 1];
  const list = useLoad(() => api.users.listUsers({ environment: env, pageSize: 50, pageToken: token }), [env, token]);
  const [open, setOpen] = useState("");
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
        Tenants and objects are not in hark's API yet, so the console does not show them.
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
                <tr class="clickable" onClick={() => setOpen(open === u.id ? "" : u.id)}>
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
                      <JSONView value={{ phoneNumber: u.phoneNumber, locale: u.locale, timezone: u.timezone, avatar: u.avatar, properties: u.properties }} />
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
