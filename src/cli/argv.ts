import type { Command, Option } from "commander";
import { parseBool } from "../client/index.js";

/**
 * Rewrites `vault`-style flags into the GNU style commander parses, so scripts written for the
 * `vault` CLI run unchanged: `-format=json` → `--format=json`, `-policy a` → `--policy a`,
 * `-renewable=false` → `--no-renewable` (or nothing when the flag is off by default).
 *
 * Only multi-letter names that some command on the path actually defines are rewritten, so
 * short flags (`-f`), negative numbers (`-1`), a lone `-` (stdin) and everything after `--`
 * reach commander untouched. The subcommand path is followed as the words go by, so each flag
 * is looked up on the command that will parse it (`-version` is the program's flag at the top
 * and `secrets enable`'s engine version below it).
 */
export function normaliseArgv(argv: readonly string[], root: Command): string[] {
  const out: string[] = [];
  const chain: Command[] = [root];
  let positionalSeen = false;
  let nextIsValue = false;
  let passThrough = false;

  for (const arg of argv) {
    if (passThrough || nextIsValue) {
      out.push(arg);
      nextIsValue = false;
      continue;
    }
    if (arg === "--") {
      passThrough = true;
      out.push(arg);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      const current = chain[chain.length - 1];
      const sub = positionalSeen ? undefined : findSubcommand(current, arg);
      if (sub) chain.push(sub);
      else positionalSeen = true;
      out.push(arg);
      continue;
    }
    const m = /^(--?)([A-Za-z][A-Za-z0-9_-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) {
      out.push(arg);
      continue;
    }
    const [, dashes, name, value] = m;
    if (dashes === "-" && name.length === 1) {
      const short = findOption(chain, (o) => o.short === `-${name}`);
      if (short?.required && value === undefined) nextIsValue = true;
      out.push(arg);
      continue;
    }
    if (name === "help") {
      out.push("--help");
      continue;
    }
    const option = findOption(chain, (o) => o.long === `--${name}`);
    if (!option) {
      out.push(arg);
      continue;
    }
    if (!option.required && !option.optional && value !== undefined) {
      // Go's flag package accepts `-flag=true`/`-flag=false` for boolean flags.
      const on = parseBool(value);
      if (on === true) out.push(`--${name}`);
      else if (on === false) {
        const opposite = option.negate ? `--${name.replace(/^no-/, "")}` : `--no-${name}`;
        if (findOption(chain, (o) => o.long === opposite)) out.push(opposite);
      } else out.push(`--${name}=${value}`);
      continue;
    }
    out.push(value === undefined ? `--${name}` : `--${name}=${value}`);
    if (option.required && value === undefined) nextIsValue = true;
  }
  return out;
}

function findSubcommand(cmd: Command, word: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

function findOption(chain: readonly Command[], match: (o: Option) => boolean): Option | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = chain[i].options.find(match);
    if (found) return found;
  }
  return undefined;
}
