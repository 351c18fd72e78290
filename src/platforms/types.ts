import { formatPrefix, type Prefix } from "../model/address.js";
import type { Plan } from "../vpn/flows.js";
import type { Scenario } from "../vpn/scenario.js";

export interface GenerateOptions {
  /** Also set a default-drop INPUT policy, with loopback and established/related accepted first. */
  defaultDrop: boolean;
  /** Leave out flows the plan marks optional. */
  requiredOnly: boolean;
  /** Also emit rules for outbound flows (for hosts whose OUTPUT policy is not ACCEPT). */
  egress: boolean;
  /**
   * Add to the rules already in place instead of replacing them (iptables commands: chains are
   * created when missing, never flushed, each rule appended only when absent). The audit's
   * per-finding fixes use it: pasted one after another, they add up.
   */
  additive?: boolean;
}

export const defaultGenerateOptions: GenerateOptions = {
  defaultDrop: false,
  requiredOnly: false,
  egress: false,
};

/** A scenario the target cannot express (e.g. IPv6 scenario, IPv4-only target). Usage error. */
export class TargetError extends Error {}

export type Generate = (plan: Plan, opts: GenerateOptions) => string;

/**
 * The peers a header comment names: all of them up to ten, else the first eight and how many more.
 * The rules themselves list every peer; a hub's thousand in one comment line is 15 kB nobody reads.
 */
export function peerList(peers: readonly Prefix[], sep = ", "): string {
  if (peers.length === 0) return "any";
  const shown = peers.length <= 10 ? peers : peers.slice(0, 8);
  const text = shown.map((p) => formatPrefix(p)).join(sep);
  return peers.length === shown.length ? text : `${text}${sep}… (${peers.length - shown.length} more)`;
}

/** `vpn=… ike=v2 nat=… IPv4 peers=… wan=… local=… public=…`: the first line of a generated file. */
export function scenarioSummary(s: Scenario): string {
  const parts = [`vpn=${s.vpn}`, `ike=v${s.ike}`, `nat=${s.nat}`, `IPv${s.family}`];
  parts.push(`peers=${peerList(s.peers, ",")}`);
  if (s.wan) parts.push(`wan=${s.wan}`);
  if (s.local) parts.push(`local=${formatPrefix(s.local)}`);
  if (s.publicAddress) parts.push(`public=${formatPrefix(s.publicAddress)}`);
  return parts.join(" ");
}
