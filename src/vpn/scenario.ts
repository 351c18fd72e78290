import {
  type Family,
  formatPrefix,
  isHost,
  type Prefix,
  parsePrefix,
  prefixContains,
} from "../model/address.js";

export const VPN_TYPES = ["l2tp-ipsec", "ikev2-remote-access", "site-to-site"] as const;
export type VpnType = (typeof VPN_TYPES)[number];

/** Where NAT sits: `local` = this gateway is behind a NAT device, `peer` = clients/peer are. */
export const NAT_MODES = ["none", "local", "peer", "both"] as const;
export type NatMode = (typeof NAT_MODES)[number];

export interface Scenario {
  vpn: VpnType;
  ike: 1 | 2;
  nat: NatMode;
  ah: boolean;
  family: Family;
  /** Known peers (site-to-site) or client ranges; empty means any source. */
  peers: Prefix[];
  /** This gateway's own address (behind the NAT device when nat is local/both). */
  local?: Prefix;
  /** The NAT device's public address, for its port forwards (nat local/both). */
  publicAddress?: Prefix;
  wan?: string;
  /** IKEv2 MOBIKE (RFC 4555): strongSwan floats to UDP 4500 from IKE_AUTH on, NAT or not. */
  mobike: boolean;
  /** Forced UDP encapsulation (strongSwan `encap = yes`, Libreswan `encapsulation=yes`). */
  encap: boolean;
  /** IKE and ESP over TCP 4500 (RFC 8229). */
  ikeTcp: boolean;
  /** IKE fragmentation (RFC 7383 / IKEv1 vendor extension); off means IP fragments. */
  ikeFragmentation: boolean;
  /** The UDP port this gateway's IKE daemon listens on, when not 500 (FortiOS `system settings ike-port`). */
  ikePort?: number;
  /** The UDP port of NAT-T (IKE and ESP-in-UDP after NAT detection), when not 4500 (FortiOS `ike-natt-port`). */
  nattPort?: number;
  /** This gateway never initiates (a dial-up server of any VPN type). */
  responder?: boolean;
}

export class ScenarioError extends Error {}

export interface ScenarioInput {
  vpn?: string;
  ike?: string | number;
  nat?: string;
  ah?: boolean;
  ipv6?: boolean;
  peers?: string[];
  local?: string;
  publicAddress?: string;
  wan?: string;
  mobike?: boolean;
  encap?: boolean;
  ikeTcp?: boolean;
  ikeFragmentation?: boolean;
  ikePort?: number;
  nattPort?: number;
  /** This gateway never initiates (a dial-up server): every inbound flow is started by the peers. */
  responder?: boolean;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  dflt?: T,
): T {
  if (value === undefined) {
    if (dflt !== undefined) return dflt;
    throw new ScenarioError(`missing --${name}; allowed: ${allowed.join(", ")}`);
  }
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ScenarioError(`invalid --${name} '${value}'; allowed: ${allowed.join(", ")}`);
}

function addr(flag: string, value: string, hostOnly: boolean): Prefix {
  let p: Prefix;
  try {
    p = parsePrefix(value);
  } catch (e) {
    throw new ScenarioError(
      `invalid --${flag} '${value}': ${(e as Error).message.replace(/^invalid address '[^']*': /, "")}`,
    );
  }
  if (hostOnly && !isHost(p))
    throw new ScenarioError(`invalid --${flag} '${value}': expected a single address`);
  return p;
}

const WAN_RE = /^[A-Za-z0-9_.:@-]{1,15}\+?$/;

/**
 * A peer inside another one adds nothing but duplicate rules: the broader prefix is kept (the
 * first of equal ones), in the given order. Prefixes nest or are disjoint, so in address order
 * the last kept prefix is the only one that can contain the next (a hub lists thousands of peers).
 */
