#!/usr/bin/env node
import "reflect-metadata";
import { homedir } from "node:os";
import { runCli } from "./program.js";

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  homeDir: homedir(),
});
// `server` reports a failed start through process.exitCode; keep it.
if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
