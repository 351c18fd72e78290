/**
 * The simulation core: virtual clock and event queue, the network (paths through firewalls and NAT
 * devices, one-way latency), the event recorder and the per-tunnel state monitor.
 */
import type { Firewall, FwResult, RuleRef, Session, SessionHooks, SimPacket } from "./firewall.js";
import type { Conn, Daemon, IkeMsg } from "./ike.js";
import { NatDevice } from "./nat.js";
import { EventQueue, fire, type SimEvent } from "./queue.js";
import { Rng } from "./rng.js";

export const LOG = { none: 0, state: 1, info: 2, debug: 3 } as const;
export type LogLevel = keyof typeof LOG;
const LEVEL_NAME = ["none", "state", "info", "debug"] as const;

/** One entry of the timeline. `t` is in seconds of virtual time. */
export interface TimelineEvent {
  id: number;
  t: number;
  gateway: string;
  tunnel?: string;
  type: string;
  level: "state" | "info" | "debug";
  /** The line as the daemon (or firewall) would log it. */
  msg: string;
  /** Id of the event that caused this one (a packet's send, for its receipt or drop). */
  cause?: number;
  [field: string]: unknown;
}

/** Payload carried inside ESP (a data packet of a traffic pattern). */
export interface DataMsg {
  tunnel: string;
  from: string;
  to: string;
  wantReply: boolean;
  sentAt: number;
}

/** A packet on the wire. `src`/`dst` change when a NAT device rewrites them. */
export interface WirePacket extends SimPacket {
  id: number;
  sender: string;
  sentAt: number;
  /** The sending gateway (set by {@link Engine.transmit}). */
  from?: Gateway | undefined;
  ike?: IkeMsg | undefined;
  data?: DataMsg | undefined;
  /** Timeline id of the send event (causality of receipt / drop events). */
  sendEvent?: number | undefined;
  /** ESP: the SPI as the simulation keys it (0: none); `spi` is its hex form for filters and logs. */
  spiN: number;
}

/** A packet with every field present in one order (one hidden class on the hot paths). */
export function wirePacket(
  src: string,
  dst: string,
  proto: SimPacket["proto"],
  sport: number | undefined,
  dport: number | undefined,
  kind: SimPacket["kind"],
  label: string,
  spi: string | undefined,
  spiN: number,
  key: string | undefined,
  ike: IkeMsg | undefined,
  data: DataMsg | undefined,
): WirePacket {
  return {
    src,
    dst,
    proto,
    sport,
    dport,
    kind,
    label,
    spi,
    key,
    id: 0,
    sender: "",
    sentAt: 0,
    from: undefined,
    ike,
    data,
    sendEvent: undefined,
    spiN,
  };
}

export type Device = Firewall | NatDevice;

export interface SessionRecord {
  device: string;
  id: number;
  label: string;
  local: boolean;
  start: number;
  end: number | null;
  /** Gateway the device belongs to, or the middlebox name. */
  owner: string;
}

export interface DropRecord {
  t: number;
  device: string;
  owner: string;
  kind: SimPacket["kind"];
  label: string;
  rule?: string;
}

export interface Transition {
  t: number;
  tunnel: string;
  gateway: string;
  up: boolean;
  reason: string;
}

export interface Anomaly {
  type:
    | "asymmetric"
    | "outage"
    | "never-established"
    | "flapping"
    | "black-hole"
    | "spi-mismatch"
    /** A gateway's firewall could not decide some packets: the run assumed their fate (`reason`). */
    | "unknown-verdict";
  tunnel: string;
  start: number;
  /** null: still present at the end of the run ("needs manual action" unless a timer fixes it later). */
  end: number | null;
  up?: string;
  down?: string;
  gateway?: string;
  from?: string;
  to?: string;
  packets?: number;
  transitions?: number;
  reason?: string;
  /** Seconds (to the end of the run when still open). */
  duration: number;
}

export class Gateway {
  daemon!: Daemon;
  /** Public address (outermost NAT), set by the network. */
  publicIp: string;
  /** {@link Engine.directPeer} for the last destination asked (the answer is static once built). */
  directDst: string | null = null;
  directGw: Gateway | null = null;
  constructor(
    readonly name: string,
    readonly address: string,
    readonly fw: Firewall | null,
    /** Devices between the gateway and the internet, inner first. */
    readonly chain: Device[],
  ) {
    const nat = [...chain].reverse().find((d): d is NatDevice => d instanceof NatDevice);
    this.publicIp = nat ? nat.publicIp : address;
  }
}

interface DirStats {
  sent: number;
  delivered: number;
  failed: number;
  noSa: number;
  open: { start: number; last: number; count: number; reason: string; spi: number } | null;
}

