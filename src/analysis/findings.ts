import type { VerdictPart } from "./query.js";

/** Where a responsible rule or policy stands in the user's config. */
export interface RuleRef {
  file: string;
  line: number;
  col?: number;
  text: string;
}

export type Severity = "error" | "warning" | "note";

/** The finding catalogue: ids are a public contract (scripts and CI gate on them). */
export const FINDINGS = {
  "ike-reply-only": {
    severity: "error",
    title: "Inbound IKE from the peer is accepted only as a reply",
    help: "The tunnel comes up when this side initiates, then the peer's DPD, rekeys and DELETE are dropped once the session/conntrack entry expires: one side down, the other up.",
  },
  "natt-reply-only": {
    severity: "error",
    title: "Inbound NAT-T (UDP 4500) from the peer is accepted only as a reply",
    help: "Same trap as ike-reply-only on UDP 4500, where IKE lives after NAT detection or MOBIKE.",
  },
  "esp-reply-only": {
    severity: "error",
    title: "Inbound ESP from the peer is accepted only as a reply",
    help: "ESP passes while this side sends ESP too; once it is idle longer than the state timeout, the peer's ESP is new and dropped — data black-holed while both sides show the tunnel up.",
  },
  "ike-blocked": {
    severity: "error",
    title: "Inbound IKE (UDP 500) from the peer is blocked",
    help: "The peer can never open or rekey an IKE SA.",
  },
  "natt-blocked": {
    severity: "error",
    title: "Inbound NAT-T (UDP 4500) from the peer is blocked",
    help: "IKE_AUTH and ESP-in-UDP are dropped after NAT detection.",
  },
  "esp-blocked": {
    severity: "error",
    title: "Inbound ESP from the peer is blocked",
    help: "IKE comes up but no data passes: nothing tears the tunnel down.",
  },
  "ah-blocked": {
    severity: "error",
    title: "Inbound AH from the peer is blocked",
    help: "AH-protected traffic is dropped.",
  },
  "ike-tcp-blocked": {
    severity: "error",
    title: "Inbound IKE over TCP 4500 is blocked",
    help: "RFC 8229 clients cannot connect.",
  },
  "l2tp-blocked": {
    severity: "error",
    title: "L2TP (UDP 1701) inside IPsec is blocked",
    help: "Clients establish IPsec but L2TP never starts.",
  },
  "l2tp-unprotected": {
    severity: "error",
    title: "UDP 1701 (L2TP) is reachable without IPsec protection",
    help: "L2TP has no encryption; plain 1701 must be dropped (match on the IPsec policy).",
  },
  "ike-out-blocked": {
    severity: "error",
    title: "Outbound IKE (UDP 500) from the gateway to the peer is blocked",
    help: "The gateway's own IKE packets (requests, answers, DPD, rekeys, DELETE) are dropped on its output path: the tunnel never comes up, or only the half the firewall lets out.",
  },
  "ike-out-reply-only": {
    severity: "error",
    title: "Outbound IKE from the gateway is sent only as a reply",
    help: "The output path lets IKE out only on an existing conntrack entry: the gateway answers the peer but can never initiate, nor rekey or probe as initiator once the entry has expired.",
  },
  "natt-out-blocked": {
    severity: "error",
    title: "Outbound NAT-T (UDP 4500) from the gateway to the peer is blocked",
    help: "IKE and ESP-in-UDP the gateway sends after NAT detection are dropped on its output path.",
  },
  "natt-out-reply-only": {
    severity: "error",
    title: "Outbound NAT-T (UDP 4500) from the gateway is sent only as a reply",
    help: "Same trap as ike-out-reply-only on UDP 4500: the gateway can answer but not initiate, rekey or send NAT keepalives once the conntrack entry has expired.",
  },
  "esp-out-blocked": {
    severity: "error",
    title: "Outbound ESP from the gateway to the peer is blocked",
    help: "IKE comes up but the gateway's encrypted traffic never leaves: data black-holed in one direction.",
  },
  "ah-out-blocked": {
    severity: "error",
    title: "Outbound AH from the gateway to the peer is blocked",
    help: "AH-protected traffic the gateway sends is dropped on its output path.",
  },
  "ike-tcp-out-blocked": {
    severity: "error",
    title: "Outbound IKE over TCP 4500 from the gateway is blocked",
    help: "The gateway's side of RFC 8229 connections is dropped on its output path.",
  },
  "l2tp-out-blocked": {
    severity: "error",
    title: "L2TP (UDP 1701) from the server, via IPsec, is blocked",
    help: "The L2TP daemon's replies cross OUTPUT in plaintext before the transport SA encrypts them; dropped there, clients establish IPsec but L2TP never answers.",
  },
  "ike-open-to-any": {
    severity: "warning",
    title: "IKE is accepted from any source although the peers are known",
    help: "Restrict IKE to the intended peers (seed 001's resolution); unwanted IKE negotiations cost CPU and expose the daemon.",
  },
  "esp-open-unneeded": {
    severity: "warning",
    title: "ESP is accepted although the VPN does not use raw ESP",
    help: "With NAT-T or forced encapsulation ESP arrives in UDP 4500.",
  },
  "port-forward-missing": {
    severity: "error",
    title: "The NAT device does not forward a required port",
    help: "Peers cannot reach the gateway behind NAT.",
  },
  "verdict-unknown": {
    severity: "error",
    title: "The verdict for a required flow depends on something tunnelcheck cannot evaluate",
    help: "A construct whose result is not known statically (rate limits, FQDN addresses, unsupported syntax) decides this flow.",
  },
} as const satisfies Record<string, { severity: Severity; title: string; help: string }>;

export type FindingId = keyof typeof FINDINGS;

export interface Finding {
  id: FindingId;
  severity: Severity;
  gateway: string;
  tunnel?: string;
  flow?: string;
  message: string;
  /** The rules or policies responsible, with provenance. */
  rules: RuleRef[];
  /** Ready-to-apply rules for the gateway's platform. */
  fix?: { target: string; text: string };
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, note: 2 };
export const severityAtLeast = (s: Severity, min: Severity): boolean => ORDER[s] <= ORDER[min];

/**
 * Where an outbound packet is stopped, so that its fix acts there: a drop in raw, mangle or nat
 * OUTPUT (or POSTROUTING) happens before or after the filter table, where the usual accepts go.
 */
export interface FixSite {
  table: string;
  chain: string;
  /** 1-based position to insert an accept at (before `before`); null: append (the walk falls off the chain's end). */
  at: number | null;
  /** The rule the accept goes before (the dropping or rewriting rule); null for a policy. */
  before: RuleRef | null;
  /**
   * `at` counted without the rules tunnelcheck itself added (tagged `tunnelcheck: …`): the
   * stopping rule's place in the chain the way the fixes of other findings leave it too.
   */
  nth?: number;
  /** Why no inserted rule can help here: remove or narrow `before` instead. */
  cannot?: string;
  /** The stop is a DNAT/REDIRECT in nat OUTPUT sending the packet here (not a drop). */
  rewrite?: string;
}

/** One key per place (the file included: two gateways' files may share line numbers). */
export const siteKey = (x: FixSite): string =>
  `${x.table}|${x.chain}|${x.at}|${x.before?.file}:${x.before?.line}|${x.cannot ?? ""}|${x.rewrite ?? ""}`;

/** An outbound verdict part, with where the packet is stopped (iptables) for the fix. */
export type OutboundPart = VerdictPart & {
  fixSites?: FixSite[];
  /** The table and chain that stop it (`mangle OUTPUT`), when not the filter table. */
  stoppedIn?: string;
};
