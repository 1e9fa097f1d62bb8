/**
 * Exponential backoff with jitter, and an abortable sleep: the timing the client's retries, the
 * token keeper's re-logins and the secret watchers' refetches share.
 */

/** Delay before retry number `attempt` (0 = first retry): min·2^attempt capped at max, then "equal jitter" (half fixed, half random). */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Successive backoff delays between `minMs` and `maxMs`; `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    return backoffDelay(this.attempt++, this.minMs, this.maxMs, this.random);
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** The error an aborted `sleep` rejects with (its `name` is "AbortError", as fetch's). */
export class AbortError extends Error {
  constructor(message = "stopped") {
    super(message);
    this.name = "AbortError";
  }
}

/**
 * Waits `ms`; rejects with AbortError as soon as `signal` aborts. Unless `keepAlive`, the timer
 * does not keep the process alive (a library's background renewals must not block an app's exit).
 */
export function sleep(ms: number, signal?: AbortSignal, keepAlive = false): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    if (!keepAlive) timer.unref?.();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
