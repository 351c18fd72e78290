/**
 * Target extensions (`-j NAME`): their options, what they do to the traversal (terminal or
 * continue), where the kernel allows them, and builders to typed targets.
 */
import { type Family, formatAddress } from "../../model/address.js";
import { strtoui, strtouiFull } from "./cnum.js";
import type { Hook, NatRange, PortRange, RawOption, TableName, Target } from "./model.js";
import { type BuildCtx, checkValues, type OptSpec, type ValueCheck } from "./modules.js";
import { defaultRejectWith, LOG_LEVELS, rejectWith, serviceByName } from "./names.js";
import { parseAddr, parseMarkMask, type Result } from "./values.js";

export interface TargetInstance {
  name: string;
  col: number;
  opts: RawOption[];
}

export interface TargetDef {
  name: string;
  family?: Family;
  options: Readonly<Record<string, OptSpec>>;
  aliases?: Readonly<Record<string, string>>;
  /** Whether the packet continues with the next rule after this target. */
  effect: "continue" | "terminal" | "unknown";
  /** Tables the kernel accepts it in (all when absent). */
  tables?: readonly TableName[];
  /** Hooks it is valid from (all when absent). */
  hooks?: readonly Hook[];
  /** Table restriction only enforced by some backends: warn instead of failing. */
  tableIsWarning?: boolean;
  /** Opaque targets: each inner list needs at least one of its options. */
  requires?: ReadonlyArray<readonly string[]>;
  /** Opaque targets: value syntax of some options. */
  values?: Readonly<Record<string, ValueCheck>>;
  build?(t: TargetInstance, ctx: BuildCtx): Target | null;
}

const A0: OptSpec = { args: 0 };
const A1: OptSpec = { args: 1 };
const A2: OptSpec = { args: 2 };

function single(t: TargetInstance, ctx: BuildCtx): Map<string, RawOption> {
  const m = new Map<string, RawOption>();
  for (const o of t.opts) {
    if (m.has(o.name)) ctx.error(o.col, `${t.name}: only one ${o.name} allowed`);
    m.set(o.name, o);
  }
  return m;
}

function mark(o: RawOption, ctx: BuildCtx): { value: number; mask: number } | null {
  const r = parseMarkMask(o.args[0]!);
  if (!r.ok) {
    ctx.error(o.argCol, `${o.name}: expected ${r.error}`);
    return null;
  }
  return r.value;
}

function u32(o: RawOption, ctx: BuildCtx): number | null {
  const v = strtouiFull(o.args[0]!, 0xffffffff);
  if (v === undefined) {
    ctx.error(o.argCol, `${o.name}: expected a 32-bit number, got '${o.args[0]}'`);
    return null;
  }
  return v;
}

/** The MARK-style operations, each as the kernel's (value, mask) xmark pair. */
function xmarkOf(o: RawOption, ctx: BuildCtx): { value: number; mask: number } | null {
  switch (o.name) {
    case "--set-xmark": {
      const r = mark(o, ctx);
      return r;
    }
    case "--set-mark": {
      const r = mark(o, ctx);
      return r ? { value: r.value, mask: (r.mask | r.value) >>> 0 } : null;
    }
    case "--and-mark": {
      const v = u32(o, ctx);
      return v === null ? null : { value: 0, mask: ~v >>> 0 };
    }
    case "--or-mark": {
      const v = u32(o, ctx);
      return v === null ? null : { value: v, mask: v };
    }
    case "--xor-mark": {
      const v = u32(o, ctx);
      return v === null ? null : { value: v, mask: 0 };
    }
    default:
      return null;
  }
}

const MARK_OPS = ["--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"];
const NFLOG_ORDER = ["--nflog-prefix", "--nflog-group", "--nflog-range", "--nflog-size", "--nflog-threshold"];
const ULOG_ORDER = ["--ulog-nlgroup", "--ulog-prefix", "--ulog-cprange", "--ulog-qthreshold"];

