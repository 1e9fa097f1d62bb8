import pino from "pino";
import { describe, expect, it } from "vitest";
import { recordingLogger, silentLogger, type AgentLogger } from "./logger.js";

describe("AgentLogger", () => {
  it("accepts a pino logger as is", () => {
    const logger: AgentLogger = pino({ level: "silent" });
    logger.info({ path: "/run/x" }, "rendered");
    logger.warn("plain message");
    expect(typeof logger.error).toBe("function");
  });

  it("silentLogger drops both call shapes", () => {
    expect(() => {
      silentLogger.info("x");
      silentLogger.error({ err: new Error("e") }, "y");
    }).not.toThrow();
  });

  it("recordingLogger keeps the level, message and fields", () => {
    const logger = recordingLogger();
    logger.warn({ code: 3 }, "command failed");
    logger.debug("started");
    expect(logger.records).toEqual([
      { level: "warn", msg: "command failed", fields: { code: 3 } },
      { level: "debug", msg: "started", fields: {} },
    ]);
  });
});
