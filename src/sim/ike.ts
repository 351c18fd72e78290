/**
 * The IKE daemon model: per gateway a {@link Daemon}, per tunnel a {@link Conn}, and the IKE and
 * CHILD SAs with their exchanges, retransmissions, rekeys, DPD, DELETE and re-initiation.
 *
 * Messages are modelled at the level that matters for firewalls and state: which packets go on
 * the wire (5-tuple, when, how often), which side holds which SAs. Cryptography, proposals and
 * traffic selectors are not modelled (one CHILD SA per tunnel; negotiation always succeeds when
 * the messages arrive).
 */
import type { DataMsg, Engine, Gateway, TunnelMonitor, WirePacket } from "./engine.js";
import { LOG, wirePacket } from "./engine.js";
import { tupleKey } from "./firewall.js";
import { type LogStyle, logStyle, type SaRef } from "./log.js";
import type { IkeProfile } from "./profiles.js";
import type { SimEvent } from "./queue.js";
import { Rng, seedFor, spiHex } from "./rng.js";
import { LastHitMap, SpiTable } from "./tables.js";

export type Exch =
  | "IKE_SA_INIT"
  | "IKE_AUTH"
  | "CREATE_CHILD_SA"
  | "INFORMATIONAL"
  | "MAIN_MODE"
  | "QUICK_MODE"
  | "INFO_V1";

export interface IkeMsg {
  tunnel: string;
  v: 1 | 2;
  exch: Exch;
  /** IKEv1 message number within Main Mode (1..6) / Quick Mode (1..3). */
  step: number;
  resp: boolean;
  /** The sender is the original initiator of the IKE SA (IKEv2 header I flag). */
  fromInitiator: boolean;
  spiI: string;
  spiR: string;
  mid: number;
  nonce: number;
  /** NAT detection: the addresses the sender used (NATD payloads); `fake` = forced encapsulation. */
  natd: { src: string; sport: number; dst: string; dport: number; fake: boolean } | undefined;
  /** Sender's inbound SPI for a new CHILD SA (0: none). */
  childSpi: number;
  /** REKEY_SA: the sender's inbound SPI of the CHILD SA being rekeyed (0: none). */
  rekeyOf: number;
  /** IKE SA rekey: the sender's SPI of the new IKE SA. */
  newIkeSpi: string | undefined;
  /** DELETE payloads: the IKE SA, and/or the sender's inbound SPIs of CHILD SAs. */
  delIke: boolean;
  delChild: number[] | null;
  dpd: "req" | "ack" | undefined;
  seq: number | undefined;
  /** TEMPORARY_FAILURE (rekey collision lost by the requester) or CHILD_SA_NOT_FOUND. */
  error: "TEMPORARY_FAILURE" | "CHILD_SA_NOT_FOUND" | undefined;
  /** Short description for logs. */
  what: string;
  len: number;
}

const ms = (s: number): number => Math.round(s * 1000);

/** Which CHILD SAs {@link childByOut} matches: any, not deleted, installed; any not deleted whatever its SPI. */
const ANY = 0;
const LIVE = 1;
const INSTALLED = 2;
const ANY_LIVE = 3;

/** The first of an IKE SA's CHILD SAs with this outbound SPI (a loop: no closure per look-up). */
function childByOut(sa: IkeSa, spi: number, which: 0 | 1 | 2 | 3): ChildSa | null {
  const cs = sa.children;
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!;
    if (which === ANY_LIVE) {
      if (c.state !== "deleted") return c;
      continue;
    }
    if (c.outSpi !== spi) continue;
    if (which === ANY || (which === LIVE ? c.state !== "deleted" : c.state === "installed")) return c;
  }
  return null;
}
/** The earliest a new CHILD SA's rekey timer can fire after its install (ms; rand time of either sign). */
const soonestRekey = (p: IkeProfile): number =>
  Math.min(ms(p.childRekeyTime), ms(p.childRekeyTime - p.childRandTime));
const kill = (e: SimEvent | null): null => {
  if (e) e.dead = true;
  return null;
};

export class ChildSa {
  state: "installed" | "rekeyed" | "deleted" = "installed";
  /** Outbound traffic uses this SA (a rekey responder waits for the DELETE of the old one). */
  outActive: boolean;
  lastIn: number;
  rekeyTimer: SimEvent | null = null;
  expireTimer: SimEvent | null = null;
  /** The nonce of this side's rekey under way, -1 when none (nonces are unsigned). */
  rekeyNonce = -1;
  replacedBy: ChildSa | null = null;
  readonly installedAt: number;
  private outHexCache = "";
  constructor(
    public ike: IkeSa,
    /** SPIs are numbers inside the simulation (see {@link spiHex} for output). */
    readonly inSpi: number,
    readonly outSpi: number,
    readonly serial: number,
    now: number,
    outActive: boolean,
  ) {
    this.installedAt = now;
    this.lastIn = now;
    this.outActive = outActive;
  }

  /** The outbound SPI in hex, as ESP packets carry it for filters (built once per SA). */
  outHex(): string {
    if (this.outHexCache === "") this.outHexCache = spiHex(this.outSpi);
    return this.outHexCache;
  }
}

/** What an exchange does with its response or when it gives up (see {@link Conn.responded}). */
type Then = 0 | 1 | 2 | 3;
/** The exchange's own callbacks. */
const CALLBACKS = 0;
/** CREATE_CHILD_SA rekeying {@link Exchange.child} with the new inbound SPI {@link Exchange.n}. */
const CHILD_REKEY = 1;
/** INFORMATIONAL deleting the rekeyed {@link Exchange.child}. */
const CHILD_REKEY_DELETE = 2;
/** FortiOS IKEv2 DPD probe number {@link Exchange.n}. */
const FORTI_DPD = 3;

/** A request in flight or queued (window 1), with its retransmission timer. */
class Exchange {
  tries = 0;
  timer: SimEvent | null = null;
  constructor(
    readonly sa: IkeSa,
    readonly msg: IkeMsg,
    readonly then: Then,
    readonly child: ChildSa | null,
    readonly n: number,
    readonly onResponse: ((m: IkeMsg) => void) | null,
    readonly onGiveUp: (() => void) | null,
  ) {}
}

export class IkeSa {
  state: "connecting" | "established" | "deleting" | "dead" = "connecting";
  spiR = "";
  localPort = 500;
  remotePort = 500;
  remoteIp: string;
  natHere = false;
  natThere = false;
  encap = false;
  children: ChildSa[] = [];
  lastIn: number;
  lastOut: number;
  nextMid = 0;
  active: Exchange | null = null;
  queue: Exchange[] = [];
  expectMid = 0;
  /** The last response sent (its mid and exchange are the request's), resent on a retransmitted request. */
  cached: IkeMsg | null = null;
  /** The step of the request {@link cached} answers. */
  cachedStep = 0;
  rekeying: { nonce: number } | null = null;
  /** IKEv1: Quick Modes awaiting their third message (responder), by message id. */
  pendingQm = new Map<number, { inSpi: number; outSpi: number; rekeyOf: number }>();
  /** IKEv1 ISAKMP rekey / reauthentication: the SA this one replaces once established. */
  replaces: IkeSa | null = null;
  dpdSeq = 0;
  /** Responder: key in the daemon's half-open table until established. */
  halfOpenKey = "";
  timers: Record<
    "rekey" | "expire" | "reauth" | "dpd" | "keepalive" | "halfOpen" | "negotiate" | "dpdTimeout",
    SimEvent | null
  > = {
    rekey: null,
    expire: null,
    reauth: null,
    dpd: null,
    keepalive: null,
    halfOpen: null,
    negotiate: null,
    dpdTimeout: null,
  };
  establishedAt = -1;
  readonly createdAt: number;
  private keyCache = "";
  private keyLp = -1;
  private keyRp = -1;
  private keyRi = "";

  private espKeyCache = "";
  private espKeyRi = "";

  /** Session-table key of this SA's raw ESP packets (the generic tracker keys on addresses). */
  espKey(src: string): string {
    if (this.espKeyRi !== this.remoteIp) {
      this.espKeyRi = this.remoteIp;
      this.espKeyCache = tupleKey("esp", src, 0, this.remoteIp, 0);
    }
    return this.espKeyCache;
  }

  /** Session-table key of the packets this SA sends (IKE, and ESP-in-UDP): one string, reused. */
  udpKey(src: string): string {
    if (this.keyLp !== this.localPort || this.keyRp !== this.remotePort || this.keyRi !== this.remoteIp) {
      this.keyLp = this.localPort;
      this.keyRp = this.remotePort;
      this.keyRi = this.remoteIp;
      this.keyCache = tupleKey("udp", src, this.localPort, this.remoteIp, this.remotePort);
    }
    return this.keyCache;
  }

  constructor(
    readonly conn: Conn,
    readonly serial: number,
    readonly initiator: boolean,
    readonly spiI: string,
    now: number,
  ) {
    this.remoteIp = conn.remote;
    this.createdAt = now;
    this.lastIn = now;
    this.lastOut = now;
  }

  get localSpi(): string {
    return this.initiator ? this.spiI : this.spiR;
  }

  ref(): SaRef {
    return {
      conn: this.conn.name,
      serial: this.serial,
      spiI: this.spiI,
      spiR: this.spiR,
      local: this.conn.gw.address,
      remote: this.remoteIp,
      localPort: this.localPort,
      remotePort: this.remotePort,
      v: this.conn.p.ikeVersion,
    };
  }
}

/** One side of a tunnel: the connection config and its SAs on one gateway. */
export class Conn {
  readonly sas: IkeSa[] = [];
  connecting: IkeSa | null = null;
  attempt = 0;
  /** Trap policy installed (strongSwan start_action/dpd_action = trap): traffic starts a negotiation. */
  trap = false;
  lastIn = 0;
  monitor!: TunnelMonitor;
  /** The peer gateway's name (for data stats). */
  peerName = "";
  /** FortiOS DPD (per phase1 gateway): the probe in flight. */
  probe: { sa: IkeSa; seq: number; sentAt: number; count: number; timer: SimEvent | null } | null = null;
  idleTimer: SimEvent | null = null;
  private childSerial = 0;
  readonly say: LogStyle;
  /**
   * This connection's own random stream (jitter, SPIs, nonces), seeded from the run's seed and the
   * tunnel and gateway names: a tunnel behaves the same whatever else is simulated with it.
   */
  readonly rng: Rng;

  constructor(
    readonly daemon: Daemon,
    readonly tunnel: string,
    /** Name in logs (phase1-interface name / swanctl connection name). */
    readonly name: string,
    /** The peer's address as configured (remote-gw / remote_addrs). */
    readonly remote: string,
    readonly p: IkeProfile,
  ) {
    this.say = logStyle(p.vendor);
    this.rng = new Rng(seedFor(daemon.engine.seed, tunnel, daemon.gw.name));
    this.gw = daemon.gw;
    this.e = daemon.engine;
  }

  readonly gw: Gateway;
  private readonly e: Engine;

  /** Info-level events are recorded (guards building their fields on hot paths). */
  get info(): boolean {
    return this.e.rec.level >= LOG.info;
  }

  // ------------------------------------------------------------------------------------------
  // State queries

  /**
   * {@link isUp} and {@link outboundChild}, computed once after the SAs changed: the monitor asks
   * both sides after every change, and each data packet asks for the outbound SA. Every change of
   * the SA lists, an SA's state or a CHILD SA's outbound flag calls {@link saChanged}.
   */
  private cacheValid = false;
  private upCache = false;
  private outCache: ChildSa | null = null;

  /** The IKE / CHILD SAs of this connection changed (membership, state, outbound flag). */
  saChanged(): void {
    this.cacheValid = false;
  }

