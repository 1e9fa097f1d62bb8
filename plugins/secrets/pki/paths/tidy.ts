import { z } from "zod";
import { UserError } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import type { PkiEngine } from "../engine.js";
import { tidyFields } from "./config.js";

const tidySchema = z.object(tidyFields);

/** `tidy` (202: runs in the background), `tidy-status`, `tidy-cancel`, as Vault has them. */
export function tidyPaths(engine: PkiEngine): PathDefinition[] {
  return [
    {
      pattern: "tidy",
      operations: {
        update: {
          schema: tidySchema,
          summary: "Remove certificates (and revocations) that expired more than safety_buffer ago.",
          handler: async (req: HandlerRequest<z.infer<typeof tidySchema>>): Promise<HandlerResponse> => {
            const d = req.data;
            if (!d.tidy_cert_store && !d.tidy_revoked_certs) throw new UserError("at least one of tidy_cert_store or tidy_revoked_certs must be true");
            engine.startTidy({ tidy_cert_store: d.tidy_cert_store ?? false, tidy_revoked_certs: d.tidy_revoked_certs ?? false, safety_buffer: d.safety_buffer ?? 72 * 3600, pause_duration: d.pause_duration ?? 0 });
            return { status: 202, warnings: ["Tidy operation successfully started. Any information from the operation will be printed to the server's logs and to tidy-status."] };
          },
        },
      },
    },
    { pattern: "tidy-status", operations: { read: { summary: "State of the current or last tidy.", handler: async (): Promise<HandlerResponse> => ({ data: { ...engine.tidyStatus } }) } } },
    {
      pattern: "tidy-cancel",
      operations: {
        update: {
          summary: "Stop the running tidy at its next checkpoint.",
          handler: async (): Promise<HandlerResponse> => {
            engine.requestTidyCancel();
            return { data: { ...engine.tidyStatus } };
          },
        },
      },
    },
  ];
}
