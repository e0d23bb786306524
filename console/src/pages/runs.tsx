import { useMemo, useState } from "preact/hooks";
import { api } from "../api";
import { DeliveryStatus } from "../gen/hark/v1/destination_pb";
import { WorkflowRunStatus, type WorkflowRun } from "../gen/hark/v1/workflow_run_pb";
import { navigate, useLocation } from "../router";
import { StreamStatus, useStream } from "../stream";
import { Badge, Empty, ErrorBox, JSONView, Link, LoadOlder, Page, enumNames, time, useLoad, usePages } from "../ui";

const runStatusNames = enumNames(WorkflowRunStatus as unknown as Record<string, number>);
const deliveryStatusNames = enumNames(DeliveryStatus as unknown as Record<string, number>);

// Runs lists workflow runs, newest first, with new ones streamed in
// (WatchWorkflowRuns) as triggers start them.
export function Runs({ env }: { env: string }) {
  const { query } = useLocation();
  const workflow = query.get("workflow") ?? "";
  const open = query.get("run") ?? "";
  const workflows = useLoad(() => api.workflows.listWorkflows({ pageSize: 100 }), []);
  const list = useLoad(() => api.runs.listWorkflowRuns({ environment: env, workflowKey: workflow, pageSize: 50 }), [env, workflow]);
  const pages = usePages(
    list.data?.nextPageToken,
    async (pageToken) => {
      const r = await api.runs.listWorkflowRuns({ environment: env, workflowKey: workflow, pageSize: 50, pageToken });
      return { items: r.workflowRuns, token: r.nextPageToken };
    },
    [env, workflow, list.data],
  );
  const [live, setLive] = useState<WorkflowRun[]>([]);
  const stream = useStream(
    (signal, onOpen) =>
      (async function* () {
        for await (const m of api.runs.watchWorkflowRuns({ environment: env, workflowKey: workflow }, { signal, onHeader: onOpen })) {
          if (m.workflowRun) yield m.workflowRun;
        }
      })(),
    (run) => setLive((l) => [run, ...l.filter((r) => r.id !== run.id)].slice(0, 200)),
    () => list.reload(),
    [env, workflow],
  );
  const runs = useMemo(() => {
    const seen = new Set<string>();
    return [...live, ...(list.data?.workflowRuns ?? []), ...pages.older].filter((r) => !seen.has(r.id) && (seen.add(r.id), true));
  }, [live, list.data, pages.older]);
  const set = (k: string, v: string) => {
    const q = new URLSearchParams(location.search);
    if (v) q.set(k, v);
    else q.delete(k);
    navigate("/runs?" + q.toString(), true);
  };
  return (
    <Page
      title="Runs"
      actions={
        <>
          <StreamStatus state={stream} />
          <button type="button" onClick={() => list.reload()}>
            Refresh
          </button>
        </>
      }
    >
      <div class="filters">
        <select value={workflow} onChange={(e) => set("workflow", e.currentTarget.value)} aria-label="Workflow">
          <option value="">All workflows</option>
          {(workflows.data?.workflows ?? []).map((w) => (
            <option value={w.key}>{w.name || w.key}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {list.data && runs.length === 0 && (
        <Empty>
          No runs in {env} yet. A run starts when an event matches an active <Link href="/triggers">trigger</Link> (or with{" "}
          <code>hark workflows trigger</code>); it shows up here at once.
        </Empty>
      )}
      {runs.length > 0 && (
        <table class="list" id="runs">
          <thead>
            <tr>
              <th>Started</th>
              <th>Workflow</th>
              <th>Recipients</th>
              <th>Status</th>
              <th>Deliveries</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <>
                <tr class="clickable" data-id={r.id} onClick={() => set("run", open === r.id ? "" : r.id)}>
                  <td class="nowrap">{time(r.createdAt)}</td>
                  <td>{r.workflowKey}</td>
                  <td class="recipients">
                    <RecipientStates r={r} />
                  </td>
                  <td>
                    <Badge value={r.status} names={runStatusNames} />
                  </td>
                  <td>
                    {r.deliveries.map((d) => (
                      <Badge value={d.status} names={deliveryStatusNames} />
                    ))}
                  </td>
                </tr>
                {open === r.id && (
                  <tr class="detail">
                    <td colSpan={5}>
                      <RunDetail r={r} />
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
      <LoadOlder pages={pages} />
    </Page>
  );
}

// recipientStates are the run's recipients with their own status; runs
// stored before per-recipient state have only `recipients`, which share
// the run's status.
function recipientStates(r: WorkflowRun) {
  if (r.recipientStates.length > 0) return r.recipientStates;
  return r.recipients.map((id) => ({ id, status: r.status, cancelReason: "", cancelledAt: undefined }));
}

// RecipientStates lists the recipients, marking the ones whose status is
// not the run's (a run cancelled for some recipients stays active for the
// others).
function RecipientStates({ r }: { r: WorkflowRun }) {
  return (
    <>
      {recipientStates(r).map((s, i) => (
        <span class="recipient" data-recipient={s.id} data-status={runStatusNames[s.status]}>
          {i > 0 && ", "}
          {s.id}
          {s.status !== r.status && (
            <>
              {" "}
              <Badge value={s.status} names={runStatusNames} />
            </>
          )}
        </span>
      ))}
    </>
  );
}

function RunDetail({ r }: { r: WorkflowRun }) {
  return (
    <div class="grid2">
      <dl class="props">
        <dt>Run</dt>
        <dd>
          <code>{r.id}</code>
        </dd>
        {r.triggerId && (
          <>
            <dt>Trigger</dt>
            <dd>
              <Link href={"/triggers/" + r.triggerId}>{r.triggerId}</Link>
            </dd>
          </>
        )}
        {r.sourceEventId && (
          <>
            <dt>Event</dt>
            <dd>
              <Link href={"/events/" + r.sourceEventId}>{r.sourceEventId}</Link>
            </dd>
          </>
        )}
        {r.actor && (
          <>
            <dt>Actor</dt>
            <dd>{r.actor}</dd>
          </>
        )}
        {r.tenant && (
          <>
            <dt>Tenant</dt>
            <dd>{r.tenant}</dd>
          </>
        )}
        <dt>Recipients</dt>
        <dd id="recipient-states">
          {recipientStates(r).map((s) => (
            <div data-recipient={s.id}>
              <code>{s.id}</code> <Badge value={s.status} names={runStatusNames} />
              {s.cancelledAt && <span class="muted"> {time(s.cancelledAt)}</span>}
              {s.cancelReason && <span class="muted"> {s.cancelReason}</span>}
            </div>
          ))}
        </dd>
        {r.skippedRecipients.length > 0 && (
          <>
            <dt>Skipped</dt>
            <dd>
              {r.skippedRecipients.map((s) => (
                <div>
                  {s.id}: {s.reason}
                </div>
              ))}
            </dd>
          </>
        )}
        {r.deliveries.map((d) => (
          <>
            <dt>Delivery</dt>
            <dd>
              <Link href={"/destinations/" + d.destinationId}>{d.destinationId}</Link> <Badge value={d.status} names={deliveryStatusNames} />
            </dd>
          </>
        ))}
      </dl>
      {r.data ? <JSONView value={r.data} /> : <p class="hint">No data: the trigger maps none.</p>}
    </div>
  );
}
