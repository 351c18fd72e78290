import { ipaddr } from "./ipaddr.js";

export type Family = 4 | 6;

/** An IPv4 or IPv6 prefix; `addr` is the network address as an unsigned integer. */
export interface Prefix {
  family: Family;
  addr: bigint;
  len: number;
}

export class AddressError extends Error {
  constructor(
    readonly value: string,
    reason: string,
  ) {
    super(`invalid address '${value}': ${reason}`);
  }
}

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

function bytesToBigint(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigintToBytes(v: bigint, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function hostMask(f: Family, len: number): bigint {
  const bits = BigInt(familyBits(f) - len);
  return (1n << bits) - 1n;
}

/**
 * `a.b.c.d` or `a.b.c.d/len` in four decimal parts without leading zeros (what ipaddr.js's
 * isValidFourPartDecimal accepts) and a length of at most 32, read without ipaddr.js (a hub's
 * thousand peers went through three ipaddr.js parses each); null for anything else.
 */
function dottedQuad(value: string): { raw: bigint; addr: bigint; len: number } | null {
  let v = 0;
  let i = 0;
  const n = value.length;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (value.charCodeAt(i) !== 46) return null;
      i++;
    }
    const s = i;
    let x = 0;
    while (i < n && i - s < 4) {
      const d = value.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      x = x * 10 + d;
      i++;
    }
    if (i === s || i - s > 3 || x > 255 || (i - s > 1 && value.charCodeAt(s) === 48)) return null;
    v = v * 256 + x;
  }
  let len = 32;
  if (i < n) {
    if (value.charCodeAt(i) !== 47 || n - i < 2 || n - i > 4) return null;
    len = 0;
    for (let j = i + 1; j < n; j++) {
      const d = value.charCodeAt(j) - 48;
      if (d < 0 || d > 9) return null;
      len = len * 10 + d;
    }
    if (len > 32) return null;
  }
  const raw = BigInt(v);
  return { raw, addr: raw & ~hostMask(4, len), len };
}

/**
 * Parses `A`, `A/len` or `A/dotted.mask` (IPv4). Host bits must be zero unless
 * `allowHostBits` — iptables masks them silently, a planning input should not.
 */
export function parsePrefix(value: string, opts: { allowHostBits?: boolean } = {}): Prefix {
  const fast = dottedQuad(value);
  if (fast !== null && (opts.allowHostBits || fast.addr === fast.raw))
    return { family: 4, addr: fast.addr, len: fast.len };
  return parsePrefixGeneral(value, opts);
}

/** parsePrefix without its dotted-quad fast path (exported for the test that compares them). */
export function parsePrefixGeneral(value: string, opts: { allowHostBits?: boolean } = {}): Prefix {
  const slash = value.indexOf("/");
  const addrText = slash < 0 ? value : value.slice(0, slash);
  const lenText = slash < 0 ? undefined : value.slice(slash + 1);
  if (!ipaddr().isValid(addrText)) throw new AddressError(value, "not an IPv4 or IPv6 address");
  const parsed = ipaddr().parse(addrText);
  const family: Family = parsed.kind() === "ipv4" ? 4 : 6;
  if (family === 4 && !ipaddr().IPv4.isValidFourPartDecimal(addrText)) {
    throw new AddressError(value, "IPv4 addresses need four decimal parts");
  }
  const bits = familyBits(family);
  let len = bits;
  if (lenText !== undefined) {
    if (/^\d{1,3}$/.test(lenText)) {
      len = Number(lenText);
      if (len > bits) throw new AddressError(value, `prefix length must be 0..${bits}`);
    } else if (family === 4 && ipaddr().IPv4.isValidFourPartDecimal(lenText)) {
      const m = ipaddr().IPv4.parse(lenText).prefixLengthFromSubnetMask();
      if (m === null) throw new AddressError(value, "netmask is not contiguous");
      len = m;
    } else {
      throw new AddressError(value, "expected a prefix length after '/'");
    }
  }
  const raw = bytesToBigint(parsed.toByteArray());
  const addr = raw & ~hostMask(family, len);
  if (addr !== raw && !opts.allowHostBits) {
    throw new AddressError(value, `host bits set; did you mean ${formatPrefix({ family, addr, len })}?`);
  }
  return { family, addr, len };
}

export function formatAddress(family: Family, addr: bigint): string {
  if (family === 4) {
    // Hot in reports over large sets: no byte array for IPv4.
    const n = Number(addr);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const bytes = bigintToBytes(addr, 16);
  return ipaddr().fromByteArray(bytes).toString();
}

/** `a.b.c.d/len`, or the bare address for a host prefix. */
export function formatPrefix(p: Prefix, opts: { alwaysLen?: boolean } = {}): string {
  const a = formatAddress(p.family, p.addr);
  return p.len === familyBits(p.family) && !opts.alwaysLen ? a : `${a}/${p.len}`;
}

export function isHost(p: Prefix): boolean {
  return p.len === familyBits(p.family);
}

export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return (
    outer.family === inner.family &&
    outer.len <= inner.len &&
    (inner.addr & ~hostMask(outer.family, outer.len)) === outer.addr
  );
}

export function prefixLast(p: Prefix): bigint {
  return p.addr | hostMask(p.family, p.len);
}
