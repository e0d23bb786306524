import { api } from "../api";
import { navigate, useLocation } from "../router";
import { Empty, ErrorBox, Page, time, useLoad } from "../ui";

// Refusals is the refused-delivery log of one source environment: webhook
// deliveries hark answered with an error (too large, bad JSON, bad
// signature…), which never became events.
export function Refusals({ env }: { env: string }) {
  const { query } = useLocation();
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const source = query.get("source") ?? sources.data?.sources[0]?.id ?? "";
  const list = useLoad(
    () => (source ? api.sources.listRefusals({ environment: env, sourceId: source, pageSize: 100 }) : Promise.resolve(undefined)),
    [env, source],
  );
  const refusals = list.data?.refusals ?? [];
  return (
    <Page
      title="Refused deliveries"
      actions={
        <button type="button" id="refresh" onClick={() => list.reload()}>
          Refresh
        </button>
      }
    >
      <div class="filters">
        <select value={source} onChange={(e) => navigate("/refusals?source=" + e.currentTarget.value, true)} aria-label="Source">
          {(sources.data?.sources ?? []).map((s) => (
            <option value={s.id}>{s.name}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {sources.data && !source && <Empty>No sources yet, so nothing was refused.</Empty>}
      {list.data && refusals.length === 0 && (
        <Empty>Nothing refused in {env}: every delivery to this source's URL was accepted.</Empty>
      )}
      {refusals.length > 0 && (
        <table class="list" id="refusals">
          <thead>
            <tr>
              <th>Time</th>
              <th>Status</th>
              <th>Reason</th>
              <th class="num">Size</th>
            </tr>
          </thead>
          <tbody>
            {refusals.map((r) => (
              <tr>
                <td class="nowrap">{time(r.time)}</td>
                <td>{r.statusCode}</td>
                <td>{r.reason}</td>
                <td class="num">{String(r.sizeBytes)} B</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
