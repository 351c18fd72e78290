/**
 * Ready-made scenarios: seed 001 (two FortiGates, a local-in policy on site 2 that admits IKE
 * only through existing sessions) and the strongSwan lab of strongswan-lab.md (V0–V3, V1D,
 * IKEv1). The timelines are not scripted: only topology, timers, filters, traffic and the lab's
 * admin actions are given; everything else follows from the model.
 */
import { acceptAll, acceptNewIkeFrom, ruleFilter, type StatelessFilter } from "./firewall.js";
import type { ProfileOverrides } from "./profiles.js";
import type { ActionSpec, Scenario, TrafficSpec } from "./scenario.js";

export const SEED001 = { site1: "10.56.240.208", site2: "10.56.240.221" } as const;

/** Site 2's local-in policies from seed 001: HTTPS from the offices, then deny everything. */
export function seed001LocalIn(): StatelessFilter {
  return ruleFilter(
    [
      {
        action: "accept",
        proto: "tcp",
        dport: 443,
        src: ["192.0.2.0/24", "198.51.100.0/24"],
        iface: "port1",
        text: 'local-in-policy 1 "allow mgmt from offices" (HTTPS)',
      },
      { action: "drop", text: "local-in-policy 2 (deny all)" },
    ],
    { policy: "accept", policyText: "no local-in policy matched (implicit accept)" },
  );
}

export interface Seed001Options {
  /** The seed's resolution: site 2 accepts NEW IKE (UDP 500/4500) from site 1. */
  fix?: boolean;
  duration?: number;
  /**
   * Traffic. Default: site 1 → site 2 one packet per second, one-way, all run long; site 2 →
   * site 1 one per second for the first `site2TrafficUntil` seconds (a transfer that ends).
   */
  traffic?: TrafficSpec[];
  /** Seconds during which site 2 also sends (default 240; 0 = strictly one-way from the start). */
  site2TrafficUntil?: number;
  /** Site 2 sends a few packets at these times (the seed's "until site 2 sends traffic"). */
  site2SendsAt?: number[];
  overrides?: { site1?: ProfileOverrides; site2?: ProfileOverrides };
  seed?: number;
  logLevel?: Scenario["logLevel"];
}

/**
 * Seed 001: wizard-built FortiGates (IKEv1, DPD on-demand 20 s × 3), site 2 initiates (auto-negotiate
 * at boot), site 2's local-in policy drops IKE that does not match a session.
 */
export function seed001Scenario(o: Seed001Options = {}): Scenario {
  const until = o.site2TrafficUntil ?? 240;
  const traffic: TrafficSpec[] = o.traffic ?? [
    { from: "site1", to: "site2", every: 1 },
    ...(until > 0 ? [{ from: "site2", to: "site1", every: 1, end: until }] : []),
    ...(o.site2SendsAt ?? []).map((t) => ({ from: "site2", to: "site1", at: [t], count: 5, interval: 1 })),
  ];
  const site2Filter = o.fix
    ? acceptNewIkeFrom([SEED001.site1], seed001LocalIn(), 'local-in-policy 0 "allow IKE from site1"')
    : seed001LocalIn();
  return {
    gateways: [
      {
        name: "site1",
        address: SEED001.site1,
        vendor: "fortios",
        ikeVersion: 1,
        overrides: o.overrides?.site1 ?? {},
        firewall: { filter: acceptAll("no local-in policy") },
      },
      {
        name: "site2",
        address: SEED001.site2,
        vendor: "fortios",
        ikeVersion: 1,
        overrides: o.overrides?.site2 ?? {},
        firewall: { filter: site2Filter },
      },
    ],
    tunnel: { name: "site1-site2", a: "site1", b: "site2" },
    initiator: "site2",
    traffic,
    duration: o.duration ?? 3600,
    seed: o.seed ?? 1,
    logLevel: o.logLevel ?? "info",
  };
}

export type LabVariant = "V0" | "V1" | "V1D" | "V2" | "V3";

/**
 * The lab's timers (strongswan-lab.md "Timers used"), for both charons. `t` replaces the
 * retransmission and rekey timers of the reference lab (a lab run with other timers).
 */