/**
 * Watches one tunnel: up/down per side, and the anomalies that follow from it. Fed on every SA
 * change (not sampled), so interval boundaries are exact.
 */
export class TunnelMonitor {
  readonly sides: [Conn, Conn];
  /** The sides and their last evaluated states as fields (the hot path reads no arrays). */
  private readonly ca: Conn;
  private readonly cb: Conn;
  private up0 = false;
  private up1 = false;
  everUp = false;
  private asym: { start: number; upSide: 0 | 1 } | null = null;
  private outage: { start: number; reason: string } | null = null;
  private mismatch: { start: number } | null = null;
  readonly downs: [number[], number[]] = [[], []];
  private readonly downWhy: [string, string] = ["", ""];
  readonly dirs = new Map<string, DirStats>();
  /** Open black-hole intervals (lets {@link update} skip the scan in the common case). */
  private openHoles = 0;
  anomalies: Anomaly[] = [];

  constructor(
    readonly tunnel: string,
    a: Conn,
    b: Conn,
    private readonly engine: Engine,
  ) {
    this.sides = [a, b];
    this.ca = a;
    this.cb = b;
  }

  isUp(i: 0 | 1): boolean {
    return i === 0 ? this.up0 : this.up1;
  }

  /** The last direction looked up (a tunnel's traffic mostly runs one way at a time). */
  private lastDir: { from: string; to: string; d: DirStats } | null = null;

  private dir(from: string, to: string): DirStats {
    const l = this.lastDir;
    if (l !== null && l.from === from && l.to === to) return l.d;
    const d = this.dirSlow(from, to);
    this.lastDir = { from, to, d };
    return d;
  }

  private dirSlow(from: string, to: string): DirStats {
    const k = `${from}>${to}`;
    let d = this.dirs.get(k);
    if (!d) {
      d = { sent: 0, delivered: 0, failed: 0, noSa: 0, open: null };
      this.dirs.set(k, d);
    }
    return d;
  }

  private emit(a: Omit<Anomaly, "duration" | "tunnel">): void {
    const end = a.end ?? this.engine.now / 1000;
    this.anomalies.push({ tunnel: this.tunnel, ...a, duration: round3(end - a.start) });
  }

  /** An SA change waits for the re-evaluation at the end of the event: the last one's reason. */
  private pending = false;
  private pendingReason = "";
  private pendingGateway = "";

  /**
   * Notes an SA change; the tunnel is re-evaluated once at the end of the current event (a rekey
   * touches the SAs several times within one event).
   */
  touch(reason: string, gateway: string): void {
    if (!this.pending) {
      this.pending = true;
      const e = this.engine;
      e.dirty[e.dirtyN++] = this;
    }
    this.pendingReason = reason;
    this.pendingGateway = gateway;
  }

  /**
   * The other side of the tunnel when a re-evaluation now would change nothing and find both sides
   * up on a consistent SA pair (the last evaluation saw exactly that, nothing is pending, no black
   * hole is open), else null. {@link Conn.rekeyDirect} relies on it.
   */
  steadyPeer(c: Conn): Conn | null {
    if (this.pending || !this.up0 || !this.up1 || this.mismatch !== null || this.openHoles !== 0) return null;
    return c === this.ca ? this.cb : c === this.cb ? this.ca : null;
  }

  /** Runs the deferred re-evaluation. */
  settle(): void {
    if (!this.pending) return;
    this.pending = false;
    this.update(this.pendingReason, this.pendingGateway);
  }

  update(reason: string, gateway: string): void {
    const u0 = this.ca.isUp();
    const u1 = this.cb.isUp();
    if (u0 === this.up0 && u1 === this.up1 && this.openHoles === 0) {
      // Neither side changed state: the asymmetry and outage checks below would find what the
      // last update left; only a both-up tunnel's SA pair can have changed (and mostly has not).
      if (u0 && u1 && this.consistent() !== (this.mismatch === null))
        this.checkMismatch(this.engine.now / 1000, this.engine.minAnomaly);
      return;
    }
    this.updateStates(u0, u1, reason, gateway);
  }

