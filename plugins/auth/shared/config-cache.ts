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
