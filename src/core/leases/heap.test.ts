import { describe, expect, it } from "vitest";
import { DeadlineHeap } from "./heap.js";

describe("DeadlineHeap", () => {
  it("pops deadlines in ascending order", () => {
    const h = new DeadlineHeap();
    const dues = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    dues.forEach((d, i) => h.push(`l${i}`, d));
    const out: number[] = [];
    while (h.size) out.push(h.pop()!.due);
    expect(out).toEqual([...dues].sort((a, b) => a - b));
    expect(h.pop()).toBeUndefined();
  });
});
