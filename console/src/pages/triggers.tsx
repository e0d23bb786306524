import { useEffect, useRef, useState } from "preact/hooks";
import { Code as RPCCode } from "@connectrpc/connect";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { api, apiError, type APIError } from "../api";
import { ActionStatus } from "../gen/hark/v1/event_pb";
import { TriggerActionType, TriggerFrequency, TriggerStatus, type TestTriggerResponse, type Trigger } from "../gen/hark/v1/trigger_pb";
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
      <p class="meta">Action mappings in {env}: what each matching event does (start a workflow, set a tenant or object, …), and with what.</p>
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
              <th>Action</th>
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
                <td>
                  {actionOf(t.actionType).name}
                  {t.workflowKey && <span class="muted"> {t.workflowKey}</span>}
                </td>
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

// ActionField is an ActionMapping field, as the API names it.
type ActionField = "collection" | "id" | "properties" | "recipients" | "audienceKey" | "users" | "tenant";
const actionFields: ActionField[] = ["collection", "id", "properties", "recipients", "audienceKey", "users", "tenant"];

interface Form {
  actionType: TriggerActionType;
  frequency: TriggerFrequency;
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
  // The ActionMapping expressions, kept across action type switches (only
  // the chosen action's are sent).
  am: Record<ActionField, string>;
  active: boolean;
}

// ExprField is one expression field of the editor: the form key (a
// TriggerMapping key, or "am.<field>" for ActionMapping), the field as the
// API's errors name it, its label and a hint.
type ExprField = [string, string, string, string];

// Action is what the editor knows of an action type: its name (Knock's),
// whether it is a workflow action (workflow picker, TriggerMapping) and the
// expression fields it reads, with the defaults the API applies.
interface Action {
  type: TriggerActionType;
  name: string;
  does: string;
  workflow: boolean;
  fields: ExprField[];
}

const am = (f: ActionField, label: string, hint: string): ExprField => ["am." + f, "actionMapping." + f, label, hint];
const mp = (k: string, field: string, label: string, hint: string): ExprField => [k, "mapping." + field, label, hint];

const conditionField: ExprField = ["condition", "condition", "Condition", "An expr boolean, e.g. data.plan == \"pro\". Empty: every matching event."];
const recipientsHint = "A user id, a user object with id, an object {\"collection\", \"id\"}, or a list. Default: userId.";
const actionList: Action[] = [
  {
    type: TriggerActionType.WORKFLOWS_TRIGGER,
    name: "workflows_trigger",
    does: "Starts a run of the workflow.",
    workflow: true,
    fields: [
      mp("recipients", "recipients", "Recipients", recipientsHint),
      mp("actor", "actor", "Actor", "A user id or object. Default: none."),
      mp("tenant", "tenant", "Tenant", "A tenant id or object with id (set before the run). Default: none."),
      mp("data", "data", "Data", "An object passed to the run. Default: the event's properties."),
      mp("cancellationKey", "cancellationKey", "Cancellation key", "A string. Default: none."),
    ],
  },
  {
    type: TriggerActionType.WORKFLOWS_CANCEL,
    name: "workflows_cancel",
    does: "Cancels the workflow's active runs with the cancellation key, for the recipients when given.",
    workflow: true,
    fields: [
      mp("cancellationKey", "cancellationKey", "Cancellation key", "A string. Required."),
      mp("recipients", "recipients", "Recipients", "Cancel only for these. Default: every recipient of the run."),
    ],
  },
  {
    type: TriggerActionType.USERS_IDENTIFY,
    name: "users_identify",
    does: "Creates or updates a user.",
    workflow: false,
    fields: [am("id", "User id", "A string. Default: userId."), am("properties", "Properties", "An object: name, email, … and custom properties.")],
  },
  {
    type: TriggerActionType.USERS_DELETE,
    name: "users_delete",
    does: "Deletes a user and their subscriptions.",
    workflow: false,
    fields: [am("id", "User id", "A string. Default: userId.")],
  },
  {
    type: TriggerActionType.TENANTS_SET,
    name: "tenants_set",
    does: "Creates or updates a tenant.",
    workflow: false,
    fields: [am("id", "Tenant id", "A string. Required."), am("properties", "Properties", "An object, e.g. {\"name\": data.name}.")],
  },
  {
    type: TriggerActionType.TENANTS_DELETE,
    name: "tenants_delete",
    does: "Deletes a tenant.",
    workflow: false,
    fields: [am("id", "Tenant id", "A string. Required.")],
  },
  {
    type: TriggerActionType.OBJECTS_SET,
    name: "objects_set",
    does: "Creates or updates an object.",
    workflow: false,
    fields: [
      am("collection", "Collection", "A string, e.g. \"projects\". Required."),
      am("id", "Object id", "A string. Required."),
      am("properties", "Properties", "An object."),
    ],
  },
  {
    type: TriggerActionType.OBJECTS_DELETE,
    name: "objects_delete",
    does: "Deletes an object and its subscriptions.",
    workflow: false,
    fields: [am("collection", "Collection", "A string. Required."), am("id", "Object id", "A string. Required.")],
  },
  {
    type: TriggerActionType.OBJECTS_SUBSCRIBE,
    name: "objects_subscribe",
    does: "Subscribes recipients to an object.",
    workflow: false,
    fields: [
      am("collection", "Collection", "A string. Required."),
      am("id", "Object id", "A string. Required."),
      am("recipients", "Recipients", recipientsHint),
      am("properties", "Properties", "An object: the subscription's properties."),
    ],
  },
  {
    type: TriggerActionType.OBJECTS_UNSUBSCRIBE,
    name: "objects_unsubscribe",
    does: "Removes recipients' subscriptions to an object.",
    workflow: false,
    fields: [am("collection", "Collection", "A string. Required."), am("id", "Object id", "A string. Required."), am("recipients", "Recipients", recipientsHint)],
  },
  {
    type: TriggerActionType.AUDIENCES_ADD_MEMBER,
    name: "audiences_add_member",
    does: "Adds users to an audience.",
    workflow: false,
    fields: [
      am("audienceKey", "Audience key", "A string. Required."),
      am("users", "Users", "A user id, a user object, or a list. Default: userId."),
      am("tenant", "Tenant", "A tenant id or object with id. Default: none."),
    ],
  },
  {
    type: TriggerActionType.AUDIENCES_REMOVE_MEMBER,
    name: "audiences_remove_member",
    does: "Removes users from an audience.",
    workflow: false,
    fields: [
      am("audienceKey", "Audience key", "A string. Required."),
      am("users", "Users", "A user id, a user object, or a list. Default: userId."),
      am("tenant", "Tenant", "A tenant id or object with id. Default: none."),
    ],
  },
];

