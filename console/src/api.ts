// The console's one door to hark: Connect clients for the public API, with
// the admin token from sessionStorage as the bearer token. The console has
// no backend of its own; everything it shows or changes goes through these.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { DestinationService, DeliveryService } from "./gen/hark/v1/destination_pb";
import { EnvironmentService } from "./gen/hark/v1/environment_pb";
import { EventService } from "./gen/hark/v1/event_pb";
import { SourceService } from "./gen/hark/v1/source_pb";
import { TriggerService, ExpressionErrorSchema, type ExpressionError } from "./gen/hark/v1/trigger_pb";
import { UserService } from "./gen/hark/v1/user_pb";
import { TenantService } from "./gen/hark/v1/tenant_pb";
import { ObjectService } from "./gen/hark/v1/object_pb";
import { AudienceService } from "./gen/hark/v1/audience_pb";
import { WorkflowService } from "./gen/hark/v1/workflow_pb";
import { WorkflowRunService } from "./gen/hark/v1/workflow_run_pb";

// The token lives in sessionStorage only: it is gone when the tab closes,
// and no cookie carries it (so no other site can make the browser send it).
const tokenKey = "hark.adminToken";

export function token(): string {
  return sessionStorage.getItem(tokenKey) ?? "";
}

export function setToken(t: string) {
  sessionStorage.setItem(tokenKey, t);
}

// onUnauthenticated is called when the API refuses the token; the app sends
// the user back to sign-in with the message.
let unauthenticated: (message: string) => void = () => {};
export function onUnauthenticated(f: (message: string) => void) {
  unauthenticated = f;
}

export function signOut(message = "") {
  sessionStorage.removeItem(tokenKey);
  unauthenticated(message);
}

const auth: Interceptor = (next) => async (req) => {
  req.header.set("Authorization", "Bearer " + token());
  try {
    return await next(req);
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated) {
      signOut("hark refused the admin token (wrong, or changed since you signed in). Sign in again.");
    }
    throw e;
  }
};

const transport = createConnectTransport({
  baseUrl: location.origin,
  interceptors: [auth],
  useBinaryFormat: true,
});

function client<T extends DescService>(s: T): Client<T> {
  return createClient(s, transport);
}

export const api = {
  environments: client(EnvironmentService),
  sources: client(SourceService),
  events: client(EventService),
  triggers: client(TriggerService),
  workflows: client(WorkflowService),
  runs: client(WorkflowRunService),
  users: client(UserService),
  tenants: client(TenantService),
  objects: client(ObjectService),
  audiences: client(AudienceService),
  destinations: client(DestinationService),
  deliveries: client(DeliveryService),
};

// checkToken asks the API whether t is the admin token, without keeping it.
export async function checkToken(t: string): Promise<void> {
  const c = createClient(EnvironmentService, createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true }));
  await c.listEnvironments({ pageSize: 1 }, { headers: { Authorization: "Bearer " + t } });
}

// FieldViolation is one entry of a google.rpc.BadRequest detail.
export interface FieldViolation {
  field: string;
  description: string;
}

// APIError is what a form shows: the message, violations by field (named
// as the API names them: JSON names, map keys as written, e.g.
// "mapping.recipients", "pluginSettings.shared_secret") and any
// expression error with its position.
export interface APIError {
  message: string;
  code: Code;
  fields: Record<string, string>;
  expression?: ExpressionError;
}

const badRequestType = "google.rpc.BadRequest";

// decodeBadRequest reads google.rpc.BadRequest by hand: it is the one
// detail the console needs that no hark.v1 file imports, and two string
// fields are simpler than a second generated package.
function decodeBadRequest(b: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  const r = new BinaryReader(b);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no !== 1) {
      r.skip(wt);
      continue;
    }
    const v = new BinaryReader(r.bytes());
    const fv: FieldViolation = { field: "", description: "" };
    while (v.pos < v.len) {
      const [n, w] = v.tag();
      if (n === 1) fv.field = v.string();
      else if (n === 2) fv.description = v.string();
      else v.skip(w);
    }
    out.push(fv);
  }
  return out;
}

export function apiError(e: unknown): APIError {
  const err = ConnectError.from(e);
  const out: APIError = { message: err.rawMessage, code: err.code, fields: {} };
  for (const d of err.details) {
    if ("type" in d && d.type === badRequestType) {
      for (const v of decodeBadRequest(d.value)) {
        out.fields[v.field] = v.description;
      }
    }
  }
  const x = err.findDetails(ExpressionErrorSchema)[0];
  if (x) {
    out.expression = x;
    out.fields[x.field] = x.message;
  }
  return out;
}