  private computeState(): void {
    let up = false;
    let best: ChildSa | null = null;
    const sas = this.sas;
    for (let i = 0; i < sas.length; i++) {
      const sa = sas[i]!;
      const st = sa.state;
      if (st !== "established" && st !== "deleting") continue;
      const cs = sa.children;
      for (let j = 0; j < cs.length; j++) {
        const c = cs[j]!;
        if (st === "established" && c.state !== "deleted") up = true;
        if (c.state === "installed" && c.outActive && (!best || c.installedAt >= best.installedAt)) best = c;
      }
    }
    this.upCache = up;
    this.outCache = best;
    this.cacheValid = true;
  }

  isUp(): boolean {
    if (!this.cacheValid) this.computeState();
    return this.upCache;
  }

  outboundChild(): ChildSa | null {
    if (!this.cacheValid) this.computeState();
    return this.outCache;
  }

  outboundSpi(): number | null {
    return this.outboundChild()?.outSpi ?? null;
  }

  hasInbound(spi: number): boolean {
    const c = this.daemon.childByIn.get(spi);
    return !!c && c.state !== "deleted" && c.ike.conn === this;
  }

  // ------------------------------------------------------------------------------------------
  // Logging

  /** Records a timeline event; the message is built only when the level is recorded. */
  log(
    level: number,
    type: string,
    msg: () => string,
    sa?: IkeSa,
    fields?: Record<string, unknown>,
    cause?: number,
  ): number {
    const rec = this.e.rec;
    if (!rec.on(level)) return -1;
    const text = msg();
    if (text === "") return -1;
    return rec.add(
      level,
      this.gw.name,
      this.tunnel,
      type,
      this.say.prefix(this.name, sa?.serial) + text,
      fields,
      cause,
    );
  }

  /** After any SA change: the monitor re-evaluates the tunnel. */
  changed(reason: string): void {
    this.monitor.touch(reason, this.gw.name);
  }

  // ------------------------------------------------------------------------------------------
  // Initiation

  /** Starts an IKE SA (with its first CHILD SA) unless an attempt is already running. */
  initiate(why: string, retry = false): void {
    if (this.connecting) return;
    if (!retry) this.attempt = 1;
    const sa = this.newSa(true, this.daemon.newIkeSpi(this.rng));
    this.connecting = sa;
    if (this.info) this.log(LOG.info, "ike-initiate", () => this.say.initiate(sa.ref(), why), sa, { why });
    this.startNegotiation(sa);
  }

  private newSa(initiator: boolean, spiI: string): IkeSa {
    const sa = new IkeSa(this, this.daemon.nextSerial(), initiator, spiI, this.e.now);
    this.sas.push(sa);
    this.saChanged();
    if (initiator) this.daemon.byLocalSpi.set(spiI, sa);
    return sa;
  }

  private startNegotiation(sa: IkeSa): void {
    const p = this.p;
    if (p.negotiateTimeout !== null) {
      sa.timers.negotiate = this.e.after(ms(p.negotiateTimeout), () => {
        sa.timers.negotiate = null;
        if (sa.state === "connecting") this.attemptFailed(sa, "negotiate-timeout");
      });
    }
    const natd = { src: this.gw.address, sport: 500, dst: sa.remoteIp, dport: 500, fake: p.forceEncap };
    if (p.ikeVersion === 2) {
      const init = this.msg(
        sa,
        "IKE_SA_INIT",
        0,
        false,
        "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]",
        464,
      );
      init.natd = natd;
      this.request(
        sa,
        init,
        (m) => {
          sa.spiR = m.spiR;
          this.detectNat(sa, m);
          this.floatIfNeeded(sa);
          const childIn = this.daemon.newChildSpi(this.rng);
          const auth = this.msg(sa, "IKE_AUTH", 0, false, "IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]", 256);
          auth.childSpi = childIn;
          this.request(
            sa,
            auth,
            (r) => {
              this.establish(sa);
              if (r.childSpi !== 0) this.install(sa, childIn, r.childSpi, true);
              this.changed("IKE_SA and CHILD_SA established (initiator)");
            },
            () => this.attemptFailed(sa, "no response"),
          );
        },
        () => this.attemptFailed(sa, "no response"),
      );
    } else {
      this.request(
        sa,
        this.msg(sa, "MAIN_MODE", 1, false, "Main Mode 1/6 [ SA V V V V ]", 548),
        (m) => {
          sa.spiR = m.spiR;
          const mm3 = this.msg(sa, "MAIN_MODE", 3, false, "Main Mode 3/6 [ KE No NAT-D NAT-D ]", 380);
          mm3.natd = natd;
          this.request(
            sa,
            mm3,
            (m4) => {
              this.detectNat(sa, m4);
              this.floatIfNeeded(sa);
              this.request(
                sa,
                this.msg(sa, "MAIN_MODE", 5, false, "Main Mode 5/6 [ ID HASH N(INITIAL_CONTACT) ]", 108),
                () => {
                  this.establish(sa);
                  if (sa.replaces) {
                    this.finishV1Rekey(sa);
                  } else {
                    this.quickMode(sa, undefined);
                  }
                },
                () => this.attemptFailed(sa, "no response"),
              );
            },
            () => this.attemptFailed(sa, "no response"),
          );
        },
        () => this.attemptFailed(sa, "no response"),
      );
    }
  }

  private detectNat(sa: IkeSa, m: IkeMsg): void {
    if (!m.natd) return;
    // The sender's view of the addresses vs what arrived (the packet's addresses after NAT), as
    // the NAT-D hashes compare them. A faked NAT-D (forced encapsulation) says "remote behind NAT".
    const pkt = this.daemon.current;
    if (!pkt) return;
    if (m.natd.fake || m.natd.src !== pkt.src || m.natd.sport !== pkt.sport) sa.natThere = true;
    if (m.natd.dst !== pkt.dst || m.natd.dport !== pkt.dport) sa.natHere = true;
    if (this.p.forceEncap) sa.natThere = true;
    sa.encap = sa.natHere || sa.natThere;
  }

  private floatIfNeeded(sa: IkeSa): void {
    // NAT-T (RFC 3947/7296): IKE moves to UDP 4500 after NAT detection; IKEv2 with MOBIKE always.
    if (sa.encap || (this.p.ikeVersion === 2 && this.p.mobike)) {
      sa.localPort = 4500;
      sa.remotePort = 4500;
    }
  }

  private quickMode(sa: IkeSa, rekeyOf: ChildSa | undefined): void {
    const childIn = this.daemon.newChildSpi(this.rng);
    if (rekeyOf) rekeyOf.rekeyNonce = this.rng.u32();
    const qm = this.msg(sa, "QUICK_MODE", 1, false, "Quick Mode 1/3 [ HASH SA No ID ID ]", 444);
    qm.childSpi = childIn;
    if (rekeyOf) qm.rekeyOf = rekeyOf.inSpi;
    qm.mid = this.rng.u32();
    this.request(
      sa,
      qm,
      (r) => {
        if (rekeyOf) rekeyOf.rekeyNonce = -1;
        if (r.childSpi === 0) return;
        const c = this.install(sa, childIn, r.childSpi, true);
        if (rekeyOf && rekeyOf.state === "installed") this.markRekeyed(rekeyOf, c);
        // Third message: not acknowledged (the responder installs on receipt).
        const qm3 = this.msg(sa, "QUICK_MODE", 3, false, "Quick Mode 3/3 [ HASH ]", 76);
        qm3.mid = qm.mid;
        this.send(sa, qm3);
        this.changed(rekeyOf ? "IPsec SA rekeyed" : "IPsec SA established (quick mode initiator)");
      },
      () => {
        if (rekeyOf) rekeyOf.rekeyNonce = -1;
        this.exchangeFailed(sa);
      },
    );
  }

  private attemptFailed(sa: IkeSa, why: string): void {
    if (sa.state !== "connecting") return;
    this.destroy(sa, why, false);
    if (sa.replaces) return; // a failed ISAKMP rekey: the old SA carries on until it expires
    if (this.connecting === sa) this.connecting = null;
    const p = this.p;
    if (p.vendor === "strongswan") {
      if (p.keyingTries === 0 || this.attempt < p.keyingTries) {
        this.attempt++;
        if (this.info)
          this.log(LOG.info, "ike-retry", () => this.say.retry(sa.ref(), this.attempt, p.keyingTries), sa, {
            attempt: this.attempt,
          });
        this.initiate("keyingtries", true);
      } else {
        if (this.info) this.log(LOG.info, "ike-failed", () => this.say.failed(sa.ref()), sa);
      }
      return;
    }
    if (this.info) this.log(LOG.info, "ike-failed", () => this.say.failed(sa.ref()), sa, { why });
    // FortiOS: auto-negotiate keeps trying; otherwise the next packet for the tunnel does.
    if (p.autoNegotiate) this.e.after(1000, () => this.initiate("auto-negotiate"));
  }

  // ------------------------------------------------------------------------------------------
  // Messages and the request/retransmit machinery

  /**
   * A message with every field present, in one order (one hidden class, no object spread); the
   * caller sets the optional payloads on it before sending.
   */
  msg(sa: IkeSa, exch: Exch, step: number, resp: boolean, what: string, len: number): IkeMsg {
    return {
      tunnel: this.tunnel,
      v: this.p.ikeVersion,
      exch,
      step,
      resp,
      fromInitiator: sa.initiator,
      spiI: sa.spiI,
      spiR: sa.spiR,
      mid: 0,
      nonce: this.rng.u32(),
      natd: undefined,
      childSpi: 0,
      rekeyOf: 0,
      newIkeSpi: undefined,
      delIke: false,
      delChild: null,
      dpd: undefined,
      seq: undefined,
      error: undefined,
      what,
      len,
    };
  }

  /** Puts one IKE message on the wire. */
  send(sa: IkeSa, m: IkeMsg, retransmit = 0): number {
    const e = this.e;
    sa.lastOut = e.now;
    m.spiR = m.spiR || sa.spiR;
    const p = wirePacket(
      this.gw.address,
      sa.remoteIp,
      "udp",
      sa.localPort,
      sa.remotePort,
      "ike",
      m.what,
      undefined,
      0,
      sa.udpKey(this.gw.address),
      m,
      undefined,
    );
    if (e.rec.on(LOG.info)) {
      const what =
        retransmit > 0 && this.p.vendor === "fortios" ? `retransmit ${retransmit}, ${m.what}` : m.what;
      p.sendEvent = this.log(LOG.info, "ike-send", () => this.say.sent(sa.ref(), what, m.mid, m.len), sa, {
        ...(retransmit > 0 ? { retransmit } : {}),
        exchange: m.exch,
        response: m.resp,
        mid: m.mid,
        src: `${p.src}:${p.sport}`,
        dst: `${p.dst}:${p.dport}`,
        packet: m.what,
      });
    }
    e.transmit(this.gw, p);
    return p.sendEvent ?? -1;
  }

  request(sa: IkeSa, m: IkeMsg, onResponse: (m: IkeMsg) => void, onGiveUp: () => void): void {
    this.enqueue(sa, new Exchange(sa, m, CALLBACKS, null, 0, onResponse, onGiveUp));
  }

  /** A request whose outcome is handled by {@link responded} / {@link gaveUp} (no closures). */
  private requestThen(sa: IkeSa, m: IkeMsg, then: Then, child: ChildSa | null, n: number): void {
    this.enqueue(sa, new Exchange(sa, m, then, child, n, null, null));
  }

  private enqueue(sa: IkeSa, ex: Exchange): void {
    if (sa.active) sa.queue.push(ex);
    else this.start(sa, ex);
  }

