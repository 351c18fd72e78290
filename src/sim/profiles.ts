/**
 * Vendor profiles of the IKE daemon model: one flat set of timers and behaviour switches, with
 * each vendor's defaults. Every value is cited in docs/simulator.md; values without a
 * public source are marked "assumption" there and here.
 */

export type Vendor = "fortios" | "strongswan";

export interface IkeProfile {
  vendor: Vendor;
  ikeVersion: 1 | 2;

  // --- Retransmission of requests --------------------------------------------------------
  /**
   * Seconds to wait after each transmission of a request; the exchange is given up after the
   * last one. strongSwan: timeout·base^n for n = 0..tries (4 s, 1.8, 5 → gives up at 165 s).
   */
  retransmitSchedule: number[];
  /** FortiOS `negotiate-timeout` (s): an IKE SA still negotiating after this is abandoned. */
  negotiateTimeout: number | null;
  /** Responder: half-open IKE SAs are dropped after this (charon.half_open_timeout). */
  halfOpenTimeout: number;

  // --- Dead peer detection ----------------------------------------------------------------
  /**
   * FortiOS `dpd`: `on-demand` probes only when sending without receiving, `on-idle` when nothing
   * was received for `dpdRetryInterval`; strongSwan: `idle` when nothing was received for `dpdDelay`.
   */
  dpd: "disable" | "on-demand" | "on-idle" | "idle";
  /** strongSwan `dpd_delay` (s). */
  dpdDelay: number;
  /** strongSwan IKEv1 `dpd_timeout` (s); 0 = use the retransmission timeout. */
  dpdTimeout: number;
  /** FortiOS `dpd-retryinterval` (s). */
  dpdRetryInterval: number;
  /** FortiOS `dpd-retrycount`. */
  dpdRetryCount: number;
  /** What happens to the CHILD_SAs of a dead peer (strongSwan `dpd_action`). */
  dpdAction: "clear" | "trap" | "restart";
  /** Send a DELETE for the SAs after the peer was declared dead (FortiOS yes, seed 001; strongSwan no). */
  deleteOnDpdFailure: boolean;
  /** Data sent into a tunnel that is down starts a negotiation (FortiOS; strongSwan only via trap policies). */
  trafficTriggered: boolean;

  // --- Start / close ------------------------------------------------------------------------
  startAction: "none" | "trap" | "start";
  /** On a DELETE received from the peer (strongSwan `close_action`). */
  closeAction: "none" | "trap" | "start";
  /** FortiOS phase2 `auto-negotiate`: keep the tunnel up without traffic. */
  autoNegotiate: boolean;
  /** strongSwan `keyingtries` (0 = forever): attempts per initiation. FortiOS retries on the next trigger. */
  keyingTries: number;

  // --- Lifetimes (s) ---------------------------------------------------------------------------
  ikeRekeyTime: number;
  /** Rekey happens at rekey_time − random(0, rand_time). */
  ikeRandTime: number;
  /** Hard lifetime = rekey_time + over_time. */
  ikeOverTime: number;
  /** IKEv2 reauthentication (strongSwan `reauth_time`, 0 = off). */
  reauthTime: number;
  childRekeyTime: number;
  childRandTime: number;
  childLifeTime: number;
  /** charon.make_before_break for reauthentication. */
  makeBeforeBreak: boolean;

  // --- NAT traversal ------------------------------------------------------------------------------
  /** NAT-T keepalive interval (s) for a gateway behind NAT; 0 = off. */
  natKeepalive: number;
  /** Force UDP encapsulation (strongSwan `encap = yes`; kernel-libipsec always does, strongswan-lab.md caveat 1). */
  forceEncap: boolean;
  /** IKEv2 MOBIKE: IKE floats to UDP 4500 from IKE_AUTH on, even without NAT (strongSwan default). */
  mobike: boolean;
}

/** strongSwan's retransmission schedule: timeout·base^n, n = 0..tries. */
export function charonSchedule(timeout: number, base: number, tries: number): number[] {
  const out: number[] = [];
  for (let n = 0; n <= tries; n++) out.push(timeout * base ** n);
  return out;
}

