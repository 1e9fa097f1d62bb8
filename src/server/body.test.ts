import { describe, expect, it } from "vitest";
import { checkJsonShape, decodeBody, MAX_BODY_DEPTH, MAX_BODY_ELEMENTS } from "./body.js";

const shape = (text: string, depth?: number, elements?: number) => () => checkJsonShape(Buffer.from(text), depth, elements);

describe("checkJsonShape", () => {
  it("counts nesting and values, at the limits and one past them", () => {
    expect(shape("[".repeat(MAX_BODY_DEPTH) + "]".repeat(MAX_BODY_DEPTH))).not.toThrow();
    expect(shape("[".repeat(MAX_BODY_DEPTH + 1) + "]".repeat(MAX_BODY_DEPTH + 1))).toThrow(/nesting deeper than 500 levels/);
    // `{"a":[0,1,...]}`: two containers and n - 1 commas.
    const values = (n: number) => `{"a":[${Array.from({ length: n }, (_, i) => i).join(",")}]}`;
    expect(shape(values(MAX_BODY_ELEMENTS - 1))).not.toThrow();
    expect(shape(values(MAX_BODY_ELEMENTS))).toThrow(/more than 100000 values/);
  });

  it("does not count brackets or commas inside strings, escaped quotes included", () => {
    expect(shape(`{"a":"${"[{,".repeat(1000)}"}`, 2, 3)).not.toThrow();
    expect(shape(`{"a":"x\\"[[[[,,,,\\\\"}`, 1, 1)).not.toThrow();
    expect(shape(`{"a":"\\\\",`.concat(`"b":[[[]]]}`), 3, 10)).toThrow(/nesting deeper than 3/); // the string ends at `\\"`
    expect(shape(`{"a":"${'\\"'.repeat(1000)}[["}`, 1, 1)).not.toThrow();
  });

  it("decodeBody applies it to JSON and counts form pairs", () => {
    expect(() => decodeBody(Buffer.from(`{"x":${"[".repeat(600)}${"]".repeat(600)}}`), "application/json")).toThrow(/nesting deeper/);
    expect(() => decodeBody(Buffer.from("a=1&".repeat(MAX_BODY_ELEMENTS + 1)), "application/x-www-form-urlencoded")).toThrow(/more than 100000 values/);
    expect(decodeBody(Buffer.from("a=1&b=2"), "application/x-www-form-urlencoded")).toEqual({ a: "1", b: "2" });
    expect(decodeBody(Buffer.from(`{"a":"[[["}`), "application/json")).toEqual({ a: "[[[" });
  });
});
