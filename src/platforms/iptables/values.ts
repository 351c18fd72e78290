/**
 * Value parsers with iptables' exact acceptance rules (libxtables): IPv4 addresses with 1–4
 * parts in C `strtoul(…, 0)` notation (so `010.1.1.1` is 8.1.1.1 and `10.1` is 10.1.0.0),
 * dotted or length masks (non-contiguous dotted masks are legal), host bits silently cleared,
 * ports by number or service name, marks in decimal/hex/octal. Each returns a value or a message
 * completing "expected …" / "invalid …", never throws.
 */

import { type Family, formatAddress } from "../../model/address.js";
import { ipaddr } from "../../model/ipaddr.js";
import { strtoui, strtouiFull } from "./cnum.js";
import type { AddrRange, AddrSpec, Net, PortRange } from "./model.js";
import { type PortSyntax, type ServiceProto, serviceByName, servicePort, XTABLES_ANY } from "./names.js";

export type Result<T> = { ok: true; value: T; warning?: string } | { ok: false; error: string };

const ok = <T>(value: T, warning?: string): Result<T> =>
  warning === undefined ? { ok: true, value } : { ok: true, value, warning };
const fail = <T>(error: string): Result<T> => ({ ok: false, error });

/**
 * A number part of glibc `inet_aton`: C notation (`0x1f`, `017` octal, `15`), digits only (no blanks or
 * '+', unlike xtables_strtoui: see cnum.ts for the numbers iptables reads itself).
 */
export function parseCUint(s: string, max: number): number | undefined {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = s.length === 1 ? 0 : Number.parseInt(s.slice(1), 8);
  else if (/^[1-9][0-9]*$/.test(s)) v = Number(s);
  else return undefined;
  return Number.isSafeInteger(v) && v <= max ? v : undefined;
}

/** Decimal only (ports, lengths, TTLs). */
export function parseDec(s: string, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= max ? v : undefined;
}

const FULL4 = 0xffffffffn;
const FULL6 = (1n << 128n) - 1n;
const full = (f: Family) => (f === 4 ? FULL4 : FULL6);

function lenMask(f: Family, len: number): bigint {
  const bits = f === 4 ? 32 : 128;
  return len === 0 ? 0n : (full(f) >> BigInt(bits - len)) << BigInt(bits - len);
}

/** Prefix length of a contiguous mask, or null. */
export function maskLen(f: Family, mask: bigint): number | null {
  const bits = f === 4 ? 32 : 128;
  const inv = ~mask & full(f);
  if ((inv & (inv + 1n)) !== 0n) return null;
  let n = 0;
  for (let v = inv; v > 0n; v >>= 1n) n++;
  return bits - n;
}

/**
 * iptables' own IPv4 parser (xtables `__numeric_to_ipaddr`): 1–4 parts, missing parts are zero, each
 * part read by xtables_strtoui (leading blanks and '+' allowed). It parses a copy cut to 19 characters
 * (`char buf[20]`), so `00000000010.00000000.0.1` is 8.0.0.0.
 */
function parseV4Numeric(s: string, isMask: boolean): { value: bigint; canonical: boolean } | undefined {
  const parts = (s.length > 19 ? s.slice(0, 19) : s).split(".");
  if (parts.length > 4 || (isMask && parts.length !== 4)) return undefined;
  let v = 0n;
  let canonical = parts.length === 4 && s.length <= 19;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    let byte = 0;
    if (p !== undefined) {
      const b = strtouiFull(p, 255);
      if (b === undefined) return undefined;
      if (String(b) !== p) canonical = false;
      byte = b;
    }
    v = (v << 8n) | BigInt(byte);
  }
  return { value: v, canonical };
}

function parseV6(s: string): bigint | undefined {
  if (s.includes("%") || !ipaddr().IPv6.isValid(s)) return undefined;
  let v = 0n;
  for (const b of ipaddr().IPv6.parse(s).toByteArray()) v = (v << 8n) | BigInt(b);
  return v;
}