  /** {@link update} when a side went up or down (or a black hole is open). */
  private updateStates(u0: boolean, u1: boolean, reason: string, gateway: string): void {
    const t = this.engine.now / 1000;
    const min = this.engine.minAnomaly;
    const nu: [boolean, boolean] = [u0, u1];
    const old: [boolean, boolean] = [this.up0, this.up1];
    for (let i: 0 | 1 = 0; i < 2; i = (i + 1) as 0 | 1) {
      if (nu[i] !== old[i]) {
        const c = this.sides[i];
        const why = c.gw.name === gateway ? reason : `${reason} (at ${gateway})`;
        this.engine.rec.transition({ t, tunnel: this.tunnel, gateway: c.gw.name, up: nu[i], reason: why });
        if (!nu[i]) {
          this.downs[i].push(t);
          this.downWhy[i] = `${why} at ${c.gw.name}`;
        }
      }
    }
    this.up0 = u0;
    this.up1 = u1;
    if (nu[0] || nu[1]) this.everUp = true;

    // Asymmetric: exactly one side up.
    const oneUp = nu[0] !== nu[1];
    const upSide: 0 | 1 = nu[0] ? 0 : 1;
    if (this.asym && (!oneUp || this.asym.upSide !== upSide)) {
      if (t - this.asym.start >= min) {
        const u = this.sides[this.asym.upSide].gw.name;
        const d = this.sides[1 - this.asym.upSide]!.gw.name;
        this.emit({ type: "asymmetric", up: u, down: d, start: this.asym.start, end: t });
      }
      this.asym = null;
    }
    if (oneUp && !this.asym) this.asym = { start: t, upSide };

    // Outage: both down after the tunnel has been up once.
    const bothDown = !nu[0] && !nu[1];
    if (this.outage && !bothDown) {
      if (t - this.outage.start >= min)
        this.emit({ type: "outage", start: this.outage.start, end: t, reason: this.outage.reason });
      this.outage = null;
    }
    // The outage's cause is what took the first side down.
    if (bothDown && this.everUp && !this.outage) {
      const i = (this.downs[0].at(-1) ?? 0) <= (this.downs[1].at(-1) ?? 0) ? 0 : 1;
      this.outage = { start: t, reason: this.downWhy[i] || `${reason} at ${gateway}` };
    }

    // Both claim UP, but not with a common pair of SAs.
    if (nu[0] && nu[1]) this.checkMismatch(t, min);
    else if (this.mismatch) {
      if (t - this.mismatch.start >= min)
        this.emit({ type: "spi-mismatch", start: this.mismatch.start, end: t });
      this.mismatch = null;
    }

    // A black hole lasts while the sender keeps using the SA whose packets vanish.
    if (this.openHoles === 0) return;
    for (const [k, d] of this.dirs) {
      if (!d.open) continue;
      const sender = this.sides[0].gw.name === k.slice(0, k.indexOf(">")) ? this.sides[0] : this.sides[1];
      if (sender.outboundSpi() !== d.open.spi) {
        const [from, to] = k.split(">") as [string, string];
        this.closeBlackHole(from, to, d, t);
      }
    }
  }

  /** Both sides are UP: opens or closes the SPI-mismatch interval. */
  private checkMismatch(t: number, min: number): void {
    const consistent = this.consistent();
    if (this.mismatch && consistent) {
      if (t - this.mismatch.start >= min)
        this.emit({ type: "spi-mismatch", start: this.mismatch.start, end: t });
      this.mismatch = null;
    }
    if (!consistent && !this.mismatch) this.mismatch = { start: t };
  }

  /** Each side's outbound SA is one the other side accepts inbound. */
  consistent(): boolean {
    const ac = this.ca.outboundChild();
    if (ac === null) return false;
    const bc = this.cb.outboundChild();
    return bc !== null && this.cb.hasInbound(ac.outSpi) && this.ca.hasInbound(bc.outSpi);
  }

  dataSent(from: string, to: string): void {
    this.dir(from, to).sent++;
  }

  dataNoSa(from: string, to: string): void {
    this.dir(from, to).noSa++;
  }

  /** An ESP packet sent by a side that believed the tunnel up did not arrive. */
  dataFailed(from: string, to: string, sentAt: number, reason: string, spi: number): void {
    const d = this.dir(from, to);
    d.failed++;
    const t = sentAt / 1000;
    if (!d.open) {
      d.open = { start: t, last: t, count: 1, reason, spi };
      this.openHoles++;
    } else {
      d.open.count++;
      d.open.last = t;
    }
  }

  dataDelivered(from: string, to: string, sentAt: number): void {
    const d = this.dir(from, to);
    d.delivered++;
    if (d.open) {
      this.closeBlackHole(from, to, d, sentAt / 1000);
    }
  }

  private closeBlackHole(from: string, to: string, d: DirStats, end: number | null): void {
    const o = d.open!;
    this.emit({ type: "black-hole", from, to, start: o.start, end, packets: o.count, reason: o.reason });
    d.open = null;
    this.openHoles--;
  }

