import { UserError } from "../../sdk/errors.js";

/** 1-based line and column (columns count UTF-16 code units, a tab counts as one). */
export interface SourceLocation {
  line: number;
  column: number;
}

/** Maps an offset in a template's text to the location reported in messages. */
export type Locate = (offset: number) => SourceLocation;

/** The default `Locate`: lines and columns of the template text itself. */
export function textLocator(text: string): Locate {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo] + 1 };
  };
}

/**
 * A template that does not parse (`phase: "parse"`: a config error, reported at startup) or that
 * failed while rendering (`phase: "render"`: a missing key with `error_on_missing_key`, a function
 * given a value of the wrong type). The message reads `web.ctmpl:3:17: function "toUpperr" not defined`.
 *
 * Errors thrown by a `SecretSource` (network, permission denied) are not wrapped: they reach the
 * caller of `renderTemplate` unchanged, so the agent can tell them apart and retry.
 */
export class TemplateError extends UserError {
  override readonly code: string = "template_error";

  constructor(
    readonly templateName: string,
    readonly line: number,
    readonly column: number,
    /** The message without the `name:line:column: ` prefix. */
    readonly reason: string,
    readonly phase: "parse" | "render",
  ) {
    super(`${templateName}:${line}:${column}: ${reason}`);
  }
}
