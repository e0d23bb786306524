import { useMemo, useState } from "preact/hooks";
import { api } from "../api";
import { ActionStatus, ActionType, SourceEventStatus, type RefusedDelivery, type SourceEvent } from "../gen/hark/v1/event_pb";
import { navigate, useLocation } from "../router";
import { useStream, StreamStatus } from "../stream";
import { Badge, Code, Empty, ErrorBox, JSONView, Link, LoadOlder, Page, enumNames, time, useLoad, usePages } from "../ui";

const statusNames = enumNames(SourceEventStatus as unknown as Record<string, number>);
const actionTypeNames = enumNames(ActionType as unknown as Record<string, number>);
const actionStatusNames = enumNames(ActionStatus as unknown as Record<string, number>);

// Events is the live event log: the latest page from ListSourceEvents,
// with what WatchSourceEvents streams in on top, without reloading.
export function Events({ env }: { env: string }) {
  const { query } = useLocation();
  const source = query.get("source") ?? "";
  const type = query.get("type") ?? "";
  const name = query.get("name") ?? "";
  const status = Number(query.get("status") ?? 0) as SourceEventStatus;
  const userId = query.get("user") ?? "";
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const list = useLoad(
    () => api.events.listSourceEvents({ environment: env, sourceId: source, type, name, status, userId, pageSize: 50 }),
    [env, source, type, name, status, userId],
  );
  const pages = usePages(
    list.data?.nextPageToken,
    async (pageToken) => {
      const r = await api.events.listSourceEvents({ environment: env, sourceId: source, type, name, status, userId, pageSize: 50, pageToken });
      return { items: r.sourceEvents, token: r.nextPageToken };
    },
    [env, source, type, name, status, userId, list.data],
  );
  const [live, setLive] = useState<SourceEvent[]>([]);
  // Refused deliveries streamed in (include_refusals): they never became
  // events, so they show only while the page is open (the refused-delivery
  // page lists them all), and only with no filter but the source, which is
  // all they have.
  const [refused, setRefused] = useState<{ key: string; r: RefusedDelivery }[]>([]);
  const showRefused = !type && !name && !status && !userId;
  const matches = (ev: SourceEvent) =>
    (!type || ev.type === type) && (!name || ev.name === name) && (!status || ev.status === status) && (!userId || ev.userId === userId);
  const stream = useStream(
    (signal, onOpen) =>
      (async function* () {
        for await (const m of api.events.watchSourceEvents({ environment: env, sourceId: source, includeRefusals: showRefused }, { signal, onHeader: onOpen })) {
          if (m.message.case) yield m.message;
        }
      })(),
    (m) => {
      if (m.case === "sourceEvent") {
        if (matches(m.value)) setLive((l) => [m.value, ...l].slice(0, 200));
      } else if (m.case === "refusedDelivery") {
        const r = m.value;
        setRefused((l) => [{ key: `${r.sourceId}-${l.length}-${Date.now()}`, r }, ...l].slice(0, 50));
      }
    },
    // On every (re)connect, read the log again: events that arrived while
    // the stream was down are in it.
    () => list.reload(),
    [env, source, type, name, status, userId, showRefused],
  );
  const events = useMemo(() => {
    const seen = new Set<string>();
    const out: SourceEvent[] = [];
    for (const ev of [...live, ...(list.data?.sourceEvents ?? []), ...pages.older]) {
      if (seen.has(ev.id)) continue;
      seen.add(ev.id);
      out.push(ev);
    }
    return out;
  }, [live, list.data, pages.older]);
  const set = (k: string, v: string) => {
    const q = new URLSearchParams(location.search);
    if (v) q.set(k, v);
    else q.delete(k);
    setLive([]);
    setRefused([]);
    navigate("/events?" + q.toString(), true);
  };
  const sourceNames = new Map((sources.data?.sources ?? []).map((s) => [s.id, s.name]));
  const firstSource = (sources.data?.sources ?? []).find((s) => !source || s.id === source);
  const url = firstSource?.environments.find((e) => e.environment === env)?.ingestUrl;
  return (
    <Page
      title="Event log"
      actions={
        <>
          <StreamStatus state={stream} />
          <button type="button" id="refresh" onClick={() => list.reload()}>
            Refresh
          </button>
        </>
      }
    >
      <div class="filters">
        <select value={source} onChange={(e) => set("source", e.currentTarget.value)} aria-label="Source">
          <option value="">All sources</option>
          {(sources.data?.sources ?? []).map((s) => (
            <option value={s.id}>{s.name}</option>
          ))}
        </select>
        <select value={type} onChange={(e) => set("type", e.currentTarget.value)} aria-label="Type">
          <option value="">All types</option>
          {["track", "identify", "page", "screen", "group", "alias"].map((t) => (
            <option value={t}>{t}</option>
          ))}
        </select>
        <input placeholder="Event name" value={name} onChange={(e) => set("name", e.currentTarget.value)} aria-label="Event name" />
        <input placeholder="User id" value={userId} onChange={(e) => set("user", e.currentTarget.value)} aria-label="User id" />
        <select value={String(status)} onChange={(e) => set("status", e.currentTarget.value === "0" ? "" : e.currentTarget.value)} aria-label="Status">
          <option value="0">Any status</option>
          {Object.entries(statusNames)
            .filter(([v]) => v !== "0")
            .map(([v, n]) => (
              <option value={v}>{n.toLowerCase()}</option>
            ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {list.data && events.length === 0 && refused.length === 0 && (
        <Empty>
          <p>No events in {env} yet{source ? " for this source" : ""}. They appear here as they arrive.</p>
          {url ? (
            <>
              <p>Send one to {firstSource!.name}:</p>
              <Code text={`curl -X POST -H 'Content-Type: application/json' -d '{"type":"track","event":"Signed Up","userId":"u1"}' ${url}`} />
            </>
          ) : (
            <p>
              <Link href="/sources">Create a source</Link> and point Segment (or any webhook) at its URL.
            </p>
          )}
        </Empty>
      )}
      {showRefused && refused.length > 0 && (
        <table class="list refused" id="refused-live">
          <thead>
            <tr>
              <th>Refused</th>
              <th>Source</th>
              <th>Status</th>
              <th>Reason</th>
              <th class="num">Size</th>
            </tr>
          </thead>
          <tbody>
            {refused.map(({ key, r }) => (
              <tr data-key={key} class="refused-row" onClick={() => navigate("/refusals?source=" + r.sourceId)}>
                <td class="nowrap">{time(r.refusal?.time)}</td>
                <td>{sourceNames.get(r.sourceId) ?? r.sourceId}</td>
                <td>
                  <span class="badge failed">refused {r.refusal?.statusCode}</span>
                </td>
                <td>{r.refusal?.reason}</td>
                <td class="num">{String(r.refusal?.sizeBytes ?? 0)} B</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {events.length > 0 && (
        <table class="list" id="events">
          <thead>
            <tr>
              <th>Received</th>
              <th>Type</th>
              <th>Event</th>
              <th>User</th>
              <th>Status</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {events.map((ev) => (
              <tr class="clickable" data-id={ev.id} onClick={() => navigate(`/events/${ev.id}`)}>
                <td class="nowrap">{time(ev.receivedAt)}</td>
                <td>{ev.type}</td>
                <td>
                  <Link href={`/events/${ev.id}`}>{ev.name || ev.type}</Link>
                </td>
                <td>{ev.userId || ev.anonymousId}</td>
                <td>
                  <Badge value={ev.status} names={statusNames} />
                </td>
                <td>{ev.actions.length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadOlder pages={pages} />
    </Page>
  );
}

export function EventDetail({ id, env }: { id: string; env: string }) {
  const r = useLoad(() => api.events.getSourceEvent({ environment: env, id }), [env, id]);
  const ev = r.data?.sourceEvent;
  return (
    <Page title={ev ? ev.name || ev.type : "Event"} actions={<Link href="/events">← Event log</Link>}>
      <ErrorBox error={r.error} />
      {ev && (
        <>
          <div class="card">
            <dl class="props">
              <dt>Status</dt>
              <dd>
                <Badge value={ev.status} names={statusNames} /> {ev.reason}
              </dd>
              <dt>Type</dt>
              <dd>{ev.type}</dd>
              <dt>User</dt>
              <dd>{ev.userId || <span class="muted">anonymous {ev.anonymousId}</span>}</dd>
              <dt>Received</dt>
              <dd>{time(ev.receivedAt)}</dd>
              {ev.timestamp && (
                <>
                  <dt>Timestamp</dt>
                  <dd>{time(ev.timestamp)}</dd>
                </>
              )}
              <dt>Idempotency key</dt>
              <dd>
                <code>{ev.idempotencyKey}</code> {ev.idempotencyKeyError}
              </dd>
              {ev.originalEventId && (
                <>
                  <dt>Repeat of</dt>
                  <dd>
                    <Link href={`/events/${ev.originalEventId}`}>{ev.originalEventId}</Link>
                  </dd>
                </>
              )}
              <dt>Id</dt>
              <dd>
                <code>{ev.id}</code>
              </dd>
            </dl>
            <div class="row end">
              <Link href={`/triggers/new?source=${ev.sourceId}&type=${ev.type}&name=${encodeURIComponent(ev.name)}`} class="button">
                Create a trigger for this event
              </Link>
            </div>
          </div>
          <h2>Actions</h2>
          {ev.actions.length === 0 ? (
            <Empty>No actions: no active trigger matched, and the source's defaults (identify, group, delete) are off or had nothing to do.</Empty>
          ) : (
            <table class="list" id="actions">
              <thead>
                <tr>
                  <th>Action</th>
                  <th>Status</th>
                  <th>Detail</th>
                </tr>
              </thead>
              <tbody>
                {ev.actions.map((a) => (
                  <tr>
                    <td>{actionTypeNames[a.type]?.toLowerCase().replace(/_/g, " ")}</td>
                    <td>
                      <Badge value={a.status} names={actionStatusNames} />
                    </td>
                    <td>
                      {a.reason}
                      {a.triggerId && (
                        <>
                          {" "}
                          trigger <Link href={`/triggers/${a.triggerId}`}>{a.workflowKey || a.triggerId}</Link>
                        </>
                      )}
                      {a.workflowRunId && (
                        <>
                          {" "}
                          run <Link href={`/runs?run=${a.workflowRunId}`}>{a.workflowRunId}</Link>
                        </>
                      )}
                      {a.userId && <> user {a.userId}</>}
                      {a.tenantId && (
                        <>
                          {" "}
                          tenant <Link href={`/tenants/${encodeURIComponent(a.tenantId)}`}>{a.tenantId}</Link>
                        </>
                      )}
                      {a.collection && a.objectId && (
                        <>
                          {" "}
                          object{" "}
                          <Link href={`/objects/${encodeURIComponent(a.collection)}/${encodeURIComponent(a.objectId)}`}>
                            {a.collection}/{a.objectId}
                          </Link>
                        </>
                      )}
                      {a.audienceKey && (
                        <>
                          {" "}
                          audience <Link href={`/audiences?key=${encodeURIComponent(a.audienceKey)}`}>{a.audienceKey}</Link>
                        </>
                      )}
                      {a.recipients.length > 0 && <> recipients {a.recipients.join(", ")}</>}
                      {a.cancelledWorkflowRunIds.map((id) => (
                        <>
                          {" "}
                          cancelled <Link href={`/runs?run=${id}`}>{id}</Link>
                        </>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <div class="grid2">
            <div>
              <h2>Data</h2>
              <JSONView value={ev.data} />
              {ev.traits && Object.keys(ev.traits).length > 0 && (
                <>
                  <h2>Traits</h2>
                  <JSONView value={ev.traits} />
                </>
              )}
            </div>
            <div>
              <h2>Original payload</h2>
              <JSONView value={ev.event} />
            </div>
          </div>
          <h2>Request headers</h2>
          {Object.keys(ev.headers).length === 0 ? (
            <Empty>No headers were logged with this event (it came from the API, or before hark kept them).</Empty>
          ) : (
            <table class="list" id="headers">
              <tbody>
                {Object.keys(ev.headers)
                  .sort()
                  .map((k) => (
                    <tr>
                      <td class="nowrap">
                        <code>{k}</code>
                      </td>
                      <td class="wrap">
                        <code>{ev.headers[k]}</code>
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
          {ev.headersDropped > 0 && <p class="muted">{ev.headersDropped} more headers were left out (past 8 KiB).</p>}
        </>
      )}
    </Page>
  );
}