function canonicalOrder(opts: RawOption[], order: readonly string[]): RawOption[] {
  return [...opts].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

/** libxt_LOG's and libxt_NFLOG's words (an unterminated quote takes the line's newline into the prefix). */
const NEWLINE_IN_PREFIX = "Newlines not allowed in --log-prefix";

/** What the kernel keeps of an NFLOG prefix: iptables-nft 1.8.9 hands nft's log at most 127 bytes. */
const NFLOG_PREFIX_NFT = 127;
/** iptables-legacy copies the prefix into xt_nflog_info's char prefix[64]. */
const NFLOG_PREFIX_LEGACY = 63;

/**
 * `--nflog-prefix`, as iptables 1.8.9 loads it (checked against iptables-restore/-save): not empty
 * ("Argument must have a minimum length of 1 characters"); longer ones are cut without a word, in
 * bytes, to 127 by iptables-nft (what iptables-save prints back) and to 63 by iptables-legacy. The
 * model keeps what the nf_tables kernel gets; a warning says what is cut.
 */
function nflogPrefix(o: RawOption, ctx: BuildCtx): RawOption {
  const text = o.args[0]!;
  if (text === "") {
    ctx.error(o.argCol, "NFLOG: --nflog-prefix: Argument must have a minimum length of 1 characters");
    return o;
  }
  if (text.includes("\n")) {
    ctx.error(o.argCol, `NFLOG: ${NEWLINE_IN_PREFIX}`);
    return o;
  }
  const bytes = Buffer.from(text);
  if (bytes.length <= NFLOG_PREFIX_LEGACY) return o;
  if (bytes.length <= NFLOG_PREFIX_NFT) {
    ctx.warn(
      o.argCol,
      `NFLOG: --nflog-prefix is ${bytes.length} bytes: iptables-nft keeps it whole, iptables-legacy cuts it to its first ${NFLOG_PREFIX_LEGACY}`,
    );
    return o;
  }
  const kept = bytes.subarray(0, NFLOG_PREFIX_NFT);
  // The byte after the cut continues a UTF-8 sequence: the last character is split.
  const split = (bytes[NFLOG_PREFIX_NFT]! & 0xc0) === 0x80 ? ", splitting a character" : "";
  ctx.warn(
    o.argCol,
    `NFLOG: --nflog-prefix is ${bytes.length} bytes: iptables-nft cuts it to its first ${NFLOG_PREFIX_NFT}${split} (iptables-legacy to ${NFLOG_PREFIX_LEGACY}); the rule is read with the cut prefix`,
  );
  return { ...o, args: [kept.toString()] };
}

/**
 * `--to-ports 1000[-2000]`, read as libxt_MASQUERADE/REDIRECT 1.8.9 read it (the DNAT port syntax):
 * MASQUERADE takes and drops a `/base` (saved as `/0`), REDIRECT refuses it.
 */
function portsArg(o: RawOption, ctx: BuildCtx, target: "MASQUERADE" | "REDIRECT"): PortRange | null {
  const text = o.args[0]!;
  const p = /^\d+:\d+$/.test(text) ? "port-port with a dash (iptables refuses 'port:port')" : natPorts(text);
  if (typeof p === "string" || (p.base !== null && target === "REDIRECT")) {
    const why = typeof p === "string" ? p : "no '/base' (REDIRECT has no shifted port ranges)";
    ctx.error(o.argCol, `${o.name}: expected ${why}`);
    return null;
  }
  if (p.base === 0) ctx.warn(o.argCol, BASE_ZERO);
  return { lo: p.lo, hi: p.hi };
}

const BASE_ZERO =
  "base port 0: iptables-save writes '/0' for SNAT and MASQUERADE (the kernel ignores the base there), but iptables-restore 1.8.9 refuses it";

/**
 * The ports after ':' in --to-destination/--to-source, as iptables 1.8.9 reads them (libxt_DNAT
 * parse_ports, checked against the binary): `port`, a service name, `port-port`, or
 * `port-port/base`. The upper port is a number only; the base port may be a service name, and
 * anything after its digits is ignored; a base port after a single port is refused.
 */
function natPorts(text: string): { lo: number; hi: number; base: number | null } | string {
  const bad = (why: string) => `port[-port], got '${text}' (${why})`;
  const first = strtoui(text, 0, 65535);
  if (first === null) {
    const p = serviceByName(text, null);
    return p === undefined ? bad("not a port number or service name") : { lo: p, hi: p, base: null };
  }
  if (first.end === text.length) return { lo: first.value, hi: first.value, base: null };
  if (text[first.end] !== "-") return bad(`'${text.slice(first.end)}' after the port`);
  const second = strtoui(text, first.end + 1, 65535);
  if (second === null) return bad("the upper port must be a number 0..65535");
  if (second.value < first.value) return bad("the range must have min <= max");
  if (second.end === text.length) return { lo: first.value, hi: second.value, base: null };
  if (text[second.end] !== "/") return bad(`'${text.slice(second.end)}' after the port range`);
  const baseText = text.slice(second.end + 1);
  // libxt_NAT: a number 1..65535 (trailing text ignored), else a service name. A 0 is kept for the
  // caller: iptables-save writes `/0` for SNAT and MASQUERADE, which iptables-restore then refuses.
  const n = strtoui(baseText, 0, 65535)?.value;
  const base = n !== undefined ? n : serviceByName(baseText, null);
  if (base === undefined) return `a base port after '/', got '${baseText}'`;
  return { lo: first.value, hi: second.value, base };
}

/** inet_pton(AF_INET), which libxt_DNAT/SNAT 1.8.9 read addresses with: dotted decimal, no leading zeros. */
const INET_PTON4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function natAddr(s: string, family: Family): Result<bigint> {
  if (family === 4 && !INET_PTON4.test(s)) return { ok: false, error: `an IPv4 address a.b.c.d, got '${s}'` };
  return parseAddr(s, family);
}

/**
 * A NAT address range whose first address is above its last: iptables 1.8.9 loads it as written, and
 * the kernel's NAT (nf_nat_core's find_best_ips_proto, distance max - min + 1 in unsigned arithmetic)
 * wraps around the address space: it picks, by a hash of the connection's addresses, any address from
 * the first up to the family's last or from 0 up to the last one. Checked with packets in a namespace:
 * `--to-destination 10.0.0.5-10.0.0.1` sent every datagram to 171.25.74.56. What it says, or undefined.
 */
export function reversedRange(r: NatRange, family: Family): string | undefined {
  if (r.addrLo === null || r.addrHi === null || r.addrLo <= r.addrHi) return undefined;
  const lo = formatAddress(family, r.addrLo);
  const hi = formatAddress(family, r.addrHi);
  const top = family === 4 ? "255.255.255.255" : "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const zero = family === 4 ? "0.0.0.0" : "::";
  return `the address range ${lo}-${hi} is reversed: the kernel wraps it around the address space and may pick any address from ${lo} to ${top} or from ${zero} to ${hi}`;
}

/** `[ipaddr[-ipaddr]][:port[-port[/base]]]`; IPv6 addresses in brackets when a port follows. */
export function parseNatRange(text: string, family: Family): NatRange | string {
  let addrPart = text;
  let portPart: string | undefined;
  if (family === 6 && text.startsWith("[")) {
    // [a]:p, [a]-[b]:p, [a-b]:p
    const close = text.lastIndexOf("]");
    if (close < 0) return `an address in [brackets], got '${text}'`;
    addrPart = text.slice(1, close).replace("]-[", "-");
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return `':port' after ']', got '${rest}'`;
      portPart = rest.slice(1);
    }
  } else if (family === 6 && text.startsWith(":") && !text.startsWith("::")) {
    // `[]:80` as ip6tables-save writes it: a port without an address.
    addrPart = "";
    portPart = text.slice(1);
  } else if (family === 4) {
    const colon = text.indexOf(":");
    if (colon >= 0) {
      addrPart = text.slice(0, colon);
      portPart = text.slice(colon + 1);
    }
  }
  const r: NatRange = { addrLo: null, addrHi: null, portLo: null, portHi: null, basePort: null };
  if (addrPart !== "") {
    const dash = addrPart.indexOf("-");
    const lo = natAddr(dash < 0 ? addrPart : addrPart.slice(0, dash), family);
    const hi = dash < 0 ? lo : natAddr(addrPart.slice(dash + 1), family);
    if (!lo.ok) return lo.error;
    if (!hi.ok) return hi.error;
    // A reversed range loads (see reversedRange): the caller warns.
    r.addrLo = lo.value;
    r.addrHi = hi.value;
  }
  if (portPart !== undefined) {
    const ports = natPorts(portPart);
    if (typeof ports === "string") return ports;
    r.portLo = ports.lo;
    r.portHi = ports.hi;
    r.basePort = ports.base;
  }
  if (r.addrLo === null && r.portLo === null) return `an address and/or :port, got '${text}'`;
  return r;
}

