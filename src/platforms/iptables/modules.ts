/**
 * Match extensions (`-m name`): for each, the options iptables accepts (name, argument count,
 * whether `!` may precede it) and a builder from the raw options to a typed `Match`.
 *
 * Three classes:
 * - typed: the engine evaluates them exactly (tcp, conntrack, policy, …);
 * - opaque "runtime": the result depends on traffic history or time (limit, recent, time, …);
 * - opaque "unmodelled": header fields or host state the engine does not model (string, u32, …).
 * The option tables of opaque modules still matter: they tell the parser how many arguments
 * each option takes, so a rule with `-m hashlimit … -j LOG` is split correctly.
 */
import type { Family } from "../../model/address.js";
import { strtouiFull } from "./cnum.js";
import {
  ADDR_TYPES,
  type AddrType,
  CT_STATES,
  CT_STATUSES,
  type CtState,
  type CtStatus,
  type IfaceCond,
  type Match,
  type Net,
  type PolicyElement,
  type PortCond,
  type ProtoCond,
  type RawOption,
} from "./model.js";
import { IPPROTO, type PortSyntax, parseIcmpType, protoNumberCased, type ServiceProto } from "./names.js";
import {
  parseAddrRange,
  parseHostmask4,
  parseMarkMask,
  parseMultiport,
  parseNet,
  parsePlen,
  parsePlenMask,
  parsePortRange,
  parseUintRange,
  type Result,
} from "./values.js";

export interface OptSpec {
  /** Number of arguments; "optional": one argument if the next word is not an option. */
  args: 0 | 1 | 2 | "optional";
  inv?: boolean;
}

/** Value syntax checks for options of modules and targets kept opaque. */
export type ValueCheck =
  | { kind: "uint"; max: number }
  | { kind: "plen" }
  | { kind: "plenmask" }
  | { kind: "rate" }
  | { kind: "byterate" }
  | { kind: "limit-rate" };

const RATE = /^\d+(\/(s|se|sec|seco|secon|second|m|mi|min|minu|minut|minute|h|ho|hou|hour|d|da|day))?$/i;
const BYTERATE =
  /^\d+([kmg]?b)?(\/(s|se|sec|seco|secon|second|m|mi|min|minu|minut|minute|h|ho|hou|hour|d|da|day))?$/i;

/** Checks option values of an opaque module or target; errors point at the value. */
export function checkValues(
  owner: string,
  values: Readonly<Record<string, ValueCheck>> | undefined,
  opts: readonly RawOption[],
  ctx: BuildCtx,
): void {
  if (!values) return;
  for (const o of opts) {
    const c = values[o.name];
    const a = o.args[0];
    if (!c || a === undefined) continue;
    if (c.kind === "limit-rate") {
      const r = limitRate(a);
      if (r === "too fast")
        ctx.error(o.argCol, `${owner}: ${o.name}: rate too fast (at most 10000/second), got '${a}'`);
      if (r !== "too fast" && r !== "ok")
        ctx.error(o.argCol, `${owner}: ${o.name}: expected a rate like 10/second, got '${a}'`);
      continue;
    }
    if (c.kind === "plen") {
      if (parsePlen(a, ctx.family) === null) {
        const what = `a prefix length 0..${ctx.family === 4 ? 32 : 128} or a contiguous netmask`;
        ctx.error(o.argCol, `${owner}: ${o.name}: expected ${what}, got '${a}'`);
      }
      continue;
    }
    if (c.kind === "plenmask") {
      const r = parsePlenMask(a, ctx.family);
      if (!r.ok) ctx.error(o.argCol, `${owner}: ${o.name}: expected ${r.error}`);
      else if (r.warning) ctx.warn(o.argCol, `${owner}: ${o.name}: ${r.warning}`);
      continue;
    }
    const bad =
      c.kind === "uint"
        ? strtouiFull(a, c.max) === undefined
        : !(c.kind === "rate" ? RATE : BYTERATE).test(a);
    if (bad) {
      const what = c.kind === "uint" ? `a number 0..${c.max}` : "a rate like 10/second";
      ctx.error(o.argCol, `${owner}: ${o.name}: expected ${what}, got '${a}'`);
    }
  }
}

/**
 * libxt_limit's parse_rate: the unit after '/' a prefix of second/minute/hour/day (any case); the count
 * is atoi() (leading blanks, sign, digits up to anything else), non-zero; 10000 * seconds-per-unit /
 * count (uint32 arithmetic) must be non-zero, else "Rate too fast".
 */
function limitRate(text: string): "ok" | "bad" | "too fast" {
  const slash = text.indexOf("/");
  let perUnit = 1;
  if (slash >= 0) {
    const unit = text.slice(slash + 1).toLowerCase();
    if (unit === "") return "bad";
    const k = ["second", "minute", "hour", "day"].findIndex((u) => u.startsWith(unit));
    if (k < 0) return "bad";
    perUnit = [1, 60, 3600, 86400][k]!;
  }
  const count = Number(BigInt.asUintN(32, atoi(text)));
  if (count === 0) return "bad";
  return Math.floor((10000 * perUnit) / count) === 0 ? "too fast" : "ok";
}

/** C atoi as glibc has it: (int) strtol(s, NULL, 10), strtol saturating at the long range. */
function atoi(text: string): bigint {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(text)!;
  let v = m[2] ? BigInt(m[2]) : 0n;
  if (m[1] === "-") v = -v;
  const max = (1n << 63n) - 1n;
  v = v > max ? max : v < -max - 1n ? -max - 1n : v;
  return BigInt.asIntN(32, v);
}

export interface ModuleInstance {
  name: string;
  col: number;
  opts: RawOption[];
}

export interface BuildCtx {
  family: Family;
  /** The rule's `-p`, known when matches are built (iptables checks it the same way). */
  proto: ProtoCond | null;
  error(col: number, message: string): void;
  warn(col: number, message: string): void;
  /** Records that part of the rule cannot be evaluated exactly. */
  unknown(col: number, what: string, reason: string): void;
}

export interface ModuleDef {
  name: string;
  /** Only loadable by iptables (4) or ip6tables (6). */
  family?: Family;
  options: Readonly<Record<string, OptSpec>>;
  /** Alternative spellings → canonical option name. */
  aliases?: Readonly<Record<string, string>>;
  /** Opaque modules: why the engine cannot decide them. */
  opaque?: { why: "runtime" | "unmodelled"; reason: string };
  /** Opaque modules: each inner list needs at least one of its options (as iptables checks). */
  requires?: ReadonlyArray<readonly string[]>;
  /** Opaque modules: value syntax of some options, checked as iptables does. */
  values?: Readonly<Record<string, ValueCheck>>;
  build?(m: ModuleInstance, ctx: BuildCtx): Match | null;
}

/** Name or alias → canonical name and spec; built once per definition (option lookup is hot). */
export type OptionLookup = Map<string, { canonical: string; spec: OptSpec }>;
const LOOKUPS = new WeakMap<object, OptionLookup>();

export function optionLookup(def: {
  options: Readonly<Record<string, OptSpec>>;
  aliases?: Readonly<Record<string, string>>;
}): OptionLookup {
  let m = LOOKUPS.get(def);
  if (!m) {
    m = new Map();
    for (const [k, spec] of Object.entries(def.options)) m.set(k, { canonical: k, spec });
    for (const [k, c] of Object.entries(def.aliases ?? {})) m.set(k, { canonical: c, spec: def.options[c]! });
    LOOKUPS.set(def, m);
  }
  return m;
}