// actionOf is the editor's entry for t; UNSPECIFIED (triggers saved before
// action types) is workflows_trigger, as the API reads it.
export function actionOf(t: TriggerActionType): Action {
  return actionList.find((a) => a.type === t) ?? actionList[0];
}

const frequencies: [TriggerFrequency, string][] = [
  [TriggerFrequency.EVERY_TIME, "Every time"],
  [TriggerFrequency.ONCE_PER_RECIPIENT, "Once per recipient"],
  [TriggerFrequency.ONCE_PER_RECIPIENT_PER_TENANT, "Once per recipient per tenant"],
];

function formOf(t: Trigger): Form {
  const m = t.actionMapping;
  return {
    actionType: actionOf(t.actionType).type,
    frequency: t.frequency || TriggerFrequency.EVERY_TIME,
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
    am: {
      collection: m?.collection ?? "",
      id: m?.id ?? "",
      properties: m?.properties ?? "",
      recipients: m?.recipients ?? "",
      audienceKey: m?.audienceKey ?? "",
      users: m?.users ?? "",
      tenant: m?.tenant ?? "",
    },
    active: t.status !== TriggerStatus.INACTIVE,
  };
}

// value reads an expression field of the form by its form key.
function value(f: Form, key: string): string {
  return key.startsWith("am.") ? f.am[key.slice(3) as ActionField] : (f[key as keyof Form] as string);
}

