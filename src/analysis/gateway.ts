import type { Family } from "../model/address.js";
import type { AddrSet } from "../model/addrset.js";
import type { Target } from "../platforms/registry.js";
import type { ScenarioInput } from "../vpn/scenario.js";
import type { RuleRef } from "./findings.js";
import type { PortForwardPart, PortForwardSetQuery } from "./port-forward-set.js";
import type { FilterEvaluator } from "./query.js";

export type PlatformName = "fortios" | "iptables";

/** A gateway as the user described it: a config file and what the file alone cannot say. */
export interface GatewayInput {
  name: string;
  platform: PlatformName;
  file: string;
  text: string;
  /** `text`'s bytes when it has one byte per character (read as ASCII): a faster iptables parse. */
  bytes?: Uint8Array;
  /** The host's own addresses (Linux: needed to tell local from forwarded traffic). */
  addresses?: string[];
  wan?: string;
  vdom?: string;
  /** `ipset save` output, for exact `-m set` matches. */
  ipset?: { file: string; text: string };
}

/** A VPN the gateway's own configuration declares (FortiOS phase1-interface). */
export interface DeclaredVpn {
  name: string;
  /** Remote gateway address; null for dial-up servers. */
  peer: string | null;
  local: string | null;
  scenario: ScenarioInput;
  /** IKE timers the config sets or defaults (FortiOS phase1/phase2), for the simulator. */
  timers?: {
    ikeVersion: 1 | 2;
    dpd: "disable" | "on-idle" | "on-demand";
    dpdRetryInterval: number;
    dpdRetryCount: number;
    keylife: number;
    keylifeseconds?: number;
    autoNegotiate: boolean;
    /** phase1 `keepalive`: NAT-T keepalive interval, seconds. */
    natKeepalive?: number;
  };
  notes: string[];
  unknown: string[];
  loc: RuleRef;
}

/** "Does this box forward UDP 500 arriving at its public address to the gateway behind it?" */
export interface PortForwardQuery {
  proto: number;
  port: number;
  /** A source the peer may come from. */
  src: string;
  /** The class of sources `src` stands for (no condition of the device's config tells them apart). */
  srcClass?: AddrSet;
  publicAddress: string;
  /** The gateway behind the NAT device. */
  to: string;
  iif?: string;
}

export interface PortForwardCheck {
  status: "forwarded" | "missing" | "blocked" | "unknown";
  reason: string;
  rules: RuleRef[];
}

export interface LoadedGateway {
  input: GatewayInput;
  evaluator: FilterEvaluator;
  fixTarget(family: Family): Target;
  vpns: DeclaredVpn[];
  /** The gateway's own addresses as far as the config says (interfaces, local-gw). */
  ownAddresses: string[];
  warnings: string[];
  /** Informational diagnostics of the config (FortiOS `info`: a predefined object assumed, …). */
  notes?: string[];
  /** When this box can act as the NAT device in front of a gateway (Linux DNAT). */
  portForward?(q: PortForwardQuery): PortForwardCheck;
  /** The same for a whole set of clients: one part per class of sources the config tells apart. */
  portForwardSet?(q: PortForwardSetQuery): PortForwardPart[];
}

/** Input the user must fix (parse errors, unknown VDOM): printed with positions, exit 2. */
export class GatewayInputError extends Error {}

export type GatewayLoader = (g: GatewayInput) => LoadedGateway;
