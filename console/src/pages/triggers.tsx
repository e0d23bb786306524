import { useEffect, useRef, useState } from "preact/hooks";
import { Code as RPCCode } from "@connectrpc/connect";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { api, apiError, type APIError } from "../api";
import { ActionStatus } from "../gen/hark/v1/event_pb";
import { TriggerStatus, type TestTriggerResponse, type Trigger } from "../gen/hark/v1/trigger_pb";
import { navigate, useLocation } from "../router";
import { Badge, Empty, ErrorBox, Field, FormError, JSONView, Link, Page, enumNames, time, useLoad } from "../ui";

const actionStatusNames = enumNames(ActionStatus as unknown as Record<string, number>);

export function Triggers({ env }: { env: string }) {
  const list = useLoad(() => api.triggers.listTriggers({ environment: env, pageSize: 100 }), [env]);
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const names = new Map((sources.data?.sources ?? []).map((s) => [s.id, s.name]));
  const [error, setError] = useState<APIError>();
  const toggle = async (t: Trigger) => {
    setError(undefined);
    try {
      await api.triggers.updateTrigger({
        environment: env,
        id: t.id,
        status: t.status === TriggerStatus.ACTIVE ? TriggerStatus.INACTIVE : TriggerStatus.ACTIVE,
      });
      list.reload();
    } catch (err) {
      setError(apiError(err));
    }
  };
  const triggers = list.data?.triggers ?? [];
  return (
    <Page
      title="Triggers"
      actions={
        <Link href="/triggers/new" class="button primary" id="new-trigger">
          New trigger
        </Link>
      }
    >
      <p class="meta">Action mappings in {env}: which events start which workflow, and with what.</p>
      <ErrorBox error={list.error ?? error} />
      {list.data && triggers.length === 0 && (
        <Empty>
          No triggers in {env}. Pick an event from <Link href="/event-types">Unique events</Link> and add a trigger, or create
          one from scratch with New trigger.
        </Empty>
      )}
      {triggers.length > 0 && (
        <table class="list" id="triggers">
          <thead>
            <tr>
              <th>Event</th>
              <th>Source</th>
              <th>Workflow</th>
              <th>Condition</th>
              <th>Active</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {triggers.map((t) => (
              <tr data-id={t.id}>
                <td>
                  <Link href={"/triggers/" + t.id}>
                    {t.eventType} {t.event}
                  </Link>
                </td>
                <td>{names.get(t.sourceId) ?? t.sourceId}</td>
                <td>{t.workflowKey}</td>
                <td>
                  <code>{t.condition}</code>
                </td>
                <td>
                  <label class="switch">
                    <input type="checkbox" class="active-toggle" checked={t.status === TriggerStatus.ACTIVE} onChange={() => toggle(t)} />
                    {t.status === TriggerStatus.ACTIVE ? "active" : "inactive"}
                  </label>
                </td>
                <td class="nowrap">{time(t.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

interface Form {
  workflowKey: string;
  sourceId: string;
  eventType: string;
  event: string;
  condition: string;
  recipients: string;
  actor: string;
  tenant: string;
  data: string;
  cancellationKey: string;
  active: boolean;
}

function formOf(t: Trigger): Form {
  return {
    workflowKey: t.workflowKey,
    sourceId: t.sourceId,
    eventType: t.eventType,
    event: t.event,
    condition: t.condition,
    recipients: t.mapping?.recipients ?? "",
    actor: t.mapping?.actor ?? "",
    tenant: t.mapping?.tenant ?? "",
    data: t.mapping?.data ?? "",
    cancellationKey: t.mapping?.cancellationKey ?? "",
    active: t.status !== TriggerStatus.INACTIVE,
  };
}

function triggerOf(f: Form) {
  return {
    workflowKey: f.workflowKey,
    sourceId: f.sourceId,
    eventType: f.eventType,
    event: f.event,
    condition: f.condition,
    mapping: { recipients: f.recipients, actor: f.actor, tenant: f.tenant, data: f.data, cancellationKey: f.cancellationKey },
    status: f.active ? TriggerStatus.ACTIVE : TriggerStatus.INACTIVE,
  };
}

const expressionFields: [keyof Form, string, string, string][] = [
  ["condition", "condition", "Condition", "An expr boolean, e.g. data.plan == \"pro\". Empty: every matching event."],
  ["recipients", "mapping.recipients", "Recipients", "A user id, a user object with id, or a list. Default: userId."],
  ["actor", "mapping.actor", "Actor", "A user id or object. Default: none."],
  ["tenant", "mapping.tenant", "Tenant", "A tenant id or object with id. Default: none."],
  ["data", "mapping.data", "Data", "An object passed to the run. Default: the event's properties."],
  ["cancellationKey", "mapping.cancellationKey", "Cancellation key", "A string. Default: none."],
];

// TriggerEditor creates or edits a trigger. As you type, it sends the
// unsaved trigger to TestTrigger, which compiles it exactly as saving would
// and runs it against the latest matching event: compile errors show under
// their field at their line and column, and the test panel shows the
// condition, the mapped values and the recipients.
export function TriggerEditor({ id, env }: { id: string; env: string }) {
  const { query } = useLocation();
  const workflows = useLoad(() => api.workflows.listWorkflows({ pageSize: 100 }), []);
  const sources = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const saved = useLoad(() => (id ? api.triggers.getTrigger({ environment: env, id }) : Promise.resolve(undefined)), [env, id]);
  const [form, setForm] = useState<Form>({
    workflowKey: "",
    sourceId: query.get("source") ?? "",
    eventType: query.get("type") ?? "track",
    event: query.get("name") ?? "",
    condition: "",
    recipients: "",
    actor: "",
    tenant: "",
    data: "",
    cancellationKey: "",
    active: true,
  });
  useEffect(() => {
    if (saved.data?.trigger) setForm(formOf(saved.data.trigger));
  }, [saved.data]);
  // Default the pickers to the first workflow and source.
  useEffect(() => {
    const w = workflows.data?.workflows[0]?.key;
    const s = sources.data?.sources[0]?.id;
    setForm((f) => ({ ...f, workflowKey: f.workflowKey || w || "", sourceId: f.sourceId || s || "" }));
  }, [workflows.data, sources.data]);

  const [check, setCheck] = useState<APIError>();
  const [test, setTest] = useState<TestTriggerResponse>();
  const [testing, setTesting] = useState(false);
  const [saveError, setSaveError] = useState<APIError>();
  const [notice, setNotice] = useState("");
  const seq = useRef(0);

  const runTest = async (f: Form) => {
    const n = ++seq.current;
    setTesting(true);
    try {
      // Tested as if active: an inactive trigger would only answer
      // "skipped, inactive", and the test is for what it would do.
      const r = await api.triggers.testTrigger({ environment: env, trigger: { ...triggerOf(f), status: TriggerStatus.ACTIVE } });
      if (n !== seq.current) return;
      setCheck(undefined);
      setTest(r);
    } catch (err) {
      if (n !== seq.current) return;
      setCheck(apiError(err));
      setTest(undefined);
    } finally {
      if (n === seq.current) setTesting(false);
    }
  };
  // Compile (and test) 300 ms after the last keystroke.
  useEffect(() => {
    if (!form.workflowKey || !form.sourceId) return;
    const t = setTimeout(() => runTest(form), 300);
    return () => clearTimeout(t);
  }, [form, env]);

  const set = (k: keyof Form) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    setForm({ ...form, [k]: el.type === "checkbox" ? el.checked : el.value });
    // An edit makes the last save's errors stale: the compile as you type
    // takes over.
    setSaveError(undefined);
    setNotice("");
  };

  const save = async (e: Event) => {
    e.preventDefault();
    setSaveError(undefined);
    setNotice("");
    try {
      if (id) {
        const t = triggerOf(form);
        await api.triggers.updateTrigger({ environment: env, id, ...t });
        setNotice("Saved.");
      } else {
        const r = await api.triggers.createTrigger({ environment: env, ...triggerOf(form) });
        navigate("/triggers/" + r.trigger!.id, true);
        setNotice("Saved.");
      }
    } catch (err) {
      setSaveError(apiError(err));
    }
  };
  const remove = async () => {
    if (!confirm("Delete this trigger? Its events stop starting the workflow.")) return;
    try {
      await api.triggers.deleteTrigger({ environment: env, id });
      navigate("/triggers");
    } catch (err) {
      setSaveError(apiError(err));
    }
  };

  // Errors by field: the latest save's, else the latest compile's. A
  // missing test event is not an error of the form.
  // (The one NotFound whose message says so: hark has no event yet to test
  // against; any other NotFound, e.g. a deleted workflow, is the form's.)
  const noEvent = check?.code === RPCCode.NotFound && check.message.startsWith("no logged event");
  const fieldErrors = saveError ?? (noEvent ? undefined : check);
  const formFields = ["sourceId", "eventType", "event", "workflowKey", "status", ...expressionFields.map((f) => f[1])];

  return (
    <Page title={id ? "Edit trigger" : "New trigger"} actions={<Link href="/triggers">← Triggers</Link>}>
      <ErrorBox error={saved.error} />
      <div class="editor">
        <form class="card" onSubmit={save} id="trigger-form">
          <div class="row">
            <Field label="Source" field="sourceId" error={fieldErrors}>
              <select id="trigger-source" value={form.sourceId} onChange={set("sourceId")}>
                {(sources.data?.sources ?? []).map((s) => (
                  <option value={s.id}>{s.name}</option>
                ))}
              </select>
            </Field>
            <Field label="Event type" field="eventType" error={fieldErrors}>
              <select id="trigger-event-type" value={form.eventType} onChange={set("eventType")}>
                {["track", "identify", "page", "screen", "group"].map((t) => (
                  <option value={t}>{t}</option>
                ))}
              </select>
            </Field>
            <Field label="Event name" field="event" error={fieldErrors}>
              <input id="trigger-event" value={form.event} onInput={set("event")} placeholder="Signed Up" />
            </Field>
          </div>
          <div class="row">
            <Field label="Workflow" field="workflowKey" error={fieldErrors}>
              <select id="trigger-workflow" value={form.workflowKey} onChange={set("workflowKey")}>
                {(workflows.data?.workflows ?? []).map((w) => (
                  <option value={w.key}>{w.name || w.key}</option>
                ))}
              </select>
            </Field>
            <label class="toggle">
              <input type="checkbox" id="trigger-active" checked={form.active} onChange={set("active")} /> Active
            </label>
          </div>
          {workflows.data && workflows.data.workflows.length === 0 && (
            <div class="notice">
              A trigger starts a workflow: <Link href="/workflows">create a workflow</Link> first.
            </div>
          )}
          {expressionFields.map(([k, field, label, hint]) => {
            const x = fieldErrors?.expression?.field === field ? fieldErrors.expression : undefined;
            return (
              <label class={"field expr" + (fieldErrors?.fields[field] ? " invalid" : "")}>
                <span class="label">{label}</span>
                <textarea
                  id={"trigger-" + field.replace(".", "-")}
                  rows={k === "condition" || k === "data" ? 2 : 1}
                  spellcheck={false}
                  value={form[k] as string}
                  onInput={set(k)}
                />
                <span class="hint">{hint}</span>
                {fieldErrors?.fields[field] && (
                  <div class="field-error" data-field={field}>
                    {x ? (
                      <>
                        <span class="pos">
                          line {x.line}, column {x.column}:
                        </span>{" "}
                        {x.message}
                        {x.snippet && <pre class="snippet">{x.snippet}</pre>}
                      </>
                    ) : (
                      fieldErrors.fields[field]
                    )}
                  </div>
                )}
              </label>
            );
          })}
          <FormError error={fieldErrors} shown={formFields} />
          <div class="row end">
            {notice && (
              <span class="ok" id="saved">
                {notice}
              </span>
            )}
            {id && (
              <button type="button" class="danger" onClick={remove}>
                Delete
              </button>
            )}
            <button type="submit" class="primary" id="save-trigger">
              {id ? "Save" : "Create trigger"}
            </button>
          </div>
        </form>
        <aside class="card test-panel" id="test-panel">
          <div class="card-head">
            <h2>Test against the latest event</h2>
            <button type="button" id="run-test" onClick={() => runTest(form)} disabled={testing}>
              {testing ? "Testing…" : "Test"}
            </button>
          </div>
          {noEvent && (
            <p class="muted" id="no-test-event">
              No {form.eventType} "{form.event}" event from this source in {env} yet: send one, then test again.
            </p>
          )}
          {check && !noEvent && <p class="muted">Fix the errors in the form to test.</p>}
          {test && !form.active && <p class="muted">Tested as if active: saved inactive, it starts nothing.</p>}
          {test && <TestResult r={test} />}
        </aside>
      </div>
    </Page>
  );
}

function json(v?: Value) {
  return v ? toJson(ValueSchema, v) : null;
}

function TestResult({ r }: { r: TestTriggerResponse }) {
  return (
    <div class="test-result">
      <dl class="props">
        <dt>Event</dt>
        <dd>
          <Link href={"/events/" + r.sourceEventId}>{r.sourceEventId}</Link>
        </dd>
        <dt>Condition</dt>
        <dd id="test-condition" class={r.conditionResult ? "ok" : "muted"}>
          {r.conditionResult ? "true" : "false"}
        </dd>
        <dt>Outcome</dt>
        <dd id="test-status">
          <Badge value={r.status} names={actionStatusNames} />{" "}
          {r.status === ActionStatus.SUCCESS ? "the workflow would run" : r.reason}
        </dd>
        <dt>Recipients</dt>
        <dd id="test-recipients">
          {r.resolvedRecipients.length ? r.resolvedRecipients.join(", ") : <span class="muted">none</span>}
          {r.skippedRecipients.map((s) => (
            <div class="muted">
              skipped {s.id}: {s.reason}
            </div>
          ))}
        </dd>
        {r.cancellationKey && (
          <>
            <dt>Cancellation key</dt>
            <dd>{r.cancellationKey}</dd>
          </>
        )}
      </dl>
      <h3>Mapped values</h3>
      <JSONView value={{ recipients: json(r.recipients), actor: json(r.actor), tenant: json(r.tenant), data: json(r.data) }} />
    </div>
  );
}
