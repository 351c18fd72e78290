/**
 * The simulator's fast paths give the same answers as the plain path:
 * - without recording, independent tunnel groups run one at a time in their own engines;
 * - an accept-everything filter skips its session table when nothing records sessions.
 * Random multi-tunnel scenarios (vendors, IKE versions, firewalls, a shared hub, NAT, traffic,
 * admin actions) are run both ways; anomalies, per-tunnel results, drop counts and the number of
 * events executed must be identical.
 */
import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import {
  type ActionSpec,
  acceptAll,
  establishedOnly,
  type GatewaySpec,
  type Scenario,
  simulate,
  type TrafficSpec,
  type TunnelSpec,
} from "../src/sim/index.js";

const tunnelArb = fc.record({
  va: fc.constantFrom("fortios" as const, "strongswan" as const),
  vb: fc.constantFrom("fortios" as const, "strongswan" as const),
  v: fc.constantFrom(1 as const, 2 as const),
  fwA: fc.constantFrom("none", "all", "est"),
  fwB: fc.constantFrom("none", "all", "est"),
  /** Side b sits behind a NAT router. */
  nat: fc.boolean(),
  /** Side b is the shared hub instead of its own gateway. */
  hub: fc.boolean(),
  rekey: fc.integer({ min: 120, max: 900 }),
  dpd: fc.integer({ min: 0, max: 60 }),
  every: fc.integer({ min: 1, max: 120 }),
  reply: fc.boolean(),
  act: fc.option(fc.constantFrom("terminate" as const, "flush" as const, "rekey-ike" as const), {
    nil: undefined,
  }),
  at: fc.integer({ min: 0, max: 1800 }),
});

const scenarioArb = fc
  .record({
    tunnels: fc.array(tunnelArb, { minLength: 2, maxLength: 6 }),
    seed: fc.integer({ min: 1, max: 1e6 }),
  })
  .map(({ tunnels: ts, seed }): Scenario => {
    const o = (vendor: "fortios" | "strongswan", rekey: number, dpd: number) =>
      vendor === "fortios"
        ? { keylifeseconds: rekey * 1.1, keylife: rekey * 3 }
        : {
            childRekeyTime: rekey,
            ikeRekeyTime: rekey * 3,
            dpdDelay: dpd,
            dpdAction: "restart" as const,
            keyingTries: 0,
          };
    const fw = (k: string) =>
      k === "none"
        ? {}
        : {
            firewall: {
              filter: k === "all" ? acceptAll() : establishedOnly(),
              timeouts: { udp: 20, udpStream: 40 },
            },
          };
    const gateways: GatewaySpec[] = [
      { name: "hub", address: "198.51.100.1", vendor: "strongswan", firewall: { filter: acceptAll() } },
    ];
    const tunnels: TunnelSpec[] = [];
    const traffic: TrafficSpec[] = [];
    const actions: ActionSpec[] = [];
    ts.forEach((t, i) => {
      const a = `a${i}`;
      const b = t.hub ? "hub" : `b${i}`;
      gateways.push({
        name: a,
        address: `192.0.2.${i + 10}`,
        vendor: t.va,
        ikeVersion: t.v,
        overrides: o(t.va, t.rekey, t.dpd),
        ...fw(t.fwA),
      });
      if (!t.hub)
        gateways.push({
          name: b,
          address: t.nat ? `10.0.${i}.2` : `203.0.113.${i + 10}`,
          vendor: t.vb,
          ikeVersion: t.v,
          overrides: o(t.vb, t.rekey, t.dpd),
          ...fw(t.fwB),
          ...(t.nat
            ? { behind: [{ kind: "nat" as const, name: `nat${i}`, publicIp: `203.0.113.${i + 10}` }] }
            : {}),
        });
      const name = `t${i}`;
      tunnels.push({ name, a, b, ikeVersion: t.v });
      traffic.push({ from: a, to: b, tunnel: name, every: t.every, reply: t.reply });
      actions.push({ at: 1 + i, gateway: b, action: "initiate", tunnel: name });
      if (t.act) actions.push({ at: t.at, gateway: a, action: t.act, tunnel: name });
    });
    return { gateways, tunnels, traffic, actions, initiator: "none", duration: 3600, seed, logLevel: "none" };
  });

const answers = (r: ReturnType<typeof simulate>) => ({
  anomalies: r.anomalies,
  tunnels: r.tunnels,
  dropCount: r.dropCount,
});

describe("fast paths", () => {
  fcTest.prop([scenarioArb], { numRuns: 30 })(
    "independent groups run apart: same anomalies, tunnel results, drops and events",
    (sc) => {
      const split = simulate(sc);
      const plain = simulate(sc, { splitIndependent: false });
      expect(answers(split)).toEqual(answers(plain));
      expect(split.stats.engineEvents).toBe(plain.stats.engineEvents);
      expect(split.profiles).toEqual(plain.profiles);
      expect(split.gateways).toEqual(plain.gateways);
    },
  );

  fcTest.prop([scenarioArb], { numRuns: 20 })(
    "without recording (no session tables for accept-all filters) the answers equal a recorded run's",
    (sc) => {
      const quiet = simulate(sc);
      const recorded = simulate({ ...sc, logLevel: "state" });
      expect(answers(quiet)).toEqual(answers(recorded));
    },
  );
});