export function labOverrides(
  dpdDelay: number,
  ikeVersion: 1 | 2,
  t: Partial<
    Pick<
      ProfileOverrides,
      "retransmitTimeout" | "retransmitBase" | "retransmitTries" | "ikeRekeyTime" | "childRekeyTime"
    >
  > = {},
): ProfileOverrides {
  return {
    retransmitTimeout: t.retransmitTimeout ?? 2,
    retransmitBase: t.retransmitBase ?? 1.5,
    retransmitTries: t.retransmitTries ?? 3,
    dpdDelay,
    dpdTimeout: 30,
    dpdAction: "restart",
    keyingTries: 0,
    natKeepalive: 0,
    mobike: false,
    // kernel-libipsec always UDP-encapsulates (caveat 1): IKE floats to 4500, ESP is ESP-in-UDP.
    forceEncap: true,
    ikeRekeyTime: t.ikeRekeyTime ?? 3600,
    childRekeyTime: t.childRekeyTime ?? 1800,
    ikeVersion,
  };
}

/** The timers of one strongSwan lab run (test/lab `LabTimers`: site2's conntrack, both charons). */
export interface LabTimerSpec {
  conntrackUdpTimeout: number;
  conntrackUdpStreamTimeout: number;
  dpdDelay: { site1: number; site2: number };
  retransmitTries: number;
  retransmitTimeout: number;
  retransmitBase: number;
  ikeRekey: number;
  childRekey: number;
}

export interface LabScenarioSpec {
  timers: LabTimerSpec;
  /** site2's INPUT filter; null: no firewall and no conntrack (nothing loads it). */
  site2Filter: StatelessFilter | null;
  /** site2's outside interface, as the filter sees it. */
  site2Iface?: string;
  /** The run's admin actions (initiate, terminate, rekey-child) at the times they ran. */
  actions: ActionSpec[];
  /** The run's probes (pings as `at` trains with `reply`). */
  traffic: TrafficSpec[];
  duration: number;
  /** Default "none": every initiation is an explicit action. */
  initiator?: string;
  ikeVersion?: 1 | 2;
  seed?: number;
  logLevel?: Scenario["logLevel"];
}

/**
 * The strongSwan lab (site1 192.0.2.1, site2 192.0.2.2, kernel-libipsec) from explicit timers, filter,
 * actions and probes: what `strongswanLabScenario` hard-codes from the reference lab, for a lab run
 * with its own timers and script (test/lab/sim-vs-lab.ts).
 */
export function strongswanLabScenarioFrom(spec: LabScenarioSpec): Scenario {
  const v = spec.ikeVersion ?? 2;
  const t = spec.timers;
  const common = {
    retransmitTimeout: t.retransmitTimeout,
    retransmitBase: t.retransmitBase,
    retransmitTries: t.retransmitTries,
    ikeRekeyTime: t.ikeRekey,
    childRekeyTime: t.childRekey,
  };
  return {
    gateways: [
      {
        name: "site1",
        address: "192.0.2.1",
        vendor: "strongswan",
        ikeVersion: v,
        overrides: labOverrides(t.dpdDelay.site1, v, common),
      },
      {
        name: "site2",
        address: "192.0.2.2",
        vendor: "strongswan",
        ikeVersion: v,
        overrides: labOverrides(t.dpdDelay.site2, v, common),
        ...(spec.site2Filter
          ? {
              firewall: {
                platform: "linux" as const,
                filter: spec.site2Filter,
                iface: spec.site2Iface ?? "wan",
                timeouts: { udp: t.conntrackUdpTimeout, udpStream: t.conntrackUdpStreamTimeout },
              },
            }
          : {}),
      },
    ],
    tunnel: { name: "lab", a: "site1", b: "site2" },
    initiator: spec.initiator ?? "none",
    traffic: spec.traffic,
    actions: spec.actions,
    duration: spec.duration,
    // veth pairs between namespaces: sub-millisecond.
    latency: 0.001,
    seed: spec.seed ?? 1,
    logLevel: spec.logLevel ?? "info",
  };
}