  /** Closes what is still open at the end of the run (end = null). */
  finish(): void {
    const t = this.engine.now / 1000;
    const min = this.engine.minAnomaly;
    if (this.asym && t - this.asym.start >= min) {
      this.emit({
        type: "asymmetric",
        up: this.sides[this.asym.upSide].gw.name,
        down: this.sides[1 - this.asym.upSide]!.gw.name,
        start: this.asym.start,
        end: null,
      });
    }
    if (this.outage && t - this.outage.start >= min)
      this.emit({ type: "outage", start: this.outage.start, end: null, reason: this.outage.reason });
    if (this.mismatch && t - this.mismatch.start >= min)
      this.emit({ type: "spi-mismatch", start: this.mismatch.start, end: null });
    if (!this.everUp)
      this.emit({
        type: "never-established",
        start: 0,
        end: null,
        reason: "no side ever had an established IKE SA with an installed CHILD SA",
      });
    for (const [k, d] of this.dirs) {
      if (d.open) {
        const [from, to] = k.split(">") as [string, string];
        this.closeBlackHole(from, to, d, null);
      }
    }
    // Flapping: a side went down `flapCount` times within `flapWindow` seconds.
    const { flapCount, flapWindow } = this.engine;
    for (const i of [0, 1] as const) {
      const downs = this.downs[i];
      let best: { start: number; end: number; n: number } | null = null;
      let j = 0;
      for (let k = 0; k < downs.length; k++) {
        while (downs[k]! - downs[j]! > flapWindow) j++;
        const n = k - j + 1;
        if (n >= flapCount && (!best || n > best.n)) best = { start: downs[j]!, end: downs[k]!, n };
      }
      if (best)
        this.emit({
          type: "flapping",
          gateway: this.sides[i].gw.name,
          start: best.start,
          end: best.end,
          transitions: best.n,
        });
    }
    this.anomalies.sort((x, y) => x.start - y.start || x.type.localeCompare(y.type));
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Collects the timeline. Strings are only built when the level asks for them. */
export class Recorder {
  readonly events: TimelineEvent[] = [];
  readonly transitions: Transition[] = [];
  readonly sessions: SessionRecord[] = [];
  readonly drops: DropRecord[] = [];
  dropCount = 0;
  private nextId = 0;
  private readonly openSessions = new Map<Session, SessionRecord>();

  constructor(
    readonly level: number,
    private readonly engine: Engine,
    /** Drops are kept at most once per device, kind and time bucket (charts need density, not every packet). */
    private readonly dropBucketMs = 1,
  ) {}
  private readonly lastDropBucket = new Map<string, number>();

  on(level: number): boolean {
    return this.level >= level;
  }

  add(
    level: number,
    gateway: string,
    tunnel: string | undefined,
    type: string,
    msg: string,
    fields?: Record<string, unknown>,
    cause?: number,
  ): number {
    if (this.level < level) return -1;
    const ev: TimelineEvent = {
      id: this.nextId++,
      t: this.engine.now / 1000,
      gateway,
      ...(tunnel !== undefined ? { tunnel } : {}),
      type,
      level: LEVEL_NAME[level] as TimelineEvent["level"],
      msg,
      ...(cause !== undefined && cause >= 0 ? { cause } : {}),
      ...fields,
    };
    this.events.push(ev);
    return ev.id;
  }

  transition(tr: Transition): void {
    if (this.level >= LOG.state) {
      this.transitions.push(tr);
      this.add(
        LOG.state,
        tr.gateway,
        tr.tunnel,
        tr.up ? "tunnel-up" : "tunnel-down",
        `tunnel ${tr.tunnel} ${tr.up ? "UP" : "DOWN"} (${tr.reason})`,
      );
    }
  }

  sessionNew(s: Session, owner: string, label: string): void {
    if (this.level < LOG.state) return;
    const r: SessionRecord = {
      device: s.device,
      id: s.id,
      label,
      local: s.local,
      start: s.created / 1000,
      end: null,
      owner,
    };
    this.sessions.push(r);
    this.openSessions.set(s, r);
  }

  sessionEnd(s: Session): void {
    const r = this.openSessions.get(s);
    if (!r) return;
    r.end = (s.ended ?? this.engine.now) / 1000;
    this.openSessions.delete(s);
  }

  drop(d: DropRecord): void {
    this.dropCount++;
    if (this.level < LOG.state) return;
    const k = `${d.owner}|${d.device}|${d.kind}`;
    const bucket = Math.floor((d.t * 1000) / this.dropBucketMs);
    if (this.lastDropBucket.get(k) === bucket) return;
    this.lastDropBucket.set(k, bucket);
    this.drops.push(d);
  }
}

export interface EngineOptions {
  seed: number;
  /** Seconds (sizes the drop sampling). */
  duration: number;
  logLevel: LogLevel;
  /** One-way latency between any two gateways, seconds. */
  latency: number;
  /** Anomalies shorter than this (seconds) are ignored: establishment and DELETE round trips. */
  minAnomaly: number;
  flapCount: number;
  flapWindow: number;
  /**
   * Packet trains whose packets provably cannot meet any other event are applied in one event
   * (default true; `false` is the plain path the tests compare with).
   */
  collapse?: boolean;
}

export class Engine {
  now = 0;
  readonly q = new EventQueue();
  readonly rng: Rng;
  readonly seed: number;
  readonly rec: Recorder;
  readonly latencyMs: number;
  readonly minAnomaly: number;
  readonly flapCount: number;
  readonly flapWindow: number;
  readonly gateways = new Map<string, Gateway>();
  private readonly byAddress = new Map<string, Gateway>();
  private readonly byPublic = new Map<string, Gateway[]>();
  readonly monitors = new Map<string, TunnelMonitor>();
  readonly devices = new Map<string, { dev: Device; owner: string }>();
  /** Events popped from the queue and executed. */
  eventsRun = 0;
  /**
   * Events of the plain path that a collapsed packet train executed without an event of their own
   * (sends, arrivals): `eventsRun + eventsCollapsed` is what the plain path executes.
   */
  eventsCollapsed = 0;
  readonly collapse: boolean;
  /** End of the current {@link run} (virtual ms): nothing after it happens. */
  until = Number.POSITIVE_INFINITY;
  /** Monitors with SA changes in the current event. */
  readonly dirty: TunnelMonitor[] = [];
  /** Entries of {@link dirty} in use (a count: truncating the array costs a runtime call). */
  dirtyN = 0;
  private packetIds = 0;

  constructor(opts: EngineOptions) {
    this.seed = opts.seed;
    this.rng = new Rng(opts.seed);
    // ~4000 drop records per device and kind at most, whatever the duration.
    this.rec = new Recorder(LOG[opts.logLevel], this, Math.max(1, Math.round((opts.duration * 1000) / 4000)));
    this.latencyMs = Math.max(0, Math.round(opts.latency * 1000));
    this.minAnomaly = opts.minAnomaly;
    this.flapCount = opts.flapCount;
    this.flapWindow = opts.flapWindow;
    this.collapse = opts.collapse ?? true;
  }

  at(t: number, fn: () => void): SimEvent {
    return this.q.push(Math.max(t, this.now), fn);
  }

  after(dtMs: number, fn: () => void): SimEvent {
    return this.q.pushAfter(this.now, Math.max(0, Math.round(dtMs)), fn);
  }

  /** {@link at} for `fn(arg)`: no closure per event on hot paths. */
  atArg<T>(t: number, fn: (arg: T) => void, arg: T): SimEvent {
    return this.q.pushArg(Math.max(t, this.now), fn, arg);
  }

  /** {@link after} for `fn(arg)`. */
  afterArg<T>(dtMs: number, fn: (arg: T) => void, arg: T): SimEvent {
    return this.q.pushAfterArg(this.now, Math.max(0, Math.round(dtMs)), fn, arg);
  }

  private readonly arriveFn = (p: WirePacket): void => this.arrive(p.from!, p);

  /** Session hooks for a device: its timeline records and its expiry watchdog. */
  sessionHooks(owner: string, deviceName: string): SessionHooks {
    return {
      unobserved: this.rec.level < LOG.state,
      // Without recording, expiry is detected lazily on lookup: no watchdog events at all.
      ...(this.rec.level >= LOG.state
        ? {
            at: (t: number, fn: () => void) => {
              this.at(t, fn);
            },
          }
        : {}),
      onNew: (s) => {
        if (this.rec.level < LOG.state) return;
        const label = sessionLabel(s);
        this.rec.sessionNew(s, owner, label);
        const level = s.proto === "udp" && isIkePort(s) ? LOG.info : LOG.debug;
        if (this.rec.on(level)) {
          this.rec.add(
            level,
            owner,
            undefined,
            "fw-session-new",
            `${deviceName}: new session ${s.id} ${label}${s.local ? " (local, out)" : ""}`,
            { device: deviceName, session: s.id },
          );
        }
      },
      onEnd: (s) => {
        this.rec.sessionEnd(s);
        const level = s.proto === "udp" && isIkePort(s) ? LOG.info : LOG.debug;
        if (this.rec.on(level)) {
          const idle = ((s.ended ?? this.now) - s.lastSeen) / 1000;
          // Logged at its exact expiry time: the watchdog fires then.
          this.rec.add(
            level,
            owner,
            undefined,
            "fw-session-expired",
            `${deviceName}: session ${s.id} ${sessionLabel(s)} expired after ${fmtS(idle)} s idle`,
            { device: deviceName, session: s.id },
          );
        }
      },
    };
  }

  addGateway(gw: Gateway): void {
    this.gateways.set(gw.name, gw);
    this.byAddress.set(gw.address, gw);
    const list = this.byPublic.get(gw.publicIp) ?? [];
    list.push(gw);
    this.byPublic.set(gw.publicIp, list);
    if (gw.fw) this.devices.set(gw.fw.name, { dev: gw.fw, owner: gw.name });
    for (const d of gw.chain) this.devices.set(d.name, { dev: d, owner: d.name });
  }

  /** Sends a packet from a gateway: its own firewall's output hook now, the rest on arrival. */
  transmit(from: Gateway, p: WirePacket): boolean {
    p.id = ++this.packetIds;
    p.sender = from.name;
    p.sentAt = this.now;
    p.from = from;
    const fw = from.fw;
    // An accept-all firewall without a table only counts the packet (its verdict object is not read).
    if (fw !== null) {
      if (fw.passAll) fw.counters.accepted++;
      else {
        const r = fw.output(p, this.now);
        if (!r.accept) {
          this.dropped(fw, from.name, p, r);
          return false;
        }
      }
    }
    if (this.collapse) {
      // Held back with its sequence number: run directly after this event if nothing comes first.
      const i = this.nextEnd++;
      this.nextP[i] = p;
      this.nextT[i] = this.now + this.latencyMs;
      this.nextSeq[i] = this.q.reserve(1);
    } else {
      this.q.pushAfterArg(this.now, this.latencyMs, this.arriveFn, p);
    }
    return true;
  }

  /**
   * Packet arrivals held back by {@link transmit}, in (time, sequence) order (one latency after
   * sends made in time order): when the current event ends and no live event precedes the first
   * one, it is the event the queue would pop next, so {@link run} runs it without the queue (and
   * so on); otherwise they are queued with their reserved sequence numbers. Entries
   * `nextHead..nextEnd-1` are in use.
   */
  private readonly nextP: (WirePacket | null)[] = [];
  private readonly nextT: number[] = [];
  private readonly nextSeq: number[] = [];
  private nextHead = 0;
  private nextEnd = 0;

  /**
   * Timers made by {@link afterArgHeld} in the current event and the held-back arrivals run after
   * it: queued only when that chain ends and only if they are still live (a retransmission timer
   * is mostly cancelled by the response before).
   */
  private readonly held: SimEvent[] = [];
  /** Entries of {@link held} in use (a count: truncating the array costs a runtime call). */
  private heldN = 0;

  /**
   * {@link afterArg} for a timer that is likely cancelled soon: it keeps the sequence number it
   * gets now, but enters the queue only at the end of the current chain of events, if still live.
   */
  afterArgHeld<T>(dtMs: number, fn: (arg: T) => void, arg: T): SimEvent {
    if (!this.collapse) return this.afterArg(dtMs, fn, arg);
    return this.hold(this.now + Math.max(0, Math.round(dtMs)), fn, arg);
  }

  /** {@link afterArgHeld} at an absolute time. */
  atArgHeld<T>(t: number, fn: (arg: T) => void, arg: T): SimEvent {
    if (!this.collapse) return this.atArg(t, fn, arg);
    return this.hold(Math.max(t, this.now), fn, arg);
  }

  /** A held timer at `t` (ms, not before now), with its sequence number taken now. */
  private hold<T>(t: number, fn: (arg: T) => void, arg: T): SimEvent {
    const ev: SimEvent = { t, seq: this.q.reserve(1), fn: fn as (arg: never) => void, arg, dead: false };
    this.held[this.heldN++] = ev;
    return ev;
  }

  /** A live held timer comes before (t, seq). */
  private heldBefore(t: number, seq: number): boolean {
    const h = this.held;
    for (let i = 0; i < this.heldN; i++) {
      const ev = h[i]!;
      if (!ev.dead && (ev.t < t || (ev.t === t && ev.seq < seq))) return true;
    }
    return false;
  }

  /** Queues the live held timers. */
  private queueHeld(): void {
    const h = this.held;
    for (let i = 0; i < this.heldN; i++) {
      const ev = h[i]!;
      if (!ev.dead) this.q.insert(ev);
    }
    this.heldN = 0;
  }

  /** Time of the next live event, the held-back arrival and held timers included (∞ if none). */
  peekLiveTime(): number {
    let t = this.q.peekLiveTime();
    if (this.nextHead < this.nextEnd && this.nextT[this.nextHead]! < t) t = this.nextT[this.nextHead]!;
    const h = this.held;
    for (let i = 0; i < this.heldN; i++) {
      const ev = h[i]!;
      if (!ev.dead && ev.t < t) t = ev.t;
    }
    return t;
  }

  /** Queues the held-back arrivals (with their reserved sequence numbers). */
  private queueNext(): void {
    for (let i = this.nextHead; i < this.nextEnd; i++) {
      this.q.pushSeq(this.nextT[i]!, this.nextSeq[i]!, this.arriveFn, this.nextP[i]!);
      this.nextP[i] = null;
    }
    this.nextHead = 0;
    this.nextEnd = 0;
  }

  /**
   * The gateway a packet from `from` to `dst` certainly reaches, unchanged and without any state
   * on the way (no device in front of either side, each side's firewall absent or accepting
   * everything without a table), or null. Such a path's only effect is the arrival after the
   * latency (see {@link arrive}).
   */
  directPeer(from: Gateway, dst: string): Gateway | null {
    if (from.chain.length > 0 || (from.fw !== null && !from.fw.passAll)) return null;
    const cands = this.byPublic.get(dst);
    if (!cands || cands.length === 0) return null;
    const target = cands[0]!;
    if (target.chain.length > 0 || this.byAddress.get(dst) !== target) return null;
    if (target.fw !== null && !target.fw.passAll) return null;
    return target;
  }

  /** {@link directPeer}, remembered per sending gateway for its last destination. */
  directTo(from: Gateway, dst: string): Gateway | null {
    if (from.directDst === dst) return from.directGw;
    const g = this.directPeer(from, dst);
    from.directDst = dst;
    from.directGw = g;
    return g;
  }

  /**
   * Nothing but what the current event does itself can happen up to `tEnd` (ms), inclusive: no
   * recording above state, nothing held back or pending, no live event queued at or before it,
   * and the run goes on at least that long. A chain of held-back arrivals started now and ending
   * at `tEnd` would run without interruption ({@link runHeldBack}). With `from`, the arrivals
   * already held back may be ESP packets from that gateway to `dst` that want no reply: their
   * receipt only records the delivery and the SA's last inbound time.
   */
  quietUntil(tEnd: number, from: Gateway | null, dst: string): boolean {
    if (
      !this.collapse ||
      this.rec.level >= LOG.info ||
      this.heldN !== 0 ||
      this.dirtyN !== 0 ||
      tEnd > this.until ||
      this.q.liveBefore(tEnd, Number.POSITIVE_INFINITY)
    )
      return false;
    for (let i = this.nextHead; i < this.nextEnd; i++) {
      const p = this.nextP[i]!;
      if (from === null || p.from !== from || p.dst !== dst || p.ike !== undefined || p.data === undefined)
        return false;
      if (p.kind !== "esp" || p.data.wantReply) return false;
    }
    return true;
  }

  /** Counts a packet that a collapsed train sent (ids and firewall counters as {@link transmit}). */
  countDirect(from: Gateway, to: Gateway): void {
    ++this.packetIds;
    if (from.fw) from.fw.counters.accepted++;
    if (to.fw) to.fw.counters.accepted++;
  }

  private arrive(from: Gateway, p: WirePacket): void {
    const direct = this.directTo(from, p.dst);
    if (direct !== null) {
      // No device on the way and a firewall (if any) that accepts everything without a table:
      // what the walk below would do.
      if (direct.fw) direct.fw.counters.accepted++;
      direct.daemon.receive(p);
      return;
    }
    this.arriveVia(from, p);
  }

  /** {@link arrive} through devices and firewalls that may change or drop the packet. */
  private arriveVia(from: Gateway, p: WirePacket): void {
    for (const d of from.chain) {
      if (!this.pass(d, d.name, p, "out")) return;
    }
    const cands = this.byPublic.get(p.dst);
    if (!cands || cands.length === 0) {
      this.droppedMsg(from.name, "network", p, `no route to ${p.dst}`);
      return;
    }
    // Walk the destination's chain from the outside in; a NAT device may pick another gateway
    // behind it (shared NAT), whose chain continues from the same position.
    let target = cands[0]!;
    for (let i = target.chain.length - 1; i >= 0; i--) {
      const d = target.chain[i]!;
      if (!this.pass(d, d.name, p, "in")) return;
      if (d instanceof NatDevice) {
        const g = this.byAddress.get(p.dst);
        if (g && g !== target && g.chain[i] === d) target = g;
      }
    }
    const gw = this.byAddress.get(p.dst);
    if (!gw || gw !== target) {
      this.droppedMsg(target.name, "network", p, `${p.dst} is not reachable behind ${target.name}'s devices`);
      return;
    }
    if (gw.fw) {
      const r = gw.fw.input(p, this.now);
      if (!r.accept) {
        this.dropped(gw.fw, gw.name, p, r);
        return;
      }
    }
    gw.daemon.receive(p);
  }

  private pass(d: Device, name: string, p: WirePacket, dir: "in" | "out"): boolean {
    if (d instanceof NatDevice) {
      const r = dir === "out" ? d.outbound(p, this.now) : d.inbound(p, this.now);
      if (!r.ok) {
        this.droppedMsg(name, name, p, r.reason ?? "NAT drop");
        return false;
      }
      return true;
    }
    const r = d.forward(p, this.now);
    if (!r.accept) {
      this.dropped(d, name, p, r);
      return false;
    }
    return true;
  }

  private dropped(fw: Firewall, owner: string, p: WirePacket, r: FwResult): void {
    this.droppedMsg(owner, fw.name, p, dropText(r.rule, r.state), r.rule);
  }

  private droppedMsg(owner: string, device: string, p: WirePacket, why: string, rule?: RuleRef): void {
    const label = p.label ?? p.kind;
    this.rec.drop({
      t: this.now / 1000,
      device,
      owner,
      kind: p.kind,
      label,
      ...(rule ? { rule: rule.text } : {}),
    });
    const level = p.kind === "ike" ? LOG.info : LOG.debug;
    if (this.rec.on(level)) {
      this.rec.add(
        level,
        owner,
        p.data?.tunnel ?? p.ike?.tunnel,
        "fw-drop",
        `${device}: drop ${label} ${p.proto === "esp" ? "proto=50" : `proto=${p.proto === "udp" ? 17 : 6}`} ${p.src}:${p.sport ?? 0}->${p.dst}:${p.dport ?? 0}: ${why}`,
        {
          device,
          packet: label,
          kind: p.kind,
          ...(rule
            ? {
                rule: rule.text,
                ...(rule.file ? { file: rule.file } : {}),
                ...(rule.line ? { line: rule.line } : {}),
              }
            : {}),
        },
        p.sendEvent,
      );
    }
    if (p.kind === "esp" && p.data)
      this.monitors
        .get(p.data.tunnel)
        ?.dataFailed(p.data.from, p.data.to, p.data.sentAt, `${why} (${device})`, p.spiN);
  }

  settle(): void {
    const d = this.dirty;
    for (let i = 0; i < this.dirtyN; i++) d[i]!.settle();
    this.dirtyN = 0;
  }

  run(untilMs: number): void {
    const q = this.q;
    this.until = untilMs;
    if (this.nextEnd > 0) this.queueNext();
    if (this.heldN > 0) this.queueHeld();
    for (;;) {
      const ev = q.popUntil(untilMs);
      if (!ev) break;
      if (ev.dead) continue;
      this.now = ev.t;
      this.eventsRun++;
      fire(ev);
      if (this.dirtyN > 0) this.settle();
      if (this.nextHead < this.nextEnd) this.runHeldBack(untilMs);
      if (this.heldN > 0) this.queueHeld();
    }
    this.now = untilMs;
  }

  /** The held-back arrivals, while the first is the next event (each may hold back more). */
  private runHeldBack(untilMs: number): void {
    const q = this.q;
    while (this.nextHead < this.nextEnd) {
      const h = this.nextHead;
      const t = this.nextT[h]!;
      const seq = this.nextSeq[h]!;
      if (t > untilMs || (this.heldN > 0 && this.heldBefore(t, seq)) || q.liveBefore(t, seq)) {
        this.queueNext();
        return;
      }
      const p = this.nextP[h]!;
      this.nextP[h] = null;
      if (++this.nextHead === this.nextEnd) {
        this.nextHead = 0;
        this.nextEnd = 0;
      }
      this.now = t;
      this.eventsCollapsed++;
      this.arrive(p.from!, p);
      if (this.dirtyN > 0) this.settle();
    }
  }
}

function isIkePort(s: Session): boolean {
  return s.sport === 500 || s.dport === 500 || s.sport === 4500 || s.dport === 4500;
}

export function sessionLabel(s: Session): string {
  if (s.proto === "esp") return `proto=50 ${s.src}->${s.dst}`;
  return `proto=${s.proto === "udp" ? 17 : 6} ${s.src}:${s.sport}->${s.dst}:${s.dport}`;
}

function dropText(rule: RuleRef | undefined, state: string): string {
  const where = rule
    ? `${rule.text}${rule.file ? ` (${rule.file}${rule.line ? `:${rule.line}` : ""})` : ""}`
    : "dropped";
  return `${state === "new" ? "no session, " : ""}${where}`;
}

export function fmtS(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
}
