/**
 * Name tables iptables resolves at parse time: IP protocols (its built-in list plus the usual
 * /etc/protocols), services (Debian netbase's /etc/services, per protocol), ICMP type names
 * and REJECT types. Built in, so a parse does not depend on the machine it runs on.
 */
import { strtouiFull } from "./cnum.js";
import { SERVICES_TEXT } from "./services.js";

/** Name → number. iptables' own table comes first and wins; then netbase's /etc/protocols. */
const PROTO_ENTRIES: ReadonlyArray<[string, number]> = [
  // xtables_chain_protos
  ["tcp", 6],
  ["sctp", 132],
  ["udp", 17],
  ["udplite", 136],
  ["icmp", 1],
  ["icmpv6", 58],
  ["ipv6-icmp", 58],
  ["esp", 50],
  ["ah", 51],
  ["ipv6-mh", 135],
  ["mh", 135],
  ["all", 0],
  // /etc/protocols (netbase)
  ["ip", 0],
  ["hopopt", 0],
  ["igmp", 2],
  ["ggp", 3],
  ["ipencap", 4],
  ["st", 5],
  ["egp", 8],
  ["igp", 9],
  ["pup", 12],
  ["hmp", 20],
  ["xns-idp", 22],
  ["rdp", 27],
  ["iso-tp4", 29],
  ["dccp", 33],
  ["xtp", 36],
  ["ddp", 37],
  ["idpr-cmtp", 38],
  ["ipv6", 41],
  ["ipv6-route", 43],
  ["ipv6-frag", 44],
  ["idrp", 45],
  ["rsvp", 46],
  ["gre", 47],
  ["skip", 57],
  ["ipv6-nonxt", 59],
  ["ipv6-opts", 60],
  ["rspf", 73],
  ["vmtp", 81],
  ["eigrp", 88],
  ["ospf", 89],
  ["ax.25", 93],
  ["ipip", 94],
  ["etherip", 97],
  ["encap", 98],
  ["pim", 103],
  ["ipcomp", 108],
  ["vrrp", 112],
  ["l2tp", 115],
  ["isis", 124],
  ["fc", 133],
  ["mobility-header", 135],
  ["mpls-in-ip", 137],
  ["manet", 138],
  ["hip", 139],
  ["shim6", 140],
  ["wesp", 141],
  ["rohc", 142],
  ["ethernet", 143],
];

const PROTO_BY_NAME = new Map<string, number>();
for (const [n, v] of PROTO_ENTRIES) if (!PROTO_BY_NAME.has(n)) PROTO_BY_NAME.set(n, v);

/** Names iptables-save prints (its own table first, then /etc/protocols). */
const PROTO_NAME_BY_NUM = new Map<number, string>();
for (const [n, v] of PROTO_ENTRIES) {
  if (v === 0 || n === "icmpv6" || n === "mh") continue; // save prints ipv6-icmp, ipv6-mh
  if (!PROTO_NAME_BY_NUM.has(v)) PROTO_NAME_BY_NUM.set(v, n);
}

/**
 * `-p`: `tcp`, `TCP`, `6`, `0x6`, `all` → number; undefined when unknown. iptables lower-cases the
 * argument, then xtables_parse_protocol reads a number (xtables_strtoui: C notation, blanks, '+') first.
 */
export function protoNumber(text: string): number | undefined {
  // The two names of nearly every rule, without hashing a fresh slice of the line.
  if (text.length === 3) {
    if (text === "tcp") return 6;
    if (text === "udp") return 17;
  }
  // Then the usual lower-case name (the keys are lower case) without a copy.
  const exact = PROTO_BY_NAME.get(text);
  if (exact !== undefined) return exact;
  return strtouiFull(text, 255) ?? PROTO_BY_NAME.get(text.toLowerCase());
}

/** /etc/protocols numbers above 255 (netbase 6.3+), which xtables_parse_protocol returns as they are. */
const WIDE_PROTOS: ReadonlyMap<string, number> = new Map([["mptcp", 262]]);

/** `-p` as iptables reads it, including numbers above 255 (`mptcp` is 262). */
export function protoNumberWide(text: string): number | undefined {
  return protoNumber(text) ?? WIDE_PROTOS.get(text.toLowerCase());
}