const A0: OptSpec = { args: 0 };
const A0i: OptSpec = { args: 0, inv: true };
const A1: OptSpec = { args: 1 };
const A1i: OptSpec = { args: 1, inv: true };
const A2i: OptSpec = { args: 2, inv: true };
const AOpt: OptSpec = { args: "optional" };

/** Reports a second occurrence of an option; true for the first (option lists are short: no Set). */
function firstTime(m: ModuleInstance, o: RawOption, ctx: BuildCtx): boolean {
  for (const p of m.opts) {
    if (p === o) return true;
    if (p.name === o.name) {
      ctx.error(o.col, `${m.name}: only one ${o.name} allowed`);
      return false;
    }
  }
  return true;
}

function take<T>(r: Result<T>, o: RawOption, ctx: BuildCtx): T | undefined {
  if (!r.ok) {
    ctx.error(o.argCol, `${o.name}: expected ${r.error}`);
    return undefined;
  }
  if (r.warning) ctx.warn(o.col, r.warning);
  return r.value;
}

function requireProto(m: ModuleInstance, ctx: BuildCtx, allowed: number[], label: string): void {
  const p = ctx.proto;
  if (!p || p.invert || !allowed.includes(p.num)) {
    ctx.error(m.col, `${m.name} match requires ${label}${p?.invert ? " (not inverted)" : ""}`);
  }
}

/**
 * `--sport`/`--dport`-style range. tcp and sctp refuse min > max ("invalid portrange");
 * udp, dccp and conntrack accept it, and the condition then never holds.
 */
function portCond(o: RawOption, ctx: BuildCtx, strict: boolean, syntax: PortSyntax): PortCond | null {
  const r = take(parsePortRange(o.args[0]!, syntax), o, ctx);
  if (!r) return null;
  if (r.lo > r.hi) {
    if (strict) {
      ctx.error(o.col, `${o.name}: invalid portrange (min > max): '${o.args[0]}'`);
      return null;
    }
    ctx.warn(
      o.col,
      `${o.name} ${o.args[0]}: min > max, so this condition never holds${o.invert ? " (always holds, inverted)" : ""}`,
    );
  }
  return { range: r, invert: o.invert };
}

/** An xtables uint range option (`--length`, `--ctexpire`, `--fragid`, SPIs); a reversed one never holds. */
function uintRange(o: RawOption, ctx: BuildCtx, max: number): { lo: number; hi: number } | null {
  const r = take(parseUintRange(o.args[0]!, max), o, ctx);
  if (r && r.lo > r.hi)
    ctx.warn(
      o.col,
      `${o.name} ${o.args[0]}: min > max, so this condition never holds${o.invert ? " (always holds, inverted)" : ""}`,
    );
  return r ?? null;
}

/**
 * An address[/mask] of conntrack's `--ctorig*`/`--ctrepl*` and policy's `--tunnel-*` (XTTYPE_HOSTMASK).
 * Unlike `-s`/`-d`, a non-contiguous mask is not kept: iptables loads the bare address as a host; and
 * an IPv4 address goes through getaddrinfo (`parseHostmask4`).
 */
function netArg(o: RawOption, ctx: BuildCtx): { net: Net; invert: boolean } | null {
  const text = o.args[0]!;
  if (ctx.family === 4) {
    const r = take(parseHostmask4(text), o, ctx);
    if (!r) return null;
    if (r.host)
      ctx.warn(o.argCol, `${o.name} ${text}: iptables reads a non-contiguous mask here as a host (/32)`);
    return { net: r.net, invert: o.invert };
  }
  const parsed = parseNet(text, ctx.family, { allowName: false });
  if (parsed.ok && parsed.value.kind === "net" && parsed.value.len === null) {
    const host = take(parseNet(text.slice(0, text.indexOf("/")), ctx.family, { allowName: false }), o, ctx);
    if (host?.kind !== "net") return null;
    ctx.warn(o.argCol, `${o.name} ${text}: iptables reads a non-contiguous mask here as a host (/128)`);
    return { net: host, invert: o.invert };
  }
  const r = take(parsed, o, ctx);
  return r && r.kind === "net" ? { net: r, invert: o.invert } : null;
}

/** Comma list of upper-case keywords, case-insensitive as in libxt_conntrack / libxt_addrtype. */
function keywordList<T extends string>(o: RawOption, ctx: BuildCtx, allowed: readonly T[]): T[] | null {
  const out: T[] = [];
  for (const w of o.args[0]!.split(",")) {
    const up = w.toUpperCase();
    // libxt_conntrack / libxt_state compare with strncasecmp: a prefix picks the first keyword.
    const k =
      allowed.find((a) => a === up) ?? (up.length > 0 ? allowed.find((a) => a.startsWith(up)) : undefined);
    if (k && k !== up) ctx.warn(o.argCol, `${o.name}: '${w}' is read by iptables as ${k}`);
    if (!k) {
      ctx.error(o.argCol, `${o.name}: expected one of ${allowed.join(", ")}, got '${w}'`);
      return null;
    }
    if (!out.includes(k)) out.push(k);
  }
  // Canonical order (the order iptables-save prints), so equal sets compare equal.
  return allowed.filter((a) => out.includes(a));
}

const TCP_FLAGS: ReadonlyArray<[string, number]> = [
  ["FIN", 0x01],
  ["SYN", 0x02],
  ["RST", 0x04],
  ["PSH", 0x08],
  ["ACK", 0x10],
  ["URG", 0x20],
  ["ALL", 0x3f],
  ["NONE", 0],
];

/** libxt_tcp's parse_tcp_flag: a strtok list, so empty items are skipped (`SYN,` is SYN, `,` is none). */
function tcpFlags(text: string): number | undefined {
  let v = 0;
  for (const w of text.split(",")) {
    if (w === "") continue;
    const f = TCP_FLAGS.find(([n]) => n === w.toUpperCase());
    if (!f) return undefined;
    v |= f[1];
  }
  return v;
}

export function formatTcpFlags(v: number): string {
  const names: string[] = [];
  for (const [n, bit] of TCP_FLAGS.slice(0, 6)) if (v & bit) names.push(n);
  return names.length === 0 ? "NONE" : names.join(",");
}

/**
 * xtables' XTTYPE_ETHERMAC: six ':'-separated strtoul(…, 16) fields of at most two characters each, so a
 * field may be empty (0), one digit, or a blank or sign and one digit (`-1` is ff). Lower-case `xx:…`.
 */
function etherMac(text: string): string | undefined {
  const fields = text.split(":");
  if (fields.length !== 6) return undefined;
  const out: string[] = [];
  for (const f of fields) {
    const d = /^(?:([ \t\n\v\f\r+-]?)([0-9a-fA-F])|([0-9a-fA-F]{2})|)$/.exec(f);
    if (!d) return undefined;
    let v =
      d[3] !== undefined ? Number.parseInt(d[3], 16) : d[2] !== undefined ? Number.parseInt(d[2], 16) : 0;
    if (d[1] === "-") v = (256 - v) & 255;
    out.push(v.toString(16).padStart(2, "0"));
  }
  return out.join(":");
}

const IPV6_NO_ADDRTYPE = new Set<AddrType>([
  "BROADCAST",
  "BLACKHOLE",
  "PROHIBIT",
  "THROW",
  "NAT",
  "XRESOLVE",
]);

const GETADDRINFO: PortSyntax = { kind: "getaddrinfo" };
const PORT_PROTO_NAMES = new Map<number, ServiceProto>([
  [IPPROTO.TCP, "tcp"],
  [IPPROTO.UDP, "udp"],
  [IPPROTO.UDPLITE, "udplite"],
  [IPPROTO.SCTP, "sctp"],
  [IPPROTO.DCCP, "dccp"],
]);

