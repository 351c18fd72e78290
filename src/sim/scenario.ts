/**
 * The programmatic scenario API: gateways (vendor profile, own firewall, devices in front),
 * tunnels, who initiates, traffic patterns, scripted admin actions, duration, seed.
 * `simulate()` builds the engine, runs it and returns the timeline, state and anomalies.
 */
import {
  type Anomaly,
  type DataMsg,
  type Device,
  type DropRecord,
  Engine,
  Gateway,
  type LogLevel,
  type SessionRecord,
  type TimelineEvent,
  type Transition,
  TunnelMonitor,
} from "./engine.js";
import {
  acceptAll,
  Firewall,
  type FirewallSpec,
  type Platform,
  type SessionTimeouts,
  type StatelessFilter,
} from "./firewall.js";
import { Conn, Daemon } from "./ike.js";
import { NatDevice, type NatSpec } from "./nat.js";
import { fixedShape, type IkeProfile, makeProfile, type ProfileOverrides, type Vendor } from "./profiles.js";

export interface GatewayFirewallSpec {
  /** Default: the gateway vendor's platform (FortiOS → fortios, strongSwan → linux). */
  platform?: Platform;
  filter?: StatelessFilter;
  /** null: the incoming interface is not known (the filter then answers for every interface). */
  iface?: string | null;
  timeouts?: Partial<SessionTimeouts>;
  detectUnknownEsp?: boolean;
  onUnknown?: "accept" | "drop";
}

export type MiddleboxSpec =
  | ({ kind: "nat"; name: string } & NatSpec)
  | ({ kind: "firewall"; name: string } & FirewallSpec);

export interface GatewaySpec {
  name: string;
  /** The gateway's own (outside) address. */
  address: string;
  vendor: Vendor;
  ikeVersion?: 1 | 2;
  /** Timer and behaviour overrides for this gateway's side of its tunnels. */
  overrides?: ProfileOverrides;
  /** The gateway's own local-in / INPUT filtering. Absent: no filtering and no session table. */
  firewall?: GatewayFirewallSpec;
  /** Devices between the gateway and the internet, inner first (NAT routers, perimeter firewalls). */
  behind?: MiddleboxSpec[];
}

export interface TunnelSpec {
  name?: string;
  a: string;
  b: string;
  ikeVersion?: 1 | 2;
  /** Connection name per gateway in the logs (default: the gateway's name for a single tunnel, as in seed 001). */
  connNames?: Record<string, string>;
  /** Address each side uses for the peer (default: the peer's public address). */
  remote?: Record<string, string>;
}

export interface TrafficSpec {
  from: string;
  to: string;
  tunnel?: string;
  /** One packet every N seconds, from `start` (default N) to `end`. */
  every?: number;
  /** Occurrences at these times (seconds). */
  at?: number[];
  /** Periodic bursts. */
  burst?: { every: number; count: number; spacing?: number };
  /** Packets per occurrence of `at` (ping -c N) and their spacing in seconds. */
  count?: number;
  interval?: number;
  start?: number;
  end?: number;
  /** The receiver answers every packet (ping); default one-way. */
  reply?: boolean;
}

export interface ActionSpec {
  at: number;
  gateway: string;
  action: "initiate" | "terminate" | "rekey-child" | "rekey-ike" | "flush";
  tunnel?: string;
}

export interface Scenario {
  gateways: GatewaySpec[];
  tunnel?: TunnelSpec;
  tunnels?: TunnelSpec[];
  /** Who brings the tunnel(s) up at `initiateAt`: a gateway name, "both" or "none". */
  initiator?: string;
  initiateAt?: number;
  traffic?: TrafficSpec[];
  actions?: ActionSpec[];
  /** Seconds of virtual time. */
  duration: number;
  seed?: number;
  /** One-way latency, seconds (default 0.01). */
  latency?: number;
  logLevel?: LogLevel;
  /** Ignore anomalies shorter than this many seconds (default 2). */
  minAnomaly?: number;
  flapCount?: number;
  flapWindow?: number;
}

export interface TunnelResult {
  name: string;
  a: string;
  b: string;
  final: Record<string, "up" | "down">;
  /**
   * At the run's last instant, each side's outbound SA is one the other accepts inbound; false also
   * while a rekey's last message is in flight then (lasting disagreements are `spi-mismatch` anomalies).
   */
  consistent: boolean;
  data: Record<string, { sent: number; delivered: number; failed: number; noSa: number }>;
}