const DEFS: TargetDef[] = [
  {
    name: "REJECT",
    options: { "--reject-with": A1 },
    effect: "terminal",
    tables: ["filter"],
    hooks: ["INPUT", "FORWARD", "OUTPUT"],
    build(t, ctx) {
      const o = single(t, ctx).get("--reject-with");
      const v6 = ctx.family === 6;
      if (!o) return { kind: "REJECT", col: t.col, with: defaultRejectWith(v6) };
      const w = rejectWith(o.args[0]!, v6);
      if (!w) {
        ctx.error(
          o.argCol,
          `--reject-with: unknown type '${o.args[0]}' for ${v6 ? "ip6tables" : "iptables"}`,
        );
        return null;
      }
      if (w === "tcp-reset" && (ctx.proto?.num !== 6 || ctx.proto.invert)) {
        ctx.error(o.col, "REJECT --reject-with tcp-reset is only valid with '-p tcp'");
      }
      return { kind: "REJECT", col: t.col, with: w };
    },
  },
  {
    name: "LOG",
    options: {
      "--log-level": A1,
      "--log-prefix": A1,
      "--log-tcp-sequence": A0,
      "--log-tcp-options": A0,
      "--log-ip-options": A0,
      "--log-uid": A0,
      "--log-macdecode": A0,
    },
    effect: "continue",
    build(t, ctx) {
      const opts = single(t, ctx);
      let level: number | null = null;
      const lv = opts.get("--log-level");
      if (lv) {
        const a = lv.args[0]!;
        const n = /^\d+$/.test(a) ? Number(a) : LOG_LEVELS[a.toLowerCase()];
        if (n === undefined || n > 7)
          ctx.error(lv.col, `--log-level: expected 0..7 or a syslog level name, got '${a}'`);
        else level = n;
      }
      const prefix = opts.get("--log-prefix")?.args[0] ?? null;
      if (prefix !== null && Buffer.byteLength(prefix) > 29) {
        ctx.error(opts.get("--log-prefix")!.col, "--log-prefix: at most 29 characters");
      } else if (prefix?.includes("\n")) {
        ctx.error(opts.get("--log-prefix")!.argCol, NEWLINE_IN_PREFIX);
      }
      const flags = t.opts.filter((o) => o.args.length === 0).map((o) => o.name.slice("--log-".length));
      return { kind: "LOG", col: t.col, level, prefix, flags };
    },
  },
  {
    name: "NFLOG",
    options: {
      "--nflog-group": A1,
      "--nflog-prefix": A1,
      "--nflog-range": A1,
      "--nflog-size": A1,
      "--nflog-threshold": A1,
    },
    effect: "continue",
    // Kept in the order libxt_NFLOG saves them, so equal targets compare equal.
    build(t, ctx) {
      const options: RawOption[] = [];
      for (const o of t.opts) {
        // libxt_NFLOG 1.8.9 takes each option once; the repeat is refused before its value is read.
        if (options.some((p) => p.name === o.name)) {
          ctx.error(o.col, `NFLOG: option "${o.name}" can only be used once`);
          continue;
        }
        const max =
          o.name === "--nflog-group" || o.name === "--nflog-threshold"
            ? 65535
            : o.name === "--nflog-prefix"
              ? -1
              : 0xffffffff;
        if (max >= 0 && strtouiFull(o.args[0]!, max) === undefined) {
          ctx.error(o.argCol, `NFLOG: bad value for option "${o.name}", or out of range (0-${max})`);
        }
        options.push(o.name === "--nflog-prefix" ? nflogPrefix(o, ctx) : o);
      }
      const range = options.find((o) => o.name === "--nflog-range");
      const size = options.find((o) => o.name === "--nflog-size");
      if (range && size) {
        const later = range.col > size.col ? range : size;
        ctx.error(later.col, 'NFLOG: option "--nflog-range" cannot be used together with "--nflog-size"');
      }
      return { kind: "NFLOG", col: t.col, options: canonicalOrder(options, NFLOG_ORDER) };
    },
  },
  {
    name: "ULOG",
    family: 4,
    options: { "--ulog-nlgroup": A1, "--ulog-prefix": A1, "--ulog-cprange": A1, "--ulog-qthreshold": A1 },
    effect: "continue",
    build: (t) => ({ kind: "ULOG", col: t.col, options: canonicalOrder(t.opts, ULOG_ORDER) }),
  },
  {
    name: "MARK",
    options: { "--set-xmark": A1, "--set-mark": A1, "--and-mark": A1, "--or-mark": A1, "--xor-mark": A1 },
    effect: "continue",
    build(t, ctx) {
      if (t.opts.length !== 1) {
        ctx.error(
          t.col,
          "MARK: expected exactly one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark",
        );
        if (t.opts.length === 0) return null;
      }
      const x = xmarkOf(t.opts[0]!, ctx);
      return x ? { kind: "MARK", col: t.col, ...x } : null;
    },
  },
  {
    name: "CONNMARK",
    options: {
      "--set-xmark": A1,
      "--set-mark": A1,
      "--and-mark": A1,
      "--or-mark": A1,
      "--xor-mark": A1,
      "--save-mark": A0,
      "--restore-mark": A0,
      "--nfmask": A1,
      "--ctmask": A1,
      "--mask": A1,
    },
    effect: "continue",
    build(t, ctx) {
      const opts = single(t, ctx);
      const ops = t.opts.filter(
        (o) => MARK_OPS.includes(o.name) || o.name === "--save-mark" || o.name === "--restore-mark",
      );
      if (ops.length !== 1) {
        ctx.error(
          t.col,
          "CONNMARK: expected exactly one of --set-xmark/--set-mark/…, --save-mark, --restore-mark",
        );
        if (ops.length === 0) return null;
      }
      const op = ops[0]!;
      if (MARK_OPS.includes(op.name)) {
        const x = xmarkOf(op, ctx);
        return x ? { kind: "CONNMARK", col: t.col, mode: "set", ...x, nfmask: 0, ctmask: 0 } : null;
      }
      // --mask sets both masks (old syntax); --nfmask/--ctmask set one each.
      const m = opts.get("--mask");
      const both = m ? u32(m, ctx) : 0xffffffff;
      const nf = opts.get("--nfmask");
      const ct = opts.get("--ctmask");
      const nfmask = nf ? u32(nf, ctx) : both;
      const ctmask = ct ? u32(ct, ctx) : both;
      if (nfmask === null || ctmask === null) return null;
      const mode = op.name === "--save-mark" ? "save" : "restore";
      return { kind: "CONNMARK", col: t.col, mode, value: 0, mask: 0, nfmask, ctmask };
    },
  },
  {
    name: "TRACE",
    options: {},
    effect: "continue",
    tables: ["raw"],
    tableIsWarning: true,
    build: (t) => ({ kind: "TRACE", col: t.col }),
  },
  {
    name: "NOTRACK",
    options: {},
    effect: "continue",
    tables: ["raw"],
    build: (t) => ({ kind: "NOTRACK", col: t.col }),
  },
  {
    name: "CT",
    options: {
      "--notrack": A0,
      "--helper": A1,
      "--ctevents": A1,
      "--expevents": A1,
      "--zone-orig": A1,
      "--zone-reply": A1,
      "--zone": A1,
      "--timeout": A1,
    },
    effect: "continue",
    tables: ["raw"],
    build(t, ctx) {
      const notrack = t.opts.some((o) => o.name === "--notrack");
      const other = t.opts.filter((o) => o.name !== "--notrack");
      if (notrack && other.length > 0)
        ctx.error(other[0]!.col, "CT: --notrack cannot be combined with other options");
      return { kind: "CT", col: t.col, notrack, options: other };
    },
  },
  ...(["DNAT", "SNAT"] as const).map(
    (name): TargetDef => ({
      name,
      options:
        name === "DNAT"
          ? { "--to-destination": A1, "--random": A0, "--persistent": A0 }
          : { "--to-source": A1, "--random": A0, "--random-fully": A0, "--persistent": A0 },
      aliases: name === "DNAT" ? { "--to": "--to-destination" } : { "--to": "--to-source" },
      effect: "terminal",
      tables: ["nat"],
      hooks: name === "DNAT" ? ["PREROUTING", "OUTPUT"] : ["POSTROUTING", "INPUT"],
      build(t, ctx) {
        const ranges: NatRange[] = [];
        for (const o of t.opts) {
          if (o.name !== "--to-destination" && o.name !== "--to-source") continue;
          const r = parseNatRange(o.args[0]!, ctx.family);
          if (typeof r === "string") ctx.error(o.argCol, `${o.name}: expected ${r}`);
          else if (r.basePort === 0 && name === "DNAT")
            ctx.error(o.argCol, `${o.name}: expected a base port 1..65535 after '/', got 0`);
          else {
            if (r.basePort === 0) ctx.warn(o.argCol, BASE_ZERO);
            const reversed = reversedRange(r, ctx.family);
            if (reversed) ctx.warn(o.argCol, `${o.name}: ${reversed}`);
            ranges.push(r);
          }
        }
        if (ranges.length === 0 && !t.opts.some((o) => o.name.startsWith("--to-"))) {
          ctx.error(t.col, `${name}: needs --to-${name === "DNAT" ? "destination" : "source"}`);
        }
        const has = (n: string) => t.opts.some((o) => o.name === n);
        return {
          kind: name,
          col: t.col,
          ranges,
          random: has("--random"),
          randomFully: has("--random-fully"),
          persistent: has("--persistent"),
        };
      },
    }),
  ),
  ...(["MASQUERADE", "REDIRECT"] as const).map(
    (name): TargetDef => ({
      name,
      options:
        name === "MASQUERADE"
          ? { "--to-ports": A1, "--random": A0, "--random-fully": A0 }
          : { "--to-ports": A1, "--random": A0 },
      effect: "terminal",
      tables: ["nat"],
      hooks: name === "MASQUERADE" ? ["POSTROUTING"] : ["PREROUTING", "OUTPUT"],
      build(t, ctx) {
        const opts = single(t, ctx);
        const p = opts.get("--to-ports");
        const ports = p ? portsArg(p, ctx, name) : null;
        const proto = ctx.proto;
        const portful = [6, 17, 132, 33, 136];
        if (p && (!proto || proto.invert || !portful.includes(proto.num))) {
          ctx.error(
            p.col,
            `${name}: --to-ports needs '-p tcp', '-p udp', '-p sctp', '-p dccp' or '-p udplite'`,
          );
        }
        return {
          kind: name,
          col: t.col,
          ports,
          random: opts.has("--random"),
          randomFully: opts.has("--random-fully"),
        };
      },
    }),
  ),
  // ---- kept as opaque: their effect on filtering verdicts is known (continue / terminal) ----
  op("AUDIT", "continue", { "--type": A1 }),
  op("CHECKSUM", "continue", { "--checksum-fill": A0 }, { tables: ["mangle"], tableIsWarning: true }),
  op(
    "CLASSIFY",
    "continue",
    { "--set-class": A1 },
    { tables: ["mangle"], hooks: ["FORWARD", "OUTPUT", "POSTROUTING"] },
  ),
  // CLUSTERIP drops packets for other nodes: the verdict depends on the hash.
  op(
    "CLUSTERIP",
    "unknown",
    {
      "--new": A0,
      "--hashmode": A1,
      "--clustermac": A1,
      "--total-nodes": A1,
      "--local-node": A1,
      "--hash-init": A1,
    },
    { family: 4 },
  ),
  op("CONNSECMARK", "continue", { "--save": A0, "--restore": A0 }),
  op("DNPT", "continue", { "--src-pfx": A1, "--dst-pfx": A1 }, { family: 6, tables: ["mangle"] }),
  op("SNPT", "continue", { "--src-pfx": A1, "--dst-pfx": A1 }, { family: 6, tables: ["mangle"] }),
  op(
    "DSCP",
    "continue",
    { "--set-dscp": A1, "--set-dscp-class": A1 },
    { tables: ["mangle"], tableIsWarning: true },
  ),
  op("ECN", "continue", { "--ecn-tcp-remove": A0 }, { family: 4, tables: ["mangle"], tableIsWarning: true }),
  ttlTarget("HL"),
  ttlTarget("TTL"),
  op("HMARK", "continue", {
    "--hmark-tuple": A1,
    "--hmark-mod": A1,
    "--hmark-offset": A1,
    "--hmark-src-prefix": A1,
    "--hmark-dst-prefix": A1,
    "--hmark-sport-mask": A1,
    "--hmark-dport-mask": A1,
    "--hmark-spi-mask": A1,
    "--hmark-proto-mask": A1,
    "--hmark-rnd": A1,
  }),
  op("IDLETIMER", "continue", { "--timeout": A1, "--label": A1, "--alarm": A0 }),
  op("LED", "continue", { "--led-trigger-id": A1, "--led-delay": A1, "--led-always-blink": A0 }),
  op("NETMAP", "terminal", { "--to": A1 }, { tables: ["nat"] }),
  // NFQUEUE hands the verdict to a user-space program.
  op("NFQUEUE", "unknown", {
    "--queue-num": A1,
    "--queue-balance": A1,
    "--queue-bypass": A0,
    "--queue-cpu-fanout": A0,
    "--fail-open": A0,
  }),
  op("RATEEST", "continue", { "--rateest-name": A1, "--rateest-interval": A1, "--rateest-ewmalog": A1 }),
  op("SECMARK", "continue", { "--selctx": A1 }),
  op("SET", "continue", {
    "--add-set": A2,
    "--del-set": A2,
    "--map-set": A2,
    "--timeout": A1,
    "--exist": A0,
    "--map-mark": A0,
    "--map-prio": A0,
    "--map-queue": A0,
  }),
  op("SYNPROXY", "unknown", {
    "--mss": A1,
    "--wscale": A1,
    "--sack-perm": A0,
    "--timestamp": A0,
    "--ecn": A0,
  }),
  op(
    "TCPMSS",
    "continue",
    { "--set-mss": A1, "--clamp-mss-to-pmtu": A0 },
    { hooks: ["FORWARD", "OUTPUT", "POSTROUTING"] },
  ),
  op("TCPOPTSTRIP", "continue", { "--strip-options": A1 }, { tables: ["mangle"], tableIsWarning: true }),
  op("TEE", "continue", { "--gateway": A1, "--oif": A1 }),
  op(
    "TOS",
    "continue",
    { "--set-tos": A1, "--and-tos": A1, "--or-tos": A1, "--xor-tos": A1 },
    { tables: ["mangle"], tableIsWarning: true },
  ),
  op("TPROXY", "terminal", { "--on-port": A1, "--on-ip": A1, "--tproxy-mark": A1 }, { tables: ["mangle"] }),
  op("MIRROR", "terminal", {}, { family: 4 }),
];