const PORTS_OPTS = {
  "--sport": A1i,
  "--dport": A1i,
} as const;
const PORTS_ALIASES = { "--source-port": "--sport", "--destination-port": "--dport" } as const;

function buildPorts(m: ModuleInstance, ctx: BuildCtx, extra?: (o: RawOption) => boolean) {
  let sport: PortCond | null = null;
  let dport: PortCond | null = null;
  // libxt_tcp/libxt_sctp parse with xtables_parse_port; udp and dccp use the XTTYPE_PORTRC option type.
  const strict = m.name === "tcp" || m.name === "sctp";
  const syntax: PortSyntax = strict ? { kind: "xtables", proto: m.name as ServiceProto } : GETADDRINFO;
  for (const o of m.opts) {
    if (!firstTime(m, o, ctx)) continue;
    if (o.name === "--sport") sport = portCond(o, ctx, strict, syntax);
    else if (o.name === "--dport") dport = portCond(o, ctx, strict, syntax);
    else extra?.(o);
  }
  return { sport, dport };
}

const POLICY_ELEMENT_OPTS = new Set([
  "--reqid",
  "--spi",
  "--proto",
  "--mode",
  "--tunnel-src",
  "--tunnel-dst",
]);

function emptyElement(): PolicyElement {
  return { reqid: null, spi: null, proto: null, mode: null, tunnelSrc: null, tunnelDst: null };
}