// triggerOf is the trigger the form describes, with only the fields its
// action reads set (the API refuses the others) and the rest cleared, so
// switching an existing trigger to another action type saves cleanly.
function triggerOf(f: Form) {
  const a = actionOf(f.actionType);
  const reads = new Set(a.fields.map((x) => x[0]));
  const keep = (key: string) => (reads.has(key) ? value(f, key) : "");
  const mapping = { recipients: keep("recipients"), actor: keep("actor"), tenant: keep("tenant"), data: keep("data"), cancellationKey: keep("cancellationKey") };
  const actionMapping = Object.fromEntries(actionFields.map((x) => [x, keep("am." + x)])) as Record<ActionField, string>;
  return {
    actionType: a.type,
    frequency: a.type === TriggerActionType.WORKFLOWS_TRIGGER ? f.frequency : TriggerFrequency.UNSPECIFIED,
    workflowKey: a.workflow ? f.workflowKey : "",
    sourceId: f.sourceId,
    eventType: f.eventType,
    event: f.event,
    condition: f.condition,
    mapping,
    actionMapping,
    status: f.active ? TriggerStatus.ACTIVE : TriggerStatus.INACTIVE,
  };
}

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
    actionType: actionOf(Number(query.get("action") ?? 0)).type,
    frequency: TriggerFrequency.EVERY_TIME,
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
    am: { collection: "", id: "", properties: "", recipients: "", audienceKey: "", users: "", tenant: "" },
    active: true,
  });
  const action = actionOf(form.actionType);
  const fields: ExprField[] = [conditionField, ...action.fields];
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
    if ((actionOf(form.actionType).workflow && !form.workflowKey) || !form.sourceId) return;
    const t = setTimeout(() => runTest(form), 300);
    return () => clearTimeout(t);
  }, [form, env]);

  const set = (k: string) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    const v = el.type === "checkbox" ? el.checked : el.value;
    if (k.startsWith("am.")) setForm({ ...form, am: { ...form.am, [k.slice(3)]: v } });
    else if (k === "actionType" || k === "frequency") setForm({ ...form, [k]: Number(v) });
    else setForm({ ...form, [k]: v });
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
    if (!confirm(`Delete this trigger? Matching events stop running its ${action.name} action.`)) return;
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
  const formFields = ["actionType", "frequency", "sourceId", "eventType", "event", "workflowKey", "status", ...fields.map((f) => f[1])];

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
            <Field label="Action" field="actionType" error={fieldErrors} hint={action.does}>
              <select id="trigger-action" value={String(action.type)} onChange={set("actionType")}>
                {actionList.map((a) => (
                  <option value={String(a.type)}>{a.name}</option>
                ))}
              </select>
            </Field>
            {action.workflow && (
              <Field label="Workflow" field="workflowKey" error={fieldErrors}>
                <select id="trigger-workflow" value={form.workflowKey} onChange={set("workflowKey")}>
                  {(workflows.data?.workflows ?? []).map((w) => (
                    <option value={w.key}>{w.name || w.key}</option>
                  ))}
                </select>
              </Field>
            )}
            {action.type === TriggerActionType.WORKFLOWS_TRIGGER && (
              <Field label="Frequency" field="frequency" error={fieldErrors}>
                <select id="trigger-frequency" value={String(form.frequency)} onChange={set("frequency")}>
                  {frequencies.map(([f, label]) => (
                    <option value={String(f)}>{label}</option>
                  ))}
                </select>
              </Field>
            )}
            <label class="toggle">
              <input type="checkbox" id="trigger-active" checked={form.active} onChange={set("active")} /> Active
            </label>
          </div>
          {action.workflow && workflows.data && workflows.data.workflows.length === 0 && (
            <div class="notice">
              A {action.name} action needs a workflow: <Link href="/workflows">create a workflow</Link> first.
            </div>
          )}
          {fields.map(([k, field, label, hint]) => {
            const x = fieldErrors?.expression?.field === field ? fieldErrors.expression : undefined;
            return (
              <label class={"field expr" + (fieldErrors?.fields[field] ? " invalid" : "")}>
                <span class="label">{label}</span>
                <textarea
                  id={"trigger-" + field.replace(".", "-")}
                  rows={k === "condition" || k === "data" || k === "am.properties" ? 2 : 1}
                  spellcheck={false}
                  value={value(form, k)}
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
          {test && !form.active && <p class="muted">Tested as if active: saved inactive, it does nothing.</p>}
          {test && <TestResult r={test} />}
        </aside>
      </div>
    </Page>
  );
}

function json(v?: Value) {
  return v ? toJson(ValueSchema, v) : null;
}

// TestResult is the dry run: the condition, the outcome, and the mapped
// values, the run's (recipients, actor, tenant, data) for workflow actions
// and the action mapping's (action_values) for the others.
function TestResult({ r }: { r: TestTriggerResponse }) {
  const a = actionOf(r.actionType);
  const would: Record<string, string> = {
    workflows_trigger: "the workflow would run",
    workflows_cancel: "the runs with this key would be cancelled",
  };
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
          {r.status === ActionStatus.SUCCESS ? (would[a.name] ?? `${a.name} would apply`) : r.reason}
        </dd>
        {a.workflow && (
          <>
        <dt>Recipients</dt>
        <dd id="test-recipients">
          {r.resolvedRecipients.length ? r.resolvedRecipients.join(", ") : <span class="muted">none</span>}
          {r.skippedRecipients.map((s) => (
            <div class="muted">
              skipped {s.id}: {s.reason}
            </div>
          ))}
        </dd>
          </>
        )}
        {r.cancellationKey && (
          <>
            <dt>Cancellation key</dt>
            <dd>{r.cancellationKey}</dd>
          </>
        )}
      </dl>
      <h3>Mapped values</h3>
      {a.workflow ? (
        <JSONView value={{ recipients: json(r.recipients), actor: json(r.actor), tenant: json(r.tenant), data: json(r.data) }} />
      ) : (
        <JSONView value={r.actionValues ?? {}} />
      )}
    </div>
  );
}