/** `-j TTL` (IPv4) / `-j HL` (IPv6): set, decrease or increase the TTL / hop limit (libxt_TTL, libxt_HL). */
function ttlTarget(name: "TTL" | "HL"): TargetDef {
  const l = name.toLowerCase();
  const opts = [`--${l}-set`, `--${l}-dec`, `--${l}-inc`];
  return {
    name,
    family: name === "TTL" ? 4 : 6,
    options: Object.fromEntries(opts.map((o) => [o, A1])),
    effect: "continue",
    tables: ["mangle"],
    tableIsWarning: true,
    build(t, ctx) {
      if (t.opts.length !== 1) {
        ctx.error(t.col, `${name}: expected exactly one of ${opts.join(", ")}`);
        if (t.opts.length === 0) return null;
      }
      const o = t.opts[0]!;
      const mode = o.name.slice(-3) as "set" | "dec" | "inc";
      const v = strtouiFull(o.args[0]!, 255);
      // Decreasing or increasing by 0 is refused ("out of range (1-255)").
      if (v === undefined || (mode !== "set" && v === 0)) {
        ctx.error(
          o.argCol,
          `${name}: ${o.name}: expected a number ${mode === "set" ? 0 : 1}..255, got '${o.args[0]}'`,
        );
        return null;
      }
      return { kind: "TTL", col: t.col, name, mode, value: v };
    },
  };
}