  /** The response to an exchange arrived. */
  private responded(ex: Exchange, r: IkeMsg): void {
    switch (ex.then) {
      case CALLBACKS:
        ex.onResponse!(r);
        return;
      case CHILD_REKEY:
        this.childRekeyed(ex.sa, ex.child!, ex.n, r);
        return;
      case CHILD_REKEY_DELETE:
        this.removeChild(ex.child!, "rekeyed");
        this.changed("old CHILD_SA deleted");
        return;
      case FORTI_DPD:
        if (this.probe?.seq === ex.n) this.probe = null;
        return;
    }
  }

  /** An exchange gave up after its last retransmission. */
  private gaveUp(ex: Exchange): void {
    switch (ex.then) {
      case CALLBACKS:
        ex.onGiveUp!();
        return;
      case CHILD_REKEY:
        ex.child!.rekeyNonce = -1;
        this.exchangeFailed(ex.sa);
        return;
      case CHILD_REKEY_DELETE:
        this.exchangeFailed(ex.sa);
        return;
      case FORTI_DPD:
        if (this.probe?.seq === ex.n) this.probe = null;
        this.exchangeFailed(ex.sa);
        return;
    }
  }

  private start(sa: IkeSa, ex: Exchange): void {
    sa.active = ex;
    if (ex.msg.exch !== "QUICK_MODE") ex.msg.mid = sa.nextMid++;
    ex.msg.spiR = sa.spiR;
    ex.msg.fromInitiator = sa.initiator;
    this.send(sa, ex.msg);
    this.arm(sa, ex);
  }

  private arm(_sa: IkeSa, ex: Exchange): void {
    ex.timer = this.e.afterArgHeld(ms(this.p.retransmitSchedule[ex.tries] ?? 0), this.retransmitDue, ex);
  }

  /** An exchange's retransmission timer (one function per connection, not a closure per send). */
  private readonly retransmitDue = (ex: Exchange): void => {
    const sa = ex.sa;
    const sched = this.p.retransmitSchedule;
    ex.timer = null;
    if (sa.active !== ex || sa.state === "dead") return;
    ex.tries++;
    if (ex.tries < sched.length) {
      // charon logs "retransmit n of request…" and then the packet; FortiOS only the packet.
      if (this.p.vendor === "strongswan")
        this.log(
          LOG.info,
          "ike-retransmit",
          () => this.say.retransmit(sa.ref(), ex.tries, ex.msg.mid, ex.msg.what),
          sa,
          { n: ex.tries, mid: ex.msg.mid },
        );
      ex.msg.spiR = sa.spiR;
      this.send(sa, ex.msg, ex.tries);
      this.arm(sa, ex);
    } else {
      if (this.info)
        this.log(LOG.info, "ike-giveup", () => this.say.giveUp(sa.ref(), ex.tries - 1), sa, {
          retransmits: ex.tries - 1,
          exchange: ex.msg.exch,
        });
      sa.active = null;
      this.gaveUp(ex);
      this.next(sa);
    }
  };

  private next(sa: IkeSa): void {
    if (!sa.active && sa.queue.length > 0 && sa.state !== "dead") this.start(sa, sa.queue.shift()!);
  }

  /** The response to `req` (step 0 for IKEv2), for the caller to fill in and {@link respond} with. */
  private reply(sa: IkeSa, req: IkeMsg, step: number, what: string, len: number): IkeMsg {
    return this.msg(sa, req.exch, step, true, what, len);
  }

  /** Sends a response and caches it for retransmitted requests. */
  private respond(sa: IkeSa, req: IkeMsg, m: IkeMsg): void {
    m.mid = req.mid;
    sa.cached = m;
    sa.cachedStep = req.step;
    this.send(sa, m);
  }

