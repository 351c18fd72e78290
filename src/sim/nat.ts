/**
 * A NAT device in front of a gateway: source NAT (masquerade) for what the gateway sends, optional
 * port forwards for what it must receive, and a mapping table with conntrack-like timeouts.
 *
 * Modelled: one public address, port preservation when the public port is free (as Linux
 * masquerade does), mapping creation by outbound packets and by port forwards, refresh by traffic
 * in both directions, expiry after the UDP timeouts. Not modelled: endpoint-dependent mapping
 * behaviours beyond 5-tuple conntrack, port-range exhaustion, hairpinning, ALGs.
 */
import {
  type Platform,
  type SessionHooks,
  SessionTable,
  type SessionTimeouts,
  type SimPacket,
  type StatelessFilter,
} from "./firewall.js";

export interface PortForward {
  proto: SimPacket["proto"];
  /** Public port (absent for ESP). */
  port?: number;
  to: string;
  toPort?: number;
}

export interface NatSpec {
  publicIp: string;
  /** Mapping timeouts; default Linux conntrack (udp 30 s unreplied / 120 s stream). */
  timeouts?: Partial<SessionTimeouts>;
  platform?: Platform;
  forwards?: PortForward[];
  /** Ports the device's real rules do not forward, and why (the drop then says so). */
  notForwarded?: Array<{ proto: SimPacket["proto"]; port: number; reason: string }>;
  /** Optional ruleset on the NAT box for NEW forwarded packets (default: accept). */
  filter?: StatelessFilter;
}

export interface NatResult {
  ok: boolean;
  reason?: string;
}

const OK: NatResult = { ok: true };

export class NatDevice {
  readonly kind = "nat" as const;
  readonly table: SessionTable;
  readonly publicIp: string;
  private readonly forwards: PortForward[];
  private readonly notForwarded: NonNullable<NatSpec["notForwarded"]>;
  private readonly filter: StatelessFilter | undefined;
  counters = { translated: 0, dropped: 0 };

  constructor(
    readonly name: string,
    spec: NatSpec,
    hooks: SessionHooks,
  ) {
    this.publicIp = spec.publicIp;
    this.forwards = spec.forwards ?? [];
    this.notForwarded = spec.notForwarded ?? [];
    this.filter = spec.filter;
    this.table = new SessionTable(name, spec.platform ?? "linux", spec.timeouts ?? {}, hooks);
  }

  /** Inside → outside: source NAT. Mutates `p`. */
  outbound(p: SimPacket, now: number): NatResult {
    const s = this.table.lookup(p, now);
    if (s) {
      const reply = this.table.lastReply;
      this.table.refresh(s, reply, now);
      if (!reply) {
        // Source-NAT session in its original direction.
        if (s.nat?.src) p.src = s.nat.src;
        if (s.nat?.sport !== undefined && p.proto !== "esp") p.sport = s.nat.sport;
      } else {
        // Reply of a port-forwarded session: the inside host answers from the public address.
        p.src = s.dst;
        if (p.proto !== "esp") p.sport = s.dport;
      }
      p.key = undefined;
      this.counters.translated++;
      return OK;
    }
    if (this.filter) {
      const d = this.filter.decide(p, "new", "lan", "forward");
      if (d.verdict === "drop") {
        this.counters.dropped++;
        return { ok: false, reason: `NAT device ${this.name}: ${d.rule?.text ?? "dropped"}` };
      }
    }
    let port = p.sport ?? 0;
    if (p.proto !== "esp") {
      // Keep the source port when the public tuple is free, else take the next free one.
      let tries = 0;
      while (this.table.has(p.proto, p.dst, p.dport ?? 0, this.publicIp, port, now) && tries < 64512) {
        port = port >= 65535 ? 1024 : port + 1;
        tries++;
      }
    }
    this.table.create(p, now, false, { src: this.publicIp, sport: port });
    p.src = this.publicIp;
    if (p.proto !== "esp") p.sport = port;
    p.key = undefined;
    this.counters.translated++;
    return OK;
  }

  /** Outside → inside: reverse NAT through a mapping or a port forward. Mutates `p`. */
  inbound(p: SimPacket, now: number): NatResult {
    const s = this.table.lookup(p, now);
    if (s) {
      const reply = this.table.lastReply;
      this.table.refresh(s, reply, now);
      if (reply) {
        p.dst = s.src;
        if (p.proto !== "esp") p.dport = s.sport;
      } else {
        if (s.nat?.dst) p.dst = s.nat.dst;
        if (s.nat?.dport !== undefined && p.proto !== "esp") p.dport = s.nat.dport;
      }
      p.key = undefined;
      this.counters.translated++;
      return OK;
    }
    const fw = this.forwards.find((f) => f.proto === p.proto && (f.port === undefined || f.port === p.dport));
    if (!fw) {
      this.counters.dropped++;
      // A port its real rules do not forward: say why, not "no mapping" (nothing could map it).
      const why = this.notForwarded.find((n) => n.proto === p.proto && n.port === p.dport);
      return {
        ok: false,
        reason: why
          ? `NAT device ${this.name}: ${p.proto}/${p.dport} to ${p.dst} is not forwarded: ${why.reason}`
          : `NAT device ${this.name}: no mapping for ${p.proto} ${p.src}:${p.sport ?? ""} → ${p.dst}:${p.dport ?? ""} (expired or never created)`,
      };
    }
    if (this.filter) {
      const d = this.filter.decide(p, "new", "wan", "forward");
      if (d.verdict === "drop") {
        this.counters.dropped++;
        return { ok: false, reason: `NAT device ${this.name}: ${d.rule?.text ?? "dropped"}` };
      }
    }
    const toPort = fw.toPort ?? p.dport;
    this.table.create(p, now, false, { dst: fw.to, ...(toPort !== undefined ? { dport: toPort } : {}) });
    p.dst = fw.to;
    if (toPort !== undefined && p.proto !== "esp") p.dport = toPort;
    p.key = undefined;
    this.counters.translated++;
    return OK;
  }
}