function op(
  name: string,
  effect: TargetDef["effect"],
  options: Record<string, OptSpec>,
  extra: Partial<Pick<TargetDef, "family" | "tables" | "tableIsWarning" | "hooks">> = {},
): TargetDef {
  return { name, options, effect, ...extra };
}

const U16: ValueCheck = { kind: "uint", max: 65535 };
const TARGET_RULES: Record<string, Pick<TargetDef, "requires" | "values">> = {
  CHECKSUM: { requires: [["--checksum-fill"]] },
  CLASSIFY: { requires: [["--set-class"]] },
  TCPMSS: { requires: [["--set-mss", "--clamp-mss-to-pmtu"]], values: { "--set-mss": U16 } },
  DSCP: {
    requires: [["--set-dscp", "--set-dscp-class"]],
    values: { "--set-dscp": { kind: "uint", max: 63 } },
  },
  TOS: { requires: [["--set-tos", "--and-tos", "--or-tos", "--xor-tos"]] },
  SECMARK: { requires: [["--selctx"]] },
  CONNSECMARK: { requires: [["--save", "--restore"]] },
  SET: { requires: [["--add-set", "--del-set", "--map-set"]] },
  TEE: { requires: [["--gateway"]] },
  TPROXY: { requires: [["--on-port"]], values: { "--on-port": U16 } },
  AUDIT: { requires: [["--type"]] },
  IDLETIMER: { requires: [["--timeout"], ["--label"]] },
  LED: { requires: [["--led-trigger-id"]] },
  RATEEST: { requires: [["--rateest-name"], ["--rateest-interval"], ["--rateest-ewmalog"]] },
  NFQUEUE: { values: { "--queue-num": U16 } },
};
for (const d of DEFS) Object.assign(d, TARGET_RULES[d.name] ?? {});

