import { useState } from "preact/hooks";
import { durationFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import { api, apiError, type APIError } from "../api";
import type { SourceEnvironment, SourceType } from "../gen/hark/v1/source_pb";
import { navigate } from "../router";
import { Code, CopyButton, Empty, ErrorBox, Field, FormError, Link, Page, time, useLoad } from "../ui";

export function Sources({ env }: { env: string }) {
  const list = useLoad(() => api.sources.listSources({ pageSize: 100 }), []);
  const types = useLoad(() => api.sources.listSourceTypes({}), []);
  const [name, setName] = useState("");
  const [type, setType] = useState("segment");
  const [error, setError] = useState<APIError>();
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const r = await api.sources.createSource({ name, type });
      navigate("/sources/" + r.source!.id);
    } catch (err) {
      setError(apiError(err));
    }
  };
  const sources = list.data?.sources ?? [];
  return (
    <Page title="Sources">
      <form class="card inline-form" onSubmit={create} id="create-source">
        <h2>New source</h2>
        <div class="row">
          <Field label="Name" field="name" error={error}>
            <input id="source-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="Web app" />
          </Field>
          <Field label="Type" field="type" error={error}>
            <select id="source-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
              {(types.data?.sourceTypes ?? []).map((t) => (
                <option value={t.type}>{t.displayName || t.type}</option>
              ))}
            </select>
          </Field>
          <button type="submit" class="primary">
            Create source
          </button>
        </div>
        <FormError error={error} shown={["name", "type"]} />
      </form>
      <ErrorBox error={list.error} />
      {list.data && sources.length === 0 && (
        <Empty>
          No sources yet. Create one above: each gets a webhook URL per environment to paste into Segment,
          RudderStack or any webhook sender.
        </Empty>
      )}
      {sources.length > 0 && (
        <table class="list" id="sources">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Webhook URL ({env})</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {sources.map((s) => {
              const se = s.environments.find((x) => x.environment === env);
              return (
                <tr>
                  <td>
                    <Link href={"/sources/" + s.id}>{s.name}</Link>
                  </td>
                  <td>{s.type}</td>
                  <td class="url">{se && <Code text={se.ingestUrl} />}</td>
                  <td class="nowrap">{time(s.createdAt)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Page>
  );
}

export function SourceDetail({ id, env }: { id: string; env: string }) {
  const src = useLoad(() => api.sources.getSource({ id }), [id]);
  const types = useLoad(() => api.sources.listSourceTypes({}), []);
  const s = src.data?.source;
  const type = types.data?.sourceTypes.find((t) => t.type === s?.type);
  const remove = async () => {
    if (!confirm(`Delete source ${s?.name}? Its webhook URLs stop working.`)) return;
    try {
      await api.sources.deleteSource({ id });
      navigate("/sources");
    } catch (err) {
      alert(apiError(err).message);
    }
  };
  return (
    <Page
      title={s ? s.name : "Source"}
      actions={
        <button type="button" class="danger" onClick={remove}>
          Delete source
        </button>
      }
    >
      <ErrorBox error={src.error} />
      {s && (
        <p class="meta">
          {s.type} source · id <code>{s.id}</code> · created {time(s.createdAt)}
        </p>
      )}
      {s &&
        [...s.environments]
          .sort((a, b) => (a.environment === env ? -1 : b.environment === env ? 1 : a.environment.localeCompare(b.environment)))
          .map((se) => <SourceEnvCard key={se.environment} se={se} type={type} current={se.environment === env} />)}
    </Page>
  );
}

function seconds(d?: Duration): string {
  if (!d) return "";
  return String(Number(d.seconds));
}

function SourceEnvCard(props: { se: SourceEnvironment; type?: SourceType; current: boolean }) {
  const [se, setSe] = useState(props.se);
  const [error, setError] = useState<APIError>();
  const [saved, setSaved] = useState("");
  const [win, setWin] = useState(seconds(se.idempotencyWindow));
  const [settings, setSettings] = useState<Record<string, string>>({ ...se.pluginSettings });
  const update = async (patch: Parameters<typeof api.sources.updateSourceEnvironment>[0], what: string) => {
    setError(undefined);
    setSaved("");
    try {
      const r = await api.sources.updateSourceEnvironment({ sourceId: se.sourceId, environment: se.environment, ...patch });
      setSe(r.sourceEnvironment!);
      setSaved(what + " saved");
    } catch (err) {
      setError(apiError(err));
    }
  };
  const rotate = async () => {
    if (!confirm(`Rotate the ${se.environment} token? The current URL stops working at once; paste the new one into the sender.`)) return;
    setError(undefined);
    try {
      const r = await api.sources.rotateSourceToken({ sourceId: se.sourceId, environment: se.environment });
      setSe(r.sourceEnvironment!);
      setSaved("New URL: update the sender");
    } catch (err) {
      setError(apiError(err));
    }
  };
  return (
    <div class={"card env-card" + (props.current ? " current" : "")} data-environment={se.environment}>
      <div class="card-head">
        <h2>{se.environment}</h2>
        <Link href={`/events?source=${se.sourceId}&env=${se.environment}`}>View events in {se.environment} →</Link>
      </div>
      <div class="label">Webhook URL</div>
      <Code text={se.ingestUrl} />
      <p class="hint">
        Try it: <code>{`curl -X POST -H 'Content-Type: application/json' -d '{"type":"track","event":"Signed Up","userId":"u1"}' ${se.ingestUrl}`}</code>
      </p>
      <div class="toggles">
        <label class="toggle">
          <input
            type="checkbox"
            name="identify"
            checked={se.identifyEnabled}
            onChange={(e) => update({ identifyEnabled: e.currentTarget.checked }, "Identify")}
          />
          Identify users from identify events (and traits on other events)
        </label>
        <label class="toggle">
          <input
            type="checkbox"
            name="idempotency"
            checked={se.idempotencyEnabled}
            onChange={(e) => update({ idempotencyEnabled: e.currentTarget.checked }, "Idempotency")}
          />
          Drop repeated deliveries of one event (idempotency)
        </label>
      </div>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          update({ idempotencyWindow: durationFromMs(Number(win) * 1000) }, "Idempotency window");
        }}
      >
        <Field label="Idempotency window (seconds)" field="idempotencyWindow" error={error}>
          <input type="number" min="1" value={win} onInput={(e) => setWin(e.currentTarget.value)} />
        </Field>
        <button type="submit">Save window</button>
      </form>
      {props.type && props.type.settings.length > 0 && (
        <form
          class="settings"
          onSubmit={(e) => {
            e.preventDefault();
            update({ pluginSettings: settings }, "Settings");
          }}
        >
          <h3>{props.type.displayName || props.type.type} settings</h3>
          {props.type.settings.map((st) => (
            <Field label={st.key + (st.required ? " (required)" : "")} field={"pluginSettings." + st.key} error={error} hint={st.description}>
              {st.secret ? (
                <input
                  type="password"
                  value={settings[st.key] ?? ""}
                  onInput={(e) => setSettings({ ...settings, [st.key]: e.currentTarget.value })}
                />
              ) : (
                <input value={settings[st.key] ?? ""} onInput={(e) => setSettings({ ...settings, [st.key]: e.currentTarget.value })} />
              )}
            </Field>
          ))}
          <button type="submit">Save settings</button>
        </form>
      )}
      <div class="row end">
        {saved && <span class="ok">{saved}</span>}
        <CopyButton text={se.ingestUrl} label="Copy URL" />
        <button type="button" onClick={rotate} class="danger">
          Rotate token
        </button>
      </div>
      <ErrorBox error={error} />
      <p class="meta">Updated {time(se.updatedAt)}</p>
    </div>
  );
}
