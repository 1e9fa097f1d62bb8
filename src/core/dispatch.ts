import { ZodObject, type ZodType } from "zod";
import { NotFound, UnsupportedOperation, UserError } from "../sdk/errors.js";
import type { Backend, HandlerRequest, HandlerResponse, Operation, PathDefinition } from "../sdk/types.js";
import { bindRequestContext, type RequestContext } from "./request-context.js";

/** A request path resolved to one of a backend's path definitions. */
export interface RouteMatch {
  def: PathDefinition;
  params: Record<string, string>;
}

const compiled = new WeakMap<PathDefinition, RegExp>();

function regexOf(def: PathDefinition): RegExp {
  let re = compiled.get(def);
  if (!re) {
    re = new RegExp(`^(?:${def.pattern})$`);
    compiled.set(def, re);
  }
  return re;
}

/**
 * A backend's paths grouped by their literal first segment (`issue` for `issue/(?<role>[^/]+)`), so
 * a request tries only the patterns that can match it: an engine has dozens. Patterns that do not
 * start with a plain segment (a group, a wildcard, any alternation) are tried for every request;
 * each group keeps them, in the backend's order, so the first match is the same as in a full scan.
 */
interface RouteIndex {
  paths: number;
  bySegment: Map<string, PathDefinition[]>;
  unindexed: PathDefinition[];
}

const indexes = new WeakMap<PathDefinition[], RouteIndex>();

/** The pattern's first segment when it is plain text (then every path it matches starts with it). */
function literalFirstSegment(pattern: string): string | undefined {
  if (pattern.includes("|")) return undefined; // an alternation can match other first segments
  const slash = pattern.indexOf("/");
  const head = slash < 0 ? pattern : pattern.slice(0, slash);
  return /^[A-Za-z0-9_-]+$/.test(head) ? head : undefined;
}

function routeIndex(paths: PathDefinition[]): RouteIndex {
  let index = indexes.get(paths);
  if (index && index.paths === paths.length) return index;
  const segments = paths.map((def) => literalFirstSegment(def.pattern));
  const bySegment = new Map<string, PathDefinition[]>();
  for (const seg of new Set(segments)) {
    if (seg !== undefined) bySegment.set(seg, paths.filter((_, i) => segments[i] === seg || segments[i] === undefined));
  }
  index = { paths: paths.length, bySegment, unindexed: paths.filter((_, i) => segments[i] === undefined) };
  indexes.set(paths, index);
  return index;
}

/** Finds the first path definition whose pattern matches the whole relative path. */
export function matchRoute(backend: Backend, relPath: string): RouteMatch | undefined {
  const index = routeIndex(backend.paths);
  const slash = relPath.indexOf("/");
  const candidates = index.bySegment.get(slash < 0 ? relPath : relPath.slice(0, slash)) ?? index.unindexed;
  for (const def of candidates) {
    const m = regexOf(def).exec(relPath);
    if (m) return { def, params: { ...(m.groups ?? {}) } };
  }
  return undefined;
}

/** Like `matchRoute` but a miss is Vault's 404 `unsupported path`. */
export function requireRoute(backend: Backend, relPath: string, fullPath: string): RouteMatch {
  const match = matchRoute(backend, relPath);
  if (!match) throw new NotFound(`unsupported path: ${fullPath}`);
  return match;
}

/**
 * Decides which logical operation a write is (Vault's rule: with an existence check, a write to a
 * missing entry is `create`, otherwise `update`; without one it is always `update`).
 */
export async function resolveWriteOperation(match: RouteMatch, req: HandlerRequest): Promise<Operation> {
  if (!match.def.existenceCheck) return "update";
  return (await match.def.existenceCheck(req)) ? "update" : "create";
}

/** Picks the handler for an operation; create and update fall back on each other, as in Vault. */
export function handlerFor(match: RouteMatch, op: Operation) {
  const ops = match.def.operations;
  const h = ops[op] ?? (op === "create" ? ops.update : op === "update" ? ops.create : undefined);
  if (!h) throw new UnsupportedOperation();
  return h;
}