const DEFS: ModuleDef[] = [
  {
    name: "tcp",
    options: { ...PORTS_OPTS, "--tcp-flags": A2i, "--syn": A0i, "--tcp-option": A1i },
    aliases: PORTS_ALIASES,
    build(m, ctx) {
      requireProto(m, ctx, [IPPROTO.TCP], "'-p tcp'");
      let flags: { mask: number; comp: number; invert: boolean } | null = null;
      let option: { num: number; invert: boolean } | null = null;
      const { sport, dport } = buildPorts(m, ctx, (o) => {
        if (o.name === "--tcp-flags" || o.name === "--syn") {
          if (flags) {
            ctx.error(o.col, "tcp: only one of --tcp-flags / --syn allowed");
            return true;
          }
          if (o.name === "--syn") flags = { mask: 0x17, comp: 0x02, invert: o.invert };
          else {
            const mask = tcpFlags(o.args[0]!);
            const comp = tcpFlags(o.args[1]!);
            if (mask === undefined || comp === undefined) {
              ctx.error(
                o.argCol,
                `--tcp-flags: expected flag lists of ${TCP_FLAGS.map((f) => f[0]).join(",")}`,
              );
            } else {
              flags = { mask, comp, invert: o.invert };
              if (mask === 0 && comp !== 0)
                ctx.warn(
                  o.col,
                  `--tcp-flags ${o.args[0]} ${o.args[1]}: no flag is tested, so the comparison never holds in xt_tcp (iptables-legacy); iptables-nft drops the condition`,
                );
            }
          }
        } else if (o.name === "--tcp-option") {
          // parse_tcp_option: xtables_strtoui within 1..255.
          const n = strtouiFull(o.args[0]!, 255);
          if (n === undefined || n === 0)
            ctx.error(o.argCol, `--tcp-option: expected a number 1..255, got '${o.args[0]}'`);
          else option = { num: n, invert: o.invert };
        }
        return true;
      });
      return { kind: "tcp", col: m.col, sport, dport, flags, option };
    },
  },
  // There is no udplite match in iptables userspace (only multiport knows UDP-Lite).
  {
    name: "udp",
    options: PORTS_OPTS,
    aliases: PORTS_ALIASES,
    build(m, ctx) {
      requireProto(m, ctx, [IPPROTO.UDP], "'-p udp'");
      const { sport, dport } = buildPorts(m, ctx);
      return { kind: "udp", col: m.col, sport, dport };
    },
  },
  {
    name: "sctp",
    options: { ...PORTS_OPTS, "--chunk-types": A2i },
    aliases: PORTS_ALIASES,
    build(m, ctx) {
      requireProto(m, ctx, [IPPROTO.SCTP], "'-p sctp'");
      let chunkTypes: RawOption | null = null;
      const { sport, dport } = buildPorts(m, ctx, (o) => {
        chunkTypes = o;
        ctx.unknown(o.col, "--chunk-types", "SCTP chunk types are not modelled");
        return true;
      });
      return { kind: "sctp", col: m.col, sport, dport, chunkTypes };
    },
  },
  {
    name: "dccp",
    options: { ...PORTS_OPTS, "--dccp-types": A1i, "--dccp-option": A1i },
    aliases: PORTS_ALIASES,
    build(m, ctx) {
      requireProto(m, ctx, [IPPROTO.DCCP], "'-p dccp'");
      const other: RawOption[] = [];
      const { sport, dport } = buildPorts(m, ctx, (o) => {
        other.push(o);
        ctx.unknown(o.col, o.name, "DCCP types and options are not modelled");
        return true;
      });
      return { kind: "dccp", col: m.col, sport, dport, other };
    },
  },
  {
    name: "multiport",
    options: { "--sports": A1i, "--dports": A1i, "--ports": A1i },
    aliases: { "--source-ports": "--sports", "--destination-ports": "--dports" },
    build(m, ctx) {
      const p = ctx.proto;
      const ok: number[] = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.UDPLITE, IPPROTO.SCTP, IPPROTO.DCCP];
      if (!p || p.invert || !ok.includes(p.num)) {
        ctx.error(
          m.col,
          "multiport needs '-p tcp', '-p udp', '-p udplite', '-p sctp' or '-p dccp' (not inverted)",
        );
      }
      if (m.opts.length !== 1) {
        ctx.error(m.col, "multiport: expected exactly one of --sports, --dports, --ports");
        if (m.opts.length === 0) return null;
      }
      const o = m.opts[0]!;
      const ranges = take(
        parseMultiport(o.args[0]!, p ? (PORT_PROTO_NAMES.get(p.num) ?? null) : null),
        o,
        ctx,
      );
      if (!ranges) return null;
      const dir = o.name === "--sports" ? "src" : o.name === "--dports" ? "dst" : "any";
      return { kind: "multiport", col: m.col, dir, ranges, invert: o.invert };
    },
  },
  {
    name: "conntrack",
    options: {
      "--ctstate": A1i,
      "--ctproto": A1i,
      "--ctorigsrc": A1i,
      "--ctorigdst": A1i,
      "--ctreplsrc": A1i,
      "--ctrepldst": A1i,
      "--ctorigsrcport": A1i,
      "--ctorigdstport": A1i,
      "--ctreplsrcport": A1i,
      "--ctrepldstport": A1i,
      "--ctstatus": A1i,
      "--ctexpire": A1i,
      "--ctdir": A1,
    },
    build(m, ctx) {
      const r: Extract<Match, { kind: "conntrack" }> = {
        kind: "conntrack",
        col: m.col,
        state: null,
        proto: null,
        origSrc: null,
        origDst: null,
        replSrc: null,
        replDst: null,
        origSrcPort: null,
        origDstPort: null,
        replSrcPort: null,
        replDstPort: null,
        status: null,
        expire: null,
        dir: null,
      };
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        const a = o.args[0]!;
        switch (o.name) {
          case "--ctstate": {
            const v = keywordList<CtState>(o, ctx, CT_STATES);
            if (v) r.state = { values: v, invert: o.invert };
            break;
          }
          case "--ctproto": {
            const n = protoNumberCased(a);
            if (n === undefined)
              ctx.error(
                o.argCol,
                `--ctproto: expected a protocol number or name (case-sensitive), got '${a}'`,
              );
            else r.proto = { num: n & 255, invert: o.invert }; // a u8 field: mptcp (262) is 6
            break;
          }
          case "--ctorigsrc":
            r.origSrc = netArg(o, ctx);
            break;
          case "--ctorigdst":
            r.origDst = netArg(o, ctx);
            break;
          case "--ctreplsrc":
            r.replSrc = netArg(o, ctx);
            break;
          case "--ctrepldst":
            r.replDst = netArg(o, ctx);
            break;
          case "--ctorigsrcport":
            r.origSrcPort = portCond(o, ctx, false, GETADDRINFO);
            break;
          case "--ctorigdstport":
            r.origDstPort = portCond(o, ctx, false, GETADDRINFO);
            break;
          case "--ctreplsrcport":
            r.replSrcPort = portCond(o, ctx, false, GETADDRINFO);
            break;
          case "--ctrepldstport":
            r.replDstPort = portCond(o, ctx, false, GETADDRINFO);
            break;
          case "--ctstatus": {
            const v = keywordList<CtStatus>(o, ctx, CT_STATUSES);
            // NONE is no bit of the status mask: with others it adds nothing (iptables-save drops it).
            if (v) r.status = { values: v.length > 1 ? v.filter((s) => s !== "NONE") : v, invert: o.invert };
            break;
          }
          case "--ctexpire": {
            const v = uintRange(o, ctx, 0xffffffff);
            if (v) r.expire = { ...v, invert: o.invert };
            ctx.unknown(o.col, "--ctexpire", "remaining conntrack lifetime is runtime state");
            break;
          }
          case "--ctdir": {
            const d = a.toUpperCase();
            if (d !== "ORIGINAL" && d !== "REPLY")
              ctx.error(o.argCol, `--ctdir: expected ORIGINAL or REPLY, got '${a}'`);
            else r.dir = d;
            break;
          }
        }
      }
      if (m.opts.length === 0) ctx.error(m.col, "conntrack: expected at least one option");
      return r;
    },
  },
  {
    name: "state",
    options: { "--state": A1i },
    build(m, ctx) {
      const o = m.opts[0];
      if (!o) {
        ctx.error(m.col, "state: option --state must be specified");
        return null;
      }
      if (m.opts.length > 1) ctx.error(m.opts[1]!.col, "state: only one --state allowed");
      const v = keywordList<CtState>(o, ctx, ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"]);
      return v ? { kind: "state", col: m.col, values: v, invert: o.invert } : null;
    },
  },
  {
    name: "policy",
    options: {
      "--dir": A1,
      "--pol": A1,
      "--strict": A0,
      "--reqid": A1i,
      "--spi": A1i,
      "--proto": A1i,
      "--mode": A1i,
      "--tunnel-src": A1i,
      "--tunnel-dst": A1i,
      "--next": A0,
    },
    build(m, ctx) {
      let dir: "in" | "out" | null = null;
      let pol: "none" | "ipsec" | null = null;
      let strict = false;
      const elements: PolicyElement[] = [];
      let cur: PolicyElement | null = null;
      let curSeen = new Set<string>();
      let bad = false;
      let sawNext = false;
      for (const o of m.opts) {
        const a = o.args[0] ?? "";
        if (POLICY_ELEMENT_OPTS.has(o.name)) {
          if (!cur) {
            cur = emptyElement();
            elements.push(cur);
          }
          if (curSeen.has(o.name)) {
            ctx.error(o.col, `policy: only one ${o.name} per element (use --next for the next element)`);
            bad = true;
            continue;
          }
          curSeen.add(o.name);
        } else if (o.name !== "--next" && !firstTime(m, o, ctx)) {
          bad = true;
          continue;
        }
        switch (o.name) {
          case "--dir":
            if (a !== "in" && a !== "out") {
              ctx.error(o.argCol, `--dir: expected in or out, got '${a}'`);
              bad = true;
            } else dir = a;
            break;
          case "--pol":
            if (a !== "none" && a !== "ipsec") {
              ctx.error(o.argCol, `--pol: expected none or ipsec, got '${a}'`);
              bad = true;
            } else pol = a;
            break;
          case "--strict":
            strict = true;
            break;
          case "--next":
            sawNext = true;
            if (!cur && strict) {
              ctx.error(o.col, "policy match: empty policy element");
              bad = true;
            }
            cur = emptyElement();
            elements.push(cur);
            curSeen = new Set();
            break;
          case "--reqid":
          case "--spi": {
            const v = strtouiFull(a, 0xffffffff);
            if (v === undefined) {
              ctx.error(o.argCol, `${o.name}: expected a 32-bit number, got '${a}'`);
              bad = true;
            } else if (o.name === "--reqid") cur!.reqid = { value: v, invert: o.invert };
            else cur!.spi = { value: v, invert: o.invert };
            break;
          }
          case "--proto": {
            const n = protoNumberCased(a);
            const p = n === IPPROTO.AH ? "ah" : n === IPPROTO.ESP ? "esp" : n === 108 ? "ipcomp" : null;
            if (!p) {
              ctx.error(o.argCol, `--proto: expected ah, esp or ipcomp (case-sensitive), got '${a}'`);
              bad = true;
            } else cur!.proto = { value: p, invert: o.invert };
            break;
          }
          case "--mode":
            if (a !== "tunnel" && a !== "transport") {
              ctx.error(o.argCol, `--mode: expected tunnel or transport, got '${a}'`);
              bad = true;
            } else cur!.mode = { value: a, invert: o.invert };
            break;
          case "--tunnel-src":
          case "--tunnel-dst": {
            const v = netArg(o, ctx);
            if (!v) bad = true;
            else if (o.name === "--tunnel-src") cur!.tunnelSrc = v;
            else cur!.tunnelDst = v;
            break;
          }
        }
      }
      // The checks libxt_policy makes (messages as close to iptables' as useful).
      if (!dir) {
        ctx.error(m.col, "policy match: neither --dir in nor --dir out specified");
        bad = true;
      }
      // libxt_policy defaults to --pol ipsec (iptables-save then prints it).
      pol ??= "ipsec";
      if (pol === "none" && strict) {
        ctx.error(m.col, "policy match: policy none but --strict given");
        bad = true;
      }
      if (!strict && sawNext) {
        ctx.error(m.col, 'policy: option "--next" also requires "--strict"');
        bad = true;
      }
      if (elements.length > 4) {
        ctx.error(m.col, "policy match: at most 4 elements (--next) allowed");
        bad = true;
      }
      if (strict && pol === "ipsec") {
        const all = elements.length > 0 ? elements : [emptyElement()];
        const k = all.findIndex(
          (e) => !e.reqid && !e.spi && !e.proto && !e.mode && !e.tunnelSrc && !e.tunnelDst,
        );
        if (k >= 0) {
          ctx.error(
            m.col,
            `policy match: empty policy element ${k}. --strict is in effect, but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or mode is required.`,
          );
          bad = true;
        }
      }
      for (const e of elements) {
        if ((e.tunnelSrc || e.tunnelDst) && (e.mode?.value !== "tunnel" || e.mode.invert)) {
          ctx.error(m.col, "policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode");
          bad = true;
        }
      }
      if (bad || !dir || !pol) return null;
      return { kind: "policy", col: m.col, dir, pol, strict, elements };
    },
  },
  {
    name: "comment",
    options: { "--comment": A1 },
    build(m, ctx) {
      const o = m.opts[0];
      if (!o) {
        ctx.error(m.col, 'comment: option "--comment" must be specified');
        return null;
      }
      if (m.opts.length > 1) ctx.error(m.opts[1]!.col, "comment: only one --comment allowed");
      // The kernel struct holds 256 bytes including the terminating NUL; iptables 1.8.9 loads a
      // longer comment cut to 255 bytes (checked against both backends).
      // (UTF-8 takes at most 3 bytes per UTF-16 unit: short comments need no byte count.)
      let text = o.args[0]!;
      if (text.length > 85 && Buffer.byteLength(text) > 255) {
        ctx.warn(o.col, "comment: longer than 255 bytes; iptables keeps the first 255");
        text = Buffer.from(text).subarray(0, 255).toString();
      }
      return { kind: "comment", col: m.col, text };
    },
  },
  {
    name: "addrtype",
    options: { "--src-type": A1i, "--dst-type": A1i, "--limit-iface-in": A0, "--limit-iface-out": A0 },
    build(m, ctx) {
      const r: Extract<Match, { kind: "addrtype" }> = {
        kind: "addrtype",
        col: m.col,
        src: null,
        dst: null,
        limitIfaceIn: false,
        limitIfaceOut: false,
      };
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        if (o.name === "--src-type" || o.name === "--dst-type") {
          const v = keywordList<AddrType>(o, ctx, ADDR_TYPES);
          if (v) r[o.name === "--src-type" ? "src" : "dst"] = { types: v, invert: o.invert };
        } else if (o.name === "--limit-iface-in") r.limitIfaceIn = true;
        else r.limitIfaceOut = true;
      }
      if (!r.src && !r.dst) ctx.error(m.col, "addrtype: you must specify --src-type or --dst-type");
      if (ctx.family === 6) {
        // xt_addrtype's checkentry for IPv6: no BROADCAST, BLACKHOLE, nor PROHIBIT and above.
        for (const o of m.opts) {
          const c = o.name === "--src-type" ? r.src : o.name === "--dst-type" ? r.dst : null;
          const t = c?.types.find((x) => IPV6_NO_ADDRTYPE.has(x));
          if (t) ctx.error(o.argCol, `addrtype: the kernel does not match ${t} for IPv6`);
        }
      }
      if (r.limitIfaceIn && r.limitIfaceOut) {
        ctx.error(m.col, "addrtype: you can't specify both --limit-iface-in and --limit-iface-out");
      }
      return r;
    },
  },
  {
    name: "iprange",
    options: { "--src-range": A1i, "--dst-range": A1i },
    build(m, ctx) {
      const r: Extract<Match, { kind: "iprange" }> = { kind: "iprange", col: m.col, src: null, dst: null };
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        const v = take(parseAddrRange(o.args[0]!, ctx.family), o, ctx);
        if (v) r[o.name === "--src-range" ? "src" : "dst"] = { range: v, invert: o.invert };
      }
      if (!r.src && !r.dst && m.opts.length === 0)
        ctx.error(m.col, "iprange match: you must specify --src-range or --dst-range");
      return r;
    },
  },
  ...(
    [
      ["icmp", "--icmp-type", 4, IPPROTO.ICMP, "'-p icmp'"],
      ["icmp6", "--icmpv6-type", 6, IPPROTO.ICMPV6, "'-p ipv6-icmp'"],
    ] as const
  ).map(
    ([name, opt, family, proto, label]): ModuleDef => ({
      name,
      family,
      options: { [opt]: A1i },
      build(m, ctx) {
        requireProto(m, ctx, [proto], label);
        const o = m.opts[0];
        if (m.opts.length > 1) ctx.error(m.opts[1]!.col, `${name}: only one ${opt} allowed`);
        if (!o)
          return { kind: name, col: m.col, any: true, type: 255, codeLo: 0, codeHi: 255, invert: false };
        const t = parseIcmpType(o.args[0]!, name === "icmp6");
        if (!t) {
          ctx.error(
            o.argCol,
            `${opt}: expected a type name, a number 0..255 or type/code, got '${o.args[0]}'`,
          );
          return null;
        }
        return { kind: name, col: m.col, ...t, invert: o.invert };
      },
    }),
  ),
  ...(["mark", "connmark"] as const).map(
    (name): ModuleDef => ({
      name,
      options: { "--mark": A1i },
      build(m, ctx) {
        const o = m.opts[0];
        if (!o) {
          ctx.error(m.col, `${name}: option --mark must be specified`);
          return null;
        }
        if (m.opts.length > 1) ctx.error(m.opts[1]!.col, `${name}: only one --mark allowed`);
        const v = take(parseMarkMask(o.args[0]!), o, ctx);
        return v ? { kind: name, col: m.col, value: v.value, mask: v.mask, invert: o.invert } : null;
      },
    }),
  ),
  {
    name: "set",
    options: {
      "--match-set": A2i,
      "--return-nomatch": A0,
      "--update-counters": A0i,
      "--update-subcounters": A0i,
      "--packets-eq": A1i,
      "--packets-lt": A1,
      "--packets-gt": A1,
      "--bytes-eq": A1i,
      "--bytes-lt": A1,
      "--bytes-gt": A1,
    },
    aliases: { "--set": "--match-set" },
    build(m, ctx) {
      let main: RawOption | null = null;
      const other: RawOption[] = [];
      for (const o of m.opts) {
        if (o.name === "--match-set") {
          if (main) ctx.error(o.col, "set: only one --match-set allowed");
          main = o;
        } else {
          other.push(o);
          // Counter conditions and nomatch change the result in ways that need the set's state.
          ctx.unknown(o.col, o.name, "ipset counters and nomatch entries are runtime state");
        }
      }
      if (!main) {
        ctx.error(m.col, "set: you must specify --match-set");
        return null;
      }
      const flags: Array<"src" | "dst"> = [];
      for (const f of main.args[1]!.split(",")) {
        if (f !== "src" && f !== "dst") {
          ctx.error(
            main.col,
            `--match-set: expected flags src/dst separated by commas, got '${main.args[1]}'`,
          );
          return null;
        }
        flags.push(f);
      }
      if (flags.length > 6) ctx.error(main.col, "--match-set: at most 6 flags");
      return { kind: "set", col: m.col, name: main.args[0]!, flags, invert: main.invert, other };
    },
  },
  {
    name: "mac",
    options: { "--mac-source": A1i },
    build(m, ctx) {
      const o = m.opts[0];
      if (!o) {
        ctx.error(m.col, "mac: option --mac-source must be specified");
        return null;
      }
      if (m.opts.length > 1) firstTime(m, m.opts[1]!, ctx);
      const mac = o.args[0]!;
      if (/^[0-9a-fA-FxX]{2}(:[0-9a-fA-FxX]{2}){5}$/.test(mac) && /x/i.test(mac)) {
        // Redacted dumps replace MACs with XX:XX:…: keep the rule, its result is unknown.
        ctx.warn(
          o.col,
          `unsupported: MAC address '${mac}' is a placeholder (redacted dump?) — rule kept, its result is unknown`,
        );
        ctx.unknown(o.col, `--mac-source ${mac}`, "placeholder MAC address");
        return {
          kind: "opaque",
          col: m.col,
          module: "mac",
          options: m.opts,
          why: "unmodelled",
          reason: "placeholder MAC address",
        };
      }
      const canonical = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac) ? mac.toLowerCase() : etherMac(mac);
      if (canonical === undefined) {
        ctx.error(o.argCol, `--mac-source: expected XX:XX:XX:XX:XX:XX, got '${mac}'`);
        return null;
      }
      return { kind: "mac", col: m.col, mac: canonical, invert: o.invert };
    },
  },
  {
    name: "physdev",
    options: {
      "--physdev-in": A1i,
      "--physdev-out": A1i,
      "--physdev-is-in": A0i,
      "--physdev-is-out": A0i,
      "--physdev-is-bridged": A0i,
    },
    build(m, ctx) {
      const r: Extract<Match, { kind: "physdev" }> = {
        kind: "physdev",
        col: m.col,
        physIn: null,
        physOut: null,
        isIn: null,
        isOut: null,
        isBridged: null,
      };
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        if (o.name === "--physdev-in" || o.name === "--physdev-out") {
          const c = ifaceCond(o.args[0]!, o.invert);
          if (typeof c === "string") ctx.error(o.col, `${o.name}: ${c}`);
          else r[o.name === "--physdev-in" ? "physIn" : "physOut"] = c;
        } else if (o.name === "--physdev-is-in") r.isIn = { invert: o.invert };
        else if (o.name === "--physdev-is-out") r.isOut = { invert: o.invert };
        else r.isBridged = { invert: o.invert };
      }
      if (m.opts.length === 0) ctx.error(m.col, "physdev: expected at least one option");
      return r;
    },
  },
  {
    name: "length",
    options: { "--length": A1i },
    build(m, ctx) {
      const o = m.opts[0];
      if (!o) {
        ctx.error(m.col, "length: option --length must be specified");
        return null;
      }
      if (m.opts.length > 1) firstTime(m, m.opts[1]!, ctx);
      const r = uintRange(o, ctx, 65535);
      return r ? { kind: "length", col: m.col, lo: r.lo, hi: r.hi, invert: o.invert } : null;
    },
  },
  ...(
    [
      ["ttl", 4],
      ["hl", 6],
    ] as const
  ).map(
    ([name, family]): ModuleDef => ({
      name,
      family,
      options: { [`--${name}-eq`]: A1i, [`--${name}-lt`]: A1, [`--${name}-gt`]: A1 },
      // A hidden exact alias in libxt_ttl / libxt_hl (same option id).
      aliases: { [`--${name}`]: `--${name}-eq` },
      build(m, ctx) {
        const o = m.opts[0];
        if (!o) {
          ctx.error(m.col, `${name}: expected --${name}-eq, --${name}-lt or --${name}-gt`);
          return null;
        }
        if (m.opts.length > 1) ctx.error(m.opts[1]!.col, `${name}: only one comparison allowed`);
        const v = strtouiFull(o.args[0]!, 255);
        if (v === undefined) {
          ctx.error(o.argCol, `${o.name}: expected a number 0..255, got '${o.args[0]}'`);
          return null;
        }
        const rel = o.name.slice(-2) as "eq" | "lt" | "gt";
        return { kind: name, col: m.col, op: rel === "eq" && o.invert ? "ne" : rel, value: v };
      },
    }),
  ),
  {
    name: "frag",
    family: 6,
    options: {
      "--fragid": A1i,
      "--fraglen": A1i,
      "--fragres": A0,
      "--fragfirst": A0,
      "--fragmore": A0,
      "--fraglast": A0,
    },
    build(m, ctx) {
      const r: Extract<Match, { kind: "frag" }> = {
        kind: "frag",
        col: m.col,
        id: null,
        len: null,
        res: false,
        first: false,
        more: false,
        last: false,
      };
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        if (o.name === "--fragid") {
          const v = uintRange(o, ctx, 0xffffffff);
          if (v) r.id = { ...v, invert: o.invert };
        } else if (o.name === "--fraglen") {
          const v = strtouiFull(o.args[0]!, 0xffffffff);
          if (v === undefined) ctx.error(o.argCol, `--fraglen: expected a number, got '${o.args[0]}'`);
          else {
            r.len = { value: v, invert: o.invert };
            // ip6t_frag.c stores the length but never compares it (checked on this kernel).
            ctx.warn(o.col, "--fraglen has no effect: the kernel's frag match does not read it");
          }
        } else if (o.name === "--fragres") r.res = true;
        else if (o.name === "--fragfirst") r.first = true;
        else if (o.name === "--fragmore") r.more = true;
        else r.last = true;
        if (r.more && r.last && (o.name === "--fragmore" || o.name === "--fraglast"))
          ctx.error(
            o.col,
            `${o.name}: cannot be used together with ${o.name === "--fragmore" ? "--fraglast" : "--fragmore"}`,
          );
      }
      return r;
    },
  },
  spiModule("esp", "--espspi", IPPROTO.ESP),
  spiModule("ah", "--ahspi", IPPROTO.AH),
  {
    name: "pkttype",
    options: { "--pkt-type": A1i },
    build(m, ctx) {
      const o = m.opts[0];
      if (!o) {
        ctx.error(m.col, "pkttype: option --pkt-type must be specified");
        return null;
      }
      const t = o.args[0]!.toLowerCase();
      if (t !== "unicast" && t !== "broadcast" && t !== "multicast") {
        ctx.error(o.argCol, `--pkt-type: expected unicast, broadcast or multicast, got '${o.args[0]}'`);
        return null;
      }
      return { kind: "pkttype", col: m.col, type: t, invert: o.invert };
    },
  },
  // ---- opaque: depends on traffic history, time or host state ----
  opaque("limit", "runtime", "rate limits depend on traffic history", { "--limit": A1, "--limit-burst": A1 }),
  opaque("hashlimit", "runtime", "rate limits depend on traffic history", {
    "--hashlimit": A1,
    "--hashlimit-upto": A1,
    "--hashlimit-above": A1,
    "--hashlimit-burst": A1,
    "--hashlimit-mode": A1,
    "--hashlimit-srcmask": A1,
    "--hashlimit-dstmask": A1,
    "--hashlimit-name": A1,
    "--hashlimit-htable-size": A1,
    "--hashlimit-htable-max": A1,
    "--hashlimit-htable-expire": A1,
    "--hashlimit-htable-gcinterval": A1,
    "--hashlimit-rate-match": A0,
    "--hashlimit-rate-interval": A1,
  }),
  opaque("recent", "runtime", "the recent list depends on traffic history", {
    "--name": A1,
    "--set": A0i,
    "--rcheck": A0i,
    "--update": A0i,
    "--remove": A0i,
    "--seconds": A1,
    "--reap": A0,
    "--hitcount": A1,
    "--rttl": A0,
    "--rsource": A0,
    "--rdest": A0,
    "--mask": A1,
  }),
  opaque("statistic", "runtime", "random / every-nth sampling", {
    "--mode": A1,
    "--probability": A1i,
    "--every": A1i,
    "--packet": A1,
  }),
  opaque("time", "runtime", "depends on the time of day and date", {
    "--datestart": A1,
    "--datestop": A1,
    "--timestart": A1,
    "--timestop": A1,
    "--monthdays": A1i,
    "--weekdays": A1i,
    "--days": A1i,
    "--contiguous": A0,
    "--kerneltz": A0,
    "--localtz": A0,
    "--utc": A0,
  }),
  opaque("connlimit", "runtime", "depends on the number of open connections", {
    "--connlimit-upto": A1,
    "--connlimit-above": A1,
    "--connlimit-mask": A1,
    "--connlimit-saddr": A0,
    "--connlimit-daddr": A0,
  }),
  opaque("connbytes", "runtime", "depends on the connection's byte/packet counts", {
    "--connbytes": A1i,
    "--connbytes-dir": A1,
    "--connbytes-mode": A1,
  }),
  opaque("quota", "runtime", "depends on bytes already counted", { "--quota": A1i }),
  opaque("connlabel", "runtime", "connection labels are runtime state", { "--label": A1i, "--set": A0 }),
  opaque("helper", "runtime", "depends on the conntrack helper assigned to the connection", {
    "--helper": A1i,
  }),
  opaque("socket", "runtime", "depends on local sockets", {
    "--transparent": A0,
    "--nowildcard": A0,
    "--restore-skmark": A0,
  }),
  opaque("owner", "unmodelled", "depends on the local socket's owner", {
    "--uid-owner": A1i,
    "--gid-owner": A1i,
    "--socket-exists": A0i,
    "--suppl-groups": A0,
  }),
  opaque("cpu", "runtime", "depends on the CPU handling the packet", { "--cpu": A1i }),
  opaque("cluster", "runtime", "depends on the cluster hash of the packet", {
    "--cluster-total-nodes": A1,
    "--cluster-local-node": A1i,
    "--cluster-local-nodemask": A1i,
    "--cluster-hash-seed": A1,
  }),
  opaque("rateest", "runtime", "rate estimators depend on traffic history", {
    "--rateest-delta": A0,
    "--rateest-lt": A0i,
    "--rateest-gt": A0i,
    "--rateest-eq": A0i,
    "--rateest": A1,
    "--rateest1": A1,
    "--rateest2": A1,
    "--rateest-bps": AOpt,
    "--rateest-pps": AOpt,
    "--rateest-bps1": AOpt,
    "--rateest-bps2": AOpt,
    "--rateest-pps1": AOpt,
    "--rateest-pps2": AOpt,
  }),
  opaque("ipvs", "runtime", "depends on IPVS state", {
    "--ipvs": A0i,
    "--vproto": A1i,
    "--vaddr": A1i,
    "--vport": A1i,
    "--vdir": A1,
    "--vmethod": A1i,
    "--vportctl": A1i,
  }),
  opaque("nfacct", "unmodelled", "accounting object (always matches, counts)", { "--nfacct-name": A1 }),
  // ---- opaque: header fields / routing the engine does not model ----
  opaque("string", "unmodelled", "payload contents are not modelled", {
    "--algo": A1,
    "--from": A1,
    "--to": A1,
    "--string": A1i,
    "--hex-string": A1i,
    "--icase": A0,
  }),
  opaque("u32", "unmodelled", "raw header/payload tests are not modelled", { "--u32": A1i }),
  opaque("dscp", "unmodelled", "DSCP is not modelled", { "--dscp": A1i, "--dscp-class": A1i }),
  opaque("tos", "unmodelled", "TOS is not modelled", { "--tos": A1i }),
  opaque("ecn", "unmodelled", "ECN bits are not modelled", {
    "--ecn-tcp-cwr": A0i,
    "--ecn-tcp-ece": A0i,
    "--ecn-ip-ect": A1i,
  }),
  opaque("tcpmss", "unmodelled", "the TCP MSS option is not modelled", { "--mss": A1i }),
  opaque("realm", "unmodelled", "routing realms are not modelled", { "--realm": A1i }, 4),
  opaque("rpfilter", "unmodelled", "reverse-path lookups need the routing table", {
    "--loose": A0,
    "--validmark": A0,
    "--accept-local": A0,
    "--invert": A0,
  }),
  opaque("devgroup", "unmodelled", "interface groups are not modelled", {
    "--src-group": A1i,
    "--dst-group": A1i,
  }),
  opaque("cgroup", "unmodelled", "depends on the local socket's cgroup", { "--path": A1i, "--cgroup": A1i }),
  opaque("bpf", "unmodelled", "BPF programs are not evaluated", { "--bytecode": A1, "--object-pinned": A1 }),
  opaque("osf", "unmodelled", "passive OS fingerprints are not modelled", {
    "--genre": A1i,
    "--ttl": A1,
    "--log": A1,
  }),
  opaque(
    "ipv6header",
    "unmodelled",
    "IPv6 extension headers are not modelled",
    { "--header": A1i, "--soft": A0 },
    6,
  ),
  opaque(
    "hbh",
    "unmodelled",
    "IPv6 extension headers are not modelled",
    { "--hbh-len": A1i, "--hbh-opts": A1 },
    6,
  ),
  opaque(
    "dst",
    "unmodelled",
    "IPv6 extension headers are not modelled",
    { "--dst-len": A1i, "--dst-opts": A1 },
    6,
  ),
  opaque(
    "rt",
    "unmodelled",
    "IPv6 routing headers are not modelled",
    {
      "--rt-type": A1i,
      "--rt-segsleft": A1i,
      "--rt-len": A1i,
      "--rt-0-res": A0,
      "--rt-0-addrs": A1,
      "--rt-0-not-strict": A0,
    },
    6,
  ),
  opaque("mh", "unmodelled", "mobility headers are not modelled", { "--mh-type": A1i }, 6),
  opaque("eui64", "unmodelled", "EUI-64 address checks are not modelled", {}, 6),
];

