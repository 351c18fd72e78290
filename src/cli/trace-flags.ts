/**
 * The trace command's flags and their checks, shared by the FortiOS and iptables traces (each
 * trace loads only its own platform's modules).
 */
import { UsageError } from "./io.js";

export interface TraceFlags {
  packets?: string;
  local?: string[];
  fortios?: string;
  iptables?: string;
  src?: string;
  dst?: string;
  proto?: string;
  sport?: string;
  dport?: string;
  icmpType?: string;
  ttl?: string;
  iif?: string;
  state?: string;
  ipsec: boolean;
  fragment?: string;
  fragId?: string;
  vdom?: string;
  format: "text" | "json" | "jsonl";
}

/** `--icmp-type 135` or `3/4`: the type and the optional code, 0-255 each. */
export function icmpOf(v: string | undefined): { icmpType?: number; icmpCode?: number } {
  if (v === undefined) return {};
  const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(v);
  if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255))
    throw new UsageError(
      `invalid --icmp-type '${v}': expected TYPE or TYPE/CODE, 0-255 each (e.g. 135 or 3/4)`,
    );
  return { icmpType: Number(m[1]), ...(m[2] !== undefined ? { icmpCode: Number(m[2]) } : {}) };
}

export const port = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535)
    throw new UsageError(`invalid --${what} '${v}': expected a port 0-65535`);
  return Number(v);
};

/** The packet fields both traces take the same way: addresses, protocol, ports, ICMP type. */
export function packetFields(o: TraceFlags): {
  src: string;
  dst?: string;
  proto: string;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
} {
  return {
    src: o.src ?? "any",
    ...(o.dst !== undefined ? { dst: o.dst } : {}),
    proto: o.proto ?? "udp",
    ...(o.sport !== undefined ? { sport: port(o.sport, "sport")! } : {}),
    ...(o.dport !== undefined ? { dport: port(o.dport, "dport")! } : {}),
    ...icmpOf(o.icmpType),
  };
}

/** `--ttl N`: IPv4 TTL / IPv6 hop limit, 0-255. */
export const ttlOf = (v: string): number => {
  if (!/^\d{1,3}$/.test(v) || Number(v) > 255) throw new UsageError(`invalid --ttl '${v}': expected 0-255`);
  return Number(v);
};
