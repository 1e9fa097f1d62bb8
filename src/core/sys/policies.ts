import { z } from "zod";
import { NotFound, PermissionDenied, UserError, zCommaList } from "../../sdk/index.js";
import type { PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { PolicyStore } from "../policies.js";
import { currentRequest } from "../request-context.js";
import type { TokenEntry } from "../tokens.js";

/** Vault accepts the policy document as text or as base64 of the text. */
function policyText(raw: string): string {
  const t = raw.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0 && t.length >= 8) {
    const decoded = Buffer.from(t, "base64").toString("utf8");
    if (/path\s*"|"path"/.test(decoded)) return decoded;
  }
  return raw;
}

const policyBody = z.object({ policy: z.string().optional(), rules: z.string().optional() });

function capabilitiesPaths(core: Core): PathDefinition[] {
  const answer = async (entry: TokenEntry | undefined, paths: string[]) => {
    if (!paths.length) throw new UserError("'paths' must be given");
    const result: Record<string, string[]> = {};
    for (const p of paths) result[p] = await core.capabilitiesOf(entry, p.replace(/^\/+/, ""));
    return { data: { ...result, ...(paths.length === 1 ? { capabilities: result[paths[0]] } : {}) }, copyDataToTopLevel: true };
  };
  const pathsField = { paths: zCommaList.optional(), path: zCommaList.optional() };
  return [
    {
      pattern: "capabilities-self",
      operations: {
        update: {
          schema: z.object({ ...pathsField, token: z.string().optional() }),
          handler: async (req) => {
            const d = req.data as { paths?: string[]; path?: string[] };
            return answer(currentRequest(req).tokenEntry, [...(d.paths ?? []), ...(d.path ?? [])]);
          },
        },
      },
    },
    {
      pattern: "capabilities",
      operations: {
        update: {
          schema: z.object({ ...pathsField, token: z.string().min(1, "token is required") }),
          handler: async (req) => {
            const d = req.data as { paths?: string[]; path?: string[]; token: string };
            const entry = await core.tokens.lookup(d.token);
            if (!entry) throw new PermissionDenied("invalid token");
            return answer(entry, [...(d.paths ?? []), ...(d.path ?? [])]);
          },
        },
      },
    },
    {
      pattern: "capabilities-accessor",
      operations: {
        update: {
          schema: z.object({ ...pathsField, accessor: z.string().min(1, "accessor is required") }),
          handler: async (req) => {
            const d = req.data as { paths?: string[]; path?: string[]; accessor: string };
            const entry = await core.tokens.lookupAccessor(d.accessor);
            if (!entry) throw new UserError("invalid accessor");
            return answer(entry, [...(d.paths ?? []), ...(d.path ?? [])]);
          },
        },
      },
    },
  ];
}

export function policyPaths(core: Core): PathDefinition[] {
  const write = async (name: string, d: { policy?: string; rules?: string }) => {
    const text = d.policy ?? d.rules;
    if (!text || !text.trim()) throw new UserError("'policy' parameter not supplied or empty");
    await core.policies.put(name, policyText(text));
  };
  const read = async (name: string) => {
    const n = name.toLowerCase();
    if (n === "root") return { name: "root", policy: "" };
    const text = await core.policies.text(n);
    if (text === undefined) throw new NotFound();
    return { name: n, policy: text };
  };
  return [
    {
      pattern: "policies/acl/?",
      operations: {
        list: { handler: async () => ({ data: { keys: await core.policies.list() }, copyDataToTopLevel: true }) },
      },
    },
    {
      pattern: "policies/acl/(?<name>[^/]+)",
      operations: {
        read: { handler: async (req) => ({ data: await read(req.params.name), copyDataToTopLevel: true }) },
        update: { schema: policyBody, handler: async (req) => write(req.params.name, req.data as z.infer<typeof policyBody>) },
        delete: { handler: async (req) => core.policies.delete(req.params.name) },
      },
    },
    {
      pattern: "policy/?",
      operations: {
        read: {
          handler: async () => {
            const names = [...(await core.policies.list()), "root"].sort();
            return { data: { keys: names, policies: names }, copyDataToTopLevel: true };
          },
        },
        list: {
          handler: async () => {
            const names = [...(await core.policies.list()), "root"].sort();
            return { data: { keys: names, policies: names }, copyDataToTopLevel: true };
          },
        },
      },
    },
    {
      pattern: "policy/(?<name>[^/]+)",
      operations: {
        read: {
          handler: async (req) => {
            const p = await read(req.params.name);
            return { data: { name: p.name, rules: p.policy }, copyDataToTopLevel: true };
          },
        },
        update: { schema: policyBody, handler: async (req) => write(req.params.name, req.data as z.infer<typeof policyBody>) },
        delete: { handler: async (req) => core.policies.delete(req.params.name) },
      },
    },
    ...capabilitiesPaths(core),
  ];
}

export { PolicyStore };