/**
 * esp and ah. ip6tables' ah also has --ahlen/--ahres and needs no -p: it looks for the AH extension
 * header, which a packet here has when it is an AH packet (the evaluator checks that).
 */
function spiModule(name: "esp" | "ah", opt: string, proto: number, family?: Family): ModuleDef {
  return {
    name,
    options: family === 6 ? { [opt]: A1i, "--ahlen": A1i, "--ahres": A0 } : { [opt]: A1i },
    build(m, ctx) {
      if (family !== 6) requireProto(m, ctx, [proto], `'-p ${name}'`);
      let spi: { lo: number; hi: number; invert: boolean } | null = null;
      const other: RawOption[] = [];
      for (const o of m.opts) {
        if (!firstTime(m, o, ctx)) continue;
        if (o.name === opt) {
          const v = uintRange(o, ctx, 0xffffffff);
          if (v) spi = { ...v, invert: o.invert };
        } else {
          other.push(o);
          ctx.unknown(o.col, o.name, "AH header length/reserved fields are not modelled");
        }
      }
      return { kind: name, col: m.col, spi, other };
    },
  };
}
const AH6: ModuleDef = { ...spiModule("ah", "--ahspi", IPPROTO.AH, 6), family: 6 };

function opaque(
  name: string,
  why: "runtime" | "unmodelled",
  reason: string,
  options: Record<string, OptSpec>,
  family?: Family,
  requires?: ReadonlyArray<readonly string[]>,
): ModuleDef {
  const def: ModuleDef = { name, options, opaque: { why, reason } };
  if (family !== undefined) def.family = family;
  if (requires) def.requires = requires;
  return def;
}

