/**
 * Model → text, in the order and spelling `iptables-save` (1.8) uses, so a parsed rule can be
 * shown back to the user, compared, and re-parsed (round trip). Options of opaque modules and
 * targets are printed as they were written.
 */
import type { Family } from "../../model/address.js";
import type {
  AddrSpec,
  Chain,
  IfaceCond,
  Match,
  NatRange,
  PolicyElement,
  RawOption,
  Rule,
  Ruleset,
  Target,
} from "./model.js";
import { formatTcpFlags } from "./modules.js";
import { formatIcmpType, protoName } from "./names.js";
import { quoteArg, quoteIfNeeded } from "./tokenize.js";
import { formatIptAddr as formatAddress, formatNet, formatPortRange, hex } from "./values.js";

const inv = (b: boolean) => (b ? "! " : "");
const NFLOG_ORDER = ["--nflog-prefix", "--nflog-group", "--nflog-range", "--nflog-size", "--nflog-threshold"];
const ULOG_ORDER = ["--ulog-nlgroup", "--ulog-prefix", "--ulog-cprange", "--ulog-qthreshold"];

function spec(s: AddrSpec): string {
  return s.kind === "name" ? s.name : formatNet(s);
}

function iface(c: IfaceCond): string {
  return c.name + (c.wildcard ? "+" : "");
}

/** Options whose values iptables-save writes with xtables_save_string (always quoted unless plain). */
const SAVE_STRING = new Set([
  "--comment",
  "--log-prefix",
  "--nflog-prefix",
  "--ulog-prefix",
  "--string",
  "--hex-string",
  "--u32",
]);

function raw(o: RawOption): string {
  const q = SAVE_STRING.has(o.name) ? quoteArg : quoteIfNeeded;
  return [inv(o.invert) + o.name, ...o.args.map(q)].join(" ");
}

