/**
 * Real-kernel tests: generated rules are loaded into a throwaway gateway namespace (and, when the gateway
 * is behind NAT, into a NAT-device namespace in front of it); probes are sent from a client namespace with a
 * peer and a non-peer address; what the gateway's sockets receive is compared with what the plan demands.
 *
 * The kernel here has no ESP/AH transforms (CONFIG_INET_ESP is off), so "L2TP via IPsec" cannot be produced
 * for real; the unit tests cover it with an evaluator. Everything else is the kernel's own verdict.
 */
import { afterAll, expect, it } from "vitest";
import { defaultGenerateOptions, type GenerateOptions } from "../../src/platforms/types.js";
import { activeFlows, type Plan, planFlows } from "../../src/vpn/flows.js";
import {
  localBehindNat,
  makeScenario,
  NAT_MODES,
  type ScenarioInput,
  VPN_TYPES,
} from "../../src/vpn/scenario.js";
import { BACKENDS, type Backend, iptablesLegacyBackend, usesConntrack } from "./backends.js";
import {
  describeKernel,
  type Probe,
  sendProbes,
  sweepNamespaces,
  type Topology,
  withTopology,
} from "./netns.js";

interface Case {
  vpn: (typeof VPN_TYPES)[number];
  nat: (typeof NAT_MODES)[number];
  ah: boolean;
  family: 4 | 6;
  peersKnown: boolean;
  /** Give the NAT device's public address (else its forwards match on -i wan only). */
  publicAddress: boolean;
  extra: Partial<ScenarioInput>;
  opts: Partial<GenerateOptions>;
}

const base = (c: Partial<Case> & Pick<Case, "vpn" | "nat" | "family">): Case => ({
  ah: false,
  peersKnown: true,
  publicAddress: true,
  extra: {},
  opts: {},
  ...c,
});

const caseName = (c: Case): string =>
  [
    c.vpn,
    `nat=${c.nat}`,
    c.ah ? "ah" : "",
    `v${c.family}`,
    c.peersKnown ? "" : "peers=any",
    c.publicAddress ? "" : "no-public",
    ...Object.entries(c.extra).map(([k, v]) => `${k}=${String(v)}`),
    ...Object.entries(c.opts)
      .filter(([, v]) => v)
      .map(([k]) => k),
  ]
    .filter(Boolean)
    .join(" ");

/**
 * Every VPN type x NAT mode x family, with AH on and off: the full product, or (pruned) AH alternating so
 * that every (VPN type, NAT mode) and every (VPN type, family) still sees both. Plus variants for generator
 * options and scenario switches; --default-drop variants are skipped where the backend forces it anyway.
 */
function cases(opts: { full: boolean; forcesDefaultDrop: boolean }): Case[] {
  const out: Case[] = [];
  for (const vpn of VPN_TYPES)
    for (const [n, nat] of NAT_MODES.entries())
      for (const family of [4, 6] as const)
        for (const ah of [false, true]) {
          if (opts.full || ah === ((n + family) % 2 === 0)) out.push(base({ vpn, nat, ah, family }));
        }
  // Variants: in both families where the family matters (neighbour discovery, IPv6 fragments), else in one.
  for (const family of [4, 6] as const) {
    out.push(base({ vpn: "l2tp-ipsec", nat: "none", family, opts: { defaultDrop: true } }));
    out.push(base({ vpn: "ikev2-remote-access", nat: "none", family, opts: { requiredOnly: true } }));
    out.push(base({ vpn: "site-to-site", nat: "local", family, extra: { ikeTcp: true } }));
  }
  out.push(
    base({ vpn: "site-to-site", nat: "local", family: 4, ah: true, opts: { defaultDrop: true } }),
    base({ vpn: "site-to-site", nat: "none", family: 4, extra: { ike: 1 }, opts: { requiredOnly: true } }),
    base({ vpn: "ikev2-remote-access", nat: "none", family: 4, peersKnown: false }),
    base({ vpn: "site-to-site", nat: "none", family: 4, extra: { encap: true } }),
    base({ vpn: "ikev2-remote-access", nat: "both", family: 6, opts: { defaultDrop: true } }),
    base({ vpn: "l2tp-ipsec", nat: "local", family: 6, peersKnown: false, publicAddress: false }),
    base({ vpn: "ikev2-remote-access", nat: "none", family: 6, extra: { ikeTcp: true } }),
    base({ vpn: "site-to-site", nat: "none", family: 6, extra: { mobike: false } }),
    base({
      vpn: "site-to-site",
      nat: "none",
      family: 6,
      extra: { ikeFragmentation: false },
      opts: { requiredOnly: true },
    }),
  );
  return opts.forcesDefaultDrop ? out.filter((c) => !c.opts.defaultDrop) : out;
}

