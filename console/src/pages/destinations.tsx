import { useEffect, useState } from "preact/hooks";
import { api, apiError, type APIError } from "../api";
import { DeliveryStatus, DestinationStatus, type Delivery } from "../gen/hark/v1/destination_pb";
import { navigate } from "../router";
import { Badge, Code, Empty, ErrorBox, Field, FormError, Link, Page, enumNames, time, useInterval, useLoad } from "../ui";

// createdSecrets holds the signing secret of a destination just created
// here: the API shows it only in the create (and rotate) answer, so the
// detail page shows it from here, once.
const createdSecrets = new Map<string, string>();

const destStatusNames = enumNames(DestinationStatus as unknown as Record<string, number>);
const deliveryStatusNames = enumNames(DeliveryStatus as unknown as Record<string, number>);

export function Destinations({ env }: { env: string }) {
  const list = useLoad(() => api.destinations.listDestinations({ environment: env, pageSize: 100 }), [env]);
  const workflows = useLoad(() => api.workflows.listWorkflows({ pageSize: 100 }), []);
  const [form, setForm] = useState({ name: "", type: "webhook", url: "", workflowKeys: [] as string[] });
  const [key, setKey] = useState("");
  const [error, setError] = useState<APIError>();
  // Knock takes an api_key, Segment a write_key; a webhook signs with a
  // secret hark makes.
  const secretKey = form.type === "knock" ? "api_key" : form.type === "segment" ? "write_key" : "";
  const secretField = "settings." + secretKey;
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const settings: Record<string, string> = secretKey ? { [secretKey]: key } : {};
      const r = await api.destinations.createDestination({ environment: env, ...form, settings });
      if (r.destination!.signingSecret) createdSecrets.set(r.destination!.id, r.destination!.signingSecret);
      navigate("/destinations/" + r.destination!.id);
    } catch (err) {
      setError(apiError(err));
    }
  };
  const dests = list.data?.destinations ?? [];
  return (
    <Page title="Destinations">
      <form class="card inline-form" onSubmit={create} id="create-destination">
        <h2>New destination</h2>
        <div class="row">
          <Field label="Name" field="name" error={error}>
            <input id="destination-name" value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          </Field>
          <Field label="Type" field="type" error={error}>
            <select value={form.type} onChange={(e) => setForm({ ...form, type: e.currentTarget.value })}>
              <option value="webhook">webhook</option>
              <option value="knock">knock</option>
              <option value="segment">segment</option>
            </select>
          </Field>
          <Field label={form.type === "webhook" ? "URL" : "API base URL (optional)"} field="url" error={error}>
            <input
              id="destination-url"
              value={form.url}
              onInput={(e) => setForm({ ...form, url: e.currentTarget.value })}
              placeholder={form.type === "webhook" ? "https://example.com/hooks/hark" : form.type === "knock" ? "https://api.knock.app" : "https://api.segment.io"}
            />
          </Field>
          {secretKey && (
            <Field label={secretKey} field={secretField} error={error}>
              <input type="password" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
            </Field>
          )}
        </div>
        <Field label="Workflows (none picked: all)" field="workflowKeys" error={error}>
          <div class="checks">
            {(workflows.data?.workflows ?? []).map((w) => (
              <label class="toggle">
                <input
                  type="checkbox"
                  checked={form.workflowKeys.includes(w.key)}
                  onChange={(e) =>
                    setForm({
                      ...form,
                      workflowKeys: e.currentTarget.checked ? [...form.workflowKeys, w.key] : form.workflowKeys.filter((k) => k !== w.key),
                    })
                  }
                />
                {w.key}
              </label>
            ))}
          </div>
        </Field>
        <div class="row end">
          <button type="submit" class="primary">
            Create destination
          </button>
        </div>
        <FormError error={error} shown={["name", "type", "url", "workflowKeys", secretField]} />
      </form>
      <ErrorBox error={list.error} />
      {list.data && dests.length === 0 && (
        <Empty>No destinations in {env}. Add one above: hark posts every run of its workflows there, signed, with retries.</Empty>
      )}
      {dests.length > 0 && (
        <table class="list" id="destinations">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>URL</th>
              <th>Workflows</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {dests.map((d) => (
              <tr>
                <td>
                  <Link href={"/destinations/" + d.id}>{d.name}</Link>
                </td>
                <td>{d.type}</td>
                <td class="url">{d.url}</td>
                <td>{d.workflowKeys.length ? d.workflowKeys.join(", ") : "all"}</td>
                <td>
                  <Badge value={d.status} names={destStatusNames} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

export function DestinationDetail({ id, env }: { id: string; env: string }) {
  const dest = useLoad(() => api.destinations.getDestination({ environment: env, id }), [env, id]);
  const [status, setStatus] = useState(DeliveryStatus.UNSPECIFIED);
  const deliveries = useLoad(
    () => api.deliveries.listDeliveries({ environment: env, destinationId: id, status, pageSize: 50 }),
    [env, id, status],
  );
  // Deliveries change on their own (attempts, retries): poll while shown.
  useInterval(() => deliveries.reload(), 3000);
  const [error, setError] = useState<APIError>();
  const [notice, setNotice] = useState("");
  const d = dest.data?.destination;
  const [secret, setSecret] = useState(createdSecrets.get(id) ?? "");
  useEffect(() => {
    createdSecrets.delete(id);
  }, [id]);
  const [open, setOpen] = useState("");
  const act = async (what: string, f: () => Promise<unknown>) => {
    setError(undefined);
    setNotice("");
    try {
      await f();
      setNotice(what);
      dest.reload();
      deliveries.reload();
    } catch (err) {
      setError(apiError(err));
    }
  };
  const setDestStatus = (s: DestinationStatus) =>
    act(s === DestinationStatus.PAUSED ? "Paused." : "Resumed.", () => api.destinations.updateDestination({ environment: env, id, status: s }));
  const list = deliveries.data?.deliveries ?? [];
  return (
    <Page title={d ? d.name : "Destination"} actions={<Link href="/destinations">← Destinations</Link>}>
      <ErrorBox error={dest.error ?? error} />
      {d && (
        <div class="card">
          <dl class="props">
            <dt>Status</dt>
            <dd>
              <Badge value={d.status} names={destStatusNames} /> {d.disabledReason}
            </dd>
            <dt>Type</dt>
            <dd>{d.type}</dd>
            <dt>URL</dt>
            <dd class="url">{d.url}</dd>
            <dt>Workflows</dt>
            <dd>{d.workflowKeys.length ? d.workflowKeys.join(", ") : "all"}</dd>
            {(secret || d.signingSecret) && (
              <>
                <dt>Signing secret</dt>
                <dd>
                  <Code text={secret || d.signingSecret} />
                  <div class="hint">Shown once: copy it into the receiver to verify hark's signatures.</div>
                </dd>
              </>
            )}
          </dl>
          <div class="row end">
            {notice && <span class="ok">{notice}</span>}
            <button type="button" onClick={() => act("Test sent.", () => api.destinations.testDestination({ environment: env, id }))}>
              Send test
            </button>
            {d.status === DestinationStatus.ACTIVE ? (
              <button type="button" onClick={() => setDestStatus(DestinationStatus.PAUSED)}>
                Pause
              </button>
            ) : (
              <button type="button" onClick={() => setDestStatus(DestinationStatus.ACTIVE)}>
                Resume
              </button>
            )}
            {d.type === "webhook" && (
              <button
                type="button"
                onClick={() =>
                  confirm("Rotate the signing secret? The old one keeps verifying for a while.") &&
                  act("Secret rotated.", async () => {
                    const r = await api.destinations.rotateDestinationSecret({ environment: env, id });
                    setSecret(r.destination?.signingSecret ?? "");
                  })
                }
              >
                Rotate secret
              </button>
            )}
            <button
              type="button"
              class="danger"
              onClick={() =>
                confirm(`Delete destination ${d.name}?`) &&
                act("Deleted.", async () => {
                  await api.destinations.deleteDestination({ environment: env, id });
                  navigate("/destinations");
                })
              }
            >
              Delete
            </button>
          </div>
        </div>
      )}
      <div class="page-head">
        <h2>Deliveries</h2>
        <div class="actions">
          <select value={String(status)} onChange={(e) => setStatus(Number(e.currentTarget.value))} aria-label="Delivery status">
            <option value="0">Any status</option>
            <option value={String(DeliveryStatus.PENDING)}>pending</option>
            <option value={String(DeliveryStatus.SUCCEEDED)}>succeeded</option>
            <option value={String(DeliveryStatus.FAILED)}>failed</option>
          </select>
          <button type="button" onClick={() => deliveries.reload()}>
            Refresh
          </button>
        </div>
      </div>
      <ErrorBox error={deliveries.error} />
      {deliveries.data && list.length === 0 && (
        <Empty>No deliveries yet: one is made for each run of {d && d.workflowKeys.length ? d.workflowKeys.join(", ") : "any workflow"} in {env}.</Empty>
      )}
      {list.length > 0 && (
        <table class="list" id="deliveries">
          <thead>
            <tr>
              <th>Status</th>
              <th>Created</th>
              <th>Event</th>
              <th class="num">Attempts</th>
              <th>Next attempt</th>
              <th>Run</th>
            </tr>
          </thead>
          <tbody>
            {list.map((x) => (
              <DeliveryRow
                x={x}
                env={env}
                open={open === x.id}
                onToggle={() => setOpen(open === x.id ? "" : x.id)}
                onRetry={() => act("Retry queued.", () => api.deliveries.retryDelivery({ environment: env, id: x.id }))}
              />
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

function DeliveryRow(props: { x: Delivery; env: string; open: boolean; onToggle: () => void; onRetry: () => void }) {
  const { x } = props;
  // The status and its Retry come first, so a narrow window shows them.
  return (
    <>
      <tr class="clickable" data-id={x.id} data-status={deliveryStatusNames[x.status]} onClick={props.onToggle}>
        <td class="nowrap">
          <Badge value={x.status} names={deliveryStatusNames} />
          {x.status === DeliveryStatus.FAILED && (
            <button
              type="button"
              class="small retry"
              onClick={(e) => {
                e.stopPropagation();
                props.onRetry();
              }}
            >
              Retry
            </button>
          )}
        </td>
        <td class="nowrap">{time(x.createdAt)}</td>
        <td>{x.eventType}</td>
        <td class="num">{x.attemptCount}</td>
        <td class="nowrap">{x.status === DeliveryStatus.PENDING ? time(x.nextAttemptAt) : ""}</td>
        <td>
          <Link href={"/runs?run=" + x.workflowRunId}>{x.workflowRunId}</Link>
        </td>
      </tr>
      {props.open && (
        <tr class="detail">
          <td colSpan={6}>
            <Attempts env={props.env} id={x.id} count={x.attemptCount} />
          </td>
        </tr>
      )}
    </>
  );
}

// Attempts reads one delivery's attempts (ListDeliveries leaves them out).
function Attempts({ env, id, count }: { env: string; id: string; count: number }) {
  const r = useLoad(() => api.deliveries.getDelivery({ environment: env, id }), [env, id, count]);
  const attempts = r.data?.delivery?.attempts ?? [];
  return (
    <>
      <ErrorBox error={r.error} />
      {r.data && attempts.length === 0 && <span class="muted">No attempt yet.</span>}
      {attempts.length > 0 && (
        <table class="attempts">
          <tbody>
            {attempts.map((a) => (
              <tr>
                <td class="nowrap">{time(a.startedAt)}</td>
                <td>{a.statusCode ? "HTTP " + a.statusCode : "no answer"}</td>
                <td>{a.error}</td>
                <td>
                  <code>{a.responseBody}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