/** Plain address (no mask) of the given family. */
export function parseAddr(s: string, f: Family): Result<bigint> {
  if (f === 4) {
    const fast = s.indexOf("/") < 0 ? fastV4(s) : null;
    if (fast) return { ok: true, value: fast.addr };
    const r = parseV4Numeric(s, false);
    if (r)
      return ok(
        r.value,
        r.canonical ? undefined : `'${s}' is read by iptables as ${formatAddress(4, r.value)}`,
      );
    if (s.includes(":") && parseV6(s) !== undefined) return fail(`an IPv4 address, got IPv6 '${s}'`);
    return fail(`an IPv4 address, got '${s}'`);
  }
  const v = parseV6(s);
  if (v !== undefined) return ok(v);
  if (parseV4Numeric(s, false)) return fail(`an IPv6 address, got IPv4 '${s}'`);
  return fail(`an IPv6 address, got '${s}'`);
}

/**
 * glibc `inet_aton`, which getaddrinfo applies to numeric "host names": 1–4 parts in C notation,
 * the last part filling the remaining bytes (`500` is 0.0.1.244, `10.300` is 10.0.1.44). iptables
 * reaches it for -s/-d when its own parser refused the text.
 */
function inetAton(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length > 4) return undefined;
  let v = 0n;
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1;
    const max = last ? 2 ** (8 * (4 - i)) - 1 : 255;
    const n = parseCUint(parts[i]!, max);
    if (n === undefined) return undefined;
    v = last ? (v << BigInt(8 * (4 - i))) | BigInt(n) : (v << 8n) | BigInt(n);
  }
  return v;
}

/**
 * A prefix length of XTTYPE_PLEN options as iptables 1.8.9 loads it: 0..32 (IPv4) or 0..128 (IPv6) by
 * xtables_strtoui, else a mask through getaddrinfo (`inet_aton` for IPv4: `4294967295` is /32). Null
 * when neither, or the mask is not contiguous (stored as 255, which the kernel refuses).
 */
export function parsePlen(text: string, f: Family): number | null {
  const r = plenOrMask(text, f);
  return r === undefined ? null : r.len;
}

/** XTTYPE_PLEN's reading: a length, else a mask address (its length null when not contiguous). */
function plenOrMask(text: string, f: Family): { len: number | null; mask?: bigint } | undefined {
  const n = strtouiFull(text, f === 4 ? 32 : 128);
  if (n !== undefined) return { len: n };
  const mask = f === 4 ? inetAton(text) : parseV6(text);
  return mask === undefined ? undefined : { len: maskLen(f, mask), mask };
}

/**
 * A prefix length of XTTYPE_PLENMASK options (connlimit `--connlimit-mask`) as iptables 1.8.9 loads it
 * (checked against iptables-save and the kernel): read as XTTYPE_PLEN (see parsePlen), then turned into
 * a mask. A mask address that is not contiguous (IPv4 `255.0.255.0`, or `33`, which is 0.0.0.33) is
 * taken, but libxtables 1.8.9 builds no mask from it, so the field keeps the extension's default, all
 * ones: /32 or /128, with a warning.
 */
export function parsePlenMask(text: string, f: Family): Result<number> {
  const bits = f === 4 ? 32 : 128;
  const r = plenOrMask(text, f);
  if (r === undefined) return fail(`a prefix length 0..${bits} or a netmask, got '${text}'`);
  if (r.len !== null) return ok(r.len);
  const shown = formatAddress(f, r.mask!);
  const what = shown === text ? `the netmask ${shown}` : `'${text}' (the netmask ${shown})`;
  return ok(
    bits,
    `${what} is not contiguous: iptables 1.8.9 keeps the default mask instead, /${bits} (iptables-save prints ${bits})`,
  );
}

/**
 * An IPv4 `addr[/mask]` of XTTYPE_HOSTMASK options (conntrack `--ctorig*`/`--ctrepl*`, policy
 * `--tunnel-*`), as iptables 1.8.9 loads it (checked against the binary): the address through
 * getaddrinfo, i.e. `inet_aton` (`10.1` is 10.0.0.1); the mask a prefix length 0..32 in C notation,
 * else an address read the same way (`4278190080` is /8). `host`: a non-contiguous mask, which
 * iptables drops, loading the address as a host.
 */
export function parseHostmask4(text: string): Result<{ net: Net; host: boolean }> {
  const slash = text.indexOf("/");
  const a = slash < 0 ? text : text.slice(0, slash);
  const addr = inetAton(a);
  if (addr === undefined) return fail(`an IPv4 address, got '${a}'`);
  let len = 32;
  let host = false;
  if (slash >= 0) {
    const m = text.slice(slash + 1);
    const r = plenOrMask(m, 4);
    if (r === undefined) return fail(`a prefix length 0..32 or a netmask after '/', got '${m}'`);
    if (r.len === null) host = true;
    else len = r.len;
  }
  const mask = lenMask(4, len);
  return ok({ net: { kind: "net", family: 4, addr: addr & mask, mask, len }, host });
}

