import type { Family } from "../model/address.js";
import type { AddrSet } from "../model/addrset.js";
import type { RuleRef } from "./findings.js";

/** Connection-tracking state of a packet as the filter sees it (FortiOS: session or not). */
export type CtState = "new" | "established" | "related" | "invalid" | "untracked";

/**
 * A class of packets arriving at a gateway: "UDP to port 500 from these sources, as NEW".
 * Platform evaluators answer it symbolically, partitioning `sources` by verdict.
 */
export interface FlowQuery {
  family: Family;
  /** IANA protocol number (17 UDP, 6 TCP, 50 ESP, 51 AH). */
  proto: number;
  dport?: number;
  /** Undefined = any source port (a NAT-T peer's port is arbitrary). */
  sport?: number;
  /** ICMP / ICMPv6 type and code (undefined: any). */
  icmpType?: number;
  icmpCode?: number;
  /** IPv4 TTL / IPv6 hop limit as the packet arrives (undefined: any). */
  ttl?: number;
  sources: AddrSet;
  /** Undefined = any of the gateway's own addresses. */
  dst?: AddrSet;
  iif?: string;
  state: CtState;
  /** Arrived inside IPsec (decapsulated from an inbound SA). */
  ipsec: boolean;
  /** What is known of its SA bundle, outermost first (`-m policy --proto/--mode`); undefined: nothing. */
  ipsecSa?: IpsecSaFacts[];
  /**
   * A non-first IP fragment (no transport header). `dport`/`sport` then are the ports of the
   * datagram it belongs to: a platform that reassembles before its rules judges the datagram by
   * them; the fragment itself shows none.
   */
  fragment?: boolean;
  /** The first fragment of a fragmented datagram (offset 0, ports present; IPv6: a Fragment header). */
  fragFirst?: boolean;
  /** IPv6 Fragment header: the M flag and the identification (undefined: unknown). */
  fragMore?: boolean;
  fragId?: number;
}

export type Verdict = "accept" | "drop" | "reject" | "unknown";

export interface VerdictPart {
  sources: AddrSet;
  verdict: Verdict;
  /** The deciding rule or policy; null when a chain policy / implicit default decided. */
  rule: RuleRef | null;
  /** Human-readable name of the default that decided, when `rule` is null. */
  defaultName?: string;
  /** Why the verdict is unknown: the construct and where it stands. */
  unknown?: { reason: string; rule?: RuleRef };
  /**
   * Not for this host: a port forward (`rule`: a FortiOS VIP, a DNAT rule) takes the packet to this
   * address[:port] before the input filter is looked at; an input accept would change nothing.
   */
  forwardedTo?: string;
  /** The line that set the deciding default policy (`:OUTPUT DROP`), when `rule` is null and known. */
  defaultAt?: RuleRef;
}

/**
 * A class of packets the gateway itself sends: "UDP from port 500 to these peers, as NEW". The
 * answer partitions `peers`; a part's `sources` then holds the peers (the remote side), not senders.
 */
export interface OutboundQuery {
  family: Family;
  proto: number;
  /** The gateway's own port. */
  sport?: number;
  /** The peer's port; undefined = any (a NATed peer's port is arbitrary). */
  dport?: number;
  peers: AddrSet;
  /** The gateway's own address; undefined: the host's first address. */
  src?: bigint;
  oif?: string;
  state: CtState;
  /** Will leave through an outbound IPsec policy (L2TP inside the transport SA). */
  ipsecOut: boolean;
  /** What is known of its SA bundle, outermost first; undefined: nothing. */
  ipsecSa?: IpsecSaFacts[];
}

/**
 * An IPsec SA a flow travels in, as far as the scenario fixes it. L2TP/IPsec runs in transport-mode
 * SAs (RFC 3193 §2); reqid and SPI are the daemon's choice and stay unknown. `proto` undefined: an SA
 * the bundle may or may not hold.
 */
export interface IpsecSaFacts {
  proto?: "esp" | "ah";
  mode: "transport" | "tunnel";
}

export interface StateTimeout {
  seconds: number;
  /** Where the figure comes from: a config line, or the platform default and its documentation. */
  source: string;
  rule?: RuleRef;
}

export interface FilterEvaluator {
  platform: string;
  evaluate(q: FlowQuery): VerdictPart[];
  /** How long the state that lets replies in outlives the last packet (UDP session TTL, conntrack timeout). */
  stateTimeout?(q: FlowQuery): StateTimeout | undefined;
  /** What the gateway may send (its local-output path); undefined: the platform does not filter it or is not modelled. */
  evaluateOutbound?(q: OutboundQuery): VerdictPart[];
  /** Why outbound flows are not evaluated on this platform (said once per gateway as a note). */
  outboundNote?: string;
}
