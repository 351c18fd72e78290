/**
 * Matching FortiOS objects against a concrete packet, in three-valued logic: an address that is
 * only known at run time (FQDN, geography, dynamic) or a name the config never defines cannot be
 * decided statically, and saying "unknown" beats guessing either way.
 */
import { type Family, hostMask } from "../../model/address.js";
import type { Address, AddrGroup, AddrMatch, PortSpec, Service, VdomModel } from "./model.js";

export type Tri = boolean | "unknown";

export function triOr(a: Tri, b: Tri): Tri {
  if (a === true || b === true) return true;
  return a === "unknown" || b === "unknown" ? "unknown" : false;
}

export function triAnd(a: Tri, b: Tri): Tri {
  if (a === false || b === false) return false;
  return a === "unknown" || b === "unknown" ? "unknown" : true;
}

export function triNot(a: Tri): Tri {
  return a === "unknown" ? a : !a;
}

export function addrMatchHas(m: AddrMatch, family: Family, ip: bigint): Tri {
  switch (m.kind) {
    case "prefix":
      return m.prefix.family === family && (ip & ~hostMask(family, m.prefix.len)) === m.prefix.addr;
    case "range":
      return m.family === family && ip >= m.first && ip <= m.last;
    case "wildcard":
      return family === 4 && (ip & m.mask) === m.addr;
    case "unknown":
      return "unknown";
  }
}

export type AddrExpr =
  | { kind: "address"; address: Address }
  | { kind: "group"; group: AddrGroup; members: AddrExpr[]; excluded: AddrExpr[] }
  | { kind: "missing"; name: string }
  | { kind: "cycle"; name: string };

/** Expands an address or group name (nested groups, `exclude`), cycle-safe. */
export function expandAddress(
  v: VdomModel,
  family: Family,
  name: string,
  path: Set<string> = new Set(),
): AddrExpr {
  const a = (family === 4 ? v.addresses : v.addresses6).get(name);
  if (a) return { kind: "address", address: a };
  const g = (family === 4 ? v.addrgrps : v.addrgrps6).get(name);
  if (!g) return { kind: "missing", name };
  if (path.has(name)) return { kind: "cycle", name };
  path.add(name);
  const members = g.members.map((m) => expandAddress(v, family, m, path));
  const excluded = g.exclude ? g.excludeMembers.map((m) => expandAddress(v, family, m, path)) : [];
  path.delete(name);
  return { kind: "group", group: g, members, excluded };
}

export function addrExprHas(e: AddrExpr, family: Family, ip: bigint): Tri {
  switch (e.kind) {
    case "address":
      return addrMatchHas(e.address.match, family, ip);
    case "group": {
      let inc: Tri = false;
      for (const m of e.members) inc = triOr(inc, addrExprHas(m, family, ip));
      let exc: Tri = false;
      for (const m of e.excluded) exc = triOr(exc, addrExprHas(m, family, ip));
      return triAnd(inc, triNot(exc));
    }
    // An undefined or cyclic reference could not exist on a running FortiGate: the config is
    // inconsistent, so nothing can be concluded about it.
    case "missing":
    case "cycle":
      return "unknown";
  }
}

/** Whether any of the names contains `ip`; `why` names the object that decided it. */
export function namesHave(
  v: VdomModel,
  family: Family,
  names: readonly string[],
  ip: bigint,
): { result: Tri; why: string } {
  let result: Tri = false;
  let why = "";
  for (const n of names) {
    const r = addrExprHas(expandAddress(v, family, n), family, ip);
    if (r === true) return { result: true, why: n };
    if (r === "unknown" && result === false) {
      result = "unknown";
      why = n;
    }
  }
  return { result, why };
}

export interface Packet {
  family: Family;
  /** IP protocol number. */
  protocol: number;
  dst: bigint;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
}

/** Services named (groups flattened, cycle-safe), plus names that resolve to nothing. */
export function expandServices(
  v: VdomModel,
  names: readonly string[],
): { services: Service[]; missing: string[] } {
  const services: Service[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  const walk = (n: string): void => {
    if (seen.has(n)) return;
    seen.add(n);
    const s = v.services.get(n);
    if (s) services.push(s);
    else {
      const g = v.serviceGroups.get(n);
      if (g) for (const m of g.members) walk(m);
      else missing.push(n);
    }
  };
  for (const n of names) walk(n);
  return { services, missing };
}

function portsHave(specs: readonly PortSpec[], p: Packet): Tri {
  let r: Tri = false;
  for (const s of specs) {
    const d: Tri = p.dport === undefined ? "unknown" : p.dport >= s.dst.lo && p.dport <= s.dst.hi;
    const anySrc = s.src.lo === 0 && s.src.hi === 65535;
    const sr: Tri = anySrc
      ? true
      : p.sport === undefined
        ? "unknown"
        : p.sport >= s.src.lo && p.sport <= s.src.hi;
    r = triOr(r, triAnd(d, sr));
    if (r === true) return true;
  }
  return r;
}

export function serviceHas(s: Service, p: Packet): Tri {
  const dest: Tri = s.destination ? addrMatchHas(s.destination, p.family, p.dst) : true;
  if (dest === false) return false;
  let r: Tri;
  const m = s.match;
  switch (m.kind) {
    case "l4":
      r =
        p.protocol === 6
          ? portsHave(m.tcp, p)
          : p.protocol === 17
            ? portsHave(m.udp, p)
            : p.protocol === 132
              ? portsHave(m.sctp, p)
              : false;
      break;
    case "ip":
      r = m.protocol === 0 || m.protocol === p.protocol;
      break;
    case "icmp": {
      const proto = m.family === 4 ? 1 : 58;
      if (p.protocol !== proto || p.family !== m.family) r = false;
      else {
        const t: Tri =
          m.type === undefined ? true : p.icmpType === undefined ? "unknown" : p.icmpType === m.type;
        const c: Tri =
          m.code === undefined ? true : p.icmpCode === undefined ? "unknown" : p.icmpCode === m.code;
        r = triAnd(t, c);
      }
      break;
    }
    case "unknown":
      r = "unknown";
      break;
  }
  return triAnd(dest, r);
}

/** Whether any named service matches; `why` names the service that decided it. */
export function servicesHave(
  v: VdomModel,
  names: readonly string[],
  p: Packet,
): { result: Tri; why: string } {
  const { services, missing } = expandServices(v, names);
  let result: Tri = false;
  let why = "";
  for (const s of services) {
    const r = serviceHas(s, p);
    if (r === true) return { result: true, why: s.name };
    if (r === "unknown" && result === false) {
      result = "unknown";
      why = s.name;
    }
  }
  if (result === false && missing.length > 0) return { result: "unknown", why: missing[0]! };
  return { result, why };
}