/** strongSwan 5.9 / 6.0 defaults (swanctl.conf, strongswan.conf). */
export function strongswanProfile(ikeVersion: 1 | 2 = 2): IkeProfile {
  return {
    vendor: "strongswan",
    ikeVersion,
    retransmitSchedule: charonSchedule(4, 1.8, 5), // 4, 7.2, 12.96, … → gives up at 165 s
    negotiateTimeout: null,
    halfOpenTimeout: 30,
    dpd: "idle",
    dpdDelay: 0, // swanctl default: DPD off
    dpdTimeout: 0,
    dpdRetryInterval: 0,
    dpdRetryCount: 0,
    dpdAction: "clear",
    deleteOnDpdFailure: false,
    trafficTriggered: false,
    startAction: "none",
    closeAction: "none",
    autoNegotiate: false,
    keyingTries: 1,
    ikeRekeyTime: 4 * 3600,
    ikeRandTime: 0.1 * 4 * 3600, // rand_time defaults to over_time
    ikeOverTime: 0.1 * 4 * 3600,
    reauthTime: 0,
    childRekeyTime: 3600,
    childRandTime: 360, // life_time − rekey_time
    childLifeTime: 3960, // rekey_time + 10 %
    makeBeforeBreak: false,
    natKeepalive: 20,
    forceEncap: false,
    mobike: ikeVersion === 2,
  };
}

/** FortiOS defaults (phase1-interface / phase2-interface as created by the IPsec wizard). */
export function fortiosProfile(ikeVersion: 1 | 2 = 1): IkeProfile {
  return {
    vendor: "fortios",
    ikeVersion,
    // IKEv2: 3+6+12+24+48 = 93 s, not configurable (Fortinet TT 294932). IKEv1: assumption, same
    // schedule, bounded by negotiate-timeout while negotiating.
    retransmitSchedule: [3, 6, 12, 24, 48],
    negotiateTimeout: 30,
    halfOpenTimeout: 30,
    dpd: "on-demand",
    dpdDelay: 0,
    dpdTimeout: 0,
    dpdRetryInterval: 20,
    dpdRetryCount: 3,
    dpdAction: "restart", // re-initiation itself is governed by autoNegotiate / trafficTriggered
    deleteOnDpdFailure: true,
    trafficTriggered: true,
    startAction: "none",
    closeAction: "none",
    autoNegotiate: false, // wizard-created phase2 shows `set auto-negotiate disable` (TT 384951)
    keyingTries: 1,
    // Hard lifetimes are phase1 `keylife` 86400 s and phase2 `keylifeseconds` 43200 s. How early
    // FortiOS starts the rekey is not documented in the sources we have: assumption, 300 s before
    // the hard lifetime minus up to 60 s of jitter.
    ikeRekeyTime: 86400 - 300,
    ikeRandTime: 60,
    ikeOverTime: 300,
    reauthTime: 0,
    childRekeyTime: 43200 - 300,
    childRandTime: 60,
    childLifeTime: 43200,
    makeBeforeBreak: true,
    natKeepalive: 10, // assumption: wizard-generated configs show `set keepalive 10`
    forceEncap: false,
    mobike: false,
  };
}

export type ProfileOverrides = Partial<IkeProfile> & {
  /** strongSwan-style retransmission parameters (rebuild `retransmitSchedule`). */
  retransmitTimeout?: number;
  retransmitBase?: number;
  retransmitTries?: number;
  /** FortiOS phase1 `keylife`: hard lifetime of the IKE SA (rekey `ikeRandTime` before). */
  keylife?: number;
  /** FortiOS phase2 `keylifeseconds`. */
  keylifeseconds?: number;
};