function scenarioFor(c: Case, t: Topology) {
  return makeScenario({
    vpn: c.vpn,
    nat: c.nat,
    ah: c.ah,
    ipv6: c.family === 6,
    peers: c.peersKnown ? [t.peerPrefix] : [],
    local: t.gwAddr,
    ...(c.publicAddress && t.publicAddr ? { publicAddress: t.publicAddr } : {}),
    wan: "eth0",
    ...c.extra,
  });
}

interface Expectation {
  probe: Probe;
  delivered: boolean;
  why: string;
}

/** Probes and their expected fate, derived from the plan (never from the generated rules). */
function inboundExpectations(
  plan: Plan,
  opts: GenerateOptions,
  t: Topology,
  conntrack: boolean,
): Expectation[] {
  const active = new Set(activeFlows(plan, { requiredOnly: opts.requiredOnly }).map((f) => f.id));
  const s = plan.scenario;
  const viaNat = localBehindNat(s);
  // Behind NAT a probe must be both forwarded by the NAT device and accepted by the gateway.
  const path = (gatewayFlow: string, forwardFlow?: string) =>
    active.has(gatewayFlow) && (!viaNat || (forwardFlow !== undefined && active.has(forwardFlow)));
  const ike = path("ike-in", "ike-forward");
  const from = (src: string) => ({ src, dst: t.target });
  const list: Expectation[] = [
    // Each probe comes from a fresh source port/tuple, so conntrack sees it as NEW.
    {
      probe: { id: "ike", proto: "udp", ...from(t.peerAddr), sport: 500, dport: 500 },
      delivered: ike,
      why: "IKE from the peer",
    },
    {
      probe: { id: "natt", proto: "udp", ...from(t.peerAddr), sport: 4500, dport: 4500 },
      delivered: path("natt-in", "natt-forward"),
      why: "NAT-T from the peer, whenever the plan has it required or optional (and not --required-only)",
    },
    {
      probe: { id: "ike-nonpeer", proto: "udp", ...from(t.nonPeerAddr), dport: 500 },
      delivered: s.peers.length === 0 && ike,
      why: "IKE from a non-peer: dropped when peers are known",
    },
    {
      probe: { id: "esp", proto: "esp", ...from(t.peerAddr) },
      delivered: path("esp-in"),
      why: "raw ESP exactly when the plan requires it (never forwarded by the NAT device)",
    },
    {
      probe: { id: "ah", proto: "ah", ...from(t.peerAddr) },
      delivered: path("ah-in"),
      why: "AH exactly when the plan requires it",
    },
    {
      probe: { id: "l2tp-plain", proto: "udp", ...from(t.peerAddr), dport: 1701 },
      delivered: false,
      why: "plain L2TP (not via IPsec) is never accepted, not even from the peer",
    },
    {
      // IKE_AUTH with certificates: larger than the MTU, so it arrives as fragments.
      probe: { id: "ike-big", proto: "udp", ...from(t.peerAddr), dport: 500, size: 3000 },
      // IPv4 is reassembled before INPUT and conntrack reassembles before its hooks; otherwise IPv6
      // fragments meet the filter one by one and need the fragments flow.
      delivered: ike && (active.has("ike-fragments-in") || t.family === 4 || conntrack),
      why: "fragmented IKE from the peer",
    },
  ];
  if (s.ikeTcp) {
    list.push({
      probe: { id: "ike-tcp", proto: "tcp", ...from(t.peerAddr), dport: 4500 },
      delivered: path("ike-tcp-in", "ike-tcp-forward"),
      why: "IKE over TCP 4500 (RFC 8229)",
    });
  }
  return list;
}

async function runInbound(backend: Backend, c: Case): Promise<void> {
  const nat = c.nat === "local" || c.nat === "both";
  await withTopology({ family: c.family, nat }, async (t) => {
    const plan = planFlows(scenarioFor(c, t));
    const opts = backend.adjust({ ...defaultGenerateOptions, ...c.opts });
    const text = backend.render(plan, opts);
    await backend.loadGateway(t.gw, c.family, text.gateway, opts);
    if (t.nat) {
      expect(text.natDevice, "NAT-device part").toBeDefined();
      await backend.loadNatDevice(t.nat, c.family, text.natDevice!);
    }
    const exp = inboundExpectations(plan, opts, t, await usesConntrack(t.gw, c.family));
    const got = await sendProbes(
      t.gw,
      t.cl,
      c.family,
      exp.map((e) => e.probe),
    );
    const actual = Object.fromEntries(exp.map((e) => [`${e.probe.id}: ${e.why}`, got.has(e.probe.id)]));
    const wanted = Object.fromEntries(exp.map((e) => [`${e.probe.id}: ${e.why}`, e.delivered]));
    expect(actual, `${caseName(c)}\n${text.gateway}\n${text.natDevice ?? ""}`).toEqual(wanted);
    // No probe may arrive rewritten: the gateway must see the client's real source address.
    for (const e of exp) {
      const d = got.get(e.probe.id);
      if (d) expect(d.src).toBe(e.probe.src);
    }
    // ike-big only counts if the whole datagram arrived.
    const big = got.get("ike-big");
    if (big) expect(big.len).toBe(3000);
  });
}