export interface SimResult {
  duration: number;
  seed: number;
  events: TimelineEvent[];
  anomalies: Anomaly[];
  transitions: Transition[];
  sessions: SessionRecord[];
  drops: DropRecord[];
  dropCount: number;
  gateways: { name: string; address: string; vendor: Vendor; ikeVersion: 1 | 2; firewall: string | null }[];
  tunnels: TunnelResult[];
  profiles: Record<string, IkeProfile>;
  /**
   * `engineEvents`: events the engine popped and executed; `simulatedEvents`: events of the plain
   * path (one per packet send and arrival, timer, …), collapsed packet trains included. Equal
   * when nothing was collapsed.
   */
  stats: { engineEvents: number; simulatedEvents: number; wallMs: number };
}

export interface SimulateOptions {
  /**
   * Without recording, simulate independent groups of tunnels one at a time (default true; the
   * results are the same either way — `false` is for the test that checks it).
   */
  splitIndependent?: boolean;
  /**
   * Apply a packet train in one event when nothing else can happen while it is under way (default
   * true; same results — `false` is the plain path, one event per send and arrival).
   */
  collapse?: boolean;
}

/**
 * Builds and runs a scenario. Deterministic: the same scenario and seed give the same result.
 *
 * Without recording (`logLevel: "none"`), tunnels that share nothing (no gateway, no device in
 * front, no address) are simulated one group at a time, each in its own small engine: the
 * results are the same (every connection has its own random stream, and events of independent
 * tunnels never interact), the working set stays in cache, and the queue stays small.
 */
export function simulate(sc: Scenario, opts: SimulateOptions = {}): SimResult {
  const t0 = performance.now();
  const seed = sc.seed ?? 1;
  const tunnels = namedTunnels(sc);
  const single = tunnels.length === 1;
  const groups =
    (sc.logLevel ?? "info") === "none" && !single && opts.splitIndependent !== false
      ? independentGroups(sc, tunnels)
      : null;
  if (!groups) {
    const e = newEngine(sc, seed, opts);
    const built = build(e, sc, tunnels, single);
    schedule(e, sc, built);
    e.run(Math.round(sc.duration * 1000));
    for (const m of e.monitors.values()) m.finish();
    return collect(e, sc, seed, built, performance.now() - t0);
  }
  // One engine per group; the results are reassembled in the scenario's tunnel order.
  const perTunnel = new Map<string, { anomalies: Anomaly[]; result: TunnelResult }>();
  const undecided: Anomaly[] = [];
  let dropCount = 0;
  let engineEvents = 0;
  let simulatedEvents = 0;
  // Each group's gateways, traffic and actions in the scenario's order, in one pass over each list
  // (filtering the whole lists per group was quadratic: 10⁸ lookups for 10,000 tunnels).
  const groupOf = new Map<string, number>();
  const parts = groups.map((g, i) => {
    for (const n of g.gateways) groupOf.set(n, i);
    return { gateways: [] as GatewaySpec[], traffic: [] as TrafficSpec[], actions: [] as ActionSpec[] };
  });
  for (const x of sc.gateways) parts[groupOf.get(x.name)!]?.gateways.push(x);
  for (const x of sc.traffic ?? []) parts[groupOf.get(x.from)!]?.traffic.push(x);
  for (const x of sc.actions ?? []) parts[groupOf.get(x.gateway)!]?.actions.push(x);
  for (const [gi, g] of groups.entries()) {
    const part: Scenario = { ...sc, ...parts[gi]! };
    const e = newEngine(part, seed, opts);
    // Only the tunnels' results are kept: the group's profiles and gateway summary are not built.
    const built = build(e, part, g.tunnels, false, false);
    schedule(e, part, built);
    e.run(Math.round(sc.duration * 1000));
    for (const m of e.monitors.values()) m.finish();
    for (const t of tunnelResults(e, built)) {
      const m = e.monitors.get(t.name)!;
      perTunnel.set(t.name, { anomalies: m.anomalies, result: t });
    }
    undecided.push(...unknownVerdicts(e, built, sc.duration));
    dropCount += e.rec.dropCount;
    engineEvents += e.eventsRun;
    simulatedEvents += e.eventsRun + e.eventsCollapsed;
  }
  const anomalies: Anomaly[] = [];
  const results: TunnelResult[] = [];
  for (const t of tunnels) {
    const x = perTunnel.get(t.name)!;
    anomalies.push(...x.anomalies);
    results.push(x.result);
  }
  anomalies.push(...undecided);
  const profiles: Record<string, IkeProfile> = {};
  for (const g of sc.gateways) profiles[g.name] = makeProfile(g.vendor, g.ikeVersion, g.overrides ?? {});
  return {
    duration: sc.duration,
    seed,
    events: [],
    anomalies,
    transitions: [],
    sessions: [],
    drops: [],
    dropCount,
    gateways: gatewaySummary(sc, profiles),
    tunnels: results,
    profiles,
    stats: { engineEvents, simulatedEvents, wallMs: Math.round(performance.now() - t0) },
  };
}

