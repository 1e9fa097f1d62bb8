import { z } from "zod";
import { RAW_BODY_FIELD, zRawBody } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { ocspError, OCSPResponseStatus } from "../crypto/ocsp.js";
import type { PkiEngine } from "../engine.js";

const OCSP_RESPONSE = "application/ocsp-response";

function answer(body: Buffer): HandlerResponse {
  return { raw: { status: 200, contentType: OCSP_RESPONSE, body } };
}

/**
 * RFC 6960 over HTTP (appendix A): `POST ocsp` with an `application/ocsp-request` body, or
 * `GET ocsp/<base64 of the DER request>`. Unauthenticated; every outcome is an OCSP response,
 * errors included (malformedRequest, unauthorized for issuers this mount does not know).
 */
export function ocspPaths(engine: PkiEngine): PathDefinition[] {
  return [
    {
      pattern: "ocsp",
      operations: {
        update: {
          schema: z.object({ [RAW_BODY_FIELD]: zRawBody.optional() }),
          summary: "OCSP over POST (application/ocsp-request).",
          handler: async (req: HandlerRequest<Record<string, z.infer<typeof zRawBody> | undefined>>): Promise<HandlerResponse> => {
            const raw = req.data[RAW_BODY_FIELD];
            if (!raw || raw.content_type !== "application/ocsp-request") return answer(ocspError(OCSPResponseStatus.malformedRequest));
            return answer(await engine.ocsp(Buffer.from(raw.base64, "base64")));
          },
        },
      },
    },
    {
      pattern: "ocsp/(?<request>.+)",
      operations: {
        read: {
          summary: "OCSP over GET (base64 DER request in the path).",
          handler: async (req): Promise<HandlerResponse> => {
            const text = req.params.request.replace(/-/g, "+").replace(/_/g, "/");
            if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return answer(ocspError(OCSPResponseStatus.malformedRequest));
            return answer(await engine.ocsp(Buffer.from(text, "base64")));
          },
        },
      },
    },
  ];
}