// Host names as resolvers accept them (letters, digits, '-', '_', dots); must contain a non-digit.
const HOSTNAME = /^(?=.*[A-Za-z_])[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

/**
 * `addr`, `addr/len`, `addr/dotted-mask` (IPv4), `addr/ipv6-mask` (IPv6), or a host name
 * (optionally with a mask). `hostBits: "clear"` clears host bits with a warning, as `-s` does.
 */
export function parseNet(text: string, f: Family, opts: { allowName: boolean }): Result<AddrSpec> {
  if (f === 4) {
    const net = fastV4(text);
    if (net) return { ok: true, value: net };
  }
  const slash = text.indexOf("/");
  const a = slash < 0 ? text : text.slice(0, slash);
  const m = slash < 0 ? undefined : text.slice(slash + 1);
  const bits = f === 4 ? 32 : 128;
  let mask = full(f);
  if (m !== undefined) {
    // parse_ipmask/parse_ip6mask: a mask address first, else a length by xtables_strtoui.
    const n = strtouiFull(m, bits);
    if (n !== undefined && !m.includes(".") && !m.includes(":")) mask = lenMask(f, n);
    else if (f === 4 && m.includes(".")) {
      const r = parseV4Numeric(m, true);
      if (!r) return fail(`a prefix length 0..32 or a dotted netmask after '/', got '${m}'`);
      mask = r.value;
    } else if (f === 6 && m.includes(":")) {
      const r = parseV6(m);
      if (r === undefined) return fail(`a prefix length 0..128 or an IPv6 netmask after '/', got '${m}'`);
      mask = r;
    } else return fail(`a prefix length 0..${bits} after '/', got '${m}'`);
  }
  let addr = parseAddr(a, f);
  if (!addr.ok && opts.allowName && f === 4) {
    const v = inetAton(a);
    if (v !== undefined)
      addr = ok(v, `'${a}' is read by iptables (through the resolver) as ${formatAddress(4, v)}`);
  }
  if (!addr.ok) {
    if (opts.allowName && HOSTNAME.test(a)) return ok<AddrSpec>({ kind: "name", name: text });
    return addr;
  }
  const net: Net = { kind: "net", family: f, addr: addr.value & mask, mask, len: maskLen(f, mask) };
  let warning = addr.warning;
  if (net.addr !== addr.value) {
    const shown = formatNet(net);
    warning = `host bits set in '${text}'; iptables uses ${shown}`;
  }
  return ok<AddrSpec>(net, warning);
}

/**
 * An address as iptables prints it (inet_ntop): IPv6 in RFC 5952 form, except that glibc writes
 * IPv4-mapped and IPv4-compatible addresses with a dotted tail (`::ffff:127.0.0.1`).
 */
export function formatIptAddr(family: Family, addr: bigint): string {
  if (family === 4) return formatAddress(4, addr);
  const w: number[] = [];
  for (let i = 7; i >= 0; i--) w.push(Number((addr >> BigInt(16 * i)) & 0xffffn));
  // Longest run of zero words (length >= 2), leftmost on ties.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  const v4tail = best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff));
  const hexw = (i: number) => w[i]!.toString(16);
  if (v4tail) {
    const v4 = `${w[6]! >> 8}.${w[6]! & 255}.${w[7]! >> 8}.${w[7]! & 255}`;
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  if (best < 0) return w.map((_, i) => hexw(i)).join(":");
  const head = w.slice(0, best).map((_, i) => hexw(i));
  const tail = w.slice(best + bestLen).map((_, i) => hexw(best + bestLen + i));
  return `${head.join(":")}::${tail.join(":")}`;
}

/** As iptables-save prints `-s`/`-d`: `10.0.0.0/8`, `1.2.3.4/32`, `1.0.3.0/255.0.255.0`. */
export function formatNet(n: Net, opts: { omitHostLen?: boolean } = {}): string {
  const a = formatIptAddr(n.family, n.addr);
  const bits = n.family === 4 ? 32 : 128;
  if (n.len === bits && opts.omitHostLen) return a;
  if (n.len !== null) return `${a}/${n.len}`;
  return `${a}/${formatIptAddr(n.family, n.mask)}`;
}

const TWO32 = 1n << 32n;
const MASK4: bigint[] = [];
for (let len = 0; len <= 32; len++) MASK4.push(lenMask(4, len));

/** [0]: the address v4At read last, as a signed 32-bit integer (negative from 128.0.0.0 up). */
export const V4_ADDR = new Int32Array(1);

/**
 * The common case, canonical `a.b.c.d[/len]` with host bits clear, read from `text[s, e)` without
 * regexes, splits or allocation: dumps are mostly this, and it is the parser's hottest path. The
 * prefix length (0..32), the address in `V4_ADDR[0]`; -1 for anything else (parseNet's slow path).
 */
export function v4At(text: string, s: number, e: number): number {
  // Int32 arithmetic only (shifts, masks): addresses from 128.0.0.0 up do not fit a small
  // integer, and a product or remainder of them would deoptimize the code compiled for the
  // addresses seen before.
  let v = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  let i = s;
  for (; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero: octal in iptables, slow path
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46 || c === 47) {
      if (digits === 0) return -1;
      v = (v << 8) | part;
      parts++;
      part = 0;
      digits = 0;
      if (c === 47) break;
      if (parts === 4) return -1;
    } else return -1;
  }
  if (i === e) {
    if (digits === 0) return -1;
    v = (v << 8) | part;
    parts++;
  }
  if (parts !== 4) return -1;
  let len = 32;
  if (i < e) {
    // after '/': 1 or 2 decimal digits, no leading zero
    const rest = e - i - 1;
    if (rest < 1 || rest > 2) return -1;
    const d0 = text.charCodeAt(i + 1) - 48;
    const d1 = rest === 2 ? text.charCodeAt(i + 2) - 48 : -1;
    if (d0 < 0 || d0 > 9 || (rest === 2 && (d1 < 0 || d1 > 9 || d0 === 0))) return -1;
    len = rest === 2 ? d0 * 10 + d1 : d0;
    if (len > 32) return -1;
  }
  // Host bits set: the slow path warns.
  if (len === 0 ? v !== 0 : (v & ~(-1 << (32 - len))) !== 0) return -1;
  V4_ADDR[0] = v;
  return len;
}

function fastV4(text: string): Net | null {
  const len = v4At(text, 0, text.length);
  if (len < 0) return null;
  const v = V4_ADDR[0]!;
  return { kind: "net", family: 4, addr: v < 0 ? BigInt(v) + TWO32 : BigInt(v), mask: MASK4[len]!, len };
}

/** `from[-to]` of `-m iprange`. */
export function parseAddrRange(text: string, f: Family): Result<AddrRange> {
  // IPv6 addresses contain no '-', so the first '-' splits.
  const dash = text.indexOf("-");
  const lo = parseAddr(dash < 0 ? text : text.slice(0, dash), f);
  if (!lo.ok) return lo;
  if (dash < 0) return ok({ lo: lo.value, hi: lo.value }, lo.warning);
  const hi = parseAddr(text.slice(dash + 1), f);
  if (!hi.ok) return hi;
  return ok({ lo: lo.value, hi: hi.value }, lo.warning ?? hi.warning);
}

/** One port: a number or a service name, read as the extension reads it (see PortSyntax). */
export function parsePort(text: string, syntax: PortSyntax = XTABLES_ANY): Result<number> {
  const p = servicePort(text, syntax);
  if (p === undefined) {
    if (/^\+?\d+$/.test(text.trim())) return fail(`a port 0..65535, got '${text}'`);
    const known = serviceByName(text, null) !== undefined;
    return fail(
      known && syntax.kind === "xtables" && syntax.proto
        ? `a port number or ${syntax.proto} service name, got '${text}' (not a ${syntax.proto} service in /etc/services)`
        : `a port number or service name, got '${text}'`,
    );
  }
  return ok(p);
}

/** `port`, `lo:hi`, `lo:` (to 65535), `:hi` (from 0) — tcp/udp/sctp/dccp `--sport`/`--dport`. */
export function parsePortRange(text: string, syntax: PortSyntax = XTABLES_ANY, sep = ":"): Result<PortRange> {
  const i = text.indexOf(sep);
  if (i < 0) {
    const p = parsePort(text, syntax);
    return p.ok ? ok({ lo: p.value, hi: p.value }) : p;
  }
  const a = text.slice(0, i);
  const b = text.slice(i + 1);
  const lo = a === "" ? ok(0) : parsePort(a, syntax);
  if (!lo.ok) return lo;
  const hi = b === "" ? ok(65535) : parsePort(b, syntax);
  if (!hi.ok) return hi;
  // Reversed ranges are accepted by some modules (udp, dccp, conntrack) and then match nothing;
  // callers that iptables makes strict (tcp, sctp, multiport) check lo <= hi themselves.
  return ok({ lo: lo.value, hi: hi.value });
}

/**
 * `--dports 22,80:90` (multiport, libxt_multiport): at most 15 ports, a range counting as two; both
 * ends of a range are required and min < max (500:500 is refused); names for the rule's protocol.
 */
export function parseMultiport(text: string, proto: ServiceProto | null): Result<PortRange[]> {
  const syntax: PortSyntax = { kind: "xtables", proto };
  const out: PortRange[] = [];
  let slots = 0;
  for (const part of text.split(",")) {
    if (part === "") return fail(`a port list like 22,80:90, got '${text}'`);
    const colon = part.indexOf(":");
    const lo = parsePort(colon < 0 ? part : part.slice(0, colon), syntax);
    if (!lo.ok) return lo;
    const hi = colon < 0 ? lo : parsePort(part.slice(colon + 1), syntax);
    if (!hi.ok) return hi;
    if (colon >= 0 && lo.value >= hi.value) {
      return fail(`port ranges with min < max (iptables: invalid portrange), got '${part}'`);
    }
    slots += colon < 0 ? 1 : 2;
    out.push({ lo: lo.value, hi: hi.value });
  }
  if (slots > 15) return fail(`at most 15 ports (a range counts as two), got ${slots}`);
  return ok(out);
}

/**
 * `value[/mask]` of marks (xtables_parse_mark_mask): 32-bit numbers by xtables_strtoui (C notation,
 * leading blanks, '+'); the mask defaults to 0xffffffff.
 */
export function parseMarkMask(text: string): Result<{ value: number; mask: number }> {
  // The usual spellings (`0x4000/0x4000`) by parseCUint, whose numbers strtoui reads alike: strtoui
  // hot here costs its optimising compilations, more than all the marks of a big dump.
  const slash = text.indexOf("/");
  const pv = parseCUint(slash < 0 ? text : text.slice(0, slash), 0xffffffff);
  const pm = slash < 0 ? 0xffffffff : parseCUint(text.slice(slash + 1), 0xffffffff);
  if (pv !== undefined && pm !== undefined) return ok({ value: pv, mask: pm });
  const v = strtoui(text, 0, 0xffffffff);
  if (v && v.end === text.length) return ok({ value: v.value, mask: 0xffffffff });
  const m = v && text.charCodeAt(v.end) === 47 ? strtoui(text, v.end + 1, 0xffffffff) : null; // '/'
  if (v && m && m.end === text.length) return ok({ value: v.value, mask: m.value });
  return fail(`a 32-bit value[/mask], got '${text}'`);
}

/**
 * An xtables uint range (XTTYPE_UINT*RC, xtopt_parse_mint): `a`, `a:b`, `:b` (from 0), `a:` (to max),
 * an empty text (0); each number by xtables_strtoul, so C notation, blanks and '+'. No order check:
 * a reversed range is loaded and the kernel's `min <= x && x <= max` never holds.
 */
export function parseUintRange(text: string, max: number): Result<{ lo: number; hi: number }> {
  const parts = text.split(":");
  if (parts.length > 2) return fail(`a number or range lo:hi (at most 2 components), got '${text}'`);
  const [lo, hi] = parts.map((p, i) => (p === "" ? (i === 0 ? 0 : max) : strtouiFull(p, max)));
  if (lo === undefined || (parts.length === 2 && hi === undefined))
    return fail(`a number 0..${max} or range lo:hi, got '${text}'`);
  return ok({ lo, hi: hi ?? lo });
}

export const hex = (v: number): string => `0x${v.toString(16)}`;

export function formatPortRange(r: PortRange, sep = ":"): string {
  return r.lo === r.hi ? String(r.lo) : `${r.lo}${sep}${r.hi}`;
}
