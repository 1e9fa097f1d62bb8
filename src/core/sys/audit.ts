import { z } from "zod";
import { zBool, zStringMap } from "../../sdk/index.js";
import type { PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { normalizeAuditPath } from "../audit/broker.js";

const enableSchema = z.object({
  type: z.string().min(1, "type is required (e.g. file)"),
  description: z.string().optional(),
  options: zStringMap.optional(),
  local: zBool.optional(),
});

export function auditPaths(core: Core): PathDefinition[] {
  return [
    {
      pattern: "audit/?",
      operations: { read: { handler: async () => ({ data: { ...core.audit.list() }, copyDataToTopLevel: true }) } },
    },
    {
      pattern: "audit/(?<path>.+)",
      operations: {
        update: {
          schema: enableSchema,
          handler: async (req) => {
            const d = req.data as z.infer<typeof enableSchema>;
            await core.audit.enable(normalizeAuditPath(req.params.path), { type: d.type, description: d.description, options: d.options, local: d.local });
          },
        },
        delete: {
          handler: async (req) => {
            await core.audit.disable(normalizeAuditPath(req.params.path));
          },
        },
      },
    },
    {
      pattern: "audit-hash/(?<path>.+)",
      operations: {
        update: {
          schema: z.object({ input: z.string({ message: "input is required" }) }),
          handler: async (req) => ({ data: { hash: core.audit.hash(normalizeAuditPath(req.params.path), (req.data as { input: string }).input) }, copyDataToTopLevel: true }),
        },
      },
    },
  ];
}

/**
 * `sys/metrics`' answer: this node's registry, in Prometheus text or as JSON. Also what an HA
 * standby answers itself (each node's own figures) once the active node has said the caller may
 * read `sys/metrics` (src/server/app.ts).
 */
export async function metricsAnswer(core: Core, format: string | undefined): Promise<{ raw: { status: number; contentType: string; body: string } } | { data: { metrics: unknown } }> {
  if (format === "prometheus") return { raw: { status: 200, contentType: core.metrics.registry.contentType, body: await core.metrics.registry.metrics() } };
  return { data: { metrics: await core.metrics.registry.getMetricsAsJSON() } };
}

export function metricsPaths(core: Core): PathDefinition[] {
  return [
    {
      pattern: "metrics",
      operations: {
        read: {
          schema: z.object({ format: z.enum(["prometheus", "json", ""]).optional() }),
          handler: (req) => metricsAnswer(core, (req.data as { format?: string }).format),
        },
      },
    },
  ];
}