/**
 * The strongSwan lab: site1 192.0.2.1, site2 192.0.2.2; site2's nftables INPUT accepts only
 * established/related (+ tcp/22) with conntrack UDP timeouts 10 s / 15 s; V3 adds NEW 500/4500
 * from site1. Pings are `ping -c 3` (three request/reply pairs one second apart).
 */
export function strongswanLabScenario(
  variant: LabVariant,
  o: { ikeVersion?: 1 | 2; logLevel?: Scenario["logLevel"]; seed?: number } = {},
): Scenario {
  const v = o.ikeVersion ?? 2;
  const base = ruleFilter(
    [
      { action: "accept", state: "established", text: "ct state established,related accept" },
      { action: "accept", proto: "tcp", dport: 22, text: "tcp dport 22 accept" },
      { action: "drop", proto: "udp", dport: 500, text: 'udp dport 500 counter name "drop_ike500" drop' },
      { action: "drop", proto: "udp", dport: 4500, text: 'udp dport 4500 counter name "drop_ike4500" drop' },
      { action: "drop", proto: "esp", text: 'meta l4proto esp counter name "drop_esp50" drop' },
    ],
    { policy: "drop", policyText: 'counter name "drop_other" drop' },
  );
  const site2Filter =
    variant === "V3"
      ? acceptNewIkeFrom(
          ["192.0.2.1"],
          base,
          "ip saddr 192.0.2.1 udp dport { 500, 4500 } accept (new_ike_ok)",
        )
      : base;
  const ping = (from: string, to: string, at: number): TrafficSpec => ({
    from,
    to,
    at: [at],
    count: 3,
    interval: 1,
    reply: true,
  });
  let traffic: TrafficSpec[] = [];
  let actions: ActionSpec[] = [];
  let initiator = "site2";
  let duration = 90;
  switch (variant) {
    case "V0":
    case "V3":
      traffic = [
        ping("site1", "site2", 6),
        ping("site1", "site2", 45),
        ping("site1", "site2", 78),
        ping("site1", "site2", 80),
      ];
      actions = [
        { at: 7, gateway: "site1", action: "rekey-child" },
        { at: 60, gateway: "site1", action: "terminate" },
        { at: 66, gateway: "site1", action: "initiate" },
      ];
      duration = 90;
      break;
    case "V1":
      traffic = [
        ping("site1", "site2", 6),
        ping("site1", "site2", v === 1 ? 80 : 75),
        ping("site2", "site1", 100),
        ping("site1", "site2", v === 1 ? 180 : 170),
      ];
      actions = [{ at: 7, gateway: "site1", action: "rekey-child" }];
      duration = v === 1 ? 190 : 180;
      break;
    case "V1D":
      traffic = [ping("site2", "site1", 60)];
      actions = [
        { at: 22, gateway: "site1", action: "terminate" },
        { at: 50, gateway: "site1", action: "initiate" },
      ];
      duration = 75;
      break;
    case "V2":
      traffic = [ping("site1", "site2", 30)];
      initiator = "site1";
      duration = 60;
      break;
  }
  return {
    gateways: [
      {
        name: "site1",
        address: "192.0.2.1",
        vendor: "strongswan",
        ikeVersion: v,
        overrides: labOverrides(25, v),
      },
      {
        name: "site2",
        address: "192.0.2.2",
        vendor: "strongswan",
        ikeVersion: v,
        overrides: labOverrides(120, v),
        ...(variant === "V0"
          ? {}
          : {
              firewall: {
                platform: "linux" as const,
                filter: site2Filter,
                iface: "s2-wan",
                timeouts: { udp: 10, udpStream: 15 },
              },
            }),
      },
    ],
    tunnel: { name: "lab", a: "site1", b: "site2" },
    initiator,
    traffic,
    actions,
    duration,
    // veth pairs between namespaces: sub-millisecond.
    latency: 0.001,
    seed: o.seed ?? 1,
    logLevel: o.logLevel ?? "info",
  };
}
