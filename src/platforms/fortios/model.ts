/**
 * Typed FortiOS model built from the parsed tree: interfaces, addresses and groups, services and
 * groups, local-in and forward policies, VIPs, IPsec phase 1/2, session timers. Every object keeps
 * its provenance (`loc`, and `fields` for the line of each field) so findings can point at config
 * lines. Unset fields carry the FortiOS default, marked `isDefault`, with the source cited below.
 *
 * Nothing here throws on odd input: invalid values and unknown references become diagnostics.
 */
import { type Family, familyBits, hostMask, type Prefix, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { deferFill, lazyKeys, settleAll, undeferFill } from "./lazymap.js";
import {
  type ConfigTree,
  type Diagnostic,
  type EditNode,
  type Loc,
  type ParseOptions,
  type ParseResult,
  parseFortios,
  type SectionEntries,
  sectionEntries,
} from "./parse.js";
import { PREDEFINED_FILE, PREDEFINED_SERVICES } from "./predefined.js";
import {
  collectScopes,
  currentName,
  type Entry,
  type ResolveOptions,
  resolveEntry,
  resolveTable,
  type SectionIndex,
  type Table,
} from "./resolve.js";

export type { Family, Prefix };

/** A field's effective value; `isDefault` when the config does not set it. */
export interface Valued<T> {
  value: T;
  isDefault: boolean;
  /** The line that set it (absent for defaults). */
  loc?: Loc;
}

/** Field name → the line that last set it. */
export type FieldLocs = Record<string, Loc>;

// ---------------------------------------------------------------------------------------------
// Objects

export type AddrMatch =
  | { kind: "prefix"; prefix: Prefix }
  | { kind: "range"; family: Family; first: bigint; last: bigint }
  /** IPv4 `wildcard A M`: an address matches when it equals A on every bit set in M. */
  | { kind: "wildcard"; addr: bigint; mask: bigint }
  /** Not decidable from the configuration alone (FQDN, geography, dynamic, MAC, invalid). */
  | { kind: "unknown"; reason: string };

export interface Address {
  name: string;
  family: Family;
  /** FortiOS `type` (default `ipmask` / `ipprefix` for IPv6). */
  type: string;
  match: AddrMatch;
  associatedInterface?: string;
  comment?: string;
  /** Not in the file: a FortiOS predefined object assumed by name. */
  builtin: boolean;
  loc: Loc;
  fields: FieldLocs;
}

export interface AddrGroup {
  name: string;
  family: Family;
  members: string[];
  /** `exclude enable`: the group is members minus `excludeMembers`. */
  exclude: boolean;
  excludeMembers: string[];
  loc: Loc;
  fields: FieldLocs;
}

export interface PortRange {
  lo: number;
  hi: number;
}

/** One `dst[-dst][:src[-src]]` item of a port range field. */
export interface PortSpec {
  dst: PortRange;
  src: PortRange;
}

export type ServiceMatch =
  | { kind: "l4"; tcp: PortSpec[]; udp: PortSpec[]; sctp: PortSpec[] }
  /** `protocol IP`; protocol 0 matches every IP protocol. */
  | { kind: "ip"; protocol: number }
  /** Type/code absent = any. */
  | { kind: "icmp"; family: Family; type?: number; code?: number }
  | { kind: "unknown"; reason: string };

export interface Service {
  name: string;
  /** FortiOS `protocol` (default `TCP/UDP/SCTP`). */
  protocol: string;
  match: ServiceMatch;
  /** `iprange`/`fqdn` restricting the destination, when set. */
  destination?: AddrMatch;
  /** Per-service session TTL (seconds), when set. */
  sessionTtl?: number;
  /** Per-service UDP idle timer (seconds), when set. */
  udpIdleTimer?: number;
  builtin: boolean;
  loc: Loc;
  fields: FieldLocs;
}

export interface ServiceGroup {
  name: string;
  members: string[];
  builtin: boolean;
  loc: Loc;
  fields: FieldLocs;
}

export interface InterfaceAddress {
  /** The interface's own address. */
  address: bigint;
  /** The connected network. */
  prefix: Prefix;
}

export interface Interface {
  name: string;
  vdom?: string;
  type: string;
  mode: string;
  ip?: InterfaceAddress;
  secondary: (InterfaceAddress & { allowaccess: string[] })[];
  ip6?: InterfaceAddress;
  allowaccess: string[];
  allowaccess6: string[];
  /** Parent interface (VLANs, tunnels). */
  parent?: string;
  alias?: string;
  role?: string;
  status: string;
  loc: Loc;
  fields: FieldLocs;
}

export interface Zone {
  name: string;
  interfaces: string[];
  loc: Loc;
}

export interface LocalInPolicy {
  id: string;
  family: Family;
  /** Position in the table: evaluation order, which is not the ID order. */
  position: number;
  /** Incoming interfaces/zones; `any` matches every interface. */
  intf: string[];
  srcaddr: string[];
  dstaddr: string[];
  srcaddrNegate: boolean;
  dstaddrNegate: boolean;
  service: string[];
  serviceNegate: boolean;
  action: Valued<"accept" | "deny">;
  schedule: Valued<string>;
  status: Valued<"enable" | "disable">;
  haMgmtIntfOnly: boolean;
  /** Matches Internet Service Database entries instead of addresses: not decidable statically. */
  internetServiceSrc: boolean;
  comments?: string;
  loc: Loc;
  fields: FieldLocs;
}

export interface Policy {
  id: string;
  position: number;
  name?: string;
  srcintf: string[];
  dstintf: string[];
  srcaddr: string[];
  dstaddr: string[];
  srcaddr6: string[];
  dstaddr6: string[];
  srcaddrNegate: boolean;
  dstaddrNegate: boolean;
  service: string[];
  serviceNegate: boolean;
  action: Valued<"accept" | "deny" | "ipsec">;
  status: Valued<"enable" | "disable">;
  schedule: Valued<string>;
  nat: boolean;
  /** `match-vip`: a deny policy also matches traffic to a VIP it does not name (FD36750). */
  matchVip: boolean;
  /** Policy session TTL override (seconds), when set. */
  sessionTtl?: number;
  internetService: boolean;
  comments?: string;
  loc: Loc;
  fields: FieldLocs;
}

export interface Vip {
  name: string;
  type: string;
  extip?: string;
  external?: AddrMatch;
  mappedip: string[];
  extintf?: string;
  portforward: boolean;
  protocol: string;
  extport?: PortRange;
  mappedport?: PortRange;
  /** The first mapped address (of `mappedip`'s single range), when it can be read. */
  mappedFirst?: bigint;
  /** Why the VIP's mapping cannot be modelled, and the line that says so; absent when it can. */
  unsupported?: { reason: string; loc: Loc };
  /** `status disable`: the VIP maps nothing (FortiOS 7.0 CLI reference, config firewall vip). */
  enabled: boolean;
  /** `src-filter`: only these sources are mapped (empty: every source). */
  srcFilter: AddrSet | null;
  /** `srcintf-filter`: only packets arriving on these interfaces are mapped (empty: any). */
  srcintfFilter: string[];
  loc: Loc;
  fields: FieldLocs;
}

export type PskState = "none" | "encrypted" | "plaintext";

export interface Phase1 {
  name: string;
  type: Valued<string>;
  interface?: string;
  remoteGw?: string;
  remoteGw6?: string;
  /** `type ddns`: the peer's FQDN (`remotegw-ddns`), resolved at run time. */
  remotegwDdns?: string;
  localGw?: string;
  localGw6?: string;
  /** `ip-version` (default 4): which of remote-gw / remote-gw6 is used. */
  ipVersion: Valued<4 | 6>;
  ikeVersion: Valued<1 | 2>;
  mode: Valued<"main" | "aggressive">;
  nattraversal: Valued<"enable" | "disable" | "forced">;
  dpd: Valued<"disable" | "on-idle" | "on-demand">;
  dpdRetryinterval: Valued<number>;
  dpdRetrycount: Valued<number>;
  keylife: Valued<number>;
  keepalive: Valued<number>;
  autoNegotiate: Valued<boolean>;
  netDevice: Valued<boolean>;
  peertype?: string;
  proposal: string[];
  authmethod: Valued<string>;
  /** How the PSK is stored; the value itself never leaves the parser. */
  psk: PskState;
  comments?: string;
  loc: Loc;
  fields: FieldLocs;
}

export interface Selector {
  type: string;
  /** `subnet`/`ip`/`range` selectors as an address match; `name` selectors as the object name. */
  match?: AddrMatch;
  name?: string;
}

export interface Phase2 {
  name: string;
  phase1name?: string;
  proposal: string[];
  keylifeseconds: Valued<number>;
  /** `encapsulation` (default `tunnel-mode`); L2TP/IPsec uses `transport-mode`. */
  encapsulation: Valued<"tunnel-mode" | "transport-mode">;
  autoNegotiate: Valued<boolean>;
  keepalive: Valued<boolean>;
  src: Selector;
  dst: Selector;
  loc: Loc;
  fields: FieldLocs;
}

export interface SessionTtlPort {
  id: string;
  protocol: number;
  startPort: number;
  endPort: number;
  /** Seconds, or `never`. */
  timeout: number | "never";
  loc: Loc;
}

export interface SessionTtl {
  default: Valued<number>;
  ports: SessionTtlPort[];
}

export interface VdomModel {
  name: string;
  addresses: Map<string, Address>;
  addresses6: Map<string, Address>;
  addrgrps: Map<string, AddrGroup>;
  addrgrps6: Map<string, AddrGroup>;
  services: Map<string, Service>;
  serviceGroups: Map<string, ServiceGroup>;
  zones: Map<string, Zone>;
  localIn: LocalInPolicy[];
  localIn6: LocalInPolicy[];
  policies: Policy[];
  vips: Map<string, Vip>;
  /** `firewall vipgrp`: group name → member VIP names. */
  vipgrps: Map<string, { name: string; members: string[]; loc: Loc }>;
  phase1: Map<string, Phase1>;
  phase2: Map<string, Phase2>;
  sessionTtl: SessionTtl;
  /** `config system settings` `detect-unknown-esp` (ESP is checked against local-in only when disabled). */
  detectUnknownEsp: Valued<boolean>;
  /** `system settings` `central-nat`: VIPs then apply without being named in policies. */
  centralNat: Valued<boolean>;
  /** `system settings` `ngfw-mode`: policy-based mode enables central NAT and a second policy table. */
  ngfwMode: Valued<string>;
  /**
   * `system settings` `ike-port`: the UDP port the IKE daemon listens on ("IKE phase 1 port
   * number", 1024-65535, default 500: FortiOS CLI reference, config system settings; with
   * `ike-natt-port` for NAT-T, "IKE and IKE NAT-T UDP port numbers configurable from the CLI").
   */
  ikePort: Valued<number>;
  /** `system settings` `ike-natt-port`: the UDP port of NAT-T (1024-65535, default 4500). */
  ikeNattPort: Valued<number>;
  /** `config vpn l2tp`, when the section is present. */
  l2tp?: L2tpSettings;
}

export interface L2tpSettings {
  status: Valued<boolean>;
  /** `enforce-ipsec` (FortiOS 7.0+): L2TP only inside IPsec. */
  enforceIpsec: Valued<boolean>;
  loc: Loc;
  fields: FieldLocs;
}

export interface FortiosHeader {
  /** e.g. `FGVM64-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin`. */
  configVersion?: string;
  platform?: string;
  version?: string;
  build?: string;
}

export interface FortiosModel {
  file: string;
  header: FortiosHeader;
  multiVdom: boolean;
  interfaces: Map<string, Interface>;
  hostname?: string;
  /** `config system global` `udp-idle-timer`. */
  udpIdleTimer: Valued<number>;
  vdoms: Map<string, VdomModel>;
  diagnostics: Diagnostic[];
}

// ---------------------------------------------------------------------------------------------
// Defaults, with where they come from.

export const DEFAULTS = {
  /** "Action performed on traffic matching the policy (default = deny)": FortiOS CLI reference,
   * firewall local-in-policy, https://docs.fortinet.com/document/fortigate/6.2.16/cli-reference/185227842;
   * "If the local in policy is defined and no action is set, then the default action will be set to Deny",
   * https://community.fortinet.com/t5/FortiGate/Technical-Tip-Local-in-policies-behavior-in-the-FortiGate-VM/ta-p/366248 */
  localInAction: "deny",
  /** FortiOS CLI reference, firewall policy: `action` default deny. */
  policyAction: "deny",
  /** "On-Demand is the default setting": https://community.fortinet.com/t5/FortiGate/Technical-Tip-Explanation-of-IPsec-VPN-DPD-Options-and-On-Idle/ta-p/260424
   * (and seed 001: "The Dead Peer Detection (DPD) setting is 'on-demand' by default"). */
  dpd: "on-demand",
  /** "With the default settings, DPD will be attempted every 20 seconds, 3 times":
   * https://community.fortinet.com/t5/FortiClient/Technical-Tip-Configuring-DPD-dead-peer-detection-on-IPsec-VPN/ta-p/192616 */
  dpdRetryinterval: 20,
  dpdRetrycount: 3,
  /** FortiOS CLI reference, vpn ipsec phase1-interface, Default column (keylife 86400, ike-version 1,
   * mode main, nattraversal enable, auto-negotiate enable, net-device disable, keepalive 10,
   * type static, authmethod psk). Not all re-verified against a retrieved page (anchors.md §7.4). */
  keylife: 86400,
  ikeVersion: 1,
  mode: "main",
  nattraversal: "enable",
  phase1AutoNegotiate: true,
  netDevice: false,
  keepalive: 10,
  phase1Type: "static",
  authmethod: "psk",
  /** FortiOS CLI reference, vpn ipsec phase2-interface: keylifeseconds 43200; auto-negotiate
   * disable ("defaults to disable when created from CLI",
   * https://community.fortinet.com/t5/FortiGate/Troubleshooting-Tip-Phase1-is-up-yet-phase2-is-down-after-IKE/ta-p/384951). */
  keylifeseconds: 43200,
  phase2AutoNegotiate: false,
  phase2Keepalive: false,
  /** `system session-ttl` default 3600 s, port entries 300 s; `system global` udp-idle-timer 180 s:
   * https://community.fortinet.com/t5/FortiGate/Technical-Tip-Default-session-timeout-value-session-ttl/ta-p/194357,
   * https://community.fortinet.com/t5/FortiGate/Technical-Tip-Session-timeout-settings/ta-p/191228 */
  sessionTtl: 3600,
  sessionTtlPort: 300,
  udpIdleTimer: 180,
  /** ESP is only subject to local-in after `config system settings / set detect-unknown-esp disable`
   * (v7.2.4+): https://community.fortinet.com/t5/FortiGate/Technical-Tip-How-to-block-Unwanted-IKE-Negotiations-and-unknown/ta-p/390429 */
  detectUnknownEsp: true,
} as const;

// ---------------------------------------------------------------------------------------------
// Field helpers

class Ctx {
  constructor(readonly diagnostics: Diagnostic[]) {}
  private push(severity: Diagnostic["severity"], loc: Loc, message: string): void {
    this.diagnostics.push({ severity, file: loc.file, line: loc.line, col: loc.col, message });
  }
  warn(loc: Loc, message: string): void {
    this.push("warning", loc, message);
  }
  info(loc: Loc, message: string): void {
    this.push("info", loc, message);
  }
}

function first(e: Entry, key: string): string | undefined {
  return e.attrs.get(key)?.values[0];
}

function list(e: Entry, key: string): string[] {
  return e.attrs.get(key)?.values ?? [];
}

function fieldLocs(e: Entry): FieldLocs {
  const out: FieldLocs = {};
  for (const [k, a] of e.attrs) if (k !== "__proto__") out[k] = a.loc;
  return out;
}

function flag(e: Entry, key: string, def = false): boolean {
  const v = first(e, key);
  return v === undefined ? def : v === "enable";
}

function valued<T>(
  ctx: Ctx,
  e: Entry,
  key: string,
  def: T,
  conv: (v: string) => T | undefined,
  what: string,
): Valued<T> {
  const a = e.attrs.get(key);
  if (!a || a.values.length === 0) return { value: def, isDefault: true };
  const v = conv(a.values[0]!);
  if (v === undefined) {
    ctx.warn(a.loc, `${what}: invalid ${key} '${a.values[0]}'; using the FortiOS default ${String(def)}`);
    return { value: def, isDefault: true, loc: a.loc };
  }
  return { value: v, isDefault: false, loc: a.loc };
}

const int =
  (min: number, max: number) =>
  (v: string): number | undefined => {
    if (!/^\d{1,10}$/.test(v)) return undefined;
    const n = Number(v);
    return n >= min && n <= max ? n : undefined;
  };

const oneOf =
  <T extends string>(...opts: T[]) =>
  (v: string): T | undefined =>
    (opts as string[]).includes(v) ? (v as T) : undefined;

const enableDisable = (v: string): boolean | undefined =>
  v === "enable" ? true : v === "disable" ? false : undefined;

function intOf(ctx: Ctx, e: Entry, key: string, what: string, max = 0xffffffff): number | undefined {
  const a = e.attrs.get(key);
  if (!a || a.values.length === 0) return undefined;
  const v = int(0, max)(a.values[0]!);
  if (v === undefined) ctx.warn(a.loc, `${what}: invalid ${key} '${a.values[0]}'`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Addresses

/** Dotted-quad IPv4 as a number, or -1. Backups hold tens of thousands of them: no regex, no allocation. */
function v4(s: string): number {
  let n = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = -1;
    } else if (c >= 48 && c <= 57) {
      part = part < 0 ? c - 48 : part === 0 ? 256 : part * 10 + c - 48; // no leading zeros
      if (part > 255) return -1;
    } else return -1;
  }
  return dots === 3 && part >= 0 ? n * 256 + part : -1;
}

/** Prefix length of a contiguous IPv4 netmask, or -1. */
function maskLen(m: number): number {
  const inv = 0xffffffff - m;
  return (inv & (inv + 1)) === 0 ? 32 - Math.log2(inv + 1) : -1;
}

function hostOf(v: string): { family: Family; addr: bigint } | undefined {
  const a = v4(v);
  if (a >= 0) return { family: 4, addr: BigInt(a) };
  try {
    const p = parsePrefix(v);
    return p.len === familyBits(p.family) ? { family: p.family, addr: p.addr } : undefined;
  } catch {
    return undefined;
  }
}

/** `A M`, `A/len` or `A/M`: the address and its network. */
function ipAndNet(values: readonly string[]): InterfaceAddress | string {
  if (values.length === 2) {
    // Fast path for the usual `set subnet A M` / `set ip A M`.
    const a = v4(values[0]!);
    const m = v4(values[1]!);
    const len = m < 0 ? -1 : maskLen(m);
    if (a >= 0 && len >= 0) {
      const net = a - (a % 2 ** (32 - len));
      return { address: BigInt(a), prefix: { family: 4, addr: BigInt(net), len } };
    }
  }
  const text = values.length >= 2 ? `${values[0]}/${values[1]}` : (values[0] ?? "");
  const host = hostOf(text.split("/")[0]!);
  if (!host) return `'${values.join(" ")}' is not an IP address`;
  try {
    return { address: host.addr, prefix: parsePrefix(text, { allowHostBits: true }) };
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function isUnspecified(values: readonly string[]): boolean {
  return values.length === 0 || values.every((v) => v === "0.0.0.0" || v === "0.0.0.0/0" || v === "::/0");
}

/** `a` or `a-b` → a range match. */
function rangeOf(v: string): AddrMatch {
  const [a, b] = v.split("-");
  const x = hostOf(a ?? "");
  const y = b === undefined ? x : hostOf(b);
  if (!x || !y || x.family !== y.family)
    return { kind: "unknown", reason: `'${v}' is not an IP address or range` };
  if (x.addr > y.addr) return { kind: "unknown", reason: `range '${v}' ends before it starts` };
  return { kind: "range", family: x.family, first: x.addr, last: y.addr };
}

const UNKNOWN_TYPES: Record<string, string> = {
  fqdn: "an FQDN address is resolved through DNS at run time",
  "wildcard-fqdn": "a wildcard FQDN address is learned from DNS traffic at run time",
  geography: "a geography address depends on FortiGuard's IP-to-country database",
  dynamic: "a dynamic address is filled at run time (SDN connector, FSSO, EMS)",
  mac: "a MAC address object matches layer-2 addresses, not IP addresses",
  template: "an address template is instantiated elsewhere",
  "route-tag": "a route-tag address depends on the routing table at run time",
};

function buildAddress(
  ctx: Ctx,
  e: Entry,
  family: Family,
  interfaces: ReadonlyMap<string, Interface>,
  builtin = false,
): Address {
  const fields = fieldLocs(e);
  const what = `firewall address${family === 6 ? "6" : ""} '${e.name}'`;
  const type = first(e, "type") ?? (family === 4 ? "ipmask" : "ipprefix");
  let match: AddrMatch;
  const unknownWhy = UNKNOWN_TYPES[type];
  if (unknownWhy !== undefined) {
    const detail = first(e, "fqdn") ?? first(e, "wildcard-fqdn") ?? first(e, "country");
    match = { kind: "unknown", reason: detail ? `${unknownWhy} (${detail})` : unknownWhy };
  } else if (type === "iprange") {
    const def = family === 4 ? "0.0.0.0" : "::";
    const a = hostOf(first(e, "start-ip") ?? def);
    const b = hostOf(first(e, "end-ip") ?? def);
    if (!a || !b || a.family !== family || b.family !== family) {
      match = { kind: "unknown", reason: "invalid start-ip/end-ip" };
    } else if (a.addr > b.addr) {
      match = { kind: "unknown", reason: "start-ip is after end-ip" };
    } else match = { kind: "range", family, first: a.addr, last: b.addr };
  } else if (family === 4 && type === "wildcard") {
    const v = list(e, "wildcard");
    const a = hostOf(v[0] ?? "0.0.0.0");
    const m = hostOf(v[1] ?? "0.0.0.0");
    match =
      a && m && a.family === 4 && m.family === 4
        ? { kind: "wildcard", addr: a.addr & m.addr, mask: m.addr }
        : { kind: "unknown", reason: "invalid wildcard" };
  } else if (type === "ipmask" || type === "ipprefix" || type === "interface-subnet") {
    const key = family === 4 ? "subnet" : "ip6";
    const v = list(e, key);
    if (type === "interface-subnet" && isUnspecified(v)) {
      const ifname = first(e, "interface");
      const ip = ifname === undefined ? undefined : interfaces.get(ifname)?.ip;
      match = ip
        ? { kind: "prefix", prefix: ip.prefix }
        : {
            kind: "unknown",
            reason: `the subnet of interface '${ifname ?? "?"}' is not known from the config`,
          };
    } else {
      // ipmask without a subnet is 0.0.0.0/0 (how FortiOS defines the predefined `all`).
      const r = ipAndNet(v.length === 0 ? [family === 4 ? "0.0.0.0/0" : "::/0"] : v);
      if (typeof r === "string" || r.prefix.family !== family) {
        const loc = e.attrs.get(key)?.loc ?? e.loc;
        ctx.warn(loc, `${what}: invalid ${key}: ${typeof r === "string" ? r : "wrong address family"}`);
        match = { kind: "unknown", reason: `invalid ${key}` };
      } else {
        if (r.address !== r.prefix.addr && v.length > 0) {
          ctx.warn(
            e.attrs.get(key)!.loc,
            `${what}: ${key} has host bits set; FortiOS matches the whole network`,
          );
        }
        match = { kind: "prefix", prefix: r.prefix };
      }
    }
  } else {
    match = { kind: "unknown", reason: `address type '${type}' is not modelled` };
  }
  const addr: Address = { name: e.name, family, type, match, builtin, loc: e.loc, fields };
  const assoc = first(e, "associated-interface");
  if (assoc !== undefined) addr.associatedInterface = assoc;
  const comment = first(e, "comment");
  if (comment !== undefined) addr.comment = comment;
  return addr;
}

function buildGroup(e: Entry, family: Family): AddrGroup {
  return {
    name: e.name,
    family,
    members: list(e, "member"),
    exclude: flag(e, "exclude"),
    excludeMembers: list(e, "exclude-member"),
    loc: e.loc,
    fields: fieldLocs(e),
  };
}

// ---------------------------------------------------------------------------------------------
// Services

const PORTS = /^(\d{1,5})(?:-(\d{1,5}))?(?::(\d{1,5})(?:-(\d{1,5}))?)?$/;

/** `dst[-dst][:src[-src]]` items; a missing source range means any source port. */
export function parsePortSpec(v: string): PortSpec | string {
  const m = PORTS.exec(v);
  if (!m) return `'${v}' is not dst[-dst][:src[-src]]`;
  const n = m.slice(1).map((x) => (x === undefined ? undefined : Number(x)));
  const [dlo, dhi = dlo, slo, shi = slo] = n as [number, number?, number?, number?];
  if ([dlo, dhi, slo, shi].some((x) => x !== undefined && x > 65535)) return `'${v}': ports are 0-65535`;
  if (dhi! < dlo || (slo !== undefined && shi! < slo)) return `'${v}': range ends before it starts`;
  return {
    dst: { lo: dlo, hi: dhi! },
    src: slo === undefined ? { lo: 0, hi: 65535 } : { lo: slo, hi: shi! },
  };
}

const PROTOCOL_FIELDS = [
  "protocol-number",
  "icmptype",
  "icmpcode",
  "tcp-portrange",
  "udp-portrange",
  "sctp-portrange",
];

/**
 * Changing a service's protocol drops the previous protocol's fields, and unsetting the ICMP type
 * drops the code (both as the Batfish `service_custom` test expects from real devices).
 */
const SERVICE_RESOLVE: ResolveOptions = {
  resets: { protocol: PROTOCOL_FIELDS },
  unsetCascade: { icmptype: ["icmpcode"] },
  maxNameLength: 79,
};

function buildService(ctx: Ctx, e: Entry, builtin = false): Service {
  const what = `firewall service custom '${e.name}'`;
  const protocol = first(e, "protocol") ?? "TCP/UDP/SCTP";
  let match: ServiceMatch;
  const specs = (key: string): PortSpec[] => {
    const a = e.attrs.get(key);
    const out: PortSpec[] = [];
    for (const v of a?.values ?? []) {
      const p = parsePortSpec(v);
      if (typeof p === "string") ctx.warn(a!.loc, `${what}: ${key} ${p}`);
      else out.push(p);
    }
    return out;
  };
  if (first(e, "proxy") === "enable") {
    match = { kind: "unknown", reason: "explicit-proxy service" };
  } else if (protocol === "TCP/UDP/SCTP") {
    match = {
      kind: "l4",
      tcp: specs("tcp-portrange"),
      udp: specs("udp-portrange"),
      sctp: specs("sctp-portrange"),
    };
    if (match.tcp.length + match.udp.length + match.sctp.length === 0 && !builtin) {
      ctx.warn(e.loc, `${what}: no tcp/udp/sctp port range; the service matches nothing`);
    }
  } else if (protocol === "ICMP" || protocol === "ICMP6") {
    const m: ServiceMatch = { kind: "icmp", family: protocol === "ICMP" ? 4 : 6 };
    const type = intOf(ctx, e, "icmptype", what, 255);
    const code = intOf(ctx, e, "icmpcode", what, 255);
    if (type !== undefined) m.type = type;
    if (code !== undefined) m.code = code;
    match = m;
  } else if (protocol === "IP") {
    match = { kind: "ip", protocol: intOf(ctx, e, "protocol-number", what, 255) ?? 0 };
  } else {
    match = { kind: "unknown", reason: `protocol '${protocol}' (explicit proxy) is not modelled` };
  }
  const svc: Service = { name: e.name, protocol, match, builtin, loc: e.loc, fields: fieldLocs(e) };
  const iprange = first(e, "iprange");
  const fqdn = first(e, "fqdn");
  if (fqdn) svc.destination = { kind: "unknown", reason: `${UNKNOWN_TYPES.fqdn} (${fqdn})` };
  else if (iprange !== undefined && iprange !== "0.0.0.0") svc.destination = rangeOf(iprange);
  const ttl = intOf(ctx, e, "session-ttl", what);
  if (ttl) svc.sessionTtl = ttl;
  const idle = intOf(ctx, e, "udp-idle-timer", what);
  if (idle) svc.udpIdleTimer = idle;
  return svc;
}

let predefined: { services: Map<string, Service>; groups: Map<string, ServiceGroup> } | undefined;

/** The predefined services, parsed once from `predefined.ts`. */
export function predefinedServices(): { services: Map<string, Service>; groups: Map<string, ServiceGroup> } {
  if (!predefined) {
    const { tree } = parseFortios(PREDEFINED_SERVICES, { file: PREDEFINED_FILE });
    const scopes = collectScopes(tree);
    const ctx = new Ctx([]);
    const services = new Map<string, Service>();
    for (const e of resolveTable(scopes.global.get("firewall service custom"), [], SERVICE_RESOLVE).entries) {
      services.set(e.name, buildService(ctx, e, true));
    }
    const groups = new Map<string, ServiceGroup>();
    for (const e of resolveTable(scopes.global.get("firewall service group"), []).entries) {
      groups.set(e.name, {
        name: e.name,
        members: list(e, "member"),
        builtin: true,
        loc: e.loc,
        fields: fieldLocs(e),
      });
    }
    predefined = { services, groups };
  }
  return predefined;
}

// ---------------------------------------------------------------------------------------------
// Interfaces

function buildInterface(ctx: Ctx, e: Entry, diagnostics: Diagnostic[]): Interface {
  const what = `system interface '${e.name}'`;
  const iface: Interface = {
    name: e.name,
    type: first(e, "type") ?? "physical",
    mode: first(e, "mode") ?? "static",
    secondary: [],
    allowaccess: list(e, "allowaccess"),
    allowaccess6: [],
    status: first(e, "status") ?? "up",
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const vdom = first(e, "vdom");
  if (vdom !== undefined) iface.vdom = vdom;
  const parent = first(e, "interface");
  if (parent !== undefined) iface.parent = parent;
  const alias = first(e, "alias");
  if (alias !== undefined) iface.alias = alias;
  const role = first(e, "role");
  if (role !== undefined) iface.role = role;
  const ip = e.attrs.get("ip");
  if (ip && !isUnspecified(ip.values)) {
    const r = ipAndNet(ip.values);
    if (typeof r === "string") ctx.warn(ip.loc, `${what}: invalid ip: ${r}`);
    else iface.ip = r;
  }
  for (const sec of resolveTable(e.sub.get("secondaryip"), diagnostics).entries) {
    const v = list(sec, "ip");
    const r = ipAndNet(v);
    if (typeof r === "string")
      ctx.warn(sec.attrs.get("ip")?.loc ?? sec.loc, `${what}: invalid secondary ip: ${r}`);
    else iface.secondary.push({ ...r, allowaccess: list(sec, "allowaccess") });
  }
  const v6 = resolveTable(e.sub.get("ipv6"), diagnostics).settings;
  const ip6 = v6.attrs.get("ip6-address");
  if (ip6 && !isUnspecified(ip6.values) && ip6.values[0] !== "::/0") {
    const r = ipAndNet(ip6.values);
    if (typeof r === "string") ctx.warn(ip6.loc, `${what}: invalid ip6-address: ${r}`);
    else iface.ip6 = r;
  }
  iface.allowaccess6 = list(v6, "ip6-allowaccess");
  return iface;
}

// ---------------------------------------------------------------------------------------------
// Policies

function buildLocalIn(ctx: Ctx, e: Entry, position: number, family: Family): LocalInPolicy {
  const what = `firewall local-in-policy${family === 6 ? "6" : ""} ${e.name}`;
  const p: LocalInPolicy = {
    id: e.name,
    family,
    position,
    intf: list(e, "intf"),
    srcaddr: list(e, "srcaddr"),
    dstaddr: list(e, "dstaddr"),
    srcaddrNegate: flag(e, "srcaddr-negate"),
    dstaddrNegate: flag(e, "dstaddr-negate"),
    service: list(e, "service"),
    serviceNegate: flag(e, "service-negate"),
    action: valued(ctx, e, "action", DEFAULTS.localInAction, oneOf("accept", "deny"), what),
    schedule: valued(ctx, e, "schedule", "always", (v) => v, what),
    status: valued(ctx, e, "status", "enable", oneOf("enable", "disable"), what),
    haMgmtIntfOnly: flag(e, "ha-mgmt-intf-only"),
    internetServiceSrc: flag(e, "internet-service-src"),
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const comments = first(e, "comments");
  if (comments !== undefined) p.comments = comments;
  return p;
}

function buildPolicy(ctx: Ctx, e: Entry, position: number): Policy {
  const what = `firewall policy ${e.name}`;
  const p: Policy = {
    id: e.name,
    position,
    srcintf: list(e, "srcintf"),
    dstintf: list(e, "dstintf"),
    srcaddr: list(e, "srcaddr"),
    dstaddr: list(e, "dstaddr"),
    srcaddr6: list(e, "srcaddr6"),
    dstaddr6: list(e, "dstaddr6"),
    srcaddrNegate: flag(e, "srcaddr-negate"),
    dstaddrNegate: flag(e, "dstaddr-negate"),
    service: list(e, "service"),
    serviceNegate: flag(e, "service-negate"),
    action: valued(ctx, e, "action", DEFAULTS.policyAction, oneOf("accept", "deny", "ipsec"), what),
    status: valued(ctx, e, "status", "enable", oneOf("enable", "disable"), what),
    schedule: valued(ctx, e, "schedule", "always", (v) => v, what),
    nat: flag(e, "nat"),
    matchVip: flag(e, "match-vip"),
    internetService: flag(e, "internet-service"),
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const name = first(e, "name");
  if (name !== undefined) p.name = name;
  const comments = first(e, "comments");
  if (comments !== undefined) p.comments = comments;
  const ttl = intOf(ctx, e, "session-ttl", what);
  if (ttl) p.sessionTtl = ttl;
  return p;
}

function portRangeOf(v: string | undefined): PortRange | undefined {
  if (v === undefined) return undefined;
  const p = parsePortSpec(v.split(":")[0]!);
  return typeof p === "string" ? undefined : p.dst;
}

function buildVip(ctx: Ctx, e: Entry): Vip {
  const vip: Vip = {
    name: e.name,
    type: first(e, "type") ?? "static-nat",
    mappedip: list(e, "mappedip"),
    portforward: flag(e, "portforward"),
    protocol: first(e, "protocol") ?? "tcp",
    enabled: first(e, "status") !== "disable",
    srcFilter: null,
    srcintfFilter: list(e, "srcintf-filter"),
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const what = `firewall vip '${e.name}'`;
  const at = (key: string): Loc => e.attrs.get(key)?.loc ?? e.loc;
  // The first reason the mapping cannot be modelled wins; invalid values are also warned about.
  const unsupported = (key: string, reason: string, warn = false): void => {
    if (warn) ctx.warn(at(key), `${what}: ${reason}`);
    vip.unsupported ??= { reason, loc: at(key) };
  };
  if (vip.type !== "static-nat") unsupported("type", `type ${vip.type} is not modelled (only static-nat)`);
  const extip = first(e, "extip");
  if (extip !== undefined) {
    vip.extip = extip;
    vip.external = rangeOf(extip);
    if (vip.external.kind === "unknown") unsupported("extip", `extip: ${vip.external.reason}`, true);
  }
  const extintf = first(e, "extintf");
  if (extintf !== undefined) vip.extintf = extintf;
  for (const key of ["extport", "mappedport"] as const) {
    const text = first(e, key);
    const range = portRangeOf(text);
    if (range) vip[key] = range;
    else if (text !== undefined) unsupported(key, `${key} '${text}' is not a port or port range`, true);
  }
  if (vip.portforward && !vip.extport && first(e, "extport") === undefined)
    unsupported("portforward", "portforward enable without extport");
  // src-filter: addresses, ranges and subnets the VIP maps (FortiOS 6.2+ CLI reference).
  const srcFilter = list(e, "src-filter");
  if (srcFilter.length > 0) {
    let set = AddrSet.empty(4);
    for (const f of srcFilter) {
      if (f.includes("/")) {
        try {
          const p = parsePrefix(f, { allowHostBits: true });
          if (p.family === 4) {
            set = set.union(AddrSet.fromPrefix({ ...p, addr: p.addr & ~hostMask(4, p.len) }));
            continue;
          }
        } catch {
          // reported below
        }
      } else {
        const r = rangeOf(f);
        if (r.kind === "range" && r.family === 4) {
          set = set.union(AddrSet.fromRange(4, r.first, r.last));
          continue;
        }
      }
      unsupported("src-filter", `src-filter '${f}' is not an IPv4 address, range or subnet`, true);
    }
    vip.srcFilter = set;
  }
  if (vip.mappedip.length === 0) unsupported("mappedip", "no mappedip");
  else if (vip.mappedip.length > 1)
    unsupported(
      "mappedip",
      `several mappedip ranges (${vip.mappedip.join(", ")}): which one serves a packet is not modelled`,
    );
  else {
    const m = rangeOf(vip.mappedip[0]!);
    if (m.kind === "range" && m.family === 4) vip.mappedFirst = m.first;
    else unsupported("mappedip", `mappedip '${vip.mappedip[0]}' is not an IPv4 address or range`, true);
  }
  return vip;
}

// ---------------------------------------------------------------------------------------------
// VPN

function buildPhase1(ctx: Ctx, e: Entry): Phase1 {
  const what = `vpn ipsec phase1-interface '${e.name}'`;
  const psk = e.attrs.get("psksecret");
  const p: Phase1 = {
    name: e.name,
    type: valued(ctx, e, "type", DEFAULTS.phase1Type as string, oneOf("static", "dynamic", "ddns"), what),
    ikeVersion: valued<1 | 2>(
      ctx,
      e,
      "ike-version",
      DEFAULTS.ikeVersion,
      (v) => (v === "1" ? 1 : v === "2" ? 2 : undefined),
      what,
    ),
    mode: valued(ctx, e, "mode", DEFAULTS.mode, oneOf("main", "aggressive"), what),
    nattraversal: valued(
      ctx,
      e,
      "nattraversal",
      DEFAULTS.nattraversal,
      oneOf("enable", "disable", "forced"),
      what,
    ),
    dpd: valued(ctx, e, "dpd", DEFAULTS.dpd, oneOf("disable", "on-idle", "on-demand"), what),
    dpdRetryinterval: valued(ctx, e, "dpd-retryinterval", DEFAULTS.dpdRetryinterval, int(1, 3600), what),
    dpdRetrycount: valued(ctx, e, "dpd-retrycount", DEFAULTS.dpdRetrycount, int(0, 10), what),
    keylife: valued(ctx, e, "keylife", DEFAULTS.keylife, int(120, 172800), what),
    keepalive: valued(ctx, e, "keepalive", DEFAULTS.keepalive, int(5, 900), what),
    autoNegotiate: valued(ctx, e, "auto-negotiate", DEFAULTS.phase1AutoNegotiate, enableDisable, what),
    netDevice: valued(ctx, e, "net-device", DEFAULTS.netDevice, enableDisable, what),
    ipVersion: valued<4 | 6>(
      ctx,
      e,
      "ip-version",
      4,
      (v) => (v === "4" ? 4 : v === "6" ? 6 : undefined),
      what,
    ),
    proposal: list(e, "proposal"),
    authmethod: valued(ctx, e, "authmethod", DEFAULTS.authmethod as string, (v) => v, what),
    psk: !psk || psk.values.length === 0 ? "none" : psk.values[0] === "ENC" ? "encrypted" : "plaintext",
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const opt = (key: string): string | undefined => first(e, key);
  const iface = opt("interface");
  if (iface !== undefined) p.interface = iface;
  const rgw = opt("remote-gw");
  if (rgw !== undefined) p.remoteGw = rgw;
  const rgw6 = opt("remote-gw6");
  if (rgw6 !== undefined) p.remoteGw6 = rgw6;
  const lgw = opt("local-gw");
  if (lgw !== undefined) p.localGw = lgw;
  const lgw6 = opt("local-gw6");
  if (lgw6 !== undefined) p.localGw6 = lgw6;
  const ddns = opt("remotegw-ddns");
  if (ddns !== undefined) p.remotegwDdns = ddns;
  const peertype = opt("peertype");
  if (peertype !== undefined) p.peertype = peertype;
  const comments = opt("comments");
  if (comments !== undefined) p.comments = comments;
  return p;
}

function selector(e: Entry, side: "src" | "dst"): Selector {
  const type = first(e, `${side}-addr-type`) ?? "subnet";
  const sel: Selector = { type };
  if (type === "name" || type === "name6") {
    const name = first(e, `${side}-name${type === "name6" ? "6" : ""}`);
    if (name !== undefined) sel.name = name;
  } else if (type === "subnet" || type === "subnet6") {
    const v = list(e, `${side}-subnet${type === "subnet6" ? "6" : ""}`);
    const r = ipAndNet(v.length === 0 ? [type === "subnet" ? "0.0.0.0/0" : "::/0"] : v);
    sel.match = typeof r === "string" ? { kind: "unknown", reason: r } : { kind: "prefix", prefix: r.prefix };
  } else if (type === "ip" || type === "ip6") {
    sel.match = rangeOf(first(e, `${side}-start-ip${type === "ip6" ? "6" : ""}`) ?? "0.0.0.0");
  } else if (type === "range" || type === "range6") {
    const s6 = type === "range6" ? "6" : "";
    sel.match = rangeOf(
      `${first(e, `${side}-start-ip${s6}`) ?? ""}-${first(e, `${side}-end-ip${s6}`) ?? ""}`,
    );
  }
  return sel;
}

function buildPhase2(ctx: Ctx, e: Entry): Phase2 {
  const what = `vpn ipsec phase2-interface '${e.name}'`;
  const p: Phase2 = {
    name: e.name,
    proposal: list(e, "proposal"),
    keylifeseconds: valued(ctx, e, "keylifeseconds", DEFAULTS.keylifeseconds, int(120, 172800), what),
    autoNegotiate: valued(ctx, e, "auto-negotiate", DEFAULTS.phase2AutoNegotiate, enableDisable, what),
    keepalive: valued(ctx, e, "keepalive", DEFAULTS.phase2Keepalive, enableDisable, what),
    encapsulation: valued(
      ctx,
      e,
      "encapsulation",
      "tunnel-mode",
      oneOf("tunnel-mode", "transport-mode"),
      what,
    ),
    src: selector(e, "src"),
    dst: selector(e, "dst"),
    loc: e.loc,
    fields: fieldLocs(e),
  };
  const p1 = first(e, "phase1name");
  if (p1 !== undefined) p.phase1name = p1;
  return p;
}

function buildSessionTtl(ctx: Ctx, t: Table, diagnostics: Diagnostic[]): SessionTtl {
  const what = "system session-ttl";
  const ttl: SessionTtl = {
    default: valued(ctx, t.settings, "default", DEFAULTS.sessionTtl, int(300, 2764800), what),
    ports: [],
  };
  for (const e of resolveTable(t.settings.sub.get("port"), diagnostics).entries) {
    const w = `${what} port ${e.name}`;
    const timeout = first(e, "timeout");
    ttl.ports.push({
      id: e.name,
      protocol: intOf(ctx, e, "protocol", w, 255) ?? 0,
      startPort: intOf(ctx, e, "start-port", w, 65535) ?? 0,
      endPort: intOf(ctx, e, "end-port", w, 65535) ?? 65535,
      timeout:
        timeout === "never"
          ? "never"
          : timeout === undefined
            ? DEFAULTS.sessionTtlPort
            : (int(1, 2764800)(timeout) ?? DEFAULTS.sessionTtlPort),
      loc: e.loc,
    });
  }
  return ttl;
}

// ---------------------------------------------------------------------------------------------
// Assembly

function table(idx: SectionIndex, path: string, diagnostics: Diagnostic[], opts?: ResolveOptions): Table {
  return resolveTable(idx.get(path), diagnostics, opts);
}

const ORDERED: ResolveOptions = { autoId: true };

/**
 * Follows `rename` commands written after a reference: FortiOS updates every reference when an
 * object is renamed. `line` is where the reference was set.
 */
function renamer(...tables: Table[]): ((name: string, line: number) => string) | null {
  if (tables.every((t) => t.renames.size === 0)) return null;
  return (n, line) => {
    for (const t of tables) {
      if (t.byName.has(n)) return n;
      const cur = currentName(t, n, line);
      if (cur !== n && t.byName.has(cur)) return cur;
    }
    return n;
  };
}

/**
 * Every name a section's blocks create (`edit`, `rename`/`clone` targets) and the first line that
 * creates it, for tables sharing a namespace.
 */
function editNames(idx: SectionIndex, ...paths: string[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (name: string, line: number) => {
    if (!out.has(name)) out.set(name, line);
  };
  for (const p of paths) {
    for (const n of idx.get(p) ?? []) {
      for (const c of n.children) {
        if (c.kind === "edit") add(c.name, c.loc.line);
        else if (
          c.kind === "command" &&
          (c.verb === "rename" || c.verb === "clone") &&
          c.args[2] !== undefined
        ) {
          add(c.args[2], c.loc.line);
        }
      }
    }
  }
  return out;
}

/**
 * A table whose sections hold only `edit` blocks (no `rename`/`move`/`clone`/`delete`/`purge`,
 * no error; `sectionEntries`), read entry by entry: its names in table order, and the entry of a
 * name — the one `resolveTable` gives — built when asked for. Null when some section of the table
 * is not like that (the table is then resolved as a whole).
 */
interface EntryTable {
  names: readonly string[];
  /** The names, for lookups. */
  has: ReadonlyMap<string, unknown>;
  entry: (name: string) => Entry;
}

function entryTable(idx: SectionIndex, path: string, opts?: ResolveOptions): EntryTable | null {
  const blocks = idx.get(path) ?? [];
  const sections: SectionEntries[] = [];
  for (const b of blocks) {
    const se = sectionEntries(b);
    if (se === undefined) return null;
    sections.push(se);
  }
  // Each name's first edit as an index over all blocks' edits; further edits of a name (a later
  // block redefining it) in `more`.
  const first = new Map<string, number>();
  const more = new Map<string, number[]>();
  let g = 0;
  for (const se of sections) {
    for (const n of se.names) {
      if (!first.has(n)) first.set(n, g);
      else {
        const m = more.get(n);
        if (m) m.push(g);
        else more.set(n, [g]);
      }
      g++;
    }
  }
  const edit = (i: number): EditNode => {
    for (const se of sections) {
      if (i < se.names.length) return se.edit(i);
      i -= se.names.length;
    }
    throw new Error("entryTable: no such edit");
  };
  const only = sections.length === 1 && first.size === sections[0]!.names.length;
  return {
    names: only ? sections[0]!.names : [...first.keys()],
    has: first,
    entry: (name) => {
      const edits = [edit(first.get(name)!)];
      for (const i of more.get(name) ?? []) edits.push(edit(i));
      return resolveEntry(edits, opts);
    },
  };
}

/** Interface-like objects created by other tables (tunnels, aggregates, overlays). */
const INTERFACE_TABLES = [
  "system geneve",
  "system gre-tunnel",
  "system vxlan",
  "system ipsec-aggregate",
  "system switch-interface",
];

/**
 * A VDOM's model and the parts of it built on first use. The local-in path (what `trace` and the
 * audit ask about) is built at once, except address objects and groups: when their sections hold
 * only `edit`s, each is built when first looked up (`lazyKeys`, lazymap.ts), so a query builds the
 * few its policies name. The forward policy table — usually the bulk of a backup — and the
 * cross-reference checks are built when something reads them (`policies`, `diagnostics`, or a
 * lookup of a predefined object that only they could have added). Either way the result is the one
 * an eager build gives: the same objects, maps in the same order, the same diagnostics.
 */
interface VdomBuild {
  v: VdomModel;
  /** Diagnostics per build step, in the order an eager build emits them. */
  buckets: Diagnostic[][];
  /** Runs every deferred step (idempotent). */
  complete: () => void;
}

function buildVdom(
  name: string,
  idx: SectionIndex,
  interfaces: ReadonlyMap<string, Interface>,
  globalIdx: SectionIndex,
): VdomBuild {
  // One diagnostics bucket per step; deferred steps fill theirs later.
  const ctx = new Ctx([]);
  const pCtx = new Ctx([]);
  const tailCtx = new Ctx([]);
  const svcLocal = new Ctx([]);
  const svcRest = new Ctx([]);
  const addrLocal = new Ctx([]);
  const addrRest = new Ctx([]);
  const refCtx = new Ctx([]);
  /** Diagnostics of building addresses and address6 objects (separate: they may be built late). */
  const addrBuilt: [Diagnostic[], Diagnostic[]] = [[], []];
  /** Services and local-in policies: after the addresses, as an eager build emits them. */
  const ctx2 = new Ctx([]);
  const d = ctx.diagnostics;
  // Addresses and groups share one namespace, as do services and service groups (FortiOS CLI
  // reference: object names up to 79 characters; zone names up to 35).
  const named = (reserved: Map<string, number>, max = 79): ResolveOptions => ({
    reserved,
    maxNameLength: max,
  });
  // Address objects and groups are built on first lookup when neither table has table commands
  // (renames, clones… then need the whole table): a local-in query reads the few hundred objects
  // its policies name, not the tens of thousands a large backup defines.
  const byEntry = (a: string, g: string): { addr: EntryTable; grp: EntryTable } | null => {
    const addr = entryTable(idx, a);
    const grp = addr && entryTable(idx, g);
    return addr && grp ? { addr, grp } : null;
  };
  const e4 = byEntry("firewall address", "firewall addrgrp");
  const e6 = byEntry("firewall address6", "firewall addrgrp6");
  const whole = (e: unknown, path: string, other: string): Table | undefined =>
    e ? undefined : table(idx, path, d, named(editNames(idx, other)));
  const t = {
    addr: whole(e4, "firewall address", "firewall addrgrp"),
    addr6: whole(e6, "firewall address6", "firewall addrgrp6"),
    grp: whole(e4, "firewall addrgrp", "firewall address"),
    grp6: whole(e6, "firewall addrgrp6", "firewall address6"),
    svc: table(idx, "firewall service custom", d, {
      ...SERVICE_RESOLVE,
      reserved: editNames(idx, "firewall service group"),
    }),
    svcGrp: table(idx, "firewall service group", d, named(editNames(idx, "firewall service custom"))),
    zone: table(idx, "system zone", d, named(editNames(globalIdx, "system interface"), 35)),
    iface: table(globalIdx, "system interface", []),
  };
  // Tables read entry by entry have no renames.
  const a4 = t.addr && t.grp ? renamer(t.addr, t.grp) : null;
  const a6 = t.addr6 && t.grp6 ? renamer(t.addr6, t.grp6) : null;
  const sv = renamer(t.svc, t.svcGrp);
  const itf = renamer(t.zone, t.iface);
  const map = (names: string[], f: ((n: string, line: number) => string) | null, loc?: Loc): string[] =>
    f === null ? names : names.map((n) => f(n, loc?.line ?? 0));

  let policies: Policy[] | undefined;
  const buildPolicies = (): Policy[] => {
    const out: Policy[] = [];
    table(idx, "firewall policy", pCtx.diagnostics, ORDERED).entries.forEach((e, i) => {
      const p = buildPolicy(pCtx, e, i);
      p.srcintf = map(p.srcintf, itf, p.fields.srcintf);
      p.dstintf = map(p.dstintf, itf, p.fields.dstintf);
      p.srcaddr = map(p.srcaddr, a4, p.fields.srcaddr);
      p.dstaddr = map(p.dstaddr, a4, p.fields.dstaddr);
      p.srcaddr6 = map(p.srcaddr6, a6, p.fields.srcaddr6);
      p.dstaddr6 = map(p.dstaddr6, a6, p.fields.dstaddr6);
      p.service = map(p.service, sv, p.fields.service);
      out.push(p);
    });
    return out;
  };
  const v: VdomModel = {
    name,
    addresses: new Map(),
    addresses6: new Map(),
    addrgrps: new Map(),
    addrgrps6: new Map(),
    services: new Map(),
    serviceGroups: new Map(),
    zones: new Map(),
    localIn: [],
    localIn6: [],
    get policies(): Policy[] {
      policies ??= buildPolicies();
      return policies;
    },
    set policies(p: Policy[]) {
      policies = p;
    },
    vips: new Map(),
    vipgrps: new Map(),
    phase1: new Map(),
    phase2: new Map(),
    sessionTtl: buildSessionTtl(ctx, table(idx, "system session-ttl", d), d),
    detectUnknownEsp: valued(
      ctx,
      table(idx, "system settings", d).settings,
      "detect-unknown-esp",
      DEFAULTS.detectUnknownEsp,
      enableDisable,
      "system settings",
    ),
    centralNat: valued(
      ctx,
      table(idx, "system settings", d).settings,
      "central-nat",
      false,
      enableDisable,
      "system settings",
    ),
    ngfwMode: valued(
      ctx,
      table(idx, "system settings", d).settings,
      "ngfw-mode",
      "profile-based",
      oneOf("profile-based", "policy-based"),
      "system settings",
    ),
    ikePort: valued(
      ctx,
      table(idx, "system settings", d).settings,
      "ike-port",
      500,
      (x) => (x === "500" ? 500 : int(1024, 65535)(x)),
      "system settings",
    ),
    ikeNattPort: valued(
      ctx,
      table(idx, "system settings", d).settings,
      "ike-natt-port",
      4500,
      int(1024, 65535),
      "system settings",
    ),
  };

  /** Per name, the diagnostics of addresses built on lookup; gathered in table order by `complete`. */
  const lateAddr: (Map<string, Diagnostic[]> | undefined)[] = [];
  for (const [k, fam, addresses, groups, byName, addrTable, grpTable, f] of [
    [0, 4, v.addresses, v.addrgrps, e4, t.addr, t.grp, a4],
    [1, 6, v.addresses6, v.addrgrps6, e6, t.addr6, t.grp6, a6],
  ] as const) {
    const group = (e: Entry): AddrGroup => {
      const g = buildGroup(e, fam);
      g.members = map(g.members, f, g.fields.member);
      g.excludeMembers = map(g.excludeMembers, f, g.fields["exclude-member"]);
      return g;
    };
    if (byName) {
      const { addr, grp } = byName;
      const late = new Map<string, Diagnostic[]>();
      lateAddr[k] = late;
      lazyKeys(addresses, addr.names, addr.has, (n) => {
        const c = new Ctx([]);
        const a = buildAddress(c, addr.entry(n), fam, interfaces);
        if (c.diagnostics.length > 0) late.set(n, c.diagnostics);
        return a;
      });
      lazyKeys(groups, grp.names, grp.has, (n) => group(grp.entry(n)));
    } else {
      const c = new Ctx(addrBuilt[k]);
      for (const e of addrTable!.entries) addresses.set(e.name, buildAddress(c, e, fam, interfaces));
      for (const e of grpTable!.entries) groups.set(e.name, group(e));
    }
  }
  for (const e of t.svc.entries) v.services.set(e.name, buildService(ctx2, e));
  for (const e of t.svcGrp.entries) {
    v.serviceGroups.set(e.name, {
      name: e.name,
      members: map(list(e, "member"), sv, e.attrs.get("member")?.loc),
      builtin: false,
      loc: e.loc,
      fields: fieldLocs(e),
    });
  }
  for (const e of t.zone.entries) {
    v.zones.set(e.name, { name: e.name, interfaces: list(e, "interface"), loc: e.loc });
  }
  for (const [path, out, fam] of [
    ["firewall local-in-policy", v.localIn, 4],
    ["firewall local-in-policy6", v.localIn6, 6],
  ] as const) {
    table(idx, path, ctx2.diagnostics, ORDERED).entries.forEach((e, i) => {
      const p = buildLocalIn(ctx2, e, i, fam);
      const fa = fam === 4 ? a4 : a6;
      p.intf = map(p.intf, itf, p.fields.intf);
      p.srcaddr = map(p.srcaddr, fa, p.fields.srcaddr);
      p.dstaddr = map(p.dstaddr, fa, p.fields.dstaddr);
      p.service = map(p.service, sv, p.fields.service);
      out.push(p);
    });
  }
  const td = tailCtx.diagnostics;
  for (const e of table(idx, "firewall vip", td).entries) v.vips.set(e.name, buildVip(tailCtx, e));
  for (const e of table(idx, "firewall vipgrp", td).entries)
    v.vipgrps.set(e.name, { name: e.name, members: list(e, "member"), loc: e.loc });
  for (const e of table(idx, "vpn ipsec phase1-interface", td).entries)
    v.phase1.set(e.name, buildPhase1(tailCtx, e));
  for (const e of table(idx, "vpn ipsec phase2-interface", td).entries)
    v.phase2.set(e.name, buildPhase2(tailCtx, e));
  const l2tp = table(idx, "vpn l2tp", td);
  if (l2tp.present) {
    const s = l2tp.settings;
    v.l2tp = {
      status: valued(tailCtx, s, "status", false, enableDisable, "vpn l2tp"),
      enforceIpsec: valued(tailCtx, s, "enforce-ipsec", false, enableDisable, "vpn l2tp"),
      loc: s.loc,
      fields: fieldLocs(s),
    };
  }
  const extra = new Set<string>();
  for (const path of INTERFACE_TABLES) {
    for (const src of [idx, globalIdx]) for (const e of table(src, path, []).entries) extra.add(e.name);
  }
  // Predefined objects the local-in tables name are filled in now; those only forward policies
  // and service groups name are filled in with the forward policies, before anything can miss them.
  const fill = builtinFiller(v);
  fill.services(svcLocal, [...v.localIn, ...v.localIn6]);
  fill.addresses(addrLocal, v.localIn, v.localIn6, []);
  let filled = false;
  const fillRest = (): void => {
    if (filled) return;
    filled = true;
    for (const m of deferred) undeferFill(m);
    const pol = v.policies;
    fill.services(svcRest, pol);
    fill.serviceGroups(svcRest);
    fill.addresses(addrRest, [], [], pol);
  };
  const deferred: Map<string, unknown>[] = [
    deferFill(v.addresses, fillRest, isBuiltinAddressName),
    deferFill(v.addresses6, fillRest, isBuiltinAddressName),
    deferFill(v.services, fillRest, isPredefinedServiceName),
    deferFill(v.serviceGroups, fillRest, isPredefinedServiceName),
  ];
  let complete = false;
  return {
    v,
    buckets: [
      ctx.diagnostics,
      addrBuilt[0],
      addrBuilt[1],
      ctx2.diagnostics,
      pCtx.diagnostics,
      tailCtx.diagnostics,
      svcLocal.diagnostics,
      svcRest.diagnostics,
      addrLocal.diagnostics,
      addrRest.diagnostics,
      refCtx.diagnostics,
    ],
    complete: () => {
      if (complete) return;
      complete = true;
      fillRest();
      for (const m of [v.addresses, v.addresses6, v.addrgrps, v.addrgrps6] as Map<string, unknown>[])
        settleAll(m);
      for (const [k, e] of [e4, e6].entries()) {
        const late = lateAddr[k];
        if (e && late) for (const n of e.addr.names) addrBuilt[k]!.push(...(late.get(n) ?? []));
      }
      checkReferences(refCtx, v, interfaces, extra);
    },
  };
}

const isBuiltinAddressName = (n: string): boolean => n === "all" || n === "none";
const isPredefinedServiceName = (n: string): boolean => {
  const pre = predefinedServices();
  return pre.services.has(n) || pre.groups.has(n);
};

/** The predefined `all`/`none` addresses, when a partial config relies on them. */
function builtinAddress(name: string, family: Family): Address | undefined {
  const loc: Loc = { file: PREDEFINED_FILE, line: 0, col: 0, text: `edit "${name}"` };
  const bits = familyBits(family);
  if (name === "all") {
    return {
      name,
      family,
      type: "ipmask",
      match: { kind: "prefix", prefix: { family, addr: 0n, len: 0 } },
      builtin: true,
      loc,
      fields: {},
    };
  }
  if (name === "none") {
    return {
      name,
      family,
      type: "ipmask",
      match: { kind: "prefix", prefix: { family, addr: 0n, len: bits } },
      builtin: true,
      loc,
      fields: {},
    };
  }
  return undefined;
}

/**
 * Fills in predefined services/groups/addresses referenced but not defined, saying so once each.
 * Called in this order: services named by policies (local-in, then forward), service groups'
 * members, addresses named by policies; the first reference of a name gets the `info`.
 */
function builtinFiller(v: VdomModel): {
  services: (ctx: Ctx, policies: readonly (LocalInPolicy | Policy)[]) => void;
  serviceGroups: (ctx: Ctx) => void;
  addresses: (
    ctx: Ctx,
    localIn: readonly LocalInPolicy[],
    localIn6: readonly LocalInPolicy[],
    policies: readonly Policy[],
  ) => void;
} {
  const pre = predefinedServices();
  const assumed = (ctx: Ctx, loc: Loc, kind: string, name: string): void =>
    ctx.info(loc, `${kind} '${name}' is not defined in the config; using the FortiOS predefined definition`);
  const seen = new Set<string>();
  const wantService = (ctx: Ctx, name: string, loc: Loc): void => {
    if (v.services.has(name) || v.serviceGroups.has(name) || seen.has(name)) return;
    seen.add(name);
    const s = pre.services.get(name);
    const g = pre.groups.get(name);
    if (s) {
      v.services.set(name, s);
      assumed(ctx, loc, "service", name);
    } else if (g) {
      v.serviceGroups.set(name, g);
      assumed(ctx, loc, "service group", name);
      for (const m of g.members) wantService(ctx, m, loc);
    }
  };
  const wantAddr = (ctx: Ctx, name: string, family: Family, loc: Loc): void => {
    const map = family === 4 ? v.addresses : v.addresses6;
    const groups = family === 4 ? v.addrgrps : v.addrgrps6;
    if (map.has(name) || groups.has(name)) return;
    const b = builtinAddress(name, family);
    if (!b) return;
    map.set(name, b);
    assumed(ctx, loc, `firewall address${family === 6 ? "6" : ""}`, name);
  };
  const want = (ctx: Ctx, names: readonly string[], family: Family, loc: Loc): void => {
    for (const a of names) wantAddr(ctx, a, family, loc);
  };
  return {
    services: (ctx, policies) => {
      for (const p of policies) for (const s of p.service) wantService(ctx, s, p.fields.service ?? p.loc);
    },
    serviceGroups: (ctx) => {
      for (const g of [...v.serviceGroups.values()])
        for (const m of g.members) wantService(ctx, m, g.fields.member ?? g.loc);
    },
    addresses: (ctx, localIn, localIn6, policies) => {
      for (const p of localIn) {
        want(ctx, p.srcaddr, 4, p.loc);
        want(ctx, p.dstaddr, 4, p.loc);
      }
      for (const p of localIn6) {
        want(ctx, p.srcaddr, 6, p.loc);
        want(ctx, p.dstaddr, 6, p.loc);
      }
      for (const p of policies) {
        want(ctx, p.srcaddr, 4, p.loc);
        want(ctx, p.dstaddr, 4, p.loc);
        want(ctx, p.srcaddr6, 6, p.loc);
        want(ctx, p.dstaddr6, 6, p.loc);
      }
    },
  };
}

function checkReferences(
  ctx: Ctx,
  v: VdomModel,
  interfaces: ReadonlyMap<string, Interface>,
  extraInterfaces: ReadonlySet<string>,
): void {
  const isIntf = (n: string): boolean =>
    n === "any" ||
    interfaces.has(n) ||
    v.zones.has(n) ||
    v.phase1.has(n) ||
    extraInterfaces.has(n) ||
    n === "virtual-wan-link";
  const isAddr = (n: string, f: Family): boolean =>
    f === 4 ? v.addresses.has(n) || v.addrgrps.has(n) : v.addresses6.has(n) || v.addrgrps6.has(n);
  const isSvc = (n: string): boolean => v.services.has(n) || v.serviceGroups.has(n);
  const missing = (loc: Loc, owner: string, kind: string, name: string): void =>
    ctx.warn(loc, `${owner}: ${kind} '${name}' is not defined`);
  // Checked field by field so a warning points at the line naming the object; the owner's name is
  // only built when something is missing (10,000 policies usually have nothing to report).
  const check = (
    names: readonly string[],
    ok: (n: string) => boolean,
    loc: Loc | undefined,
    fallback: Loc,
    owner: () => string,
    kind: string,
    reported: Set<string>,
  ): void => {
    for (const n of names) {
      if (ok(n) || reported.has(`${kind} ${n}`)) continue;
      reported.add(`${kind} ${n}`);
      missing(loc ?? fallback, owner(), kind, n);
    }
  };
  for (const list of [v.localIn, v.localIn6]) {
    for (const p of list) {
      const owner = () => `local-in-policy${p.family === 6 ? "6" : ""} ${p.id}`;
      const seen = new Set<string>();
      const f = p.fields;
      const addr = (n: string) => isAddr(n, p.family);
      check(p.intf, isIntf, f.intf, p.loc, owner, "interface", seen);
      check(p.srcaddr, addr, f.srcaddr, p.loc, owner, "address", seen);
      check(p.dstaddr, addr, f.dstaddr, p.loc, owner, "address", seen);
      check(p.service, isSvc, f.service, p.loc, owner, "service", seen);
      if (p.internetServiceSrc) continue;
      for (const field of ["srcaddr", "dstaddr", "service", "intf"] as const) {
        if (p[field].length === 0) ctx.warn(p.loc, `${owner()}: no ${field}; the policy matches nothing`);
      }
    }
  }
  const is4 = (n: string) => isAddr(n, 4);
  const is6 = (n: string) => isAddr(n, 6);
  // A forward policy's destination may name a VIP or a VIP group.
  const isDst4 = (n: string) => is4(n) || v.vips.has(n) || v.vipgrps.has(n);
  for (const p of v.policies) {
    const owner = () => `firewall policy ${p.id}`;
    const seen = new Set<string>();
    const f = p.fields;
    check(p.srcintf, isIntf, f.srcintf, p.loc, owner, "interface", seen);
    check(p.dstintf, isIntf, f.dstintf, p.loc, owner, "interface", seen);
    check(p.srcaddr, is4, f.srcaddr, p.loc, owner, "address", seen);
    check(p.dstaddr, isDst4, f.dstaddr, p.loc, owner, "address", seen);
    check(p.srcaddr6, is6, f.srcaddr6, p.loc, owner, "address6", seen);
    check(p.dstaddr6, is6, f.dstaddr6, p.loc, owner, "address6", seen);
    check(p.service, isSvc, f.service, p.loc, owner, "service", seen);
  }
  for (const [fam, groups] of [
    [4, v.addrgrps],
    [6, v.addrgrps6],
  ] as const) {
    const ok = fam === 4 ? is4 : is6;
    for (const g of groups.values()) {
      const owner = () => `firewall addrgrp${fam === 6 ? "6" : ""} '${g.name}'`;
      const seen = new Set<string>();
      check(g.members, ok, g.fields.member, g.loc, owner, "member", seen);
      check(g.excludeMembers, ok, g.fields["exclude-member"], g.loc, owner, "exclude-member", seen);
    }
  }
  for (const g of v.serviceGroups.values()) {
    if (g.builtin) continue;
    check(
      g.members,
      isSvc,
      g.fields.member,
      g.loc,
      () => `firewall service group '${g.name}'`,
      "member",
      new Set(),
    );
  }
  for (const p2 of v.phase2.values()) {
    if (p2.phase1name !== undefined && !v.phase1.has(p2.phase1name)) {
      missing(
        p2.fields.phase1name ?? p2.loc,
        `phase2-interface '${p2.name}'`,
        "phase1-interface",
        p2.phase1name,
      );
    }
  }
  for (const p1 of v.phase1.values()) {
    if (p1.interface !== undefined && !isIntf(p1.interface)) {
      missing(p1.fields.interface ?? p1.loc, `phase1-interface '${p1.name}'`, "interface", p1.interface);
    }
  }
  for (const vip of v.vips.values()) {
    if (vip.extintf !== undefined && !isIntf(vip.extintf)) {
      missing(vip.fields.extintf ?? vip.loc, `firewall vip '${vip.name}'`, "interface", vip.extintf);
    }
  }
}

function parseHeader(tree: ConfigTree): FortiosHeader {
  const h: FortiosHeader = {};
  const cv = tree.header.find((x) => x.key === "config-version")?.value;
  if (cv === undefined) return h;
  h.configVersion = cv;
  const m = /^(.+?)-(\d+\.\d+\.\d+)-FW-build(\d+)/.exec(cv);
  if (m) {
    h.platform = m[1]!;
    h.version = m[2]!;
    h.build = m[3]!;
  }
  return h;
}

/**
 * Builds the typed model. Never throws; everything odd is in `diagnostics` — warnings and `info`
 * only: errors come from the parser. The forward policy table and the reference checks are built
 * on first use (see `buildVdom`); reading `diagnostics` completes the model.
 */
export function buildModel(tree: ConfigTree): FortiosModel {
  const early: Diagnostic[] = [];
  const ctx = new Ctx(early);
  const scopes = collectScopes(tree);
  const interfaces = new Map<string, Interface>();
  for (const e of table(scopes.global, "system interface", early).entries) {
    interfaces.set(e.name, buildInterface(ctx, e, early));
  }
  const global = table(scopes.global, "system global", early).settings;
  const builds: VdomBuild[] = [];
  let diagnostics: Diagnostic[] | undefined;
  const model: FortiosModel = {
    file: tree.file,
    header: parseHeader(tree),
    multiVdom: scopes.multiVdom,
    interfaces,
    udpIdleTimer: valued(
      ctx,
      global,
      "udp-idle-timer",
      DEFAULTS.udpIdleTimer,
      int(1, 86400),
      "system global",
    ),
    vdoms: new Map(),
    get diagnostics(): Diagnostic[] {
      if (diagnostics === undefined) {
        for (const b of builds) b.complete();
        const all = early.concat(...builds.flatMap((b) => b.buckets));
        // Source order reads best; the sort is stable, so same-line diagnostics keep their order.
        all.sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
        diagnostics = all;
      }
      return diagnostics;
    },
    set diagnostics(d: Diagnostic[]) {
      diagnostics = d;
    },
  };
  const hostname = first(global, "hostname");
  if (hostname !== undefined) model.hostname = hostname;
  for (const [name, idx] of scopes.vdoms) {
    const b = buildVdom(name, idx, interfaces, scopes.global);
    builds.push(b);
    model.vdoms.set(name, b.v);
  }
  return model;
}

export interface Loaded {
  parse: ParseResult;
  model: FortiosModel;
}

/** Parse + model in one step; the model is built even when parsing reported errors. */
export function loadFortios(text: string, opts: ParseOptions = {}): Loaded {
  const parse = parseFortios(text, opts);
  return { parse, model: buildModel(parse.tree) };
}

/** JSON for a model: Maps become objects, bigints decimal strings (addresses stay exact). */
export function modelToJSON(model: FortiosModel, space?: number): string {
  return JSON.stringify(
    model,
    (_k, value: unknown) => {
      if (value instanceof Map) return Object.fromEntries(value);
      if (typeof value === "bigint") return value.toString();
      return value;
    },
    space,
  );
}