/** Opaque modules none of whose options iptables takes twice ("can only be used once"). */
const EACH_OPTION_ONCE = new Set(["limit", "recent", "connlimit"]);

/**
 * Opaque modules' options that exclude each other, in the order iptables names them (its final check walks
 * the option table, whatever the order in the rule): "option "--a" cannot be used together with "--b"".
 */
const EXCLUSIVE: Record<string, ReadonlyArray<readonly [string, string]>> = {
  connlimit: [
    ["--connlimit-upto", "--connlimit-above"],
    ["--connlimit-saddr", "--connlimit-daddr"],
  ],
};

/** For opaque modules: options iptables insists on (its "must be specified" checks). */
export function checkRequired(def: ModuleDef, m: ModuleInstance, ctx: BuildCtx): void {
  if (EACH_OPTION_ONCE.has(def.name)) for (const o of m.opts) firstTime(m, o, ctx);
  for (const [a, b] of EXCLUSIVE[def.name] ?? []) {
    const oa = m.opts.find((o) => o.name === a);
    const ob = m.opts.find((o) => o.name === b);
    if (oa && ob)
      ctx.error(Math.max(oa.col, ob.col), `${def.name}: option "${a}" cannot be used together with "${b}"`);
  }
  checkValues(def.name, def.values, m.opts, ctx);
  if (def.name === "recent") checkRecent(m, ctx);
  if (def.name === "string" && !m.opts.some((o) => o.name === "--algo")) {
    // The string match of iptables before 1.3 had no --algo; dumps of that era omit it.
    ctx.warn(m.col, 'string: iptables 1.8 requires "--algo" (bm or kmp); this looks like an older dump');
  }
  if (def.name === "statistic") {
    const mode = m.opts.find((o) => o.name === "--mode")?.args[0];
    const need = mode === "random" ? "--probability" : mode === "nth" ? "--every" : undefined;
    if (need && !m.opts.some((o) => o.name === need))
      ctx.error(m.col, `statistic: ${need} must be specified when using ${mode} mode`);
    else if (mode !== undefined && mode !== "random" && mode !== "nth")
      ctx.error(m.col, `statistic: expected --mode random or nth, got '${mode}'`);
  }
  for (const group of def.requires ?? []) {
    if (m.opts.some((o) => group.includes(o.name))) continue;
    ctx.error(
      m.col,
      group.length === 1
        ? `${def.name}: option "${group[0]}" must be specified`
        : `${def.name}: at least one of ${group.join(", ")} is required`,
    );
  }
}

