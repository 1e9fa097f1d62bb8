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

/** Validates `data` with the schema; unknown top-level fields become a warning, as Vault does. */
export function validateData(schema: ZodType | undefined, data: Record<string, unknown>): { data: unknown; warnings: string[] } {
  if (!schema) return { data, warnings: [] };
  const result = schema.safeParse(data);
  if (!result.success) {
    const msgs = describeIssues(result.error.issues);
    throw new UserError(msgs[0] ?? "invalid request", msgs.slice(1));
  }
  const warnings: string[] = [];
  if (schema instanceof ZodObject) {
    const known = new Set(Object.keys(schema.shape as object));
    const unknown = Object.keys(data).filter((k) => !known.has(k));
    if (unknown.length) warnings.push(`Endpoint ignored these unrecognized parameters: [${unknown.join(" ")}]`);
  }
  return { data: result.data, warnings };
}

/** Validates and runs the handler for `op` on a matched route. */
export async function invokeHandler(match: RouteMatch, op: Operation, req: HandlerRequest, ctx?: RequestContext): Promise<HandlerResponse> {
  const h = handlerFor(match, op);
  const { data, warnings } = validateData(h.schema, req.data);
  const handlerReq = { ...req, op, params: match.params, data: data as Record<string, unknown> };
  if (ctx) bindRequestContext(handlerReq, ctx);
  const resp = (await h.handler(handlerReq)) ?? {};
  if (warnings.length) resp.warnings = [...(resp.warnings ?? []), ...warnings];
  return resp;
}
