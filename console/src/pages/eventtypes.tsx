import { api } from "../api";
import { navigate, useLocation } from "../router";
import { Empty, ErrorBox, Link, Page, time, useLoad } from "../ui";

// EventTypes lists the unique events (type + name) a source has received in
// this environment, the list a trigger is picked from.
export function EventTypes({ env }: { env: string }) {
  const { query } = useLocation();
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  // Unique events are per source environment: the first source until one
  // is picked.
  const source = query.get("source") ?? sources.data?.sources[0]?.id ?? "";
  const list = useLoad(
    () => (source ? api.events.listEventTypes({ environment: env, sourceId: source, pageSize: 200 }) : Promise.resolve(undefined)),
    [env, source],
  );
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
          {(sources.data?.sources ?? []).map((s) => (
            <option value={s.id}>{s.name}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {sources.data && !source && (
        <Empty>
          No sources yet. <Link href="/sources">Create one</Link> and send it events: each kind it receives is listed here.
        </Empty>
      )}
      {list.data && types.length === 0 && (
        <Empty>
          No events received by this source in {env} yet. Send one to a source's URL (see <Link href="/sources">Sources</Link>), then press
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