/** Aliases of netbase's /etc/protocols (getprotobyname matches them, case-sensitively). */
const PROTO_ALIASES_TEXT =
  "IP 0 HOPOPT 0 ICMP 1 IGMP 2 GGP 3 IP-ENCAP 4 ST 5 TCP 6 EGP 8 IGP 9 PUP 12 UDP 17 HMP 20 XNS-IDP 22 " +
  "RDP 27 ISO-TP4 29 DCCP 33 XTP 36 DDP 37 IDPR-CMTP 38 IPv6 41 IPv6-Route 43 IPv6-Frag 44 IDRP 45 " +
  "RSVP 46 GRE 47 IPSEC-ESP 50 IPSEC-AH 51 SKIP 57 IPv6-ICMP 58 IPv6-NoNxt 59 IPv6-Opts 60 RSPF 73 CPHB 73 " +
  "VMTP 81 EIGRP 88 OSPFIGP 89 AX.25 93 IPIP 94 ETHERIP 97 ENCAP 98 PIM 103 IPCOMP 108 VRRP 112 " +
  "L2TP 115 ISIS 124 SCTP 132 FC 133 Mobility-Header 135 UDPLite 136 MPLS-in-IP 137 HIP 139 " +
  "Shim6 140 WESP 141 ROHC 142 Ethernet 143 MPTCP 262";
let protoAliases: Map<string, number> | undefined;

function protoAlias(text: string): number | undefined {
  if (!protoAliases) {
    protoAliases = new Map();
    const w = PROTO_ALIASES_TEXT.split(" ");
    for (let i = 0; i < w.length; i += 2) protoAliases.set(w[i]!, Number(w[i + 1]));
  }
  return protoAliases.get(text);
}

/**
 * XTTYPE_PROTOCOL options (conntrack `--ctproto`, policy `--proto`): xtables_parse_protocol on the text
 * as written, so names are case-sensitive (`TCP` is an /etc/protocols alias, `Tcp` is nothing).
 */
export function protoNumberCased(text: string): number | undefined {
  return strtouiFull(text, 255) ?? PROTO_BY_NAME.get(text) ?? WIDE_PROTOS.get(text) ?? protoAlias(text);
}

/**
 * IPv6 extension headers legacy ip6tables' `-p` never sees (ip6_packet_match looks past them with
 * ipv6_find_hdr); iptables-nft's `meta l4proto` stops at AH (IP6_FH_F_AUTH), so there `-p ah`
 * matches AH packets. ip6tables warns for both ("never matched protocol").
 */
export function ip6SkippedHeader(num: number): boolean {
  return num === 43 || num === 44 || num === 51 || num === 60;
}

/** The name iptables-save uses for a protocol number (`ipv6-icmp` for 58), or the number. */
export function protoName(num: number): string {
  return PROTO_NAME_BY_NUM.get(num) ?? String(num);
}

export const IPPROTO = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  DCCP: 33,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  MH: 135,
  UDPLITE: 136,
  SCTP: 132,
} as const;

/** A protocol whose ports have service names in /etc/services. */
export type ServiceProto = "tcp" | "udp" | "dccp" | "udplite" | "sctp";

let services: Map<string, Map<string, number>> | undefined;

/** /etc/services (Debian netbase): name → protocol → port, the first entry per protocol as libc's. */
function serviceTable(): Map<string, Map<string, number>> {
  if (services) return services;
  services = new Map();
  for (const line of SERVICES_TEXT.split("\n")) {
    const [name, ...entries] = line.split(" ");
    const byProto = new Map<string, number>();
    for (const e of entries) {
      const slash = e.indexOf("/");
      byProto.set(e.slice(slash + 1), Number(e.slice(0, slash)));
    }
    services.set(name!, byProto);
  }
  return services;
}

// getaddrinfo without hints tries the protocols in this order (glibc's gaih_inet_typeproto).
const GETADDRINFO_ORDER: readonly ServiceProto[] = ["tcp", "udp", "dccp", "udplite", "sctp"];

/** getservbyname(name, proto): the port, or undefined; `proto` null means any protocol. */
export function serviceByName(name: string, proto: ServiceProto | null): number | undefined {
  const byProto = serviceTable().get(name);
  if (!byProto) return undefined;
  if (proto) return byProto.get(proto);
  for (const p of GETADDRINFO_ORDER) {
    const port = byProto.get(p);
    if (port !== undefined) return port;
  }
  return undefined;
}

/**
 * How an iptables extension reads one port (iptables 1.8.9, checked against the binary):
 * - `xtables`: xtables_parse_port(text, proto) — strtoumax base 0 (octal `026`, hex `0x16`, `+`) within
 *   0..65535, else getservbyname(text, proto): tcp, sctp, multiport (with the rule's protocol), and the
 *   NAT targets' ports (any protocol);
 * - `getaddrinfo`: XTTYPE_PORT/PORTRC — a decimal number truncated to 16 bits (`70000` is 4464, `026`
 *   is 26), else a service name of any protocol: udp, dccp, conntrack's `--ct*port`.
 */