const RECENT_MODES = ["--set", "--rcheck", "--update", "--remove"];

/** libxt_recent's exclusions and dependencies, then what xt_recent's checkentry refuses. */
function checkRecent(m: ModuleInstance, ctx: BuildCtx): void {
  let mode: RawOption | undefined;
  const has = (name: string) => m.opts.find((o) => o.name === name);
  for (const o of m.opts) {
    if (RECENT_MODES.includes(o.name)) {
      if (mode && mode.name !== o.name)
        ctx.error(o.col, `recent: ${o.name} cannot be used together with ${mode.name}`);
      mode ??= o;
    }
  }
  const seconds = has("--seconds");
  if (seconds && strtouiFull(seconds.args[0]!, 0xffffffff) === 0)
    ctx.error(seconds.argCol, `recent: --seconds: expected a number 1..4294967295, got '${seconds.args[0]}'`);
  const reap = has("--reap");
  if (reap && !seconds) ctx.error(reap.col, "recent: --reap requires --seconds");
  const rttl = has("--rttl");
  if (rttl && (mode?.name === "--set" || mode?.name === "--remove"))
    ctx.error(rttl.col, `recent: --rttl cannot be used together with ${mode.name}`);
  else if (mode?.name === "--set" || mode?.name === "--remove") {
    // The kernel refuses the checking options with a mode that checks nothing.
    const hits = has("--hitcount");
    const bad = seconds ?? (hits && strtouiFull(hits.args[0]!, 0xffffffff) ? hits : undefined) ?? reap;
    if (bad) ctx.error(bad.col, `recent: the kernel refuses ${bad.name} with ${mode.name}`);
  }
  const name = has("--name");
  const n = name?.args[0];
  if (n !== undefined && (n === "" || n === "." || n === ".." || n.includes("/"))) {
    // It names the table's /proc/net/xt_recent entry, which the kernel cannot create.
    ctx.error(name!.argCol, `recent: --name: the kernel refuses the name '${n}'`);
  }
}

