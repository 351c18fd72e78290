import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { formatAddress, formatPrefix, parsePrefix, parsePrefixGeneral } from "../src/model/address.js";

describe("address formatting and parsing", () => {
  test.prop([fc.integer({ min: 0, max: 2 ** 32 - 1 })])("IPv4 round-trips", (n) => {
    const text = formatAddress(4, BigInt(n));
    expect(text).toBe([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join("."));
    expect(parsePrefix(text).addr).toBe(BigInt(n));
  });
  test.prop([fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })])("IPv6 round-trips", (n) => {
    expect(parsePrefix(formatAddress(6, n)).addr).toBe(n);
  });
  test.prop([fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })])(
    "prefixes keep their length",
    (len, n) => {
      const p = parsePrefix(`${formatAddress(4, BigInt(n))}/${len}`, { allowHostBits: true });
      expect(parsePrefix(formatPrefix(p, { alwaysLen: true }))).toEqual(p);
    },
  );
  // The dotted-quad fast path reads exactly what the general (ipaddr.js) reader reads, and refuses
  // the same texts with the same message.
  const outcome = (f: () => unknown) => {
    try {
      return f();
    } catch (e) {
      return (e as Error).message;
    }
  };
  const PART = ["0", "00", "01", "1", "9", "10", "25", "255", "256", "300", "1000", "007", "", "x", "0x1"];
  const LEN = ["", "/", "/0", "/8", "/24", "/32", "/33", "/024", "/1000", "/x", "/255.255.0.0", "/24/8"];
  test.prop(
    [
      fc
        .tuple(fc.array(fc.constantFrom(...PART), { minLength: 1, maxLength: 5 }), fc.constantFrom(...LEN))
        .map(([parts, len]) => parts.join(".") + len),
      fc.boolean(),
    ],
    { numRuns: 3000 },
  )("the fast path agrees with the general reader", (text, allowHostBits) => {
    expect(outcome(() => parsePrefix(text, { allowHostBits }))).toEqual(
      outcome(() => parsePrefixGeneral(text, { allowHostBits })),
    );
  });
  test.prop([fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 40 }), fc.boolean()])(
    "…on dotted quads with any length",
    (n, len, allowHostBits) => {
      const text = `${formatAddress(4, BigInt(n))}/${len}`;
      expect(outcome(() => parsePrefix(text, { allowHostBits }))).toEqual(
        outcome(() => parsePrefixGeneral(text, { allowHostBits })),
      );
    },
  );
});