function newEngine(sc: Scenario, seed: number, opts: SimulateOptions): Engine {
  return new Engine({
    seed,
    duration: sc.duration,
    logLevel: sc.logLevel ?? "info",
    latency: sc.latency ?? 0.01,
    minAnomaly: sc.minAnomaly ?? 2,
    flapCount: sc.flapCount ?? 3,
    flapWindow: sc.flapWindow ?? 3600,
    collapse: opts.collapse ?? true,
  });
}

interface NamedTunnel {
  spec: TunnelSpec;
  name: string;
}

function namedTunnels(sc: Scenario): NamedTunnel[] {
  const tunnels = sc.tunnels ?? (sc.tunnel ? [sc.tunnel] : []);
  if (tunnels.length === 0) throw new Error("simulate: no tunnel given");
  const single = tunnels.length === 1;
  return tunnels.map((t, i) => ({ spec: t, name: t.name ?? (single ? `${t.a}-${t.b}` : `t${i + 1}`) }));
}

/**
 * Groups of tunnels that cannot influence each other: union of the gateways a tunnel joins, the
 * gateways behind a common device or sharing an address, and the gateway a `remote` override
 * points at. Null when there is only one group or the scenario names something unknown (the
 * plain path then reports it).
 */
function independentGroups(
  sc: Scenario,
  tunnels: NamedTunnel[],
): { gateways: string[]; tunnels: NamedTunnel[] }[] | null {
  const idx = new Map<string, number>();
  sc.gateways.forEach((g, i) => {
    if (!idx.has(g.name)) idx.set(g.name, i);
  });
  if (idx.size !== sc.gateways.length) return null;
  if (new Set(tunnels.map((t) => t.name)).size !== tunnels.length) return null;
  const parent = sc.gateways.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  // Anything two gateways have in common joins them: addresses (own, NAT public) and devices.
  const owner = new Map<string, number>();
  const claim = (k: string, i: number): void => {
    const o = owner.get(k);
    if (o === undefined) owner.set(k, i);
    else union(o, i);
  };
  sc.gateways.forEach((g, i) => {
    claim(`a:${g.address}`, i);
    for (const m of g.behind ?? []) {
      claim(`d:${m.name}`, i);
      if (m.kind === "nat") claim(`a:${m.publicIp}`, i);
    }
  });
  for (const t of tunnels) {
    const a = idx.get(t.spec.a);
    const b = idx.get(t.spec.b);
    if (a === undefined || b === undefined) return null;
    union(a, b);
    for (const r of Object.values(t.spec.remote ?? {})) {
      const o = owner.get(`a:${r}`);
      if (o !== undefined) union(a, o);
    }
  }
  for (const x of sc.traffic ?? []) if (!idx.has(x.from)) return null;
  for (const x of sc.actions ?? []) if (!idx.has(x.gateway)) return null;
  const groups = new Map<number, { gateways: string[]; tunnels: NamedTunnel[] }>();
  sc.gateways.forEach((g, i) => {
    const r = find(i);
    let grp = groups.get(r);
    if (!grp) {
      grp = { gateways: [], tunnels: [] };
      groups.set(r, grp);
    }
    grp.gateways.push(g.name);
  });
  for (const t of tunnels) groups.get(find(idx.get(t.spec.a)!))!.tunnels.push(t);
  // Every traffic pattern and action must name a gateway that has a tunnel in its group (else the
  // plain path's error applies).
  const withTunnel = new Set<string>();
  for (const g of groups.values())
    if (g.tunnels.length > 0) for (const t of g.tunnels) withTunnel.add(t.spec.a).add(t.spec.b);
  for (const x of sc.traffic ?? []) if (!withTunnel.has(x.from)) return null;
  for (const x of sc.actions ?? []) if (!withTunnel.has(x.gateway)) return null;
  const out = [...groups.values()].filter((g) => g.tunnels.length > 0);
  return out.length > 1 ? out : null;
}