function broadestPeers(given: Prefix[]): Prefix[] {
  const order = given.map((_, i) => i);
  order.sort((i, j) => {
    const a = given[i]!;
    const b = given[j]!;
    if (a.family !== b.family) return a.family - b.family;
    if (a.addr !== b.addr) return a.addr < b.addr ? -1 : 1;
    return a.len - b.len || i - j;
  });
  const keep = new Array<boolean>(given.length).fill(false);
  let cur: Prefix | undefined;
  for (const i of order) {
    const p = given[i]!;
    if (cur !== undefined && prefixContains(cur, p)) continue;
    keep[i] = true;
    cur = p;
  }
  return given.filter((_, i) => keep[i]);
}

/** Validates raw options (CLI flags, topology entries) into a Scenario. */
export function makeScenario(input: ScenarioInput): Scenario {
  const vpn = oneOf("vpn", input.vpn, VPN_TYPES);
  const nat = oneOf("nat", input.nat, NAT_MODES, "none");
  const ikeDefault = vpn === "l2tp-ipsec" ? "1" : "2";
  const ikeText = input.ike === undefined ? ikeDefault : String(input.ike).replace(/^ikev/i, "");
  const ike = Number(oneOf("ike", ikeText, ["1", "2"] as const)) as 1 | 2;
  if (vpn === "ikev2-remote-access" && ike !== 2)
    throw new ScenarioError("ikev2-remote-access uses IKEv2; drop --ike 1");
  const given = (input.peers ?? []).filter((p) => p !== "any").map((p) => addr("peer", p, false));
  const peers = broadestPeers(given);
  const local = input.local === undefined ? undefined : addr("local", input.local, true);
  const publicAddress =
    input.publicAddress === undefined ? undefined : addr("public", input.publicAddress, true);
  const all = [...peers, ...(local ? [local] : []), ...(publicAddress ? [publicAddress] : [])];
  const families = new Set(all.map((p) => p.family));
  if (families.size > 1) {
    throw new ScenarioError(
      "addresses mix IPv4 and IPv6; plan each family separately (add --ipv6 for the IPv6 one)",
    );
  }
  const seen = families.values().next().value;
  const family: Family = input.ipv6 ? 6 : (seen ?? 4);
  for (const p of all) {
    if (p.family !== family) {
      throw new ScenarioError(
        `address ${formatPrefix(p)} is IPv${p.family} but the scenario is IPv${family}`,
      );
    }
  }
  if (vpn === "site-to-site" && peers.length === 0) {
    // Allowed (dynamic peer), but analyses will warn: a site-to-site peer is normally known.
  }
  if (input.wan !== undefined && !WAN_RE.test(input.wan)) {
    throw new ScenarioError(
      `invalid --wan '${input.wan}': expected an interface name (max 15 chars, optional trailing +)`,
    );
  }
  for (const [what, port] of [
    ["IKE", input.ikePort],
    ["NAT-T", input.nattPort],
  ] as const)
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
      throw new ScenarioError(`invalid ${what} port ${port}: expected 1-65535`);
  return {
    vpn,
    ike,
    nat,
    ah: input.ah ?? false,
    family,
    peers,
    ...(local ? { local } : {}),
    ...(publicAddress ? { publicAddress } : {}),
    ...(input.wan !== undefined ? { wan: input.wan } : {}),
    mobike: ike === 2 && (input.mobike ?? true),
    encap: input.encap ?? false,
    ikeTcp: input.ikeTcp ?? false,
    ikeFragmentation: input.ikeFragmentation ?? true,
    ...(input.ikePort !== undefined && input.ikePort !== 500 ? { ikePort: input.ikePort } : {}),
    ...(input.nattPort !== undefined && input.nattPort !== 4500 ? { nattPort: input.nattPort } : {}),
    ...(input.responder ? { responder: true } : {}),
  };
}

export const isRemoteAccess = (s: Scenario): boolean => s.vpn !== "site-to-site";
export const localBehindNat = (s: Scenario): boolean => s.nat === "local" || s.nat === "both";
export const natOnPath = (s: Scenario): boolean => s.nat !== "none";
