/**
 * A connection caches whether it is UP and which CHILD SA it sends on (`Conn.isUp`,
 * `Conn.outboundChild`): recomputed only after `saChanged()`, which every change of the SA
 * lists, an SA's state or a CHILD SA's outbound flag must call. Here every read of the cache is
 * compared with a fresh computation, over random scenarios on both event paths: a change that
 * forgets `saChanged()` shows up as a stale read.
 */
import { test as fcTest } from "@fast-check/vitest";
import { afterEach, beforeEach, describe, expect } from "vitest";
import { Conn } from "../src/sim/ike.js";
import { simulate } from "../src/sim/index.js";
import { scenarioArb } from "./helpers/sim-scenarios.js";

interface CachedConn {
  cacheValid: boolean;
  isUp(): boolean;
  outboundChild(): unknown;
}

const proto = Conn.prototype as unknown as CachedConn;
const original = { isUp: proto.isUp, outboundChild: proto.outboundChild };
let stale: string[] = [];
let reads = 0;

/** Calls the cached accessor, then recomputes it and records any difference. */
function checked<K extends "isUp" | "outboundChild">(k: K) {
  return function (this: CachedConn) {
    const cached = original[k].call(this);
    this.cacheValid = false;
    const fresh = original[k].call(this);
    reads++;
    if (fresh !== cached && stale.length < 5)
      stale.push(`${k}: cached ${String(cached)}, fresh ${String(fresh)}`);
    return fresh;
  };
}

describe("connection state cache", () => {
  beforeEach(() => {
    proto.isUp = checked("isUp") as () => boolean;
    proto.outboundChild = checked("outboundChild");
    stale = [];
    reads = 0;
  });
  afterEach(() => {
    proto.isUp = original.isUp;
    proto.outboundChild = original.outboundChild;
  });

  fcTest.prop([scenarioArb], { numRuns: 40 })("every cached read equals a fresh computation", (sc) => {
    simulate(sc);
    simulate(sc, { collapse: false });
    simulate({ ...sc, logLevel: "info" });
    expect(stale).toEqual([]);
    expect(reads).toBeGreaterThan(0);
  });
});
