import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { formatAddress, formatPrefix, parsePrefix } from "../src/model/address.js";

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
});