interface Built {
  conns: Map<string, Map<string, Conn>>;
  tunnelNames: string[];
  profiles: Record<string, IkeProfile>;
}

function build(e: Engine, sc: Scenario, tunnels: NamedTunnel[], single: boolean, profiles = true): Built {
  const devices = new Map<string, Device>();
  const specs = new Map(sc.gateways.map((g) => [g.name, g]));
  for (const g of sc.gateways) {
    const fw = g.firewall
      ? new Firewall(
          `${g.name}`,
          {
            platform: g.firewall.platform ?? (g.vendor === "fortios" ? "fortios" : "linux"),
            filter: g.firewall.filter ?? acceptAll(),
            ...(g.firewall.iface !== undefined ? { iface: g.firewall.iface } : {}),
            ...(g.firewall.timeouts ? { timeouts: g.firewall.timeouts } : {}),
            ...(g.firewall.detectUnknownEsp !== undefined
              ? { detectUnknownEsp: g.firewall.detectUnknownEsp }
              : {}),
            ...(g.firewall.onUnknown ? { onUnknown: g.firewall.onUnknown } : {}),
          },
          e.sessionHooks(g.name, g.name),
        )
      : null;
    const chain: Device[] = (g.behind ?? []).map((m) => {
      const existing = devices.get(m.name);
      if (existing) return existing;
      const d: Device =
        m.kind === "nat"
          ? new NatDevice(m.name, m, e.sessionHooks(m.name, m.name))
          : new Firewall(m.name, m, e.sessionHooks(m.name, m.name));
      devices.set(m.name, d);
      return d;
    });
    const gw = new Gateway(g.name, g.address, fw, chain);
    gw.daemon = new Daemon(e, gw);
    e.addGateway(gw);
  }
  const conns = new Map<string, Map<string, Conn>>();
  const profs: Record<string, IkeProfile> = {};
  const names: string[] = [];
  for (const { spec: t, name } of tunnels) {
    names.push(name);
    const per = new Map<string, Conn>();
    for (const [self, peer] of [
      [t.a, t.b],
      [t.b, t.a],
    ] as const) {
      const spec = specs.get(self);
      const peerGw = e.gateways.get(peer);
      if (!spec || !peerGw)
        throw new Error(`simulate: tunnel ${name} names unknown gateway ${spec ? peer : self}`);
      const p = makeProfile(spec.vendor, t.ikeVersion ?? spec.ikeVersion, spec.overrides ?? {});
      if (single) profs[self] = p;
      const gw = e.gateways.get(self)!;
      const conn = new Conn(
        gw.daemon,
        name,
        t.connNames?.[self] ?? (single ? self : name),
        t.remote?.[self] ?? peerGw.publicIp,
        fixedShape(p),
      );
      conn.peerName = peer;
      if (p.startAction === "trap") conn.trap = true;
      gw.daemon.addConn(conn);
      per.set(self, conn);
    }
    const [ca, cb] = [per.get(t.a)!, per.get(t.b)!];
    const mon = new TunnelMonitor(name, ca, cb, e);
    ca.monitor = mon;
    cb.monitor = mon;
    e.monitors.set(name, mon);
    conns.set(name, per);
  }
  if (!single && profiles)
    for (const g of sc.gateways) profs[g.name] = makeProfile(g.vendor, g.ikeVersion, g.overrides ?? {});
  return { conns, tunnelNames: names, profiles: profs };
}

function connOf(b: Built, gateway: string, tunnel?: string): Conn[] {
  const out: Conn[] = [];
  for (const [name, per] of b.conns) {
    if (tunnel !== undefined && tunnel !== name) continue;
    const c = per.get(gateway);
    if (c) out.push(c);
  }
  if (out.length === 0) throw new Error(`simulate: ${gateway} has no tunnel${tunnel ? ` ${tunnel}` : ""}`);
  return out;
}

