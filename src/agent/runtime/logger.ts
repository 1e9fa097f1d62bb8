/**
 * The logging surface the agent runtime needs: four levels, each taking a message or an object
 * of fields and a message. A pino logger satisfies it as is, so the CLI passes its own and tests
 * pass `silentLogger` or a `recordingLogger()`.
 */

/** One log level: `log("msg")` or `log({ field: 1 }, "msg")`, as pino accepts them. */
export interface AgentLogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** A pino-compatible logger with the four levels the agent uses. */
export interface AgentLogger {
  info: AgentLogFn;
  warn: AgentLogFn;
  error: AgentLogFn;
  debug: AgentLogFn;
}

/** A logger that drops everything (tests, or callers that only want return values). */
export const silentLogger: AgentLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

/** One entry captured by `recordingLogger`. */
export interface LogRecord {
  level: keyof AgentLogger;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every entry in `records`, so tests can assert what was logged. */
export function recordingLogger(): AgentLogger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const level =
    (name: keyof AgentLogger): AgentLogFn =>
    (objOrMsg: object | string, msg?: string) => {
      if (typeof objOrMsg === "string") records.push({ level: name, msg: objOrMsg, fields: {} });
      else records.push({ level: name, msg: msg ?? "", fields: { ...(objOrMsg as Record<string, unknown>) } });
    };
  return { records, info: level("info"), warn: level("warn"), error: level("error"), debug: level("debug") };
}
