import type { Plan } from "../vpn/flows.js";

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
