/**
 * Where leasehold's policy parser says a policy is wrong. Its messages name the policy, then the
 * place: `policy "dev":3:1: expected "," ...` for syntax errors (line and column) and
 * `policy "dev", line 2: path "a": unknown capability ...` for rules that parse but make no sense
 * (src/core/acl/policy.ts); a message with neither is about the whole text.
 */

/** A refusal of the server, split into the line (1-based), the column if given, and the message. */
export interface PolicyProblem {
  line?: number;
  column?: number;
  message: string;
}

const WITH_POSITION = /^policy "(?:[^"\\]|\\.)*"(?::(\d+):(\d+)|, line (\d+))?: ([\s\S]*)$/;

/** Parses one error of `PUT sys/policies/acl/<name>`. */
export function policyProblemOf(error: string): PolicyProblem {
  const m = WITH_POSITION.exec(error.trim());
  if (!m) return { message: error };
  const line = m[1] ?? m[3];
  return {
    ...(line ? { line: Number(line) } : {}),
    ...(m[2] ? { column: Number(m[2]) } : {}),
    message: m[4]!,
  };
}
