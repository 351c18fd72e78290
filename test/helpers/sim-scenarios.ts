/**
 * Random multi-tunnel simulator scenarios (vendors, IKE versions, firewalls, a shared hub, NAT,
 * traffic patterns, admin actions), shared by the simulator's property tests.
 */
import { fc } from "@fast-check/vitest";
import {
  type ActionSpec,
  acceptAll,
  establishedOnly,
  type GatewaySpec,
  type Scenario,
  type TrafficSpec,
  type TunnelSpec,
} from "../../src/sim/index.js";

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
  /** Traffic: one packet every `every` s, hourly-ish bursts, or trains at fixed times (ping -c). */
  pattern: fc.constantFrom("every" as const, "burst" as const, "at" as const),
  count: fc.integer({ min: 1, max: 6 }),
  /** Packet spacing in a burst / train: below, at and above the latency, 0 included. */
  spacing: fc.constantFrom(0, 0.004, 0.01, 0.5, 1, 30),
  /** FortiOS DPD mode and retry interval (0: every send without a receipt probes). */
  fdpd: fc.constantFrom("on-demand" as const, "on-idle" as const),
  fdpdInterval: fc.constantFrom(0, 1, 20),
  act: fc.option(fc.constantFrom("terminate" as const, "flush" as const, "rekey-ike" as const), {
    nil: undefined,
  }),
  at: fc.integer({ min: 0, max: 1800 }),
});

export const scenarioArb = fc
  .record({
    tunnels: fc.array(tunnelArb, { minLength: 2, maxLength: 6 }),
    seed: fc.integer({ min: 1, max: 1e6 }),
    latency: fc.constantFrom(0.005, 0.01, 0.02),
    duration: fc.constantFrom(3600, 3601.5, 5000),
  })
  .map(({ tunnels: ts, seed, latency, duration }): Scenario => {
    const o = (
      vendor: "fortios" | "strongswan",
      rekey: number,
      dpd: number,
      t: { fdpd: "on-demand" | "on-idle"; fdpdInterval: number },
    ) =>
      vendor === "fortios"
        ? {
            keylifeseconds: rekey * 1.1,
            keylife: rekey * 3,
            dpd: t.fdpd,
            // on-idle with 0 would re-arm every millisecond
            dpdRetryInterval: t.fdpd === "on-idle" ? Math.max(5, t.fdpdInterval) : t.fdpdInterval,
          }
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
        overrides: o(t.va, t.rekey, t.dpd, t),
        ...fw(t.fwA),
      });
      if (!t.hub)
        gateways.push({
          name: b,
          address: t.nat ? `10.0.${i}.2` : `203.0.113.${i + 10}`,
          vendor: t.vb,
          ikeVersion: t.v,
          overrides: o(t.vb, t.rekey, t.dpd, t),
          ...fw(t.fwB),
          ...(t.nat
            ? { behind: [{ kind: "nat" as const, name: `nat${i}`, publicIp: `203.0.113.${i + 10}` }] }
            : {}),
        });
      const name = `t${i}`;
      tunnels.push({ name, a, b, ikeVersion: t.v });
      const base = { from: a, to: b, tunnel: name, reply: t.reply };
      if (t.pattern === "every") traffic.push({ ...base, every: t.every });
      else if (t.pattern === "burst")
        traffic.push({
          ...base,
          burst: { every: t.every * 10, count: t.count, spacing: t.spacing },
          start: t.at,
        });
      else traffic.push({ ...base, at: [t.at, t.at + 900, 3599], count: t.count, interval: t.spacing });
      actions.push({ at: 1 + i, gateway: b, action: "initiate", tunnel: name });
      if (t.act) actions.push({ at: t.at, gateway: a, action: t.act, tunnel: name });
    });
    return {
      gateways,
      tunnels,
      traffic,
      actions,
      initiator: "none",
      duration,
      latency,
      seed,
      logLevel: "none",
    };
  });