/** iptables' "must be specified" and value checks for targets kept opaque. */
export function checkOpaqueTarget(def: TargetDef, t: TargetInstance, ctx: BuildCtx): void {
  checkValues(def.name, def.values, t.opts, ctx);
  for (const group of def.requires ?? []) {
    if (t.opts.some((o) => group.includes(o.name))) continue;
    ctx.error(
      t.col,
      group.length === 1
        ? `${def.name}: option "${group[0]}" must be specified`
        : `${def.name}: at least one of ${group.join(", ")} is required`,
    );
  }
}

const BY_NAME = new Map(DEFS.map((d) => [d.name, d]));

/** Verdicts built into x_tables (no extension, no options). */
export const STANDARD_TARGETS = new Set(["ACCEPT", "DROP", "RETURN", "QUEUE"]);

/** STANDARD_TARGETS.has by comparison: the parser's hot path does not hash a fresh slice. */
export function isVerdict(name: string): boolean {
  return name === "ACCEPT" || name === "DROP" || name === "RETURN" || name === "QUEUE";
}

export function findTarget(name: string, family: Family): TargetDef | undefined {
  const d = BY_NAME.get(name);
  return d && (d.family === undefined || d.family === family) ? d : undefined;
}

/** True for names iptables could load as a target on either family (chains may not use them). */
export function isTargetName(name: string): boolean {
  return STANDARD_TARGETS.has(name) || BY_NAME.has(name);
}
