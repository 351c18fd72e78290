import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { deferFill, isDeferred, lazyKeys, settleAll, undeferFill } from "../src/platforms/fortios/lazymap.js";

// A map with keys built on lookup and a deferred fill must answer every operation, at every point,
// as the map an eager build gives: the keys inserted in order with their built values, then what
// was set before the fill was deferred, then what the fill adds, then the operations.

const key: fc.Arbitrary<string> = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h");
const op = fc.oneof(
  fc.record({ op: fc.constantFrom("get", "has", "delete" as const), k: key }),
  fc.record({ op: fc.constant("set" as const), k: key, v: fc.nat(9) }),
  fc.record({
    op: fc.constantFrom("size", "entries", "keys", "values", "forEach", "iterator", "clear" as const),
  }),
);
type Op = { op: string; k?: string; v?: number };

function apply(m: Map<string, unknown>, o: Op): unknown {
  switch (o.op) {
    case "get":
      return m.get(o.k!);
    case "has":
      return m.has(o.k!);
    case "delete":
      return m.delete(o.k!);
    case "set":
      return m.set(o.k!, o.v) === m;
    case "size":
      return m.size;
    case "entries":
      return [...m.entries()];
    case "keys":
      return [...m.keys()];
    case "values":
      return [...m.values()];
    case "forEach": {
      const out: unknown[] = [];
      m.forEach((v, k, mm) => {
        out.push([k, v, mm === m]);
      });
      return out;
    }
    case "iterator":
      return [...m];
    case "clear":
      m.clear();
      return undefined;
  }
  throw new Error(o.op);
}

describe("lazy maps", () => {
  test.prop(
    [
      fc.uniqueArray(key, { maxLength: 6 }),
      fc.array(fc.tuple(key, fc.nat(9)), { maxLength: 3 }),
      fc.option(fc.array(fc.tuple(key, fc.nat(9)), { maxLength: 3 })),
      fc.array(op, { maxLength: 12 }),
    ],
    { numRuns: 1000 },
  )("answer every operation as the eagerly built map", (keys, before, fill, ops) => {
    const builds = new Map<string, number>();
    const build = (k: string): string => {
      builds.set(k, (builds.get(k) ?? 0) + 1);
      return `built ${k}`;
    };
    const eager = new Map<string, unknown>(keys.map((k) => [k, `built ${k}`]));
    for (const [k, v] of before) eager.set(k, v);
    // A fill adds what is missing (as the model's filler of predefined objects does).
    for (const [k, v] of fill ?? []) if (!eager.has(k)) eager.set(k, v);

    const m = lazyKeys(new Map<string, unknown>(), keys, new Set(keys), build);
    for (const [k, v] of before) m.set(k, v);
    if (fill) {
      const adds = new Set(fill.map(([k]) => k));
      deferFill(
        m,
        () => {
          for (const [k, v] of fill) if (!m.has(k)) m.set(k, v);
        },
        (k) => adds.has(k),
      );
    }
    for (const o of ops) expect(apply(m, o)).toEqual(apply(eager, o));
    expect([...m]).toEqual([...eager]);
    expect(m.size).toBe(eager.size);
    for (const n of builds.values()) expect(n).toBe(1);
    expect(isDeferred(m)).toBe(false);
    expect(Object.getOwnPropertyNames(m)).toEqual([]);
    expect(Object.getOwnPropertySymbols(m)).toEqual([]);
  });

  it("builds only what is looked up, and each value once", () => {
    const built: string[] = [];
    const m = lazyKeys(new Map<string, { k: string }>(), ["x", "y", "z"], new Set(["x", "y", "z"]), (k) => {
      built.push(k);
      return { k };
    });
    expect(m.has("y")).toBe(true);
    expect(m.has("w")).toBe(false);
    expect(built).toEqual([]);
    const y = m.get("y");
    expect(m.get("y")).toBe(y);
    expect(built).toEqual(["y"]);
    m.set("w", { k: "w" });
    expect(built).toEqual(["y"]);
    expect([...m.keys()]).toEqual(["x", "y", "z", "w"]);
    expect(m.get("y")).toBe(y);
    expect(built).toEqual(["y", "x", "z"]);
    expect(m instanceof Map && Object.getPrototypeOf(m) === Map.prototype).toBe(true);
  });

  it("runs a deferred fill only when it could change an answer; undeferFill drops it", () => {
    let runs = 0;
    const m = deferFill(
      new Map<string, number>([["a", 1]]),
      () => {
        runs++;
        m.set("b", 2);
      },
      (k) => k === "b",
    );
    expect(m.get("a")).toBe(1);
    expect(m.has("c")).toBe(false);
    expect(runs).toBe(0);
    expect(m.get("b")).toBe(2);
    expect(runs).toBe(1);
    expect(isDeferred(m)).toBe(false);
    const n = deferFill(
      new Map<string, number>(),
      () => n.set("b", 2),
      () => true,
    );
    undeferFill(n);
    expect(n.size).toBe(0);
    const o = lazyKeys(new Map<string, number>(), ["q"], new Set(["q"]), () => 7);
    settleAll(o);
    expect(isDeferred(o)).toBe(false);
    expect([...o]).toEqual([["q", 7]]);
  });
});