function mark(value: number, mask: number): string {
  return mask === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`;
}

function policyElement(e: PolicyElement): string[] {
  const out: string[] = [];
  if (e.reqid) out.push(`${inv(e.reqid.invert)}--reqid ${e.reqid.value}`);
  if (e.spi) out.push(`${inv(e.spi.invert)}--spi ${hex(e.spi.value)}`);
  if (e.proto) out.push(`${inv(e.proto.invert)}--proto ${e.proto.value}`);
  if (e.mode) out.push(`${inv(e.mode.invert)}--mode ${e.mode.value}`);
  if (e.tunnelDst)
    out.push(`${inv(e.tunnelDst.invert)}--tunnel-dst ${formatNet(e.tunnelDst.net, { omitHostLen: true })}`);
  if (e.tunnelSrc)
    out.push(`${inv(e.tunnelSrc.invert)}--tunnel-src ${formatNet(e.tunnelSrc.net, { omitHostLen: true })}`);
  return out;
}

/** `-m name --opt …` for one match. */
export function formatMatch(m: Match, family: Family): string {
  const parts: string[] = [];
  const port = (name: string, c: { range: { lo: number; hi: number }; invert: boolean } | null) => {
    if (c) parts.push(`${inv(c.invert)}${name} ${formatPortRange(c.range)}`);
  };
  switch (m.kind) {
    case "tcp":
      port("--sport", m.sport);
      port("--dport", m.dport);
      if (m.option) parts.push(`${inv(m.option.invert)}--tcp-option ${m.option.num}`);
      if (m.flags)
        parts.push(
          `${inv(m.flags.invert)}--tcp-flags ${formatTcpFlags(m.flags.mask)} ${formatTcpFlags(m.flags.comp)}`,
        );
      return ["-m tcp", ...parts].join(" ");
    case "udp":
      port("--sport", m.sport);
      port("--dport", m.dport);
      return ["-m udp", ...parts].join(" ");
    case "sctp":
      port("--sport", m.sport);
      port("--dport", m.dport);
      if (m.chunkTypes) parts.push(raw(m.chunkTypes));
      return ["-m sctp", ...parts].join(" ");
    case "dccp":
      port("--sport", m.sport);
      port("--dport", m.dport);
      for (const o of m.other) parts.push(raw(o));
      return ["-m dccp", ...parts].join(" ");
    case "multiport": {
      const opt = m.dir === "src" ? "--sports" : m.dir === "dst" ? "--dports" : "--ports";
      return `-m multiport ${inv(m.invert)}${opt} ${m.ranges.map((r) => formatPortRange(r)).join(",")}`;
    }
    case "conntrack": {
      const net = (name: string, c: { net: Parameters<typeof formatNet>[0]; invert: boolean } | null) => {
        if (c) parts.push(`${inv(c.invert)}${name} ${formatNet(c.net, { omitHostLen: true })}`);
      };
      if (m.state) parts.push(`${inv(m.state.invert)}--ctstate ${m.state.values.join(",")}`);
      if (m.proto) parts.push(`${inv(m.proto.invert)}--ctproto ${m.proto.num}`);
      net("--ctorigsrc", m.origSrc);
      net("--ctorigdst", m.origDst);
      net("--ctreplsrc", m.replSrc);
      net("--ctrepldst", m.replDst);
      port("--ctorigsrcport", m.origSrcPort);
      port("--ctorigdstport", m.origDstPort);
      port("--ctreplsrcport", m.replSrcPort);
      port("--ctrepldstport", m.replDstPort);
      if (m.status) parts.push(`${inv(m.status.invert)}--ctstatus ${m.status.values.join(",")}`);
      if (m.expire) {
        const e = m.expire;
        parts.push(`${inv(e.invert)}--ctexpire ${e.lo === e.hi ? e.lo : `${e.lo}:${e.hi}`}`);
      }
      if (m.dir) parts.push(`--ctdir ${m.dir}`);
      return ["-m conntrack", ...parts].join(" ");
    }
    case "state":
      return `-m state ${inv(m.invert)}--state ${m.values.join(",")}`;
    case "policy": {
      parts.push(`--dir ${m.dir}`, `--pol ${m.pol}`);
      if (m.strict) parts.push("--strict");
      m.elements.forEach((e, i) => {
        if (i > 0) parts.push("--next");
        parts.push(...policyElement(e));
      });
      return ["-m policy", ...parts].join(" ");
    }
    case "comment":
      return `-m comment --comment ${quoteArg(m.text)}`;
    case "addrtype":
      if (m.src) parts.push(`${inv(m.src.invert)}--src-type ${m.src.types.join(",")}`);
      if (m.dst) parts.push(`${inv(m.dst.invert)}--dst-type ${m.dst.types.join(",")}`);
      if (m.limitIfaceIn) parts.push("--limit-iface-in");
      if (m.limitIfaceOut) parts.push("--limit-iface-out");
      return ["-m addrtype", ...parts].join(" ");
    case "iprange": {
      const r = (x: { lo: bigint; hi: bigint }) =>
        `${formatAddress(family, x.lo)}-${formatAddress(family, x.hi)}`;
      if (m.src) parts.push(`${inv(m.src.invert)}--src-range ${r(m.src.range)}`);
      if (m.dst) parts.push(`${inv(m.dst.invert)}--dst-range ${r(m.dst.range)}`);
      return ["-m iprange", ...parts].join(" ");
    }
    case "icmp":
      return `-m icmp ${inv(m.invert)}--icmp-type ${formatIcmpType(m)}`;
    case "icmp6":
      return `-m icmp6 ${inv(m.invert)}--icmpv6-type ${formatIcmpType(m)}`;
    case "mark":
    case "connmark":
      return `-m ${m.kind} ${inv(m.invert)}--mark ${mark(m.value, m.mask)}`;
    case "set":
      return [
        `-m set ${inv(m.invert)}--match-set ${quoteIfNeeded(m.name)} ${m.flags.join(",")}`,
        ...m.other.map(raw),
      ].join(" ");
    case "mac":
      return `-m mac ${inv(m.invert)}--mac-source ${m.mac}`;
    case "physdev":
      // libxt_physdev's save order.
      if (m.isIn) parts.push(`${inv(m.isIn.invert)}--physdev-is-in`);
      if (m.physIn) parts.push(`${inv(m.physIn.invert)}--physdev-in ${iface(m.physIn)}`);
      if (m.isOut) parts.push(`${inv(m.isOut.invert)}--physdev-is-out`);
      if (m.physOut) parts.push(`${inv(m.physOut.invert)}--physdev-out ${iface(m.physOut)}`);
      if (m.isBridged) parts.push(`${inv(m.isBridged.invert)}--physdev-is-bridged`);
      return ["-m physdev", ...parts].join(" ");
    case "length":
      return `-m length ${inv(m.invert)}--length ${m.lo === m.hi ? m.lo : `${m.lo}:${m.hi}`}`;
    case "ttl":
    case "hl": {
      const op = m.op === "ne" ? "eq" : m.op;
      return `-m ${m.kind} ${inv(m.op === "ne")}--${m.kind}-${op} ${m.value}`;
    }
    case "frag":
      if (m.id)
        parts.push(`${inv(m.id.invert)}--fragid ${m.id.lo === m.id.hi ? m.id.lo : `${m.id.lo}:${m.id.hi}`}`);
      if (m.len) parts.push(`${inv(m.len.invert)}--fraglen ${m.len.value}`);
      if (m.res) parts.push("--fragres");
      if (m.first) parts.push("--fragfirst");
      if (m.more) parts.push("--fragmore");
      if (m.last) parts.push("--fraglast");
      return ["-m frag", ...parts].join(" ");
    case "esp":
    case "ah": {
      const opt = m.kind === "esp" ? "--espspi" : "--ahspi";
      if (m.spi)
        parts.push(
          `${inv(m.spi.invert)}${opt} ${m.spi.lo === m.spi.hi ? m.spi.lo : `${m.spi.lo}:${m.spi.hi}`}`,
        );
      for (const o of m.other) parts.push(raw(o));
      return [`-m ${m.kind}`, ...parts].join(" ");
    }
    case "pkttype":
      return `-m pkttype ${inv(m.invert)}--pkt-type ${m.type}`;
    case "opaque":
      return [`-m ${m.module}`, ...m.options.map(raw)].join(" ");
    case "unknown-option":
      return raw(m.option);
  }
}

function natRange(r: NatRange, family: Family): string {
  let a = "";
  if (r.addrLo !== null) {
    a = formatAddress(family, r.addrLo);
    if (r.addrHi !== null && r.addrHi !== r.addrLo) a += `-${formatAddress(family, r.addrHi)}`;
    if (family === 6 && r.portLo !== null) a = `[${a}]`;
  }
  if (r.portLo !== null) {
    a += `:${r.portLo === r.portHi ? r.portLo : `${r.portLo}-${r.portHi}`}`;
    if (r.basePort !== null) a += `/${r.basePort}`;
  }
  return a;
}

/** `-j TARGET --opts` / `-g chain`. */
export function formatTarget(t: Target, family: Family): string {
  switch (t.kind) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
    case "QUEUE":
      return `-j ${t.kind}`;
    case "jump":
      return `-j ${t.chain}`;
    case "goto":
      return `-g ${t.chain}`;
    case "REJECT":
      return `-j REJECT --reject-with ${t.with}`;
    case "LOG": {
      const parts = ["-j LOG"];
      if (t.prefix !== null) parts.push(`--log-prefix ${quoteArg(t.prefix)}`);
      if (t.level !== null) parts.push(`--log-level ${t.level}`);
      for (const f of t.flags) parts.push(`--log-${f}`);
      return parts.join(" ");
    }
    case "NFLOG":
    case "ULOG": {
      // Options in the order the extensions save them; strings quoted as iptables-save does.
      const order = t.kind === "NFLOG" ? NFLOG_ORDER : ULOG_ORDER;
      const opts = [...t.options].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
      return [`-j ${t.kind}`, ...opts.map(raw)].join(" ");
    }
    case "MARK":
      return `-j MARK --set-xmark ${hex(t.value)}/${hex(t.mask)}`;
    case "TTL":
      return `-j ${t.name} --${t.name.toLowerCase()}-${t.mode} ${t.value}`;
    case "CONNMARK":
      if (t.mode === "set") return `-j CONNMARK --set-xmark ${hex(t.value)}/${hex(t.mask)}`;
      return `-j CONNMARK --${t.mode}-mark --nfmask ${hex(t.nfmask)} --ctmask ${hex(t.ctmask)}`;
    case "TRACE":
    case "NOTRACK":
      return `-j ${t.kind}`;
    case "CT":
      return t.notrack ? "-j CT --notrack" : ["-j CT", ...t.options.map(raw)].join(" ");
    case "DNAT":
    case "SNAT": {
      const opt = t.kind === "DNAT" ? "--to-destination" : "--to-source";
      const parts = [`-j ${t.kind}`, ...t.ranges.map((r) => `${opt} ${natRange(r, family)}`)];
      if (t.random) parts.push("--random");
      if (t.randomFully) parts.push("--random-fully");
      if (t.persistent) parts.push("--persistent");
      return parts.join(" ");
    }
    case "MASQUERADE":
    case "REDIRECT": {
      const parts = [`-j ${t.kind}`];
      if (t.ports) parts.push(`--to-ports ${formatPortRange(t.ports, "-")}`);
      if (t.random) parts.push("--random");
      if (t.randomFully) parts.push("--random-fully");
      return parts.join(" ");
    }
    case "opaque":
      return [`-j ${t.name}`, ...t.options.map(raw)].join(" ");
  }
}

/** The rule as an `iptables-save` line (`-A chain …`), without counters. */
export function formatRule(r: Rule, family: Family): string {
  const parts = [`-A ${r.chain}`];
  if (r.src) parts.push(`${inv(r.src.invert)}-s ${spec(r.src.spec)}`);
  if (r.dst) parts.push(`${inv(r.dst.invert)}-d ${spec(r.dst.spec)}`);
  if (r.iif) parts.push(`${inv(r.iif.invert)}-i ${iface(r.iif)}`);
  if (r.oif) parts.push(`${inv(r.oif.invert)}-o ${iface(r.oif)}`);
  if (r.proto) parts.push(`${inv(r.proto.invert)}-p ${protoName(r.proto.num)}`);
  if (r.fragment) parts.push(`${inv(r.fragment.invert)}-f`);
  for (const m of r.matches) parts.push(formatMatch(m, family));
  if (r.target) parts.push(formatTarget(r.target, family));
  return parts.join(" ");
}

function chainLine(c: Chain): string {
  const ctr = c.counters ? ` [${c.counters.packets}:${c.counters.bytes}]` : "";
  return `:${c.name} ${c.builtin ? c.policy : "-"}${ctr}`;
}

/** A whole rule set in `iptables-save` format (with counters when `counters`). */
export function formatRuleset(rs: Ruleset, opts: { counters?: boolean } = {}): string {
  const out: string[] = [];
  for (const t of rs.tables.values()) {
    out.push(`*${t.name}`);
    for (const c of t.chains.values()) out.push(chainLine(c));
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        const line = formatRule(r, rs.family);
        out.push(opts.counters && r.counters ? `[${r.counters.packets}:${r.counters.bytes}] ${line}` : line);
      }
    }
    out.push("COMMIT");
  }
  return `${out.join("\n")}\n`;
}
