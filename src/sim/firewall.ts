/**
 * Firewalls in the simulation. The split is deliberate:
 *
 * - a {@link StatelessFilter} answers "does the ruleset accept this packet, given this
 *   conntrack/session state?" — that is the part the real engines (iptables, nftables, FortiOS
 *   local-in) will provide later;
 * - the simulator owns the *state*: a session/conntrack table per device, created by the device's
 *   own outbound packets and by accepted NEW packets, refreshed by traffic in both directions, and
 *   expiring after the platform's timeouts.
 */
import { type Prefix, parsePrefix, prefixContains } from "../model/address.js";

export type PacketKind = "ike" | "natt-keepalive" | "esp" | "data";

export interface SimPacket {
  src: string;
  dst: string;
  proto: "udp" | "esp" | "tcp";
  sport?: number;
  dport?: number;
  kind: PacketKind;
  /** For logs: "IKE_SA_INIT request", "R-U-THERE", "ESP"… */
  label?: string;
  /** ESP SPI (raw ESP or ESP-in-UDP). */
  spi?: string;
  /** Cached 5-tuple key (see {@link packetKey}); whoever rewrites addresses or ports clears it. */
  key?: string | undefined;
}

export type ConnState = "new" | "established";
/** Where the packet meets the ruleset: to the device itself, from it, or through it. */
export type Hook = "input" | "output" | "forward";

export interface RuleRef {
  file?: string;
  line?: number;
  text: string;
}

export interface Decision {
  verdict: "accept" | "drop" | "unknown";
  rule?: RuleRef;
}

