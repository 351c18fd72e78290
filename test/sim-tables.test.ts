/**
 * The daemon's look-up tables (`SpiTable`, `LastHitMap`) must answer as a `Map` does, whatever the
 * sequence of operations: random sequences, with few keys (many hits and re-insertions) and past
 * the SpiTable's switch to a `Map`.
 */
import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { LastHitMap, SpiTable } from "../src/sim/tables.js";

const op = (keys: fc.Arbitrary<number>) =>
  fc.record({ kind: fc.constantFrom("get", "has", "set", "delete"), k: keys, v: fc.integer() });

describe("sim look-up tables", () => {
  for (const [name, keys] of [
    ["few keys", fc.integer({ min: -3, max: 3 })],
    ["many keys", fc.integer({ min: -40, max: 40 })],
    ["SPI-like keys", fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })],
  ] as const) {
    fcTest.prop([fc.array(op(keys), { maxLength: 400 })], { numRuns: 200 })(
      `SpiTable answers as a Map (${name})`,
      (ops) => {
        const t = new SpiTable<{ v: number }>();
        const m = new Map<number, { v: number }>();
        for (const o of ops) {
          if (o.kind === "get") expect(t.get(o.k)).toBe(m.get(o.k));
          else if (o.kind === "has") expect(t.has(o.k)).toBe(m.has(o.k));
          else if (o.kind === "delete") expect(t.delete(o.k)).toBe(m.delete(o.k));
          else {
            const v = { v: o.v };
            t.set(o.k, v);
            m.set(o.k, v);
          }
        }
        for (let k = -41; k <= 41; k++) expect(t.get(k)).toBe(m.get(k));
      },
    );
    fcTest.prop([fc.array(op(keys), { maxLength: 400 })], { numRuns: 200 })(
      `LastHitMap answers as a Map (${name})`,
      (ops) => {
        const t = new LastHitMap<{ v: number }>();
        const m = new Map<string, { v: number }>();
        for (const o of ops) {
          // Equal keys as different string objects too (built, not literal).
          const k = `${o.k}`;
          if (o.kind === "get") expect(t.get(k)).toBe(m.get(k));
          else if (o.kind === "has") expect(t.has(k)).toBe(m.has(k));
          else if (o.kind === "delete") expect(t.delete(k)).toBe(m.delete(k));
          else {
            const v = { v: o.v };
            t.set(k, v);
            m.set(k, v);
          }
        }
      },
    );
  }
});