/** Formats a zod error as Vault-style messages, one per problem, naming the field. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string[] {
  return issues.map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message));
}

/** The parts of zod's internal definition this module reads to see through wrappers. */
interface ZodDefView {
  type: string;
  innerType?: ZodType;
  in?: ZodType;
  /** Set when the object keeps unknown keys (`passthrough`, `catchall`): they are data then. */
  catchall?: ZodType;
}

function defOf(schema: ZodType): ZodDefView {
  return (schema as unknown as { _zod: { def: ZodDefView } })._zod.def;
}

/** The object schema under `optional`, `nullable`, `default`, `catch` and pipes, if there is one. */
function objectSchemaOf(schema: ZodType | undefined): ZodObject | undefined {
  for (let s = schema, depth = 0; s && depth < 16; depth++) {
    if (s instanceof ZodObject) return s;
    const def = defOf(s);
    s = def.innerType ?? def.in;
  }
  return undefined;
}

/**
 * Vault's field decoding reads a JSON `null` as "not given" (the field's default or zero value):
 * hvac sends `null` for every parameter its caller leaves out. Known fields whose value is null are
 * dropped before validation, in nested objects the schema describes too; free-form values (a KV
 * secret's `data`, metadata maps) keep their nulls, as Vault stores them.
 */
function withoutNullFields(schema: ZodObject, data: Record<string, unknown>): Record<string, unknown> {
  const shape = schema.shape as Record<string, ZodType>;
  const keepsUnknown = defOf(schema).catchall !== undefined;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(data)) {
    const known = Object.hasOwn(shape, key);
    if (value === null && (known || !keepsUnknown)) {
      out ??= { ...data };
      delete out[key];
      continue;
    }
    const nested = known ? objectSchemaOf(shape[key]) : undefined;
    if (nested && typeof value === "object" && !Array.isArray(value)) {
      const cleaned = withoutNullFields(nested, value as Record<string, unknown>);
      if (cleaned !== value) {
        out ??= { ...data };
        out[key] = cleaned;
      }
    }
  }
  return out ?? data;
}

/**
 * Validates `data` with the schema; unknown top-level fields become a warning, as Vault does.
 * `pathFields` are the parameters the route captured from the URL: clients (hvac) repeat them in the
 * body, and Vault knows them as fields, so they are not "unrecognized". A `patch` is a JSON merge
 * patch, where a null removes what it names: its nulls are kept.
 */
export function validateData(schema: ZodType | undefined, data: Record<string, unknown>, pathFields: readonly string[] = [], op?: Operation): { data: unknown; warnings: string[] } {
  if (!schema) return { data, warnings: [] };
  const object = objectSchemaOf(schema);
  const given = object && op !== "patch" ? withoutNullFields(object, data) : data;
  const result = schema.safeParse(given);
  if (!result.success) {
    const msgs = describeIssues(result.error.issues);
    throw new UserError(msgs[0] ?? "invalid request", msgs.slice(1));
  }
  const warnings: string[] = [];
  if (object) {
    const known = new Set([...Object.keys(object.shape as object), ...pathFields]);
    const unknown = Object.keys(given).filter((k) => !known.has(k));
    if (unknown.length) warnings.push(`Endpoint ignored these unrecognized parameters: [${unknown.join(" ")}]`);
  }
  return { data: result.data, warnings };
}

/** Validates and runs the handler for `op` on a matched route. */
export async function invokeHandler(match: RouteMatch, op: Operation, req: HandlerRequest, ctx?: RequestContext): Promise<HandlerResponse> {
  const h = handlerFor(match, op);
  const { data, warnings } = validateData(h.schema, req.data, Object.keys(match.params), op);
  const handlerReq = { ...req, op, params: match.params, data: data as Record<string, unknown> };
  if (ctx) bindRequestContext(handlerReq, ctx);
  const resp = (await h.handler(handlerReq)) ?? {};
  if (warnings.length) resp.warnings = [...(resp.warnings ?? []), ...warnings];
  return resp;
}