  /** {@link reply} and {@link respond} for a response without payloads to fill in. */
  private respondPlain(sa: IkeSa, req: IkeMsg, step: number, what: string, len: number): void {
    this.respond(sa, req, this.msg(sa, req.exch, step, true, what, len));
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  /** A valid IKE message for one of this connection's SAs (or a new IKE_SA_INIT / Main Mode 1). */
  receive(sa: IkeSa, m: IkeMsg, p: WirePacket): void {
    const now = this.e.now;
    sa.lastIn = now;
    this.lastIn = now;
    // The responder follows the initiator to UDP 4500 (and to a NAT's port).
    if (p.dport === 4500 && sa.localPort !== 4500) {
      sa.localPort = 4500;
    }
    sa.remoteIp = p.src;
    sa.remotePort = p.sport ?? sa.remotePort;
    if (m.exch === "INFO_V1") {
      // IKEv1 informational notifications (DPD, DELETE) are not acknowledged exchanges.
      this.handleInfoV1(sa, m);
      return;
    }
    if (m.resp) {
      const ex = sa.active;
      if (!ex || ex.msg.mid !== m.mid || ex.msg.exch !== m.exch || (m.v === 1 && m.step !== ex.msg.step + 1))
        return; // stale
      ex.timer = kill(ex.timer);
      sa.active = null;
      this.responded(ex, m);
      this.next(sa);
      return;
    }
    // Retransmitted request: resend the cached response.
    const c = sa.cached;
    if (c !== null && c.mid === m.mid && sa.cachedStep === m.step && c.exch === m.exch) {
      this.send(sa, c);
      return;
    }
    if (m.v === 2 && m.exch !== "IKE_SA_INIT") {
      if (m.mid !== sa.expectMid) return;
      sa.expectMid++;
    }
    this.handleRequest(sa, m);
  }

  private handleRequest(sa: IkeSa, m: IkeMsg): void {
    switch (m.exch) {
      case "IKE_SA_INIT": {
        this.detectNat(sa, m);
        sa.expectMid = 1;
        const natd = {
          src: this.gw.address,
          sport: 500,
          dst: sa.remoteIp,
          dport: 500,
          fake: this.p.forceEncap,
        };
        const r = this.reply(sa, m, 0, "IKE_SA_INIT response 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]", 456);
        r.natd = natd;
        this.respond(sa, m, r);
        return;
      }
      case "IKE_AUTH": {
        this.establish(sa);
        const childIn = this.daemon.newChildSpi(this.rng);
        if (m.childSpi !== 0) this.install(sa, childIn, m.childSpi, true);
        const r = this.reply(sa, m, 0, "IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]", 224);
        r.childSpi = childIn;
        this.respond(sa, m, r);
        this.changed("IKE_SA and CHILD_SA established (responder)");
        return;
      }
      case "MAIN_MODE": {
        if (m.step === 1) {
          this.respondPlain(sa, m, m.step + 1, "Main Mode 2/6 [ SA V V V V ]", 160);
        } else if (m.step === 3) {
          this.detectNat(sa, m);
          const natd = {
            src: this.gw.address,
            sport: sa.localPort,
            dst: sa.remoteIp,
            dport: sa.remotePort,
            fake: this.p.forceEncap,
          };
          const r = this.reply(sa, m, m.step + 1, "Main Mode 4/6 [ KE No NAT-D NAT-D ]", 380);
          r.natd = natd;
          this.respond(sa, m, r);
        } else if (m.step === 5) {
          this.establish(sa);
          this.respondPlain(sa, m, m.step + 1, "Main Mode 6/6 [ ID HASH ]", 76);
          this.changed("ISAKMP SA established (responder)");
        }
        return;
      }
      case "QUICK_MODE": {
        if (m.step === 1 && m.childSpi !== 0) {
          const inSpi = this.daemon.newChildSpi(this.rng);
          sa.pendingQm.set(m.mid, { inSpi, outSpi: m.childSpi, rekeyOf: m.rekeyOf });
          if (m.rekeyOf !== 0) {
            const old = childByOut(sa, m.rekeyOf, ANY);
            if (old) {
              old.rekeyTimer = kill(old.rekeyTimer);
              this.armExpire(old);
            }
          }
          const r = this.reply(sa, m, m.step + 1, "Quick Mode 2/3 [ HASH SA No ID ID ]", 444);
          r.childSpi = inSpi;
          this.respond(sa, m, r);
        } else if (m.step === 3) {
          const q = sa.pendingQm.get(m.mid);
          if (!q) return;
          sa.pendingQm.delete(m.mid);
          const c = this.install(sa, q.inSpi, q.outSpi, true);
          const old = q.rekeyOf !== 0 ? childByOut(sa, q.rekeyOf, INSTALLED) : null;
          if (old) this.markRekeyed(old, c);
          this.changed(old ? "IPsec SA rekeyed (responder)" : "IPsec SA established (quick mode responder)");
        }
        return;
      }
      case "CREATE_CHILD_SA":
        this.handleCreateChild(sa, m);
        return;
      case "INFORMATIONAL":
        this.handleInformational(sa, m);
        return;
      case "INFO_V1":
        return;
    }
  }

  private handleCreateChild(sa: IkeSa, m: IkeMsg): void {
    if (m.newIkeSpi) {
      // IKE SA rekey (RFC 7296 §2.18). Collision: the exchange with the lower nonce loses.
      if (sa.rekeying && sa.rekeying.nonce > m.nonce) {
        const r = this.reply(sa, m, 0, "CREATE_CHILD_SA response [ N(TEMP_FAIL) ]", 80);
        r.error = "TEMPORARY_FAILURE";
        this.respond(sa, m, r);
        return;
      }
      sa.timers.rekey = kill(sa.timers.rekey);
      const nsa = this.newSa(false, m.newIkeSpi);
      nsa.spiR = this.daemon.newIkeSpi(this.rng);
      this.daemon.byLocalSpi.set(nsa.spiR, nsa);
      this.takeOver(nsa, sa);
      this.establish(nsa);
      const r = this.reply(sa, m, 0, "CREATE_CHILD_SA response [ SA No KE ]", 336);
      r.newIkeSpi = nsa.spiR;
      this.respond(sa, m, r);
      if (this.info) this.log(LOG.info, "ike-rekeyed", () => this.say.ikeRekeyed(sa.ref(), nsa.ref()), sa);
      sa.state = "deleting"; // until the peer's DELETE for it
      this.saChanged();
      this.changed("IKE SA rekeyed (responder)");
      return;
    }
    const old = m.rekeyOf !== 0 ? childByOut(sa, m.rekeyOf, INSTALLED) : null;
    if (m.rekeyOf !== 0 && !old) {
      const r = this.reply(sa, m, 0, "CREATE_CHILD_SA response [ N(CHILD_SA_NOT_FOUND) ]", 80);
      r.error = "CHILD_SA_NOT_FOUND";
      this.respond(sa, m, r);
      return;
    }
    if (old && old.rekeyNonce > m.nonce) {
      const r = this.reply(sa, m, 0, "CREATE_CHILD_SA response [ N(TEMP_FAIL) ]", 80);
      r.error = "TEMPORARY_FAILURE";
      this.respond(sa, m, r);
      return;
    }
    const inSpi = this.daemon.newChildSpi(this.rng);
    // Since strongSwan 5.5.3 the responder of a rekey installs the new outbound SA only when the
    // old one is deleted (the initiator's DELETE), so both ends switch at the same time.
    const c = this.install(
      sa,
      inSpi,
      m.childSpi !== 0 ? m.childSpi : this.daemon.newChildSpi(this.rng),
      !old,
    );
    if (old) {
      old.rekeyTimer = kill(old.rekeyTimer);
      old.replacedBy = c;
    }
    const r = this.reply(sa, m, 0, "CREATE_CHILD_SA response [ SA No TSi TSr ]", 208);
    r.childSpi = inSpi;
    this.respond(sa, m, r);
    this.changed(old ? "CHILD_SA rekeyed (responder)" : "CHILD_SA created (responder)");
  }

  private handleInformational(sa: IkeSa, m: IkeMsg): void {
    if (m.delIke) {
      if (this.info)
        this.log(LOG.info, "delete-recv", () => this.say.deleteRecv(sa.ref(), "ike", sa.spiI), sa);
      this.respondPlain(sa, m, 0, "INFORMATIONAL response [ ]", 80);
      const hadChildren = sa.children.length > 0 && sa.state === "established";
      this.destroy(sa, "DELETE received", true);
      this.changed("DELETE for IKE SA received");
      if (hadChildren) this.afterPeerClose();
      return;
    }
    const del = m.delChild;
    if (del !== null) {
      const mine: number[] = [];
      for (let i = 0; i < del.length; i++) {
        const spi = del[i]!;
        const c = childByOut(sa, spi, LIVE);
        if (!c) continue;
        if (this.info)
          this.log(LOG.info, "delete-recv", () => this.say.deleteRecv(sa.ref(), "child", spiHex(spi)), sa, {
            spi: spiHex(spi),
          });
        mine.push(c.inSpi);
        this.removeChild(c, "DELETE received");
      }
      const r = this.reply(
        sa,
        m,
        0,
        mine.length ? "INFORMATIONAL response [ D ]" : "INFORMATIONAL response [  ]",
        80,
      );
      r.delChild = mine;
      this.respond(sa, m, r);
      this.changed("DELETE for CHILD SA received");
      if (!this.isUp() && sa.state === "established" && childByOut(sa, 0, ANY_LIVE) === null)
        this.afterPeerClose();
      return;
    }
    // Empty INFORMATIONAL: a DPD / liveness check.
    this.respondPlain(sa, m, 0, "INFORMATIONAL response [ ]", 80);
  }

  private handleInfoV1(sa: IkeSa, m: IkeMsg): void {
    if (m.dpd === "req") {
      const r = this.msg(sa, "INFO_V1", 0, true, "R-U-THERE-ACK", 92);
      r.dpd = "ack";
      r.seq = m.seq ?? 0;
      r.mid = this.rng.u32();
      this.send(sa, r);
      return;
    }
    if (m.dpd === "ack") {
      if (this.probe && this.probe.seq === m.seq) {
        if (this.info)
          this.log(LOG.info, "dpd-ack", () => this.say.dpdAck(sa.ref(), m.seq ?? 0), sa, { seq: m.seq });
        this.probe.timer = kill(this.probe.timer);
        this.probe = null;
      }
      return;
    }
    if (m.delIke) {
      if (this.info)
        this.log(LOG.info, "delete-recv", () => this.say.deleteRecv(sa.ref(), "ike", sa.spiI), sa);
      // IKEv1: deleting the ISAKMP SA does not delete its IPsec SAs; they move to a newer ISAKMP SA.
      const other = this.newestEstablished(sa);
      if (other) for (const c of sa.children) c.ike = other;
      if (other) other.children.push(...sa.children.splice(0));
      this.saChanged();
      this.destroy(sa, "ISAKMP SA DELETE received", true);
      this.changed("DELETE for ISAKMP SA received");
      return;
    }
    const del = m.delChild;
    if (del !== null) {
      for (const spi of del) {
        const c = childByOut(sa, spi, LIVE);
        if (!c) continue;
        if (this.info)
          this.log(LOG.info, "delete-recv", () => this.say.deleteRecv(sa.ref(), "child", spiHex(spi)), sa, {
            spi: spiHex(spi),
          });
        this.removeChild(c, "DELETE received");
      }
      this.changed("DELETE for IPsec SA received");
      if (!this.isUp()) this.afterPeerClose();
    }
  }

  /** The peer closed the tunnel: close_action (strongSwan) / auto-negotiate (FortiOS). */
  private afterPeerClose(): void {
    const p = this.p;
    if (p.vendor === "fortios") {
      if (p.autoNegotiate) this.initiate("auto-negotiate");
      return;
    }
    if (p.closeAction === "start") this.initiate("close_action=start");
    else if (p.closeAction === "trap") this.trap = true;
  }

  private newestEstablished(except: IkeSa | null): IkeSa | null {
    let best: IkeSa | null = null;
    for (const s of this.sas) {
      if (s !== except && s.state === "established" && (!best || s.establishedAt > best.establishedAt))
        best = s;
    }
    return best;
  }

  // ------------------------------------------------------------------------------------------
  // Establishment, installation, removal

  private establish(sa: IkeSa): void {
    if (sa.state === "established") return;
    const e = this.e;
    const p = this.p;
    sa.state = "established";
    this.saChanged();
    sa.establishedAt = e.now;
    sa.timers.halfOpen = kill(sa.timers.halfOpen);
    sa.timers.negotiate = kill(sa.timers.negotiate);
    if (this.connecting === sa) this.connecting = null;
    if (sa.halfOpenKey) {
      this.daemon.halfOpen.delete(sa.halfOpenKey);
      sa.halfOpenKey = "";
    }
    if (this.info)
      this.log(LOG.info, "ike-established", () => this.say.established(sa.ref()), sa, {
        spi: `${sa.spiI}_i ${sa.spiR}_r`,
        initiator: sa.initiator,
      });
    if (p.ikeRekeyTime > 0) {
      const at = ms(p.ikeRekeyTime - this.rng.next() * p.ikeRandTime);
      sa.timers.rekey = e.after(at, () => {
        sa.timers.rekey = null;
        this.rekeyIke(sa);
      });
      sa.timers.expire = e.after(ms(p.ikeRekeyTime + p.ikeOverTime), () => {
        sa.timers.expire = null;
        this.expireIke(sa);
      });
    }
    if (p.reauthTime > 0) {
      sa.timers.reauth = e.after(ms(p.reauthTime - this.rng.next() * p.ikeRandTime), () => {
        sa.timers.reauth = null;
        this.reauth(sa);
      });
    }
    if (p.vendor === "strongswan" && p.dpdDelay > 0) this.armDpd(sa, ms(p.dpdDelay));
    if (p.vendor === "fortios" && p.dpd === "on-idle") this.armIdle();
    if (sa.natHere && p.natKeepalive > 0) this.armKeepalive(sa);
  }

  /** Installs a CHILD SA (both SPIs) with its rekey and expiry timers. */
  install(sa: IkeSa, inSpi: number, outSpi: number, outActive: boolean): ChildSa {
    const e = this.e;
    const p = this.p;
    const c = new ChildSa(sa, inSpi, outSpi, ++this.childSerial, e.now, outActive);
    sa.children.push(c);
    this.saChanged();
    this.daemon.childByIn.set(inSpi, c);
    if (e.now > this.lastIn) this.lastIn = e.now;
    if (this.info)
      this.log(
        LOG.info,
        "child-installed",
        () => this.say.childUp(sa.ref(), c.serial, spiHex(inSpi), spiHex(outSpi)),
        sa,
        { spiIn: spiHex(inSpi), spiOut: spiHex(outSpi) },
      );
    if (p.childRekeyTime > 0) {
      c.rekeyTimer = e.atArg(
        e.now + ms(p.childRekeyTime - this.rng.next() * p.childRandTime),
        this.childRekeyDue,
        c,
      );
    } else {
      this.armExpire(c);
    }
    return c;
  }

  /** A CHILD SA's rekey timer (one function per connection, not a closure per SA). */
  private readonly childRekeyDue = (c: ChildSa): void => {
    c.rekeyTimer = null;
    // The hard lifetime matters only when no rekey gets under way: an IKEv2 rekey either
    // replaces the SA or, unanswered, kills the IKE SA with it. Armed here, not at install:
    // one timer fewer per CHILD SA and hour.
    if (!this.rekeyChild(c, true) || this.p.ikeVersion === 1) this.armExpire(c);
  };

  /**
   * Arms a CHILD SA's hard lifetime. `held`: the SA is about to be deleted (an IKEv2 rekey's old
   * SA, deleted when its DELETE is answered), so the timer enters the queue only if still live
   * when the current chain of events ends ({@link Engine.atArgHeld}).
   */
  private armExpire(c: ChildSa, held = false): void {
    const life = this.p.childLifeTime;
    if (life <= 0 || c.expireTimer || c.state === "deleted") return;
    const t = c.installedAt + ms(life);
    c.expireTimer = held ? this.e.atArgHeld(t, this.expireDue, c) : this.e.atArg(t, this.expireDue, c);
  }

  /** A CHILD SA's hard lifetime (one function per connection, not a closure per SA). */
  private readonly expireDue = (c: ChildSa): void => {
    c.expireTimer = null;
    this.expireChild(c);
  };

  private markRekeyed(old: ChildSa, by: ChildSa): void {
    old.state = "rekeyed";
    old.outActive = false;
    this.saChanged();
    old.replacedBy = by;
    old.rekeyTimer = kill(old.rekeyTimer);
    // IKEv1: the rekeyed SA stays installed until its hard lifetime; IKEv2 deletes it now.
    this.armExpire(old, this.p.ikeVersion === 2);
  }

  removeChild(c: ChildSa, why: string): void {
    if (c.state === "deleted") return;
    c.state = "deleted";
    c.rekeyTimer = kill(c.rekeyTimer);
    c.expireTimer = kill(c.expireTimer);
    const sa = c.ike;
    // Removed in place (splice allocates the array of removed elements).
    const cs = sa.children;
    const i = cs.indexOf(c);
    if (i >= 0) {
      for (let j = i + 1; j < cs.length; j++) cs[j - 1] = cs[j]!;
      cs.pop();
    }
    if (this.daemon.childByIn.get(c.inSpi) === c) this.daemon.childByIn.delete(c.inSpi);
    if (c.replacedBy && c.replacedBy.state === "installed") c.replacedBy.outActive = true;
    this.saChanged();
    if (this.info)
      this.log(
        LOG.info,
        "child-deleted",
        () => this.say.childDeleted(sa.ref(), c.serial, spiHex(c.inSpi), spiHex(c.outSpi)),
        sa,
        { spiIn: spiHex(c.inSpi), spiOut: spiHex(c.outSpi), why },
      );
  }

  /** Removes an IKE SA and (unless they moved) its CHILD SAs. No message is sent. */
  destroy(sa: IkeSa, why: string, log: boolean): void {
    if (sa.state === "dead") return;
    const wasUp = sa.state === "established";
    sa.state = "dead";
    this.saChanged();
    for (const k of Object.keys(sa.timers) as (keyof IkeSa["timers"])[]) sa.timers[k] = kill(sa.timers[k]);
    if (sa.active) sa.active.timer = kill(sa.active.timer);
    sa.active = null;
    sa.queue.length = 0;
    for (const c of [...sa.children]) this.removeChild(c, why);
    const i = this.sas.indexOf(sa);
    if (i >= 0) this.sas.splice(i, 1);
    this.saChanged();
    const d = this.daemon;
    if (d.byLocalSpi.get(sa.localSpi) === sa) d.byLocalSpi.delete(sa.localSpi);
    if (sa.halfOpenKey) d.halfOpen.delete(sa.halfOpenKey);
    if (this.connecting === sa) this.connecting = null;
    if (this.probe?.sa === sa) {
      this.probe.timer = kill(this.probe.timer);
      this.probe = null;
    }
    if ((log || wasUp) && this.info)
      this.log(LOG.info, "ike-deleted", () => this.say.ikeDeleted(sa.ref(), why), sa, { why });
  }

  private takeOver(nsa: IkeSa, old: IkeSa): void {
    nsa.remoteIp = old.remoteIp;
    nsa.localPort = old.localPort;
    nsa.remotePort = old.remotePort;
    nsa.natHere = old.natHere;
    nsa.natThere = old.natThere;
    nsa.encap = old.encap;
    nsa.lastIn = old.lastIn;
    for (const c of old.children) c.ike = nsa;
    nsa.children.push(...old.children.splice(0));
    this.saChanged();
    old.timers.dpd = kill(old.timers.dpd);
    old.timers.keepalive = kill(old.timers.keepalive);
    old.timers.rekey = kill(old.timers.rekey);
    old.timers.reauth = kill(old.timers.reauth);
  }

  // ------------------------------------------------------------------------------------------
  // Rekeying and expiry

  /**
   * Starts a CHILD SA rekey; false if none could start. `direct`: the caller's event does nothing
   * after it (the rekey timer), so {@link rekeyDirect} may apply the whole exchange.
   */
  rekeyChild(c: ChildSa, direct = false): boolean {
    const sa = c.ike;
    if (c.state !== "installed" || c.rekeyNonce >= 0 || sa.state !== "established") return false;
    if (this.info)
      this.log(LOG.info, "child-rekey", () => this.say.childRekeyStart(sa.ref(), c.serial), sa, {
        spiIn: spiHex(c.inSpi),
      });
    if (this.p.ikeVersion === 1) {
      this.quickMode(sa, c);
      return true;
    }
    if (direct && this.rekeyDirect(c, sa)) return true;
    const nonce = this.rng.u32();
    c.rekeyNonce = nonce;
    const newIn = this.daemon.newChildSpi(this.rng);
    const m = this.msg(
      sa,
      "CREATE_CHILD_SA",
      0,
      false,
      "CREATE_CHILD_SA request [ N(REKEY_SA) SA No TSi TSr ]",
      240,
    );
    m.rekeyOf = c.inSpi;
    m.childSpi = newIn;
    m.nonce = nonce;
    this.requestThen(sa, m, CHILD_REKEY, c, newIn);
    return true;
  }

  /**
   * An IKEv2 CHILD SA rekey applied in one step when its outcome is certain: the four messages
   * (CREATE_CHILD_SA and the old SA's DELETE, each answered) would run as one chain of held-back
   * arrivals on direct paths with nothing else due before the last one, between two sides that
   * each hold one IKE SA with one CHILD SA, the pair consistent and the monitor steady. The state
   * changes, random draws, sequence numbers, timers, counters and event count are the plain
   * path's, in its order; the monitor's four re-evaluations would find nothing to change (both
   * sides stay up on a consistent pair at every step), so none is made. False (and nothing done)
   * when any condition fails.
   */
  private rekeyDirect(c: ChildSa, sa: IkeSa): boolean {
    const e = this.e;
    const L = e.latencyMs;
    const t0 = e.now;
    const tEnd = t0 + 4 * L;
    const peer = this.monitor.steadyPeer(this);
    if (peer === null || peer.daemon === this.daemon || !e.quietUntil(tEnd, null, "")) return false;
    const p = this.p;
    const q = peer.p;
    if (p.ikeVersion !== 2 || q.ikeVersion !== 2 || p.childRekeyTime <= 0 || q.childRekeyTime <= 0)
      return false;
    // The chain's own timers come after its last arrival: retransmissions (armed at t0 and t0+2L),
    // the new SAs' rekey timers (at t0+L / t0+2L plus at least rekey − rand time), the old SA's
    // held hard lifetime.
    const r0 = ms(p.retransmitSchedule[0] ?? 0);
    if (r0 <= 2 * L || soonestRekey(p) <= 4 * L || soonestRekey(q) <= 4 * L) return false;
    if (p.childLifeTime > 0 && c.expireTimer === null && c.installedAt + ms(p.childLifeTime) <= tEnd)
      return false;
    if (this.sas.length !== 1 || sa.children.length !== 1 || sa.active !== null || sa.queue.length > 0)
      return false;
    if (peer.sas.length !== 1) return false;
    const rsa = peer.sas[0]!;
    if (rsa.state !== "established" || rsa.children.length !== 1 || rsa.active !== null) return false;
    const rc = rsa.children[0]!;
    if (
      rc.state !== "installed" ||
      !rc.outActive ||
      !c.outActive ||
      rc.rekeyNonce >= 0 ||
      rc.outSpi !== c.inSpi ||
      c.outSpi !== rc.inSpi ||
      this.daemon.childByIn.get(c.inSpi) !== c ||
      peer.daemon.childByIn.get(rc.inSpi) !== rc ||
      !this.isUp() ||
      !peer.isUp()
    )
      return false;
    // Direct paths both ways, the addresses and ports each side's receipt would set already set.
    if (
      sa.remoteIp !== peer.gw.address ||
      rsa.remoteIp !== this.gw.address ||
      sa.remotePort !== rsa.localPort ||
      rsa.remotePort !== sa.localPort ||
      e.directTo(this.gw, sa.remoteIp) !== peer.gw ||
      e.directTo(peer.gw, rsa.remoteIp) !== this.gw
    )
      return false;
    // Each message reaches the other side's SA and is taken as a new request / the awaited response.
    const mid = sa.nextMid;
    if (rsa.expectMid !== mid || peer.daemon.byLocalSpi.get(sa.initiator ? sa.spiR : sa.spiI) !== rsa)
      return false;
    if (this.daemon.byLocalSpi.get(rsa.initiator ? rsa.spiR : rsa.spiI) !== sa) return false;
    const cached = rsa.cached;
    if (cached !== null && (cached.mid === mid || cached.mid === mid + 1)) return false;

    // t0, this side: the request (its nonce, the new inbound SPI, the message's own nonce draw),
    // sent with its retransmission timer.
    this.rng.u32();
    const newIn = this.daemon.newChildSpi(this.rng);
    this.rng.u32();
    sa.nextMid = mid + 1;
    this.sentDirect(sa, peer.gw, t0, 2);
    // t0+L, the peer: the new SA (outbound once the old one is deleted), the response.
    let now = t0 + L;
    e.now = now;
    peer.receivedDirect(rsa, now);
    rsa.expectMid = mid + 1;
    const x = peer.daemon.newChildSpi(peer.rng);
    const nr = peer.install(rsa, x, newIn, false);
    rc.rekeyTimer = kill(rc.rekeyTimer);
    rc.replacedBy = nr;
    peer.rng.u32();
    peer.sentDirect(rsa, this.gw, now, 1);
    // t0+2L, this side: the new SA, the old one rekeyed, its DELETE sent.
    now += L;
    e.now = now;
    this.receivedDirect(sa, now);
    c.rekeyNonce = -1;
    const nc = this.install(sa, newIn, x, true);
    // markRekeyed, but the old SA's held hard lifetime is cancelled by the DELETE's answer below
    // before it could be queued: only its sequence number is taken.
    c.state = "rekeyed";
    c.outActive = false;
    this.saChanged();
    c.replacedBy = nc;
    c.rekeyTimer = kill(c.rekeyTimer);
    if (p.childLifeTime > 0 && c.expireTimer === null) e.q.reserve(1);
    this.rng.u32();
    sa.nextMid = mid + 2;
    this.sentDirect(sa, peer.gw, now, 2);
    // t0+3L, the peer: the old SA deleted, the answer cached for a retransmitted DELETE.
    now += L;
    e.now = now;
    peer.receivedDirect(rsa, now);
    rsa.expectMid = mid + 2;
    peer.removeChild(rc, "DELETE received");
    peer.cacheAnswer(rsa, mid + 1, "INFORMATIONAL response [ D ]").delChild = [rc.inSpi];
    peer.sentDirect(rsa, this.gw, now, 1);
    // t0+4L, this side: the DELETE answered, the old SA removed.
    now += L;
    e.now = now;
    this.receivedDirect(sa, now);
    this.removeChild(c, "rekeyed");
    e.eventsCollapsed += 4;
    return true;
  }

  /** The response to this side's CHILD SA rekey: install the new SA, then delete the old one. */
  private childRekeyed(sa: IkeSa, c: ChildSa, newIn: number, r: IkeMsg): void {
    c.rekeyNonce = -1;
    if (r.error) {
      this.log(LOG.debug, "child-rekey-collision", () => `CHILD_SA rekey answered with ${r.error}`, sa);
      return;
    }
    if (r.childSpi === 0 || sa.state !== "established") return;
    const nc = this.install(sa, newIn, r.childSpi, true);
    if (c.state === "installed") this.markRekeyed(c, nc);
    this.changed("CHILD_SA rekeyed");
    // Delete the old CHILD SA (an INFORMATIONAL exchange: a dropped DELETE kills the IKE SA).
    if (this.info)
      this.log(LOG.info, "delete-send", () => this.say.deleteSend(sa.ref(), "child", spiHex(c.inSpi)), sa, {
        spi: spiHex(c.inSpi),
      });
    const d = this.msg(sa, "INFORMATIONAL", 0, false, "INFORMATIONAL request [ D ]", 80);
    d.delChild = [c.inSpi];
    this.requestThen(sa, d, CHILD_REKEY_DELETE, c, 0);
  }

  private expireChild(c: ChildSa): void {
    if (c.state === "deleted") return;
    const sa = c.ike;
    // Hard lifetime reached (the rekey failed or this is a rekeyed IKEv1 SA): delete and tell the peer.
    this.sendDelete(sa, [c.inSpi]);
    this.removeChild(c, "lifetime expired");
    this.changed("CHILD SA expired");
  }

  private sendDelete(sa: IkeSa, childSpis: number[]): void {
    if (sa.state !== "established" && sa.state !== "deleting") return;
    if (this.info)
      for (const spi of childSpis)
        this.log(LOG.info, "delete-send", () => this.say.deleteSend(sa.ref(), "child", spiHex(spi)), sa, {
          spi: spiHex(spi),
        });
    if (this.p.ikeVersion === 1) {
      const m = this.msg(sa, "INFO_V1", 0, false, "IPsec SA_DELETE-NOTIFY", 92);
      m.delChild = childSpis;
      m.mid = this.rng.u32();
      this.send(sa, m);
    } else {
      const m = this.msg(sa, "INFORMATIONAL", 0, false, "INFORMATIONAL request [ D ]", 80);
      m.delChild = childSpis;
      this.request(
        sa,
        m,
        () => {},
        () => {},
      );
    }
  }

  rekeyIke(sa: IkeSa): void {
    if (sa.state !== "established" || sa.rekeying) return;
    if (this.info) this.log(LOG.info, "ike-rekey", () => this.say.ikeRekeyStart(sa.ref()), sa);
    if (this.p.ikeVersion === 1) {
      // IKEv1 has no IKE SA rekey: a new Main Mode, then the old ISAKMP SA is deleted.
      const nsa = this.newSa(true, this.daemon.newIkeSpi(this.rng));
      nsa.replaces = sa;
      sa.rekeying = { nonce: 0 };
      this.startNegotiation(nsa);
      return;
    }
    const nonce = this.rng.u32();
    sa.rekeying = { nonce };
    const newSpi = this.daemon.newIkeSpi(this.rng);
    const m = this.msg(sa, "CREATE_CHILD_SA", 0, false, "CREATE_CHILD_SA request [ SA No KE ]", 336);
    m.newIkeSpi = newSpi;
    m.nonce = nonce;
    this.request(
      sa,
      m,
      (r) => {
        sa.rekeying = null;
        if (r.error || !r.newIkeSpi || sa.state !== "established") return;
        const nsa = this.newSa(true, newSpi);
        nsa.spiR = r.newIkeSpi;
        this.takeOver(nsa, sa);
        this.establish(nsa);
        if (this.info) this.log(LOG.info, "ike-rekeyed", () => this.say.ikeRekeyed(sa.ref(), nsa.ref()), sa);
        this.deleteIke(sa, "rekeyed");
        this.changed("IKE SA rekeyed");
      },
      () => {
        sa.rekeying = null;
        this.exchangeFailed(sa);
      },
    );
  }

  private finishV1Rekey(nsa: IkeSa): void {
    const old = nsa.replaces!;
    nsa.replaces = null;
    old.rekeying = null;
    if (old.state === "established") {
      this.takeOver(nsa, old);
      if (this.info) this.log(LOG.info, "ike-rekeyed", () => this.say.ikeRekeyed(old.ref(), nsa.ref()), old);
      this.deleteIke(old, "rekeyed");
    }
    this.changed("ISAKMP SA rekeyed");
  }

  private reauth(sa: IkeSa): void {
    if (sa.state !== "established") return;
    if (this.p.makeBeforeBreak) {
      const nsa = this.newSa(true, this.daemon.newIkeSpi(this.rng));
      nsa.replaces = sa;
      if (this.info)
        this.log(
          LOG.info,
          "ike-reauth",
          () => this.say.initiate(nsa.ref(), "reauthentication (make-before-break)"),
          nsa,
        );
      if (this.p.ikeVersion === 2) {
        // The new IKE SA brings its own CHILD SA; then the old one goes.
        this.startNegotiation(nsa);
        const watch = (): void => {
          if (nsa.state === "established") this.deleteIke(sa, "reauthenticated");
          else if (nsa.state === "connecting") this.e.after(1000, watch);
        };
        this.e.after(1000, watch);
      } else {
        this.startNegotiation(nsa);
      }
      return;
    }
    // Break-before-make (charon.make_before_break = no): delete, then initiate afresh.
    this.deleteIke(sa, "reauthentication", () => this.initiate("reauthentication"));
  }

  private expireIke(sa: IkeSa): void {
    if (sa.state === "dead") return;
    if (this.p.ikeVersion === 1) {
      const other = this.newestEstablished(sa);
      if (other) {
        for (const c of sa.children) c.ike = other;
        other.children.push(...sa.children.splice(0));
        this.saChanged();
      }
    }
    this.deleteIke(sa, "lifetime expired");
    this.changed("IKE SA expired");
  }

  /** Deletes an IKE SA and tells the peer (IKEv2: INFORMATIONAL exchange; IKEv1: notification). */
  deleteIke(sa: IkeSa, why: string, then?: () => void): void {
    if (sa.state === "dead") return;
    if (this.info)
      this.log(LOG.info, "delete-send", () => this.say.deleteSend(sa.ref(), "ike", sa.spiI), sa, { why });
    if (this.p.ikeVersion === 1 || sa.state === "connecting") {
      if (sa.state !== "connecting") {
        const m = this.msg(sa, "INFO_V1", 0, false, "ISAKMP SA_DELETE-NOTIFY", 92);
        m.delIke = true;
        m.mid = this.rng.u32();
        this.send(sa, m);
      }
      this.destroy(sa, why, true);
      this.changed(why);
      then?.();
      return;
    }
    sa.state = "deleting";
    this.saChanged();
    sa.timers.dpd = kill(sa.timers.dpd);
    this.changed(why);
    // Queue behind whatever is in flight (charon's task manager does the same).
    sa.queue.length = 0;
    const fin = (ok: boolean): void => {
      if (!ok)
        this.log(
          LOG.info,
          "delete-failed",
          () =>
            this.p.vendor === "strongswan"
              ? "proper IKE_SA delete failed, peer not responding"
              : "IKE SA delete not acknowledged",
          sa,
        );
      this.destroy(sa, why, true);
      this.changed(why);
      then?.();
    };
    const m = this.msg(sa, "INFORMATIONAL", 0, false, "INFORMATIONAL request [ D ]", 80);
    m.delIke = true;
    this.request(
      sa,
      m,
      () => fin(true),
      () => fin(false),
    );
  }

  /** Terminate (admin): delete every IKE SA of the connection. */
  terminate(): void {
    this.connecting = null;
    for (const sa of [...this.sas]) this.deleteIke(sa, "terminated by admin");
  }

  /** FortiOS `diagnose vpn ike gateway flush`: SAs removed locally, nothing sent. */
  flush(): void {
    for (const sa of [...this.sas]) this.destroy(sa, "flushed by admin", true);
    this.connecting = null;
    this.changed("flushed by admin");
  }

  // ------------------------------------------------------------------------------------------
  // Liveness: DPD, dead peers

  /** An exchange on an established SA went unanswered: the peer is considered dead. */
  private exchangeFailed(sa: IkeSa): void {
    if (sa.state === "dead") return;
    if (sa.state === "connecting") {
      this.attemptFailed(sa, "no response");
      return;
    }
    // An old IKE SA the peer no longer knows, while a newer one works: only the old one goes.
    if (this.sas.some((o) => o !== sa && o.state === "established" && o.establishedAt > sa.establishedAt)) {
      this.destroy(sa, "superseded by a newer IKE SA; no answer on the old one", true);
      this.changed("stale IKE SA removed");
      return;
    }
    if (this.p.vendor === "fortios") this.linkFail(sa.remoteIp);
    else this.peerDead(sa);
  }

  /** strongSwan: the IKE SA is dead; no DELETE is sent (strongswan-lab.md), then dpd_action. */
  private peerDead(sa: IkeSa): void {
    const p = this.p;
    const child = `${this.name}`;
    const hadChildren = sa.children.length > 0;
    if (this.info)
      this.log(LOG.info, "dpd-action", () => this.say.dpdAction(sa.ref(), p.dpdAction, child), sa, {
        action: p.dpdAction,
      });
    if (p.deleteOnDpdFailure)
      this.sendDelete(
        sa,
        sa.children.map((c) => c.inSpi),
      );
    this.destroy(sa, "peer dead", true);
    this.changed("peer declared dead");
    if (!hadChildren) return;
    if (p.dpdAction === "restart") this.initiate("dpd_action=restart");
    else if (p.dpdAction === "trap") this.trap = true;
  }

  private armDpd(sa: IkeSa, delayMs: number): void {
    sa.timers.dpd = this.e.after(delayMs, () => {
      sa.timers.dpd = null;
      this.dpdCheck(sa);
    });
  }

  /**
   * strongSwan's DPD job (ike_sa.c send_dpd): only if nothing was received for dpd_delay, and not
   * while another exchange is active; re-armed for the remaining time otherwise.
   */
  private dpdCheck(sa: IkeSa): void {
    if (sa.state !== "established") return;
    const now = this.e.now;
    const delay = ms(this.p.dpdDelay);
    let diff = now - sa.lastIn;
    if (sa.active) {
      this.armDpd(sa, delay);
      return;
    }
    if (diff >= delay) {
      const seq = ++sa.dpdSeq;
      if (this.info) this.log(LOG.info, "dpd-send", () => this.say.dpdSend(sa.ref(), seq), sa, { seq });
      if (this.p.ikeVersion === 2) {
        this.request(
          sa,
          this.msg(sa, "INFORMATIONAL", 0, false, "INFORMATIONAL request [ ]", 80),
          () => {
            this.log(LOG.debug, "dpd-ack", () => this.say.dpdAck(sa.ref(), sa.dpdSeq), sa);
          },
          () => this.exchangeFailed(sa),
        );
      } else {
        const m = this.msg(sa, "INFO_V1", 0, false, "R-U-THERE", 92);
        m.dpd = "req";
        m.seq = sa.dpdSeq;
        m.mid = this.rng.u32();
        this.send(sa, m);
        // IKEv1: the DPD timeout job, compensated for the dpd_delay already elapsed (task_manager_v1.c).
        const timeout =
          this.p.dpdTimeout > 0
            ? ms(this.p.dpdTimeout)
            : this.p.retransmitSchedule.reduce((a, b) => a + ms(b), 0);
        sa.timers.dpdTimeout = kill(sa.timers.dpdTimeout);
        sa.timers.dpdTimeout = this.e.after(Math.max(0, timeout - delay), () => {
          sa.timers.dpdTimeout = null;
          if (sa.state === "established" && this.e.now - sa.lastIn >= timeout) {
            if (this.info) this.log(LOG.info, "dpd-timeout", () => this.say.dpdTimeout(sa.ref()), sa);
            this.peerDead(sa);
          }
        });
      }
      diff = 0;
    }
    this.armDpd(sa, delay - diff);
  }

  /** FortiOS on-idle: probe when nothing was received for dpd-retryinterval. */
  private armIdle(): void {
    if (this.idleTimer) return;
    const iv = ms(this.p.dpdRetryInterval);
    const at = Math.max(this.lastIn + iv, this.e.now + 1);
    this.idleTimer = this.e.at(at, () => {
      this.idleTimer = null;
      const sa = this.newestEstablished(null);
      if (!sa) return;
      if (!this.probe && this.e.now - this.lastIn >= iv) this.startProbe(sa);
      this.armIdle();
    });
  }

  /** FortiOS DPD probe (per phase1 gateway, as in seed 001's "link is idle … seqno=12"). */
  /**
   * `quietAfter`: the caller's event schedules nothing at or before this time after the call and
   * reads none of this side's state (-1 when unknown): then {@link probeDirect} may apply.
   */
  private startProbe(sa: IkeSa, quietAfter = -1): void {
    const p = this.p;
    if (p.ikeVersion === 2) {
      // IKEv2: an INFORMATIONAL with the fixed retransmission (93 s), not retrycount × interval (TT 294932).
      const seq = ++sa.dpdSeq;
      if (quietAfter > this.e.now + 2 * this.e.latencyMs && this.probeDirect(sa)) return;
      this.probe = { sa, seq, sentAt: this.e.now, count: 1, timer: null };
      if (this.info) this.log(LOG.info, "dpd-send", () => this.say.dpdSend(sa.ref(), seq), sa, { seq });
      this.requestThen(
        sa,
        this.msg(sa, "INFORMATIONAL", 0, false, "INFORMATIONAL request [ ] (DPD)", 80),
        FORTI_DPD,
        null,
        seq,
      );
      return;
    }
    const seq = ++sa.dpdSeq;
    this.probe = { sa, seq, sentAt: this.e.now, count: 1, timer: null };
    this.sendProbe();
  }

  /**
   * A FortiOS IKEv2 DPD probe applied in one step when its answer is certain: the request and
   * its empty response would run as held-back arrivals on direct paths with nothing else due
   * before the response (data packets already on their way to the peer aside: their receipt
   * touches nothing the exchange reads or writes but the last inbound times, set to the same
   * values), and the caller's event does nothing after it before the answer. The probe is
   * answered before anything could see it under way, so none is recorded;
   * random draws, sequence numbers, counters and the event count are the plain path's. False
   * (and nothing done) when any condition fails.
   */
  private probeDirect(sa: IkeSa): boolean {
    const rsa = this.probePeer(sa);
    if (rsa === null) return false;
    this.probeApply(sa, rsa);
    return true;
  }

  /** {@link probeDirect}'s conditions: the peer's IKE SA that would answer, or null. */
  private probePeer(sa: IkeSa): IkeSa | null {
    const e = this.e;
    const L = e.latencyMs;
    if (this.probe !== null || sa.active !== null || sa.queue.length > 0 || sa.state !== "established")
      return null;
    if (this.p.ikeVersion !== 2 || ms(this.p.retransmitSchedule[0] ?? 0) <= 2 * L) return null;
    const peerGw = e.directTo(this.gw, sa.remoteIp);
    if (peerGw === null || peerGw === this.gw || !e.quietUntil(e.now + 2 * L, this.gw, sa.remoteIp))
      return null;
    const rsa = peerGw.daemon.byLocalSpi.get(sa.initiator ? sa.spiR : sa.spiI);
    if (rsa === undefined || rsa.state !== "established") return null;
    const mid = sa.nextMid;
    const cached = rsa.cached;
    if (
      rsa.expectMid !== mid ||
      (cached !== null && cached.mid === mid) ||
      rsa.conn.p.ikeVersion !== 2 ||
      rsa.remoteIp !== this.gw.address ||
      sa.remotePort !== rsa.localPort ||
      rsa.remotePort !== sa.localPort ||
      e.directTo(peerGw, rsa.remoteIp) !== this.gw ||
      this.daemon.byLocalSpi.get(rsa.initiator ? rsa.spiR : rsa.spiI) !== sa
    )
      return null;
    return rsa;
  }

  /** {@link probeDirect}'s effects, the peer's SA `rsa` found by {@link probePeer}. */
  private probeApply(sa: IkeSa, rsa: IkeSa): void {
    const e = this.e;
    const L = e.latencyMs;
    const t0 = e.now;
    const peer = rsa.conn;
    const mid = sa.nextMid;
    // t0: the request (its nonce), sent with its retransmission timer.
    this.rng.u32();
    sa.nextMid = mid + 1;
    this.sentDirect(sa, peer.gw, t0, 2);
    // t0+L, the peer: the empty response, cached for a retransmitted request.
    const t1 = t0 + L;
    peer.receivedDirect(rsa, t1);
    rsa.expectMid = mid + 1;
    peer.cacheAnswer(rsa, mid, "INFORMATIONAL response [ ]");
    peer.sentDirect(rsa, this.gw, t1, 1);
    // t0+2L, this side: the answer (the probe is over).
    this.receivedDirect(sa, t0 + 2 * L);
    e.eventsCollapsed += 2;
  }

  // The one-step exchanges' bookkeeping, as the plain path's send and receipt leave it.

  /** A message sent at `t` on a direct path: `slots` queue sequence numbers taken (its timers', its arrival's). */
  private sentDirect(sa: IkeSa, to: Gateway, t: number, slots: number): void {
    sa.lastOut = t;
    this.e.countDirect(this.gw, to);
    this.e.q.reserve(slots);
  }

  /** A message received at `t`. */
  private receivedDirect(sa: IkeSa, t: number): void {
    sa.lastIn = t;
    this.lastIn = t;
  }

  /** The INFORMATIONAL answer to request `mid`, cached for a retransmitted request. */
  private cacheAnswer(sa: IkeSa, mid: number, what: string): IkeMsg {
    const r = this.msg(sa, "INFORMATIONAL", 0, true, what, 80);
    r.mid = mid;
    sa.cached = r;
    sa.cachedStep = 0;
    return r;
  }

  private sendProbe(): void {
    const pr = this.probe!;
    const sa = pr.sa;
    if (this.info)
      this.log(LOG.info, "dpd-idle", () => this.say.dpdIdle(sa.ref(), this.p.dpd, pr.seq), undefined, {
        seq: pr.seq,
      });
    if (this.info)
      this.log(LOG.info, "dpd-send", () => this.say.dpdSend(sa.ref(), pr.seq), sa, {
        seq: pr.seq,
        n: pr.count,
      });
    const m = this.msg(sa, "INFO_V1", 0, false, "R-U-THERE", 108);
    m.dpd = "req";
    m.seq = pr.seq;
    m.mid = this.rng.u32();
    this.send(sa, m);
    pr.timer = this.e.after(ms(this.p.dpdRetryInterval), () => {
      pr.timer = null;
      if (this.probe !== pr) return;
      if (this.lastIn > pr.sentAt) {
        this.probe = null; // something arrived from the peer since: alive
        return;
      }
      if (pr.sa.state !== "established") {
        this.probe = null;
        return;
      }
      if (pr.count < this.p.dpdRetryCount) {
        pr.count++;
        this.sendProbe();
      } else {
        this.probe = null;
        this.linkFail(sa.remoteIp);
      }
    });
  }

  /**
   * FortiOS after DPD failure, as in seed 001's log: link fail, delete the IPsec SAs, send a DELETE
   * for each, bring down the IKE SA, "set oper down". Re-initiation: auto-negotiate or traffic.
   */
  private linkFail(remote: string): void {
    const local = this.gw.address;
    const mode = this.p.dpd === "on-demand" ? 2 : 1;
    if (this.info) this.log(LOG.info, "dpd-fail", () => `link fail 3 ${local}->${remote}:0 dpd=${mode}`);
    if (this.info) this.log(LOG.info, "link-down", () => `link down 3 ${local}->${remote}:500`);
    if (this.info) this.log(LOG.info, "ike-deleting", () => "going to be deleted");
    if (this.info) this.log(LOG.info, "ike-flush", () => "flushing");
    const doomed = this.sas.filter((s) => s.state === "established" || s.state === "deleting");
    const deletes: [IkeSa, number][] = [];
    for (const sa of doomed) {
      for (const c of [...sa.children]) {
        if (this.info)
          this.log(LOG.info, "child-deleting", () => `deleting IPsec SA with SPI ${spiHex(c.outSpi)}`);
        deletes.push([sa, c.inSpi]);
        this.removeChild(c, "DPD link fail");
      }
    }
    if (deletes.length > 0)
      this.log(LOG.info, "snmp-trap", () => `sending SNMP tunnel DOWN trap for ${this.name}`);
    // The DELETE goes out although the peer was just declared unreachable (seed 001).
    if (this.p.deleteOnDpdFailure) for (const [sa, spi] of deletes) this.sendDelete(sa, [spi]);
    for (const sa of doomed) this.destroy(sa, "DPD link fail", false);
    if (this.info) this.log(LOG.info, "ike-flushed", () => "flushed");
    if (this.info) this.log(LOG.info, "oper-down", () => "set oper down");
    this.changed("DPD: peer unreachable (link fail)");
    if (this.p.autoNegotiate) this.initiate("auto-negotiate");
  }

  private armKeepalive(sa: IkeSa): void {
    const iv = ms(this.p.natKeepalive);
    sa.timers.keepalive = this.e.at(Math.max(sa.lastOut + iv, this.e.now + 1), () => {
      sa.timers.keepalive = null;
      if (sa.state !== "established") return;
      if (this.e.now - sa.lastOut >= iv) {
        // RFC 3948 keepalive: one 0xFF byte on UDP 4500, only from the side behind NAT.
        this.log(LOG.debug, "natt-keepalive", () => this.say.keepalive(sa.ref()), sa);
        sa.lastOut = this.e.now;
        this.e.transmit(
          this.gw,
          wirePacket(
            this.gw.address,
            sa.remoteIp,
            "udp",
            sa.localPort,
            sa.remotePort,
            "natt-keepalive",
            "NAT-keepalive",
            undefined,
            0,
            undefined,
            undefined,
            undefined,
          ),
        );
      }
      this.armKeepalive(sa);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Data plane

  /** A data packet from this side into the tunnel (`quietAfter`: see {@link startProbe}). */
  sendData(d: DataMsg, quietAfter = -1): void {
    const e = this.e;
    const mon = this.monitor;
    const c = this.outboundChild();
    if (!c) {
      mon.dataNoSa(d.from, d.to);
      e.rec.drop({
        t: e.now / 1000,
        device: `${this.gw.name} (no IPsec SA)`,
        owner: this.gw.name,
        kind: "data",
        label: "data: tunnel down, no SA",
      });
      if (e.rec.on(LOG.debug))
        this.log(LOG.debug, "data-no-sa", () => this.say.noSa(this.name), undefined, {
          from: d.from,
          to: d.to,
        });
      // FortiOS negotiates on traffic; strongSwan only with a trap policy (acquire).
      if (!this.connecting && (this.p.trafficTriggered || this.trap))
        this.initiate(this.p.vendor === "fortios" ? "traffic" : "acquire");
      return;
    }
    const sa = c.ike;
    const now = e.now;
    sa.lastOut = now;
    mon.dataSent(d.from, d.to);
    const encap = sa.encap;
    const p = wirePacket(
      this.gw.address,
      sa.remoteIp,
      encap ? "udp" : "esp",
      encap ? sa.localPort : undefined,
      encap ? sa.remotePort : undefined,
      "esp",
      "ESP",
      c.outHex(),
      c.outSpi,
      encap ? sa.udpKey(this.gw.address) : sa.espKey(this.gw.address),
      undefined,
      d,
    );
    if (e.rec.on(LOG.debug)) {
      p.sendEvent = this.log(
        LOG.debug,
        "esp-send",
        () => `ESP spi=${c.outHex()} ${p.src}->${p.dst}${sa.encap ? " (UDP 4500)" : ""}`,
        sa,
        { spi: c.outHex() },
      );
    }
    e.transmit(this.gw, p);
    // FortiOS on-demand DPD: outgoing traffic but nothing received for dpd-retryinterval (TT 260424).
    if (
      this.p.vendor === "fortios" &&
      this.p.dpd === "on-demand" &&
      !this.probe &&
      now - this.lastIn >= ms(this.p.dpdRetryInterval)
    ) {
      this.startProbe(sa, quietAfter);
    }
  }
  /**
   * Packets `ts[i..]` (virtual ms, `ts[i]` = now) of a train from this side, applied in this one
   * event when that is provably what one event per send and per arrival would do; returns how
   * many events of the plain path that were (the current one included), or 0 when it does not
   * apply (nothing changed then). Conditions, all checked before anything changes:
   * - nothing records data packets (below debug level);
   * - both ways the path holds no state and drops nothing ({@link Engine.directPeer});
   * - this side has an outbound SA, and no send can start a DPD probe (on-demand: nothing
   *   received for the retry interval; arrivals only make that later) or a negotiation;
   * - with replies, the receiver has an outbound SA and its reply cannot start a probe either;
   * - no other live event is due before the last arrival, which is within the run.
   * Then no SA, session or timer changes while the train is under way, and each step depends only
   * on state nothing else touches: the steps run here in the plain path's (time, sequence) order.
   */
  sendDataRun(ts: number[], i: number, from: string, to: string, wantReply: boolean): number {
    const e = this.e;
    if (!e.collapse || e.rec.level >= LOG.debug) return 0;
    const n = ts.length;
    // The cheapest check first: a burst's first packet usually starts a DPD probe.
    let probes = false;
    if (this.p.vendor === "fortios" && this.p.dpd === "on-demand" && !this.probe) {
      const iv = ms(this.p.dpdRetryInterval);
      let lastIn = this.lastIn;
      if (ts[i]! - lastIn >= iv) {
        // The first packet starts a probe: the train goes on only if the probe is answered
        // directly (one way, {@link probeDirect}) before the next packet, which then starts none.
        const answered = ts[i]! + 2 * e.latencyMs;
        if (wantReply || (i + 1 < n && ts[i + 1]! <= answered)) return 0;
        lastIn = answered;
        probes = true;
      }
      for (let j = i + 1; j < n; j++) if (ts[j]! - lastIn >= iv) return 0;
    }
    const c = this.outboundChild();
    if (!c) return 0;
    const sa = c.ike;
    const peerGw = e.directTo(this.gw, sa.remoteIp);
    if (!peerGw) return 0;
    const lat = e.latencyMs;
    const last = ts[n - 1]! + lat + (wantReply ? lat : 0);
    if (last > e.until || e.peekLiveTime() <= last) return 0;
    const rc = peerGw.daemon.childByIn.get(c.outSpi);
    const delivered = rc !== undefined && rc.state !== "deleted";
    const probeTo = probes && delivered ? this.probePeer(sa) : null;
    if (probes && probeTo === null) return 0;
    const rconn = delivered ? rc.ike.conn : null;
    let rcb: ChildSa | null = null;
    let replyGw: Gateway | null = null;
    let rc2: ChildSa | undefined;
    if (wantReply && rconn) {
      rcb = rconn.outboundChild();
      if (!rcb) return 0;
      const rp = rconn.p;
      if (rp.vendor === "fortios" && rp.dpd === "on-demand" && !rconn.probe && ms(rp.dpdRetryInterval) <= 0)
        return 0;
      replyGw = e.directTo(rconn.gw, rcb.ike.remoteIp);
      if (!replyGw) return 0;
      rc2 = replyGw.daemon.childByIn.get(rcb.outSpi);
    }
    const replied = rc2 !== undefined && rc2.state !== "deleted";
    const tunnel = this.tunnel;
    const mon = this.monitor;
    // Where the plain path reports an ESP packet lost to an unknown SPI (looked up by tunnel name).
    const failedMon = delivered && (!wantReply || replied) ? undefined : e.monitors.get(tunnel);
    if (!wantReply) {
      // One way, each state item has one writer: the sender's SA (last send), the direction's
      // counters (sends), the receiver's SA (last arrival), the direction's delivered / failed
      // record (arrivals, in order). Interleaving sends and arrivals changes none of them.
      const k = n - i;
      // The probe's effects first: the train's later sends and arrivals overwrite its times.
      if (probeTo !== null) {
        ++sa.dpdSeq;
        this.probeApply(sa, probeTo);
      }
      sa.lastOut = ts[n - 1]!;
      for (let j = i; j < n; j++) {
        mon.dataSent(from, to);
        e.countDirect(this.gw, peerGw);
      }
      if (delivered) {
        const at = ts[n - 1]! + lat;
        rc.lastIn = at;
        rc.ike.lastIn = at;
        rconn!.lastIn = at;
        const rmon = rconn!.monitor;
        for (let j = i; j < n; j++) rmon.dataDelivered(from, to, ts[j]!);
      } else if (failedMon) {
        const why = `unknown SPI ${c.outHex()} at ${peerGw.daemon.gw.name} (no matching SA)`;
        for (let j = i; j < n; j++) failedMon.dataFailed(from, to, ts[j]!, why, c.outSpi);
      }
      return 2 * k;
    }
    // Sub-events in (time, sequence) order: sends (k = 0), arrivals (1), reply arrivals (2).
    const t: number[] = [];
    const kind: number[] = [];
    const sentAt: number[] = [];
    for (let j = i; j < n; j++) {
      t.push(ts[j]!);
      kind.push(0);
      sentAt.push(ts[j]!);
    }
    let events = 0;
    for (let done = 0; done < t.length; done++) {
      // The earliest pending step; ties go to the one created first (lower index).
      let b = done;
      for (let k = done + 1; k < t.length; k++) if (t[k]! < t[b]!) b = k;
      if (b !== done) {
        const [bt, bk, bs] = [t[b]!, kind[b]!, sentAt[b]!];
        t.splice(b, 1);
        kind.splice(b, 1);
        sentAt.splice(b, 1);
        t.splice(done, 0, bt);
        kind.splice(done, 0, bk);
        sentAt.splice(done, 0, bs);
      }
      const now = t[done]!;
      const k = kind[done]!;
      const sent = sentAt[done]!;
      events++;
      if (k === 0) {
        sa.lastOut = now;
        mon.dataSent(from, to);
        e.countDirect(this.gw, peerGw);
        t.push(now + lat);
        kind.push(1);
        sentAt.push(now);
      } else if (k === 1) {
        if (!delivered) {
          failedMon?.dataFailed(
            from,
            to,
            sent,
            `unknown SPI ${c.outHex()} at ${peerGw.daemon.gw.name} (no matching SA)`,
            c.outSpi,
          );
          continue;
        }
        rc.lastIn = now;
        rc.ike.lastIn = now;
        rconn!.lastIn = now;
        rconn!.monitor.dataDelivered(from, to, sent);
        if (rcb) {
          rcb.ike.lastOut = now;
          rconn!.monitor.dataSent(to, from);
          e.countDirect(rconn!.gw, replyGw!);
          t.push(now + lat);
          kind.push(2);
          sentAt.push(now);
        }
      } else if (!replied) {
        failedMon?.dataFailed(
          to,
          from,
          sent,
          `unknown SPI ${rcb!.outHex()} at ${replyGw!.daemon.gw.name} (no matching SA)`,
          rcb!.outSpi,
        );
      } else {
        rc2!.lastIn = now;
        rc2!.ike.lastIn = now;
        const c2 = rc2!.ike.conn;
        c2.lastIn = now;
        c2.monitor.dataDelivered(to, from, sent);
      }
    }
    return events;
  }
}

/** The IKE daemon of one gateway (iked / charon): demultiplexes packets to connections and SAs. */
export class Daemon {
  readonly conns: Conn[] = [];
  readonly byRemote = new Map<string, Conn>();
  readonly byTunnel = new Map<string, Conn>();
  readonly byLocalSpi = new LastHitMap<IkeSa>();
  readonly halfOpen = new Map<string, IkeSa>();
  /** CHILD SAs by inbound SPI (numbers: small integers compare cheaply). */
  readonly childByIn = new SpiTable<ChildSa>();
  /** The packet being processed (NAT detection compares its addresses with the NAT-D payloads). */
  current: WirePacket | null = null;
  private serial = 0;

  constructor(
    readonly engine: Engine,
    readonly gw: Gateway,
  ) {}

  nextSerial(): number {
    return ++this.serial;
  }

  newIkeSpi(rng: Rng): string {
    let s: string;
    do s = rng.spi64();
    while (this.byLocalSpi.has(s));
    return s;
  }

  newChildSpi(rng: Rng): number {
    let s: number;
    do s = rng.spi32n();
    while (this.childByIn.has(s));
    return s;
  }

  addConn(c: Conn): void {
    this.conns.push(c);
    this.byRemote.set(c.remote, c);
    this.byTunnel.set(c.tunnel, c);
  }

  receive(p: WirePacket): void {
    if (p.kind === "natt-keepalive") return;
    if (p.kind === "esp") {
      this.receiveEsp(p);
      return;
    }
    const m = p.ike;
    if (!m) return;
    this.current = p;
    try {
      this.receiveIke(p, m);
    } finally {
      this.current = null;
    }
  }

  /** A new IKE_SA_INIT / Main Mode 1 (or its retransmission): a half-open responder SA. */
  private receiveInit(p: WirePacket, m: IkeMsg): void {
    const e = this.engine;
    const key = `${p.src}|${m.spiI}`;
    let sa = this.halfOpen.get(key);
    if (!sa) {
      // Which connection: by the peer's address, told apart by identity (here: the tunnel) when
      // two tunnels join the same gateways; a NATed peer unknown by address matches by identity.
      const byAddr = this.byRemote.get(p.src);
      const conn =
        byAddr && byAddr.tunnel !== m.tunnel
          ? (this.conns.find((c) => c.tunnel === m.tunnel && c.remote === p.src) ?? byAddr)
          : (byAddr ?? this.byTunnel.get(m.tunnel));
      if (!conn) {
        if (e.rec.on(LOG.info))
          e.rec.add(
            LOG.info,
            this.gw.name,
            m.tunnel,
            "ike-no-config",
            `no IKE config for ${p.src}, ignoring ${m.what}`,
            {},
            p.sendEvent,
          );
        return;
      }
      sa = new IkeSa(conn, this.nextSerial(), false, m.spiI, e.now);
      sa.spiR = this.newIkeSpi(conn.rng);
      sa.remoteIp = p.src;
      sa.remotePort = p.sport ?? 500;
      conn.sas.push(sa);
      conn.saChanged();
      this.byLocalSpi.set(sa.spiR, sa);
      this.halfOpen.set(key, sa);
      sa.halfOpenKey = key;
      const s = sa;
      // Half-open responder SAs are dropped when the negotiation does not complete.
      sa.timers.halfOpen = e.after(ms(conn.p.halfOpenTimeout), () => {
        s.timers.halfOpen = null;
        this.halfOpen.delete(key);
        if (s.state === "connecting") s.conn.destroy(s, "half-open timeout", false);
      });
      conn.log(
        LOG.info,
        "ike-recv",
        () => conn.say.received(s.ref(), m.what, p.src, p.sport ?? 0, p.dst, p.dport ?? 0, m.len),
        sa,
        { exchange: m.exch, packet: m.what, responder: true },
        p.sendEvent,
      );
    }
    sa.conn.receive(sa, m, p);
  }

  /** An IKE message: to its SA by our SPI. Rare cases in methods of their own (a small hot path). */
  private receiveIke(p: WirePacket, m: IkeMsg): void {
    if (
      !m.resp &&
      ((m.v === 2 && m.exch === "IKE_SA_INIT") || (m.v === 1 && m.exch === "MAIN_MODE" && m.step === 1))
    ) {
      this.receiveInit(p, m);
      return;
    }
    const sa = this.byLocalSpi.get(m.fromInitiator ? m.spiR : m.spiI);
    if (!sa || sa.state === "dead") {
      // Unknown SPIs: charon ignores the message silently (strongswan-lab.md V1, t=127).
      if (this.engine.rec.on(LOG.info)) this.logIgnored(p, m);
      return;
    }
    if (this.engine.rec.on(LOG.debug)) this.logReceived(sa, m, p);
    sa.conn.receive(sa, m, p);
  }

  private logIgnored(p: WirePacket, m: IkeMsg): void {
    const conn = this.byRemote.get(p.src) ?? this.conns[0];
    const style = conn?.say;
    this.engine.rec.add(
      LOG.info,
      this.gw.name,
      m.tunnel,
      "ike-ignored",
      style ? style.prefix(conn!.name) + style.unknownSa(m.spiI, m.spiR, m.what) : `ignoring ${m.what}`,
      { packet: m.what },
      p.sendEvent,
    );
  }

  private logReceived(sa: IkeSa, m: IkeMsg, p: WirePacket): void {
    sa.conn.log(
      LOG.debug,
      "ike-recv",
      () => sa.conn.say.received(sa.ref(), m.what, p.src, p.sport ?? 0, p.dst, p.dport ?? 0, m.len),
      sa,
      { exchange: m.exch, packet: m.what },
      p.sendEvent,
    );
  }

  private receiveEsp(p: WirePacket): void {
    const e = this.engine;
    const d = p.data;
    const c = p.spiN !== 0 ? this.childByIn.get(p.spiN) : undefined;
    if (!c || c.state === "deleted") {
      if (e.rec.on(LOG.debug)) {
        const conn = this.byRemote.get(p.src) ?? this.conns[0];
        e.rec.add(
          LOG.debug,
          this.gw.name,
          d?.tunnel,
          "esp-unknown-spi",
          conn
            ? conn.say.prefix(conn.name) + conn.say.unknownSpi(p.spi ?? "?", p.src)
            : `unknown SPI ${p.spi}`,
          { spi: p.spi },
          p.sendEvent,
        );
      }
      if (d)
        e.monitors
          .get(d.tunnel)
          ?.dataFailed(
            d.from,
            d.to,
            d.sentAt,
            `unknown SPI ${p.spi} at ${this.gw.name} (no matching SA)`,
            p.spiN,
          );
      return;
    }
    const now = e.now;
    c.lastIn = now;
    c.ike.lastIn = now;
    const conn = c.ike.conn;
    conn.lastIn = now;
    if (!d) return;
    conn.monitor.dataDelivered(d.from, d.to, d.sentAt);
    if (e.rec.on(LOG.debug))
      conn.log(
        LOG.debug,
        "esp-recv",
        () => `ESP spi=${p.spi} from ${p.src} delivered`,
        c.ike,
        { spi: p.spi },
        p.sendEvent,
      );
    if (d.wantReply)
      conn.sendData({ tunnel: d.tunnel, from: d.to, to: d.from, wantReply: false, sentAt: now });
  }
}
