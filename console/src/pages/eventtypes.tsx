import { api } from "../api";
import { navigate, useLocation } from "../router";
import { Empty, ErrorBox, Link, Page, time, useLoad } from "../ui";

// EventTypes lists the unique events (type + name) a source has received in
// this environment, the list a trigger is picked from.
export function EventTypes({ env }: { env: string }) {
  const { query } = useLocation();
  const source = query.get("source") ?? "";
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const list = useLoad(() => api.events.listEventTypes({ environment: env, sourceId: source, pageSize: 200 }), [env, source]);
  const names = new Map((sources.data?.sources ?? []).map((s) => [s.id, s.name]));
  const types = list.data?.eventTypes ?? [];
  return (
    <Page
      title="Unique events"
      actions={
        <button type="button" id="refresh" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <div class="filters">
        <select value={source} onChange={(e) => navigate("/event-types" + (e.currentTarget.value ? "?source=" + e.currentTarget.value : ""), true)} aria-label="Source">
          <option value="">All sources</option>
          {(sources.data?.sources ?? []).map((s) => (
            <option value={s.id}>{s.name}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {list.data && types.length === 0 && (
        <Empty>
          No events received in {env} yet. Send one to a source's URL (see <Link href="/sources">Sources</Link>), then press
          Refresh.
        </Empty>
      )}
      {types.length > 0 && (
        <table class="list" id="event-types">
          <thead>
            <tr>
              <th>Source</th>
              <th>Type</th>
              <th>Event</th>
              <th class="num">Count</th>
              <th>Last received</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {types.map((t) => (
              <tr>
                <td>{names.get(t.sourceId) ?? t.sourceId}</td>
                <td>{t.type}</td>
                <td>
                  <Link href={`/events?source=${t.sourceId}&type=${t.type}&name=${encodeURIComponent(t.name)}`}>{t.name || "—"}</Link>
                </td>
                <td class="num">{String(t.count)}</td>
                <td class="nowrap">{time(t.lastReceivedAt)}</td>
                <td>
                  <Link href={`/triggers/new?source=${t.sourceId}&type=${t.type}&name=${encodeURIComponent(t.name)}`}>Add trigger</Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