function schedule(e: Engine, sc: Scenario, b: Built): void {
  const at0 = Math.round((sc.initiateAt ?? 0) * 1000);
  for (const [, per] of b.conns) {
    for (const [gw, c] of per) {
      // The named initiator starts at `initiateAt`; so does any side whose profile says so.
      const byProfile = c.p.startAction === "start" || (c.p.vendor === "fortios" && c.p.autoNegotiate);
      const starts = sc.initiator === gw || sc.initiator === "both" || (sc.initiator !== "none" && byProfile);
      if (starts)
        e.at(at0, () => c.initiate(c.p.vendor === "fortios" ? "auto-negotiate" : "start_action=start"));
    }
  }
  for (const a of sc.actions ?? []) {
    for (const c of connOf(b, a.gateway, a.tunnel)) {
      e.at(Math.round(a.at * 1000), () => {
        e.rec.add(2, a.gateway, c.tunnel, "admin", `admin: ${a.action} ${c.name}`);
        switch (a.action) {
          case "initiate":
            c.initiate("admin");
            break;
          case "terminate":
            c.terminate();
            break;
          case "flush":
            c.flush();
            break;
          case "rekey-child": {
            const ch = c.outboundChild();
            if (ch) c.rekeyChild(ch);
            break;
          }
          case "rekey-ike": {
            const sa = c.outboundChild()?.ike;
            if (sa) c.rekeyIke(sa);
            break;
          }
        }
      });
    }
  }
  for (const tr of sc.traffic ?? []) {
    for (const c of connOf(b, tr.from, tr.tunnel)) scheduleTraffic(e, c, tr, sc.duration);
  }
}

/**
 * A packet train under way: its packets' times, its first reserved sequence number, the next
 * packet (one is queued at a time).
 */
class TrainRun {
  i = 0;
  constructor(
    readonly ts: number[],
    readonly base: number,
  ) {}
}

function scheduleTraffic(e: Engine, c: Conn, tr: TrafficSpec, duration: number): void {
  const end = Math.round(Math.min(tr.end ?? duration, duration) * 1000);
  /** `quietAfter`: nothing else is scheduled by the caller's event up to then (see Conn.startProbe). */
  const packet = (quietAfter = -1): void => {
    const d: DataMsg = {
      tunnel: c.tunnel,
      from: tr.from,
      to: tr.to,
      wantReply: tr.reply ?? false,
      sentAt: e.now,
    };
    c.sendData(d, quietAfter);
  };
  const reply = tr.reply ?? false;
  const train = (t: number, count: number, spacing: number, inEvent: boolean): void => {
    if (!e.collapse) {
      for (let i = 0; i < count; i++) {
        const ti = t + Math.round(i * spacing * 1000);
        if (ti <= end) e.at(ti, packet);
      }
      return;
    }
    // The same packets, but each pushed by the one before with the sequence number it would have
    // had if pushed now (so ties with other events break the same way), which lets a packet
    // apply the rest of the train at once when nothing else can happen meanwhile.
    const ts: number[] = [];
    for (let i = 0; i < count; i++) {
      const ti = t + Math.round(i * spacing * 1000);
      if (ti <= end) ts.push(Math.max(ti, e.now));
    }
    if (ts.length === 0) return;
    const run = new TrainRun(ts, e.q.reserve(ts.length));
    // The first packet is due now and nothing else is before it: it runs in this event.
    if (inEvent && ts[0] === e.now && e.peekLiveTime() > e.now) {
      e.eventsCollapsed++;
      pending = run;
    } else {
      e.q.pushSeq(ts[0]!, run.base, trainStep, run);
    }
  };
  /** Packet `run.i` of a train (one function per traffic pattern, not a closure per train). */
  const trainStep = (run: TrainRun): void => {
    const { ts, i } = run;
    const n = c.sendDataRun(ts, i, tr.from, tr.to, reply);
    if (n > 0) {
      e.eventsCollapsed += n - 1;
      return;
    }
    packet(i + 1 < ts.length ? ts[i + 1]! : Number.POSITIVE_INFINITY);
    if (i + 1 < ts.length) {
      run.i = i + 1;
      e.q.pushSeq(ts[i + 1]!, run.base + i + 1, trainStep, run);
    }
  };
  /** The first packet of a burst, run at the end of its tick (after the tick's own pushes). */
  let pending: TrainRun | null = null;
  if (tr.every !== undefined) {
    const step = Math.max(1, Math.round(tr.every * 1000));
    // One recurring timer rather than all packets at once: the queue stays small.
    const tick = (): void => {
      packet(e.now + step);
      if (e.now + step <= end) e.after(step, tick);
    };
    const first = Math.round((tr.start ?? tr.every) * 1000);
    if (first <= end) e.at(first, tick);
  }
  for (const t of tr.at ?? []) train(Math.round(t * 1000), tr.count ?? 1, tr.interval ?? 1, false);
  if (tr.burst) {
    const { every, count, spacing } = tr.burst;
    const step = Math.max(1, Math.round(every * 1000));
    const tick = (): void => {
      train(e.now, count, spacing ?? 1, true);
      if (e.now + step <= end) e.after(step, tick);
      const run = pending;
      if (run) {
        pending = null;
        trainStep(run);
      }
    };
    const first = Math.round((tr.start ?? every) * 1000);
    if (first <= end) e.at(first, tick);
  }
}