/** Outbound: the gateway sends, the client listens; OUTPUT has a drop policy. */
async function runEgress(backend: Backend, c: Case): Promise<void> {
  await withTopology({ family: c.family }, async (t) => {
    const plan = planFlows(scenarioFor(c, t));
    const opts = backend.adjust({ ...defaultGenerateOptions, ...c.opts, egress: true });
    const text = backend.render(plan, opts);
    await backend.loadGateway(t.gw, c.family, text.gateway, opts);
    const active = new Set(activeFlows(plan, { requiredOnly: opts.requiredOnly }).map((f) => f.id));
    const known = plan.scenario.peers.length > 0;
    const out = (id: string, dst: string, extra: Partial<Probe>): Probe => ({
      id,
      proto: "udp",
      src: t.gwAddr,
      dst,
      ...extra,
    });
    const exp: Expectation[] = [
      {
        probe: out("ike-out", t.peerAddr, { sport: 500, dport: 500 }),
        delivered: active.has("ike-out"),
        why: "IKE to the peer",
      },
      {
        probe: out("natt-out-mapped", t.peerAddr, { sport: 4500, dport: 31000 }),
        delivered: active.has("natt-out"),
        why: "NAT-T to a peer whose NAT mapped port 4500 to 31000",
      },
      {
        probe: out("esp-out", t.peerAddr, { proto: "esp" }),
        delivered: active.has("esp-out"),
        why: "ESP to the peer",
      },
      {
        probe: out("ike-out-nonpeer", t.nonPeerAddr, { sport: 500, dport: 500 }),
        delivered: !known && active.has("ike-out"),
        why: "IKE to a non-peer: dropped when peers are known",
      },
      {
        probe: out("other-out", t.peerAddr, { sport: 5000, dport: 5000 }),
        delivered: false,
        why: "unrelated UDP: the egress rules are not an accept-all",
      },
    ];
    const got = await sendProbes(
      t.cl,
      t.gw,
      c.family,
      exp.map((e) => e.probe),
    );
    const actual = Object.fromEntries(exp.map((e) => [`${e.probe.id}: ${e.why}`, got.has(e.probe.id)]));
    const wanted = Object.fromEntries(exp.map((e) => [`${e.probe.id}: ${e.why}`, e.delivered]));
    expect(actual, `${caseName(c)}\n${text.gateway}`).toEqual(wanted);
  });
}

const egressCases = (): Case[] =>
  ([4, 6] as const).flatMap((family) => [
    base({ vpn: "site-to-site", nat: "none", family }),
    base({ vpn: "ikev2-remote-access", nat: "peer", family }),
    base({ vpn: "l2tp-ipsec", nat: "none", family, peersKnown: false }),
  ]);

for (const backend of BACKENDS) {
  describeKernel(`${backend.name}: generated rules in a real kernel`, () => {
    afterAll(sweepNamespaces);

    // The iptables generator (this suite's subject) gets the full product, other backends the pruned one,
    // to keep the kernel suite short. The legacy backend runs the same iptables output, so it only gets
    // the IPv6 AH cases, which it matches differently (see backends.ts).
    const all = cases({
      full: backend.name === "iptables",
      forcesDefaultDrop: backend.adjust(defaultGenerateOptions).defaultDrop,
    });
    const list =
      backend === iptablesLegacyBackend
        ? all.filter((c) => c.ah && c.family === 6 && !c.opts.defaultDrop)
        : all;
    it.concurrent.each(list.map((c) => [caseName(c), c] as const))(
      "inbound %s",
      async (_n, c) => runInbound(backend, c),
      30_000,
    );

    if (backend.egress && backend !== iptablesLegacyBackend) {
      it.concurrent.each(egressCases().map((c) => [caseName(c), c] as const))(
        "egress %s",
        async (_n, c) => runEgress(backend, c),
        30_000,
      );
    }
  });
}