/** The ruleset, without state: the stateful part is the simulator's. */
export interface StatelessFilter {
  /** `iface` undefined: the incoming interface is not known (the filter must not guess one). */
  decide(pkt: SimPacket, state: ConnState, iface: string | undefined, hook: Hook): Decision;
  /**
   * Set when `decide` answers "accept" for every packet, hook and state (see {@link acceptAll}):
   * the device's session table then cannot change any verdict, and is skipped when nothing
   * records sessions.
   */
  readonly acceptsEverything?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Simple filters for tests and for what-if runs before the real engines are wired in.

/** Accepts everything (no firewall). */
export function acceptAll(text = "no filtering"): StatelessFilter {
  const d: Decision = { verdict: "accept", rule: { text } };
  return { decide: () => d, acceptsEverything: true };
}

/** Inbound/forwarded: only packets of known connections; outbound: everything. */
export function establishedOnly(): StatelessFilter {
  return ruleFilter(
    [{ state: "established", action: "accept", text: "ct state established,related accept" }],
    { policy: "drop", policyText: "policy drop" },
  );
}

export interface Rule {
  action: "accept" | "drop";
  /** Default: input and forward (outbound traffic of the device itself is accepted unless a rule says otherwise). */
  hook?: Hook | Hook[];
  state?: ConnState;
  proto?: SimPacket["proto"];
  sport?: number | number[];
  dport?: number | number[];
  /** Source address or prefix (`10.0.0.0/8`), or a list. */
  src?: string | string[];
  dst?: string | string[];
  kind?: PacketKind | PacketKind[];
  iface?: string;
  text: string;
  file?: string;
  line?: number;
}

interface CompiledRule {
  r: Rule;
  hooks: Hook[];
  sport?: number[];
  dport?: number[];
  src?: Prefix[];
  dst?: Prefix[];
  kinds?: PacketKind[];
  ref: RuleRef;
}

const asList = <T>(v: T | T[] | undefined): T[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v];

function matchAddr(list: Prefix[] | undefined, addr: string): boolean {
  if (!list) return true;
  let p: Prefix;
  try {
    p = parsePrefix(addr);
  } catch {
    return false;
  }
  return list.some((q) => prefixContains(q, p));
}

/**
 * A first-match rule list with a default policy: enough to express a local-in policy or an INPUT
 * chain for tests. Outbound packets of the device itself are accepted unless a rule names `output`.
 */
export function ruleFilter(
  rules: Rule[],
  opts: { policy?: "accept" | "drop"; policyText?: string; outputPolicy?: "accept" | "drop" } = {},
): StatelessFilter {
  const compiled: CompiledRule[] = rules.map((r) => {
    const c: CompiledRule = {
      r,
      hooks: asList(r.hook) ?? ["input", "forward"],
      ref: {
        text: r.text,
        ...(r.file !== undefined ? { file: r.file } : {}),
        ...(r.line !== undefined ? { line: r.line } : {}),
      },
    };
    const sp = asList(r.sport);
    const dp = asList(r.dport);
    const src = asList(r.src);
    const dst = asList(r.dst);
    const kinds = asList(r.kind);
    if (sp) c.sport = sp;
    if (dp) c.dport = dp;
    if (src) c.src = src.map((s) => parsePrefix(s));
    if (dst) c.dst = dst.map((s) => parsePrefix(s));
    if (kinds) c.kinds = kinds;
    return c;
  });
  const policy: Decision = {
    verdict: opts.policy ?? "accept",
    rule: { text: opts.policyText ?? `policy ${opts.policy ?? "accept"}` },
  };
  const outPolicy: Decision = { verdict: opts.outputPolicy ?? "accept", rule: { text: "output policy" } };
  return {
    decide(pkt, state, iface, hook) {
      for (const c of compiled) {
        const r = c.r;
        if (!c.hooks.includes(hook)) continue;
        if (r.state !== undefined && r.state !== state) continue;
        if (r.proto !== undefined && r.proto !== pkt.proto) continue;
        if (r.iface !== undefined && r.iface !== iface) continue;
        if (c.kinds && !c.kinds.includes(pkt.kind)) continue;
        if (c.sport && (pkt.sport === undefined || !c.sport.includes(pkt.sport))) continue;
        if (c.dport && (pkt.dport === undefined || !c.dport.includes(pkt.dport))) continue;
        if (!matchAddr(c.src, pkt.src) || !matchAddr(c.dst, pkt.dst)) continue;
        return { verdict: r.action, rule: c.ref };
      }
      return hook === "output" ? outPolicy : policy;
    },
  };
}

/** The usual fix: accept NEW IKE / NAT-T (UDP 500, 4500) from the given peers, then `base`. */
export function acceptNewIkeFrom(peers: string[], base: StatelessFilter, text?: string): StatelessFilter {
  const allowed = peers.map((p) => parsePrefix(p));
  const ref: RuleRef = { text: text ?? `accept udp dport {500,4500} from ${peers.join(",")}` };
  return {
    decide(pkt, state, iface, hook) {
      if (
        hook !== "output" &&
        pkt.proto === "udp" &&
        (pkt.dport === 500 || pkt.dport === 4500) &&
        matchAddr(allowed, pkt.src)
      ) {
        return { verdict: "accept", rule: ref };
      }
      return base.decide(pkt, state, iface, hook);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Stateful part.

export type Platform = "linux" | "fortios";

/** Session/conntrack timeouts, seconds. Defaults per platform in {@link platformTimeouts}. */
export interface SessionTimeouts {
  /** Linux `nf_conntrack_udp_timeout` (unreplied) / FortiOS `udp-idle-timer`. */
  udp: number;
  /** Linux `nf_conntrack_udp_timeout_stream` (replied, after the 2 s grace); FortiOS: same as `udp`. */
  udpStream: number;
  /** ESP and other protocols without a tracker: Linux `nf_conntrack_generic_timeout`; FortiOS `session-ttl default`. */
  other: number;
  /** TCP (coarse: the established timeout). */
  tcp: number;
}

export function platformTimeouts(p: Platform): SessionTimeouts {
  return p === "linux"
    ? // Linux ≥ 5.0: udp 30 s, udp_stream 120 s, generic 600 s (docs/simulator.md §Firewalls)
      { udp: 30, udpStream: 120, other: 600, tcp: 432000 }
    : // FortiOS: udp-idle-timer 180 s, session-ttl default 3600 s
      { udp: 180, udpStream: 180, other: 3600, tcp: 3600 };
}

export interface Session {
  id: number;
  /** Device the session lives on. */
  device: string;
  proto: SimPacket["proto"];
  /** Original direction (the first packet): src:sport → dst:dport. */
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Created by the device's own outbound packet (FortiOS "state=local" out/org). */
  local: boolean;
  created: number;
  lastSeen: number;
  /** Virtual ms at which it expires unless refreshed. */
  expires: number;
  replied: boolean;
  packets: number;
  /** Set when the session ended (virtual ms). */
  ended?: number;
  /** NAT: translated addresses (source NAT: public src; port forward: inside dst). */
  nat?: { src?: string; sport?: number; dst?: string; dport?: number };
  /** Table keys of both directions (kept to avoid rebuilding them on removal). */
  k1?: string;
  k2?: string;
}

export interface SessionHooks {
  /**
   * Schedules a callback at virtual ms `t`: the expiry watchdog, so that expiries are recorded
   * at their exact time. Without it, expiry is detected on the next lookup only.
   */
  at?(t: number, fn: () => void): void;
  onNew?(s: Session): void;
  onEnd?(s: Session): void;
  /** Nothing records sessions (no timeline, no session list): a table nobody reads may be skipped. */
  unobserved?: boolean;
}

const keyOf = (proto: string, src: string, sport: number, dst: string, dport: number): string =>
  `${proto}|${src}|${sport}|${dst}|${dport}`;

/** The session-table key of a packet, cached on the packet (reusing one string keeps Map lookups cheap). */
export function packetKey(p: SimPacket): string {
  if (p.key !== undefined) return p.key;
  const k = keyOf(
    p.proto,
    p.src,
    p.proto === "esp" ? 0 : (p.sport ?? 0),
    p.dst,
    p.proto === "esp" ? 0 : (p.dport ?? 0),
  );
  p.key = k;
  return k;
}

/** Key of a tuple, for callers that cache it (an IKE SA's packets all share one). */
export function tupleKey(
  proto: SimPacket["proto"],
  src: string,
  sport: number,
  dst: string,
  dport: number,
): string {
  return proto === "esp" ? keyOf(proto, src, 0, dst, 0) : keyOf(proto, src, sport, dst, dport);
}

/**
 * A conntrack / session table. Entries are keyed by both directions of the 5-tuple (ESP: address
 * pair only, like Linux's generic tracker). Expiry is checked lazily on lookup, and a watchdog timer
 * (re-armed on each firing, not on each packet) removes idle entries at their exact expiry time.
 */
export class SessionTable {
  private readonly map = new Map<string, Session>();
  readonly timeouts: SessionTimeouts;
  /** Currently live sessions (for state snapshots). */
  live = 0;
  /** Session ids are per device, like a firewall's own session serials. */
  private ids = 0;

  constructor(
    readonly device: string,
    readonly platform: Platform,
    timeouts: Partial<SessionTimeouts>,
    private readonly hooks: SessionHooks,
  ) {
    this.timeouts = { ...platformTimeouts(platform), ...timeouts };
  }

  /** Set by {@link lookup}: the session matched in the reply direction. */
  lastReply = false;

  /** Finds the live session a packet belongs to (and sets {@link lastReply}). */
  lookup(p: SimPacket, now: number): Session | undefined {
    const s = this.map.get(packetKey(p));
    if (!s) return undefined;
    if (s.expires <= now) {
      this.end(s, s.expires);
      return undefined;
    }
    // The reply key is the reverse of the original tuple (after NAT: of the translated tuple).
    this.lastReply = !(
      s.src === p.src &&
      s.dst === p.dst &&
      (s.proto === "esp" || (s.sport === p.sport && s.dport === p.dport))
    );
    return s;
  }

  /** Applies the platform's refresh rule to a packet matching `s`. */
  refresh(s: Session, reply: boolean, now: number): void {
    const to = this.timeouts;
    let timeout: number;
    if (s.proto === "udp") {
      if (this.platform === "linux") {
        // nf_conntrack_udp_packet: the stream timeout applies once a reply was seen *and* the entry
        // is older than 2 s; the packet that first sets SEEN_REPLY still gets the unreplied timeout.
        timeout = s.replied && now > s.created + 2000 ? to.udpStream : to.udp;
      } else {
        timeout = to.udp;
      }
    } else if (s.proto === "tcp") {
      timeout = to.tcp;
    } else {
      timeout = to.other;
    }
    if (reply) s.replied = true;
    s.lastSeen = now;
    s.packets++;
    s.expires = now + timeout * 1000;
  }

  /**
   * Creates a session for `p` (original direction). `nat` gives the translated addresses when the
   * device rewrites them, so that replies match the translated tuple.
   */
  create(p: SimPacket, now: number, local: boolean, nat?: Session["nat"]): Session {
    const esp = p.proto === "esp";
    const s: Session = {
      id: ++this.ids,
      device: this.device,
      proto: p.proto,
      src: p.src,
      sport: esp ? 0 : (p.sport ?? 0),
      dst: p.dst,
      dport: esp ? 0 : (p.dport ?? 0),
      local,
      created: now,
      lastSeen: now,
      expires: now,
      replied: false,
      packets: 0,
      ...(nat ? { nat } : {}),
    };
    this.refresh(s, false, now);
    const k1 = packetKey(p);
    // Reply tuple: the reverse of what leaves the device (translated when NAT applies).
    const k2 = keyOf(
      s.proto,
      nat?.dst ?? s.dst,
      nat?.dport ?? s.dport,
      nat?.src ?? s.src,
      nat?.sport ?? s.sport,
    );
    s.k1 = k1;
    s.k2 = k2;
    this.map.set(k1, s);
    this.map.set(k2, s);
    this.live++;
    this.hooks.onNew?.(s);
    if (this.hooks.at) this.arm(s);
    return s;
  }

  /** Whether a tuple is in use (NAT port allocation). */
  has(proto: string, src: string, sport: number, dst: string, dport: number, now: number): boolean {
    const s = this.map.get(keyOf(proto, src, sport, dst, dport));
    return !!s && s.expires > now;
  }

  // One watchdog per session, re-armed when it fires on a refreshed entry: the cost is one event
  // per timeout period, not one per packet.
  private arm(s: Session): void {
    const at = s.expires;
    this.hooks.at?.(at, () => {
      if (s.ended !== undefined) return;
      if (s.expires <= at) this.end(s, s.expires);
      else this.arm(s);
    });
  }

  private end(s: Session, at: number): void {
    if (s.ended !== undefined) return;
    s.ended = at;
    const k1 = s.k1!;
    const k2 = s.k2!;
    if (this.map.get(k1) === s) this.map.delete(k1);
    if (this.map.get(k2) === s) this.map.delete(k2);
    this.live--;
    this.hooks.onEnd?.(s);
  }

  /** All live sessions (for snapshots and tests). */
  sessions(now: number): Session[] {
    const out = new Set<Session>();
    for (const s of this.map.values()) if (s.expires > now) out.add(s);
    return [...out];
  }
}

// ---------------------------------------------------------------------------------------------
// A stateful firewall device: a gateway's own local-in / INPUT, or a firewall on the path.

export interface FirewallSpec {
  platform: Platform;
  filter: StatelessFilter;
  /**
   * Interface the packets arrive on (passed to the filter); null: not known, and not guessed
   * (absent: port1 / eth0, for hand-written scenarios).
   */
  iface?: string | null;
  timeouts?: Partial<SessionTimeouts>;
  /**
   * FortiOS `config system settings / set detect-unknown-esp` (default enable): ESP to the
   * FortiGate is handled by the IPsec engine and not subject to local-in policies.
   */
  detectUnknownEsp?: boolean;
  /** What to do when the filter answers "unknown" (the packet is counted either way). */
  onUnknown?: "accept" | "drop";
}

export interface FwResult {
  accept: boolean;
  state: ConnState;
  rule?: RuleRef | undefined;
  /** The filter could not decide; `accept` then follows `onUnknown`. */
  unknown?: boolean;
  session?: Session | undefined;
  /** The session matched in the reply direction. */
  reply?: boolean;
}

const SESSION_RULE: RuleRef = { text: "existing session: local-in policy not consulted (FortiOS)" };
const FORWARD_SESSION_RULE: RuleRef = { text: "existing session" };
const ESP_RULE: RuleRef = {
  text: "ESP handled by the IPsec engine (detect-unknown-esp enable), not local-in",
};

/**
 * A stateful firewall device. The result object is reused between calls (the hot path of the
 * simulation runs through here for every packet): read it before the next call.
 */
export class Firewall {
  readonly table: SessionTable;
  readonly iface: string | undefined;
  readonly platform: Platform;
  private readonly filter: StatelessFilter;
  private readonly detectUnknownEsp: boolean;
  /** What an undecidable packet's fate is taken to be. */
  readonly onUnknown: "accept" | "drop";
  counters = { accepted: 0, dropped: 0, unknown: 0 };
  /**
   * The first packet the filter could not decide (its fate then followed `onUnknown`): the run's
   * answer rests on that assumption, so the result reports it.
   */
  firstUnknown: { t: number; rule: RuleRef | undefined; packet: SimPacket } | null = null;
  /** Time of the packet being decided (set by input/output/forward). */
  private now = 0;
  private readonly res: FwResult = { accept: false, state: "new" };
  /**
   * The filter accepts everything and nobody records sessions: every packet is accepted whatever
   * the session table says, so the table is not kept (the verdicts are the same).
   */
  readonly passAll: boolean;

  constructor(
    readonly name: string,
    spec: FirewallSpec,
    hooks: SessionHooks,
  ) {
    this.platform = spec.platform;
    this.filter = spec.filter;
    this.iface =
      spec.iface === null ? undefined : (spec.iface ?? (spec.platform === "fortios" ? "port1" : "eth0"));
    this.detectUnknownEsp = spec.detectUnknownEsp ?? true;
    this.onUnknown = spec.onUnknown ?? "accept";
    this.table = new SessionTable(name, spec.platform, spec.timeouts ?? {}, hooks);
    this.passAll = spec.filter.acceptsEverything === true && hooks.unobserved === true;
  }

  private accepted(): FwResult {
    const r = this.res;
    r.accept = true;
    r.state = "new";
    r.rule = undefined;
    r.session = undefined;
    r.reply = false;
    r.unknown = false;
    this.counters.accepted++;
    return r;
  }

  private result(
    accept: boolean,
    state: ConnState,
    rule: RuleRef | undefined,
    session: Session | undefined,
    reply: boolean,
    unknown = false,
  ): FwResult {
    const r = this.res;
    r.accept = accept;
    r.state = state;
    r.rule = rule;
    r.session = session;
    r.reply = reply;
    r.unknown = unknown;
    if (accept) this.counters.accepted++;
    else this.counters.dropped++;
    return r;
  }

  private decide(
    p: SimPacket,
    state: ConnState,
    hook: Hook,
    session: Session | undefined,
    reply: boolean,
  ): FwResult {
    const d = this.filter.decide(p, state, this.iface, hook);
    if (d.verdict === "unknown") {
      this.counters.unknown++;
      this.firstUnknown ??= { t: this.now, rule: d.rule, packet: { ...p } };
      return this.result(this.onUnknown === "accept", state, d.rule, session, reply, true);
    }
    return this.result(d.verdict === "accept", state, d.rule, session, reply);
  }

  /** A packet addressed to the device itself. */
  input(p: SimPacket, now: number): FwResult {
    this.now = now;
    if (this.passAll) return this.accepted();
    const t = this.table;
    const s = t.lookup(p, now);
    if (s) {
      const reply = t.lastReply;
      // Linux: conntrack refreshes the entry before the filter runs (PREROUTING), even if INPUT drops.
      t.refresh(s, reply, now);
      // FortiOS: a packet matching an existing session is not looked up in local-in policies
      // ("Find an existing session, id-…, reply direction", seed 001).
      if (this.platform === "fortios") return this.result(true, "established", SESSION_RULE, s, reply);
      return this.decide(p, "established", "input", s, reply);
    }
    if (this.platform === "fortios" && p.proto === "esp" && this.detectUnknownEsp) {
      return this.result(true, "new", ESP_RULE, undefined, false);
    }
    const r = this.decide(p, "new", "input", undefined, false);
    if (r.accept) r.session = t.create(p, now, false);
    return r;
  }

  /** A packet the device itself sends: creates or refreshes its session. */
  output(p: SimPacket, now: number): FwResult {
    this.now = now;
    if (this.passAll) return this.accepted();
    const t = this.table;
    const s = t.lookup(p, now);
    const reply = s ? t.lastReply : false;
    const state: ConnState = s ? "established" : "new";
    if (this.platform !== "fortios") {
      const r = this.decide(p, state, "output", s, reply);
      if (!r.accept) return r;
    }
    if (s) {
      t.refresh(s, reply, now);
      return this.result(true, state, undefined, s, reply);
    }
    return this.result(true, state, undefined, t.create(p, now, true), false);
  }

  /** A packet routed through the device. */
  forward(p: SimPacket, now: number): FwResult {
    this.now = now;
    if (this.passAll) return this.accepted();
    const t = this.table;
    const s = t.lookup(p, now);
    if (s) {
      const reply = t.lastReply;
      t.refresh(s, reply, now);
      if (this.platform === "fortios")
        return this.result(true, "established", FORWARD_SESSION_RULE, s, reply);
      return this.decide(p, "established", "forward", s, reply);
    }
    const r = this.decide(p, "new", "forward", undefined, false);
    if (r.accept) r.session = t.create(p, now, false);
    return r;
  }
}