/**
 * Gateways whose firewall could not decide some packets: the run assumed their fate, which the
 * result must say (an "accept" guessed for the very packet that brings a tunnel up is no answer).
 */
function unknownVerdicts(e: Engine, b: Built, duration: number): Anomaly[] {
  const out: Anomaly[] = [];
  for (const g of e.gateways.values()) {
    const u = g.fw?.firstUnknown;
    if (!g.fw || !u) continue;
    const tunnels = [...b.conns].filter(([, per]) => per.has(g.name)).map(([n]) => n);
    const p = u.packet;
    const ep = (a: string, port?: number) => (port === undefined ? a : `${a}:${port}`);
    const what = `${p.label ?? p.kind} ${ep(p.src, p.sport)} → ${ep(p.dst, p.dport)}`;
    const start = Math.round(u.t) / 1000;
    out.push({
      type: "unknown-verdict",
      tunnel: tunnels.join(", ") || "-",
      gateway: g.name,
      start,
      end: null,
      packets: g.fw.counters.unknown,
      reason: `first ${what}: ${u.rule?.text ?? "undecidable"}; assumed ${g.fw.onUnknown === "accept" ? "accepted" : "dropped"}`,
      duration: Math.max(0, Math.round((duration - start) * 1000) / 1000),
    });
  }
  return out;
}

function collect(e: Engine, sc: Scenario, seed: number, b: Built, wallMs: number): SimResult {
  const anomalies: Anomaly[] = [];
  for (const m of e.monitors.values()) anomalies.push(...m.anomalies);
  anomalies.push(...unknownVerdicts(e, b, sc.duration));
  return {
    duration: sc.duration,
    seed,
    events: e.rec.events,
    anomalies,
    transitions: e.rec.transitions,
    sessions: e.rec.sessions,
    drops: e.rec.drops,
    dropCount: e.rec.dropCount,
    gateways: gatewaySummary(sc, b.profiles),
    tunnels: tunnelResults(e, b),
    profiles: b.profiles,
    stats: {
      engineEvents: e.eventsRun,
      simulatedEvents: e.eventsRun + e.eventsCollapsed,
      wallMs: Math.round(wallMs),
    },
  };
}

function tunnelResults(e: Engine, b: Built): TunnelResult[] {
  const tunnels: TunnelResult[] = [];
  for (const [name, per] of b.conns) {
    const mon = e.monitors.get(name)!;
    const [a, bb] = [...per.keys()] as [string, string];
    const final: Record<string, "up" | "down"> = {};
    for (const [gw, c] of per) final[gw] = c.isUp() ? "up" : "down";
    const data: TunnelResult["data"] = {};
    for (const [k, d] of mon.dirs)
      data[k] = { sent: d.sent, delivered: d.delivered, failed: d.failed, noSa: d.noSa };
    tunnels.push({ name, a, b: bb, final, consistent: mon.consistent(), data });
  }
  return tunnels;
}

function gatewaySummary(sc: Scenario, profiles: Record<string, IkeProfile>): SimResult["gateways"] {
  return sc.gateways.map((g) => ({
    name: g.name,
    address: g.address,
    vendor: g.vendor,
    ikeVersion: profiles[g.name]?.ikeVersion ?? g.ikeVersion ?? (g.vendor === "fortios" ? 1 : 2),
    firewall: g.firewall ? (g.firewall.platform ?? (g.vendor === "fortios" ? "fortios" : "linux")) : null,
  }));
}