/** Options iptables insists on for modules kept opaque (an error here means iptables refuses the rule). */
const REQUIRES: Record<string, string[][]> = {
  hashlimit: [["--hashlimit-name"], ["--hashlimit-upto", "--hashlimit-above", "--hashlimit"]],
  statistic: [["--mode"]],
  connlimit: [["--connlimit-upto", "--connlimit-above"]],
  connbytes: [["--connbytes"], ["--connbytes-dir"], ["--connbytes-mode"]],
  quota: [["--quota"]],
  helper: [["--helper"]],
  owner: [["--uid-owner", "--gid-owner", "--socket-exists"]],
  string: [["--string", "--hex-string"]],
  u32: [["--u32"]],
  recent: [["--set", "--rcheck", "--update", "--remove"]],
  cpu: [["--cpu"]],
  nfacct: [["--nfacct-name"]],
  dscp: [["--dscp", "--dscp-class"]],
  tos: [["--tos"]],
  tcpmss: [["--mss"]],
  realm: [["--realm"]],
  devgroup: [["--src-group", "--dst-group"]],
  cgroup: [["--path", "--cgroup"]],
  bpf: [["--bytecode", "--object-pinned"]],
};
const U32: ValueCheck = { kind: "uint", max: 0xffffffff };
const VALUES: Record<string, Record<string, ValueCheck>> = {
  limit: { "--limit": { kind: "limit-rate" }, "--limit-burst": { kind: "uint", max: 10000 } },
  hashlimit: {
    "--hashlimit-upto": { kind: "byterate" },
    "--hashlimit-above": { kind: "byterate" },
    "--hashlimit": { kind: "rate" },
    "--hashlimit-srcmask": { kind: "plen" },
    "--hashlimit-dstmask": { kind: "plen" },
    "--hashlimit-htable-size": U32,
    "--hashlimit-htable-max": U32,
    "--hashlimit-htable-expire": U32,
    "--hashlimit-htable-gcinterval": U32,
  },
  // xt_recent refuses a hit count above XT_RECENT_MAX_NSTAMPS - 1 when the rule is loaded.
  recent: { "--seconds": U32, "--hitcount": { kind: "uint", max: 65535 } },
  statistic: { "--every": U32, "--packet": U32 },
  connlimit: {
    "--connlimit-upto": U32,
    "--connlimit-above": U32,
    "--connlimit-mask": { kind: "plenmask" },
  },
  quota: { "--quota": { kind: "uint", max: Number.MAX_SAFE_INTEGER } },
  cpu: { "--cpu": U32 },
};
for (const d of DEFS) {
  if (REQUIRES[d.name]) d.requires = REQUIRES[d.name];
  if (VALUES[d.name]) d.values = VALUES[d.name];
}

const BY_NAME = new Map(DEFS.map((d) => [d.name, d]));

/** The module iptables loads for `-m name` (with its icmpv6 spelling quirk), if it knows it. */
export function findModule(name: string, family: Family): ModuleDef | undefined {
  if (family === 6 && name === "ah") return AH6;
  const n = family === 6 && (name === "icmpv6" || name === "ipv6-icmp") ? "icmp6" : name;
  return BY_NAME.get(n);
}

/** Protocols whose module `-p` loads implicitly when one of its options follows. */
export function implicitModule(proto: number, family: Family): string | undefined {
  switch (proto) {
    case IPPROTO.TCP:
      return "tcp";
    case IPPROTO.UDP:
      return "udp";
    case IPPROTO.SCTP:
      return "sctp";
    case IPPROTO.DCCP:
      return "dccp";
    case IPPROTO.ESP:
      return "esp";
    case IPPROTO.AH:
      return "ah";
    case IPPROTO.ICMP:
      return family === 4 ? "icmp" : undefined;
    case IPPROTO.ICMPV6:
      return family === 6 ? "icmp6" : undefined;
    case IPPROTO.MH:
      return family === 6 ? "mh" : undefined;
    default:
      return undefined;
  }
}

/** `eth0`, `eth+`, `+` → interface condition, or an error text. */
export function ifaceCond(text: string, invert: boolean): IfaceCond | string {
  if (text.length === 0) return "expected an interface name";
  if (text.length > 15) return `interface name '${text}' must be shorter than IFNAMSIZ (15)`;
  const wildcard = text.endsWith("+");
  return { name: wildcard ? text.slice(0, -1) : text, wildcard, invert };
}