/** Builds a profile: vendor defaults, then overrides (strongSwan-style retransmit knobs included). */
export function makeProfile(vendor: Vendor, ikeVersion?: 1 | 2, o: ProfileOverrides = {}): IkeProfile {
  const base = vendor === "fortios" ? fortiosProfile(ikeVersion ?? 1) : strongswanProfile(ikeVersion ?? 2);
  const { retransmitTimeout, retransmitBase, retransmitTries, keylife, keylifeseconds, ...rest } = o;
  const p: IkeProfile = { ...base, ...rest };
  if (rest.mobike === undefined && ikeVersion !== undefined)
    p.mobike = vendor === "strongswan" && ikeVersion === 2;
  if (retransmitTimeout !== undefined || retransmitBase !== undefined || retransmitTries !== undefined) {
    p.retransmitSchedule = charonSchedule(
      retransmitTimeout ?? 4,
      retransmitBase ?? 1.8,
      retransmitTries ?? 5,
    );
  }
  if (keylife !== undefined) {
    // FortiOS keylife is the hard lifetime; the rekey starts a margin before it.
    const margin = Math.min(p.ikeOverTime, keylife / 10);
    p.ikeOverTime = margin;
    p.ikeRekeyTime = keylife - margin;
    if (rest.ikeRandTime === undefined) p.ikeRandTime = Math.min(p.ikeRandTime, margin / 2);
  }
  if (keylifeseconds !== undefined) {
    const margin = Math.min(p.childLifeTime - p.childRekeyTime, keylifeseconds / 10);
    p.childLifeTime = keylifeseconds;
    p.childRekeyTime = keylifeseconds - margin;
    if (rest.childRandTime === undefined) p.childRandTime = Math.min(p.childRandTime, margin / 2);
  }
  if (rest.childLifeTime === undefined && keylifeseconds === undefined && rest.childRekeyTime !== undefined) {
    // strongSwan: life_time defaults to rekey_time + 10 %, rand_time to the difference.
    p.childLifeTime = rest.childRekeyTime * 1.1;
    if (rest.childRandTime === undefined) p.childRandTime = p.childLifeTime - rest.childRekeyTime;
  }
  if (
    rest.ikeOverTime === undefined &&
    keylife === undefined &&
    rest.ikeRekeyTime !== undefined &&
    vendor === "strongswan"
  ) {
    p.ikeOverTime = rest.ikeRekeyTime * 0.1;
    if (rest.ikeRandTime === undefined) p.ikeRandTime = p.ikeOverTime;
  }
  return p;
}

/**
 * The same profile as one object of one shape (every field, one order): profiles built from
 * different vendor defaults and overrides have different hidden classes, which makes every
 * profile read on the simulator's hot paths polymorphic.
 */
export function fixedShape(p: IkeProfile): IkeProfile {
  return {
    vendor: p.vendor,
    ikeVersion: p.ikeVersion,
    retransmitSchedule: p.retransmitSchedule,
    negotiateTimeout: p.negotiateTimeout,
    halfOpenTimeout: p.halfOpenTimeout,
    dpd: p.dpd,
    dpdDelay: p.dpdDelay,
    dpdTimeout: p.dpdTimeout,
    dpdRetryInterval: p.dpdRetryInterval,
    dpdRetryCount: p.dpdRetryCount,
    dpdAction: p.dpdAction,
    deleteOnDpdFailure: p.deleteOnDpdFailure,
    trafficTriggered: p.trafficTriggered,
    startAction: p.startAction,
    closeAction: p.closeAction,
    autoNegotiate: p.autoNegotiate,
    keyingTries: p.keyingTries,
    ikeRekeyTime: p.ikeRekeyTime,
    ikeRandTime: p.ikeRandTime,
    ikeOverTime: p.ikeOverTime,
    reauthTime: p.reauthTime,
    childRekeyTime: p.childRekeyTime,
    childRandTime: p.childRandTime,
    childLifeTime: p.childLifeTime,
    makeBeforeBreak: p.makeBeforeBreak,
    natKeepalive: p.natKeepalive,
    forceEncap: p.forceEncap,
    mobike: p.mobike,
  };
}

/** Total seconds before an unanswered request is given up. */
export function giveUpAfter(p: IkeProfile): number {
  return p.retransmitSchedule.reduce((a, b) => a + b, 0);
}
