/**
 * Group commit: requests for the same kind of store round trip (read these leases, claim them,
 * delete them) that arrive while one batch is being written wait, and the next batch takes all of
 * them at once, up to a cap. No timer: a lone request starts at once (after the current
 * synchronous code, one microtask), so it costs what a single call costs; a burst of thousands
 * costs a few batches instead of thousands of transactions (each one, under the HA fence, is
 * BEGIN + fence + statement + COMMIT).
 *
 * One batch runs at a time, in arrival order. When a batch fails, every request in it is rejected
 * with that error: each caller then handles it as it would have handled the failure of its own
 * single write (the expiration manager's retry rules), so no outcome is lost and none is invented.
 */
export class GroupCommit<Request, Result> {
  private readonly queue: { request: Request; resolve: (r: Result) => void; reject: (err: unknown) => void }[] = [];
  private draining = false;

  /**
   * @param commit writes one batch and returns one result per request, in the order given.
   * @param maxBatch the most requests one batch takes.
   */
  constructor(
    private readonly commit: (requests: Request[]) => Promise<Result[]>,
    private readonly maxBatch: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`group commit: maxBatch must be a positive integer, not ${maxBatch}`);
  }

  /** Queues a request; settles with its own result (or its batch's error). */
  submit(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (this.draining) return;
      this.draining = true;
      // A microtask, not a timer: requests made by the same synchronous loop (the clock's tick
      // dispatching every due lease) share the first batch, and nothing waits for a clock.
      queueMicrotask(() => void this.drain());
    });
  }

  /** Requests waiting for a batch (not counting the one being written). */
  get waiting(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.commit(batch.map((b) => b.request));
        if (results.length !== batch.length) throw new Error(`group commit: ${results.length} results for a batch of ${batch.length}`);
        batch.forEach((b, i) => b.resolve(results[i]));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.draining = false;
  }
}
