import type { z, ZodType } from "zod";
import { NotFound } from "../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition, StorageView } from "../../../src/sdk/index.js";

/**
 * What an auth method builds from its mount's `config` (a JWT validator, a Kubernetes key set):
 * loaded from storage on first use and replaced on every config write, so that state such as a
 * JWKS cache lives as long as the mount. A failed load is not kept, so the next request retries it.
 */
export class ConfigCache<T> {
  #current: Promise<T | undefined> | undefined;

  constructor(private readonly load: () => Promise<T | undefined>) {}

  get(): Promise<T | undefined> {
    return (this.#current ??= this.load().catch((err: unknown) => {
      this.#current = undefined;
      throw err;
    }));
  }

  /** After a config write: the value built from the config just stored. */
  set(value: T): void {
    this.#current = Promise.resolve(value);
  }
}

/**
 * The `config` path of a method whose configuration is one JSON record (jwt, kubernetes): read
 * answers `view` of the stored record (404 before the first write); update builds the record from
 * the request, prepares the state requests will use (which may refuse the config with a 400, and
 * then nothing is stored), stores the record and hands the state to `cache`.
 */
export function configPath<Schema extends ZodType, C, S>(o: {
  storage: StorageView;
  schema: Schema;
  fromInput: (data: z.infer<Schema>) => C;
  view: (config: C) => Record<string, unknown>;
  prepare: (config: C) => Promise<S> | S;
  cache: ConfigCache<S>;
  summary: string;
}): PathDefinition {
  return {
    pattern: "config",
    operations: {
      read: {
        handler: async () => {
          const cfg = await o.storage.getJSON<C>("config");
          if (!cfg) throw new NotFound();
          return { data: o.view(cfg) };
        },
      },
      update: {
        schema: o.schema,
        handler: async (r: HandlerRequest) => {
          const cfg = o.fromInput(r.data as z.infer<Schema>);
          const state = await o.prepare(cfg);
          await o.storage.putJSON("config", cfg);
          o.cache.set(state);
        },
        summary: o.summary,
      },
    },
  };
}
