import type { Prefix } from "../model/address.js";
import { isRemoteAccess, localBehindNat, natOnPath, type Scenario } from "./scenario.js";

export type Service = "ike" | "nat-t" | "esp" | "ah" | "l2tp" | "ike-tcp" | "ip-fragments";
export type Protocol = "udp" | "tcp" | "esp" | "ah" | "fragment";
export type Direction = "inbound" | "outbound";
export type Initiator = "peer" | "local" | "either";
export type Requirement = "required" | "optional" | "not-needed";
/** `ipsec`: only when the packet was decapsulated from an inbound IPsec SA (xt_policy / meta secpath). */
export type Condition = "ipsec" | "no-ipsec" | "non-first-fragment";
/** Gateway = the IPsec endpoint's own firewall; nat-device = the box in front of it (port forwards). */
export type Location = "gateway" | "nat-device";

export interface Flow {
  /** Stable id, e.g. `ike-in`, `natt-forward`. Part of the JSON contract. */
  id: string;
  service: Service;
  protocol: Protocol;
  /** IANA protocol number (UDP 17, TCP 6, ESP 50, AH 51); absent for fragments of any protocol. */
  protoNumber?: number;
  /** Destination port at the gateway (inbound) or at the peer (outbound). */
  port?: number;
  /**
   * Source port, when no NAT can rewrite it: IKE is sent from the IKE port and NAT-T from the NAT-T
   * port (RFC 7296 §2.11/§2.23, RFC 3947); behind NAT the peer's port is arbitrary (absent).
   */
  sport?: number;
  direction: Direction;
  initiator: Initiator;
  /** Must be accepted as a new connection, not only as a reply to something this side sent. */
  mustAcceptNew: boolean;
  condition?: Condition;
  action: "accept" | "drop";
  requirement: Requirement;
  location: Location;
  /** Remote side of the flow; empty = any address. */
  peers: Prefix[];
  reason: string;
  rfcs: string[];
}

export interface Plan {
  scenario: Scenario;
  flows: Flow[];
  /** Things an engineer must know that no single flow says (seed deviations, impossible combinations). */
  notes: string[];
}

const RFC = {
  ikev1: "RFC 2409",
  ikev2: "RFC 7296",
  nattIke1: "RFC 3947",
  udpEncap: "RFC 3948",
  esp: "RFC 4303",
  ah: "RFC 4302",
  l2tp: "RFC 2661",
  l2tpIpsec: "RFC 3193",
  mobike: "RFC 4555",
  tcp: "RFC 8229",
  frag: "RFC 7383",
};