export type PortSyntax = { kind: "xtables"; proto: ServiceProto | null } | { kind: "getaddrinfo" };

export const XTABLES_ANY: PortSyntax = { kind: "xtables", proto: null };

/** A port number or service name → port; undefined when iptables would refuse it. */
export function servicePort(text: string, syntax: PortSyntax = XTABLES_ANY): number | undefined {
  // Fast path: 1-5 decimal digits without a leading zero (or "0"): the same in both syntaxes.
  const len = text.length;
  if (len > 0 && len <= 5 && (text.charCodeAt(0) !== 48 || len === 1)) {
    let v = 0;
    let i = 0;
    for (; i < len; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (i === len && v <= 65535) return v;
  }
  // strtoul skips leading white space and takes a '+'.
  const trimmed = text.trimStart();
  const digits = trimmed.startsWith("+") ? trimmed.slice(1) : trimmed;
  if (syntax.kind === "getaddrinfo") {
    if (/^\d+$/.test(digits)) {
      // strtoul saturates at ULONG_MAX; htons keeps the low 16 bits.
      const v = BigInt(digits);
      return v >= 2n ** 64n ? 65535 : Number(v % 65536n);
    }
    return serviceByName(text, null);
  }
  // xtables_parse_port: the whole text as a C number (octal `026`, hex `0x16`), else a service.
  const n = strtouiFull(text, 65535);
  if (n !== undefined) return n;
  return serviceByName(text, syntax.proto);
}

/** ICMP type names (libipt_icmp): name → [type, codeLo, codeHi]. */
const ICMP_TYPES: ReadonlyArray<[string, number, number, number]> = [
  ["any", 255, 0, 255],
  ["echo-reply", 0, 0, 255],
  ["pong", 0, 0, 255],
  ["destination-unreachable", 3, 0, 255],
  ["network-unreachable", 3, 0, 0],
  ["host-unreachable", 3, 1, 1],
  ["protocol-unreachable", 3, 2, 2],
  ["port-unreachable", 3, 3, 3],
  ["fragmentation-needed", 3, 4, 4],
  ["source-route-failed", 3, 5, 5],
  ["network-unknown", 3, 6, 6],
  ["host-unknown", 3, 7, 7],
  ["network-prohibited", 3, 9, 9],
  ["host-prohibited", 3, 10, 10],
  ["TOS-network-unreachable", 3, 11, 11],
  ["TOS-host-unreachable", 3, 12, 12],
  ["communication-prohibited", 3, 13, 13],
  ["host-precedence-violation", 3, 14, 14],
  ["precedence-cutoff", 3, 15, 15],
  ["source-quench", 4, 0, 255],
  ["redirect", 5, 0, 255],
  ["network-redirect", 5, 0, 0],
  ["host-redirect", 5, 1, 1],
  ["TOS-network-redirect", 5, 2, 2],
  ["TOS-host-redirect", 5, 3, 3],
  ["echo-request", 8, 0, 255],
  ["ping", 8, 0, 255],
  ["router-advertisement", 9, 0, 255],
  ["router-solicitation", 10, 0, 255],
  ["time-exceeded", 11, 0, 255],
  ["ttl-exceeded", 11, 0, 255],
  ["ttl-zero-during-transit", 11, 0, 0],
  ["ttl-zero-during-reassembly", 11, 1, 1],
  ["parameter-problem", 12, 0, 255],
  ["ip-header-bad", 12, 0, 0],
  ["required-option-missing", 12, 1, 1],
  ["timestamp-request", 13, 0, 255],
  ["timestamp-reply", 14, 0, 255],
  ["address-mask-request", 17, 0, 255],
  ["address-mask-reply", 18, 0, 255],
];

/** ICMPv6 type names (libip6t_icmp6). */
const ICMP6_TYPES: ReadonlyArray<[string, number, number, number]> = [
  ["destination-unreachable", 1, 0, 255],
  ["no-route", 1, 0, 0],
  ["communication-prohibited", 1, 1, 1],
  ["beyond-scope", 1, 2, 2],
  ["address-unreachable", 1, 3, 3],
  ["port-unreachable", 1, 4, 4],
  ["failed-policy", 1, 5, 5],
  ["reject-route", 1, 6, 6],
  ["packet-too-big", 2, 0, 255],
  ["time-exceeded", 3, 0, 255],
  ["ttl-exceeded", 3, 0, 255],
  ["ttl-zero-during-transit", 3, 0, 0],
  ["ttl-zero-during-reassembly", 3, 1, 1],
  ["parameter-problem", 4, 0, 255],
  ["bad-header", 4, 0, 0],
  ["unknown-header-type", 4, 1, 1],
  ["unknown-option", 4, 2, 2],
  ["echo-request", 128, 0, 255],
  ["ping", 128, 0, 255],
  ["echo-reply", 129, 0, 255],
  ["pong", 129, 0, 255],
  ["mld-listener-query", 130, 0, 255],
  ["mld-listener-report", 131, 0, 255],
  ["mld-listener-done", 132, 0, 255],
  ["mld-listener-reduction", 132, 0, 255],
  ["router-solicitation", 133, 0, 255],
  ["router-advertisement", 134, 0, 255],
  ["neighbour-solicitation", 135, 0, 255],
  ["neighbor-solicitation", 135, 0, 255],
  ["neighbour-advertisement", 136, 0, 255],
  ["neighbor-advertisement", 136, 0, 255],
  ["redirect", 137, 0, 255],
];

export interface IcmpSpec {
  any: boolean;
  type: number;
  codeLo: number;
  codeHi: number;
}

/**
 * `8`, `3/4`, `echo-request` → type and code range. Names are matched case-insensitively and by
 * unambiguous prefix, as libipt_icmp does; numbers must be 0..255.
 */
export function parseIcmpType(text: string, v6: boolean): IcmpSpec | undefined {
  const table = v6 ? ICMP6_TYPES : ICMP_TYPES;
  const lower = text.toLowerCase();
  const exact = table.find(([n]) => n.toLowerCase() === lower);
  const hits = exact ? [exact] : table.filter(([n]) => n.toLowerCase().startsWith(lower));
  const distinct = new Set(hits.map(([, t, lo, hi]) => `${t}/${lo}/${hi}`));
  if (hits.length > 0 && distinct.size === 1) {
    const [n, type, codeLo, codeHi] = hits[0]!;
    return { any: n === "any", type, codeLo, codeHi };
  }
  // Numbers in C notation (`010` is 8, `0x8` is 8, `08` is refused), as libxt_icmp reads them.
  const slash = text.indexOf("/");
  const type = strtouiFull(slash < 0 ? text : text.slice(0, slash), 255);
  if (type === undefined) return undefined;
  const code = slash < 0 ? undefined : strtouiFull(text.slice(slash + 1), 255);
  if (slash >= 0 && code === undefined) return undefined;
  // IPv4 type 255 is the kernel's wildcard (icmp_type_code_match: any type, any code); not ICMPv6's.
  if (type === 255 && !v6) return { any: true, type: 255, codeLo: 0, codeHi: 255 };
  return code === undefined
    ? { any: false, type, codeLo: 0, codeHi: 255 }
    : { any: false, type, codeLo: code, codeHi: code };
}

/** As iptables-save prints an ICMP match: numbers (`8`, `3/4`), except `any`. */
export function formatIcmpType(spec: IcmpSpec): string {
  if (spec.any) return "any";
  return spec.codeLo === 0 && spec.codeHi === 255 ? String(spec.type) : `${spec.type}/${spec.codeLo}`;
}

/** REJECT --reject-with: canonical name for each accepted spelling. */
const REJECT4: ReadonlyArray<[string, string]> = [
  ["icmp-net-unreachable", "net-unreach"],
  ["icmp-host-unreachable", "host-unreach"],
  ["icmp-proto-unreachable", "proto-unreach"],
  ["icmp-port-unreachable", "port-unreach"],
  ["icmp-net-prohibited", "net-prohib"],
  ["icmp-host-prohibited", "host-prohib"],
  ["tcp-reset", "tcp-rst"],
  ["icmp-admin-prohibited", "admin-prohib"],
];
const REJECT6: ReadonlyArray<[string, string]> = [
  ["icmp6-no-route", "no-route"],
  ["icmp6-adm-prohibited", "adm-prohibited"],
  ["icmp6-addr-unreachable", "addr-unreach"],
  ["icmp6-port-unreachable", "port-unreach"],
  ["tcp-reset", "tcp-rst"],
  ["icmp6-policy-fail", "policy-fail"],
  ["icmp6-reject-route", "reject-route"],
];

export function rejectWith(text: string, v6: boolean): string | undefined {
  const lower = text.toLowerCase();
  for (const [name, alias] of v6 ? REJECT6 : REJECT4) if (lower === name || lower === alias) return name;
  return undefined;
}

export const defaultRejectWith = (v6: boolean): string =>
  v6 ? "icmp6-port-unreachable" : "icmp-port-unreachable";

/** syslog levels accepted by LOG --log-level. */
export const LOG_LEVELS: Readonly<Record<string, number>> = {
  emerg: 0,
  panic: 0,
  alert: 1,
  crit: 2,
  err: 3,
  error: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};
