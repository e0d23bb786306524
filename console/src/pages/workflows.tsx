import { useState } from "preact/hooks";
import { api, apiError, type APIError } from "../api";
import type { Workflow } from "../gen/hark/v1/workflow_pb";
import { Empty, ErrorBox, Field, FormError, Link, Page, time, useLoad } from "../ui";

export function Workflows({ env }: { env: string }) {
  const list = useLoad(() => api.workflows.listWorkflows({ pageSize: 100 }), []);
  const [key, setKey] = useState("");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<APIError>();
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      await api.workflows.createWorkflow({ key, name, description });
      setKey("");
      setName("");
      setDescription("");
      list.reload();
    } catch (err) {
      setError(apiError(err));
    }
  };
  const toggle = async (w: Workflow) => {
    setError(undefined);
    try {
      await api.workflows.updateWorkflow({ key: w.key, active: !w.active });
      list.reload();
    } catch (err) {
      setError(apiError(err));
    }
  };
  const workflows = list.data?.workflows ?? [];
  return (
    <Page title="Workflows">
      <form class="card inline-form" onSubmit={create} id="create-workflow">
        <h2>New workflow</h2>
        <div class="row">
          <Field label="Key" field="key" error={error}>
            <input id="workflow-key" value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="welcome" />
          </Field>
          <Field label="Name" field="name" error={error}>
            <input id="workflow-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="Welcome email" />
          </Field>
          <Field label="Description" field="description" error={error}>
            <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          </Field>
          <button type="submit" class="primary">
            Create workflow
          </button>
        </div>
        <FormError error={error} shown={["key", "name", "description"]} />
      </form>
      <ErrorBox error={list.error} />
      {list.data && workflows.length === 0 && (
        <Empty>No workflows yet. Create one above; a trigger then starts it from events, and a destination receives its runs.</Empty>
      )}
      {workflows.length > 0 && (
        <table class="list" id="workflows">
          <thead>
            <tr>
              <th>Key</th>
              <th>Name</th>
              <th>Description</th>
              <th>Active</th>
              <th>Runs</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {workflows.map((w) => (
              <tr>
                <td>
                  <code>{w.key}</code>
                </td>
                <td>{w.name}</td>
                <td>{w.description}</td>
                <td>
                  <label class="switch">
                    <input type="checkbox" checked={w.active} onChange={() => toggle(w)} />
                    {w.active ? "active" : "inactive"}
                  </label>
                </td>
                <td>
                  <Link href={"/runs?workflow=" + w.key}>Runs in {env}</Link>
                </td>
                <td class="nowrap">{time(w.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