/** Derives every flow the VPN needs at one gateway, and at the NAT device in front of it. */
export function planFlows(s: Scenario): Plan {
  const ra = isRemoteAccess(s);
  const ikePort = s.ikePort ?? 500;
  const nattPort = s.nattPort ?? 4500;
  // Only a NAT in front of the peer rewrites its source port (a port forward in front of this
  // gateway keeps it).
  const peerNatted = s.nat === "peer" || s.nat === "both";
  const ikeRfc = s.ike === 2 ? RFC.ikev2 : RFC.ikev1;
  const who = ra ? "clients" : "the peer";
  const inInit: Initiator = ra || s.responder ? "peer" : "either";
  const flows: Flow[] = [];
  const notes: string[] = [];
  const peers = s.peers;

  // Why UDP 4500 is used at all: NAT-T after NAT detection, MOBIKE, or forced encapsulation.
  const floats = natOnPath(s) || s.encap || s.mobike;
  const floatWhy = natOnPath(s)
    ? "NAT is on the path, so after NAT detection IKE and ESP move to UDP 4500"
    : s.encap
      ? "UDP encapsulation is forced, so IKE and ESP run on UDP 4500"
      : "IKEv2 MOBIKE floats IKE to UDP 4500 from IKE_AUTH on, even without NAT";
  const espEncapsulated = natOnPath(s) || s.encap;
  const newWhy = ra
    ? `${who} open the IKE SA; their later exchanges (DPD, rekey) arrive as new once the firewall's state has expired`
    : "either side initiates: the peer's rekeys, DPD and DELETE arrive as new traffic once this side's session or conntrack entry has expired (seed 001)";

  const add = (
    f: Omit<Flow, "location" | "action" | "peers"> & Partial<Pick<Flow, "location" | "action" | "peers">>,
  ) => flows.push({ location: "gateway", action: "accept", peers, ...f });

  add({
    id: "ike-in",
    service: "ike",
    protocol: "udp",
    protoNumber: 17,
    port: ikePort,
    ...(peerNatted ? {} : { sport: ikePort }),
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    requirement: "required",
    reason: `IKE${s.ike === 2 ? "v2" : "v1"} negotiation starts on UDP ${ikePort}${ikePort !== 500 ? " (this gateway's IKE port, moved from 500)" : ""}; ${newWhy}.`,
    rfcs: [ikeRfc],
  });
  add({
    id: "natt-in",
    service: "nat-t",
    protocol: "udp",
    protoNumber: 17,
    port: nattPort,
    ...(peerNatted ? {} : { sport: nattPort }),
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    requirement: floats ? "required" : "optional",
    reason: floats
      ? `${floatWhy}${nattPort !== 4500 ? ` (this gateway's NAT-T port is ${nattPort})` : ""}; ESP-in-UDP and all further IKE use it.`
      : `No NAT, no MOBIKE, no forced encapsulation: the VPN stays on UDP ${ikePort} and ESP. Open it only if NAT can appear (e.g. ${ra ? "roaming clients" : "a future CGNAT"}).`,
    rfcs: [
      s.ike === 2 ? RFC.ikev2 : RFC.nattIke1,
      RFC.udpEncap,
      ...(s.mobike && !natOnPath(s) ? [RFC.mobike] : []),
    ],
  });
  add({
    id: "esp-in",
    service: "esp",
    protocol: "esp",
    protoNumber: 50,
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    requirement: espEncapsulated ? "not-needed" : "required",
    reason: espEncapsulated
      ? "ESP is encapsulated in UDP 4500 (NAT-T / forced encapsulation), so no raw IP protocol 50 arrives."
      : `Tunnel data arrives as ESP (IP protocol 50); it is connectionless, so the peer's packets are new to the firewall whenever this side has not sent ESP recently.`,
    rfcs: [RFC.esp, ...(espEncapsulated ? [RFC.udpEncap] : [])],
  });
  add({
    id: "ah-in",
    service: "ah",
    protocol: "ah",
    protoNumber: 51,
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    requirement: s.ah && !espEncapsulated ? "required" : "not-needed",
    reason: !s.ah
      ? "AH is not used (ESP provides integrity); leave IP protocol 51 closed."
      : espEncapsulated
        ? "AH cannot work here: it authenticates the IP header that NAT rewrites, and UDP encapsulation (RFC 3948) covers ESP only."
        : "AH (IP protocol 51) carries the authenticated traffic.",
    rfcs: [RFC.ah],
  });
  if (s.ah && espEncapsulated) {
    notes.push(
      "AH is incompatible with NAT and with UDP encapsulation: the SA will not come up. Use ESP with integrity instead.",
    );
  }
  add({
    id: "ike-tcp-in",
    service: "ike-tcp",
    protocol: "tcp",
    protoNumber: 6,
    port: 4500,
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    requirement: s.ikeTcp ? "required" : "not-needed",
    reason: s.ikeTcp
      ? "IKE and ESP over TCP 4500 (RFC 8229) is enabled, for networks that block UDP."
      : "IKE over TCP (RFC 8229) is not enabled.",
    rfcs: [RFC.tcp],
  });
  add({
    id: "ike-fragments-in",
    service: "ip-fragments",
    protocol: "fragment",
    direction: "inbound",
    initiator: inInit,
    mustAcceptNew: true,
    condition: "non-first-fragment",
    requirement: s.ikeFragmentation ? "optional" : "required",
    reason: s.ikeFragmentation
      ? "IKE fragmentation keeps IKE_AUTH below the MTU; IP fragments from the peer only matter for peers without it."
      : "Without IKE fragmentation, IKE_AUTH with certificates exceeds the MTU and arrives as IP fragments; non-first fragments carry no UDP header and must not be dropped.",
    rfcs: [RFC.frag],
  });
  if (s.vpn === "l2tp-ipsec") {
    add({
      id: "l2tp-in",
      service: "l2tp",
      protocol: "udp",
      protoNumber: 17,
      port: 1701,
      direction: "inbound",
      initiator: "peer",
      mustAcceptNew: true,
      condition: "ipsec",
      requirement: "required",
      reason:
        "L2TP (UDP 1701) from clients, accepted only after IPsec decapsulation: L2TP itself has no encryption (RFC 3193 requires the IPsec transport SA).",
      rfcs: [RFC.l2tp, RFC.l2tpIpsec],
    });
    add({
      id: "l2tp-plain-in",
      service: "l2tp",
      protocol: "udp",
      protoNumber: 17,
      port: 1701,
      direction: "inbound",
      initiator: "peer",
      mustAcceptNew: true,
      condition: "no-ipsec",
      action: "drop",
      peers: [],
      requirement: "required",
      reason:
        "Plain L2TP (UDP 1701 not via IPsec) must be dropped: it would expose unencrypted PPP authentication.",
      rfcs: [RFC.l2tpIpsec],
    });
  }

  // Outbound: what this gateway sends. Usually OUTPUT is open; listed so egress filters can be checked.
  const outInit: Initiator = "either";
  const mirror = (id: string, inbound: Flow) => {
    if (inbound.requirement === "not-needed" || inbound.action !== "accept" || inbound.condition) return;
    flows.push({
      ...inbound,
      id,
      direction: "outbound",
      initiator: outInit,
      // The gateway starts DPD, rekeys and DELETE towards clients too; only TCP is always client-opened.
      mustAcceptNew: !(ra && inbound.service === "ike-tcp"),
      reason: outboundReason(inbound.service, ra),
    });
  };
  for (const f of [...flows]) {
    if (f.direction === "inbound" && f.service !== "ip-fragments") mirror(f.id.replace(/-in$/, "-out"), f);
  }
  if (s.vpn === "l2tp-ipsec") {
    // The L2TP daemon's replies (and hellos) leave in plaintext first: OUTPUT sees them before the
    // transport SA encrypts them (xfrm_output), so an output filter must admit them, via IPsec only.
    flows.push({
      id: "l2tp-out",
      service: "l2tp",
      protocol: "udp",
      protoNumber: 17,
      port: 1701,
      direction: "outbound",
      initiator: outInit,
      mustAcceptNew: true,
      condition: "ipsec",
      action: "accept",
      requirement: "required",
      location: "gateway",
      peers,
      reason:
        "L2TP from this server (UDP 1701: replies, hellos) crosses OUTPUT in plaintext before the transport SA encrypts it; accept it only when it will leave through IPsec.",
      rfcs: [RFC.l2tp, RFC.l2tpIpsec],
    });
  }

  if (localBehindNat(s)) addNatDeviceFlows(s, flows, notes);
  if (s.vpn === "l2tp-ipsec" && s.nat === "none") {
    notes.push(
      "Seed 000 §6.1 opens UDP 4500 even without NAT; tunnelcheck marks it optional and still generates it unless --required-only.",
    );
  }
  if (s.vpn === "site-to-site" && peers.length === 0) {
    notes.push(
      "No --peer given: rules will accept IKE from any source. A site-to-site peer is known; restrict to it.",
    );
  }
  return { scenario: s, flows, notes };
}

function outboundReason(svc: Service, ra: boolean): string {
  switch (svc) {
    case "ike":
      return ra
        ? "Replies to clients, plus gateway-initiated DPD, rekeys and DELETE notifications."
        : "This gateway initiates IKE too (first negotiation, rekeys, DPD, DELETE).";
    case "nat-t":
      return "IKE and ESP-in-UDP sent by this gateway on UDP 4500.";
    case "esp":
      return "Encrypted traffic this gateway sends to the peer.";
    case "ah":
      return "AH-protected traffic this gateway sends.";
    case "ike-tcp":
      return "IKE/ESP over TCP connections this gateway opens or answers.";
    default:
      return "Traffic this gateway sends.";
  }
}

function addNatDeviceFlows(s: Scenario, flows: Flow[], notes: string[]): void {
  const fwd = (
    id: string,
    service: Service,
    protocol: Protocol,
    port: number,
    requirement: Requirement,
    reason: string,
    rfcs: string[],
  ) =>
    flows.push({
      id,
      service,
      protocol,
      protoNumber: protocol === "tcp" ? 6 : 17,
      port,
      direction: "inbound",
      initiator: s.vpn === "site-to-site" ? "either" : "peer",
      mustAcceptNew: true,
      action: "accept",
      requirement,
      location: "nat-device",
      peers: s.peers,
      reason,
      rfcs,
    });
  fwd(
    "ike-forward",
    "ike",
    "udp",
    s.ikePort ?? 500,
    "required",
    `The NAT device must forward UDP ${s.ikePort ?? 500} to the gateway so peers can open IKE SAs.`,
    [s.ike === 2 ? RFC.ikev2 : RFC.ikev1],
  );
  fwd(
    "natt-forward",
    "nat-t",
    "udp",
    s.nattPort ?? 4500,
    "required",
    `NAT detection moves IKE and ESP to UDP ${s.nattPort ?? 4500}; the NAT device must forward it too.`,
    [RFC.udpEncap],
  );
  if (s.ikeTcp)
    fwd("ike-tcp-forward", "ike-tcp", "tcp", 4500, "required", "IKE over TCP 4500 must be forwarded too.", [
      RFC.tcp,
    ]);
  if (s.vpn === "l2tp-ipsec") {
    fwd(
      "l2tp-forward",
      "l2tp",
      "udp",
      1701,
      "not-needed",
      "Not needed: behind NAT, L2TP travels inside ESP-in-UDP on port 4500. Seed 000 §5.3 forwards it anyway; that only exposes L2TP unencrypted.",
      [RFC.l2tpIpsec, RFC.udpEncap],
    );
    notes.push(
      "Seed 000 §5.3 forwards UDP 1701 on the NAT device; tunnelcheck does not: under NAT-T, L2TP rides inside ESP-in-UDP 4500.",
    );
  }
  notes.push("ESP and AH are not forwarded: NAT-T encapsulates ESP in UDP 4500 (seed 000 §5.2, RFC 3948).");
  if (!s.local)
    notes.push(
      "Give --local (the gateway's private address) so the NAT device's port forwards have a destination.",
    );
  if (!s.publicAddress && !s.wan) {
    notes.push(
      "Give --public (the NAT device's public address) or --wan: an unrestricted port forward also catches UDP 500/4500 that hosts behind the NAT device send out.",
    );
  }
}

export const activeFlows = (plan: Plan, opts: { requiredOnly?: boolean } = {}): Flow[] =>
  plan.flows.filter(
    (f) => f.requirement === "required" || (f.requirement === "optional" && !opts.requiredOnly),
  );
