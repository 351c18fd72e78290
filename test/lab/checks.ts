/**
 * What each lab variant must show, and the measured times the simulator is compared with. The checks take
 * only a timeline (plus, when there are any, pings and firewall counters), so the simulator test can run
 * them on its own prediction if it maps its events onto the lab's event names (`LabEventType`).
 */
import {
  type Asymmetry,
  asymmetries,
  bothUpAfter,
  eventsOf,
  intervals,
  SITES,
  type Site,
  stateAt,
  type TimelineEntry,
} from "./timeline.js";

/** Timers the timing checks derive their expectations from (a subset of `LabTimers`). */
export interface CheckTimers {
  dpdDelay: Record<Site, number>;
  retransmitTries: number;
  retransmitTimeout: number;
  retransmitBase: number;
}

export interface Checkable {
  variant: string;
  timeline: TimelineEntry[];
  duration: number;
  timers: CheckTimers;
  pings?: {
    t: number;
    from: Site;
    sent: number;
    received: number;
    lastReply?: number | null;
    expect?: "pass" | "fail";
  }[];
  counters?: Record<string, number>;
  /** Scripted actions (times of the rekey and terminate the timing checks start from). */
  actions?: { t: number; site: Site; do: string }[];
}

/**
 * Tolerances justified by the measurements (docs/lab.md):
 * - `event`: charon keeps "last inbound" and schedules its DPD check in whole seconds (time_monotonic), so a
 *   DPD goes out between dpd_delay - 1 s and dpd_delay + 0.2 s after the last inbound packet; retransmission
 *   timers are exact to ~10 ms; scripted actions start within ~50 ms. Hence +-1.5 s for log event times.
 * - `state`: states are polled every second and a poll takes 5-50 ms, so a sampled transition lags its log
 *   event by 0-1.1 s; with the event tolerance, +-2.5 s for sampled state changes.
 */
export const LAB_TOLERANCE = { event: 1.5, state: 2.5, pollInterval: 1 } as const;

/** Minimum length of a difference between the sides to count as asymmetric (a few polls, see `asymmetries`). */
export const MIN_ASYMMETRY = 3;

export const giveUpDelay = (t: CheckTimers): number => {
  let total = 0;
  for (let k = 0; k <= t.retransmitTries; k++) total += t.retransmitTimeout * t.retransmitBase ** k;
  return total;
};

/**
 * The last time before `before` at which `site` received anything from its peer: an IKE packet its charon
 * logged, or tunnel traffic (a ping that got replies reached both sides up to its last reply). charon's DPD
 * goes out `dpd_delay` after this (IKEv2 has no other trigger).
 */
export function lastInbound(r: Checkable, site: Site, before: number): number | undefined {
  let last: number | undefined;
  for (const e of eventsOf(r.timeline, site, "pkt-rx")) if (e.t < before) last = Math.max(last ?? e.t, e.t);
  for (const p of r.pings ?? []) {
    const t = p.lastReply ?? (p.received > 0 ? p.t : undefined);
    if (t !== undefined && t < before) last = Math.max(last ?? t, t);
  }
  return last;
}

export interface LabMeasurements {
  variant: string;
  /** First sample in which the site was up. */
  firstUp: Record<Site, number | null>;
  /** Sampled intervals in which the site was up. */
  up: Record<Site, { start: number; end: number | null }[]>;
  upAtEnd: Record<Site, boolean>;
  /** Log event times. */
  established: Record<Site, number[]>;
  dpdSent: Record<Site, number[]>;
  retransmits: Record<Site, number[]>;
  giveUp: Record<Site, number[]>;
  initiate: Record<Site, number[]>;
  deleteSent: Record<Site, number[]>;
  deleteReceived: Record<Site, number[]>;
  asymmetries: Asymmetry[];
  /** First time both were sampled up again after the last asymmetry, when there was one. */
  recovery: number | null;
  pings: { t: number; from: Site; ok: boolean }[];
}

const perSite = <T>(f: (s: Site) => T): Record<Site, T> => ({ site1: f("site1"), site2: f("site2") });
const times = (tl: TimelineEntry[], s: Site, type: Parameters<typeof eventsOf>[2]) =>
  eventsOf(tl, s, type).map((e) => e.t);

export function measure(r: Checkable): LabMeasurements {
  const tl = r.timeline;
  const asym = asymmetries(tl, MIN_ASYMMETRY);
  const last = asym[asym.length - 1];
  return {
    variant: r.variant,
    firstUp: perSite((s) => intervals(tl, s, "up")[0]?.start ?? null),
    up: perSite((s) => intervals(tl, s, "up")),
    upAtEnd: perSite((s) => stateAt(tl, s, Number.POSITIVE_INFINITY) === "up"),
    established: perSite((s) => times(tl, s, "ike-established")),
    dpdSent: perSite((s) => times(tl, s, "dpd-sent")),
    retransmits: perSite((s) => times(tl, s, "retransmit")),
    giveUp: perSite((s) => times(tl, s, "give-up")),
    initiate: perSite((s) => times(tl, s, "initiate")),
    deleteSent: perSite((s) => times(tl, s, "delete-sent")),
    deleteReceived: perSite((s) => times(tl, s, "delete-received")),
    asymmetries: asym,
    recovery: last?.end != null ? bothUpAfter(tl, last.end) : null,
    pings: (r.pings ?? []).map((p) => ({ t: p.t, from: p.from, ok: p.received > 0 })),
  };
}

// ---------------------------------------------------------------------------------------------

class Problems {
  readonly list: string[] = [];
  check(ok: boolean, msg: string): boolean {
    if (!ok) this.list.push(msg);
    return ok;
  }
  /** `actual` within `tol` of `expected`; `expected` undefined when what it derives from is itself missing. */
  near(actual: number | undefined, expected: number | undefined, tol: number, what: string): void {
    if (expected === undefined) this.list.push(`${what}: cannot be checked, what it follows is missing`);
    else if (actual === undefined) this.list.push(`${what}: missing (expected ~${expected.toFixed(1)} s)`);
    else
      this.check(
        Math.abs(actual - expected) <= tol,
        `${what} at ${actual.toFixed(2)} s, expected ${expected.toFixed(2)} +- ${tol} s`,
      );
  }
}

const fmt = (a: Asymmetry[]) =>
  a.map((x) => `${x.up} up/${x.down} down ${x.start}-${x.end ?? "end"}`).join(", ") || "none";

function checkPings(r: Checkable, p: Problems): void {
  for (const ping of r.pings ?? []) {
    if (ping.expect === "pass")
      p.check(
        ping.received === ping.sent,
        `ping from ${ping.from} at ${ping.t} s: ${ping.received}/${ping.sent} replies, expected all`,
      );
    if (ping.expect === "fail")
      p.check(
        ping.received === 0,
        `ping from ${ping.from} at ${ping.t} s: ${ping.received} replies, expected none`,
      );
  }
}

const counter = (r: Checkable, name: string): number | undefined => r.counters?.[name];

function upEarly(m: LabMeasurements, p: Problems): void {
  for (const s of SITES) {
    const f = m.firstUp[s];
    p.check(f !== null && f <= 3, `${s} not up within 3 s of t=0 (first up: ${f ?? "never"})`);
  }
}

/** V0 / V3: up at once, site1's DPD answered, DELETE and re-initiation pass, up at the end, never asymmetric. */
function checkStable(r: Checkable, m: LabMeasurements, p: Problems): void {
  upEarly(m, p);
  for (const s of SITES) p.check(m.upAtEnd[s], `${s} not up at the end`);
  p.check(m.asymmetries.length === 0, `asymmetric state: ${fmt(m.asymmetries)}`);
  p.check(m.dpdSent.site1.length > 0, "site1 sent no DPD (the run must outlast site1's dpd_delay)");
  for (const s of SITES)
    p.check(m.giveUp[s].length === 0, `${s} gave up an exchange at ${m.giveUp[s].join(", ")} s`);
  p.check(m.deleteReceived.site2.length > 0, "site1's DELETE did not reach site2");
  if (r.counters) {
    for (const c of ["drop_ike500", "drop_ike4500"])
      p.check((counter(r, c) ?? 0) === 0, `site2 dropped IKE: ${c} = ${counter(r, c)}`);
  }
}

/** V1: site1's DPD dropped, site1 down while site2 stays up until its own DPD fails and it re-initiates. */
function checkTrapSite2Initiates(r: Checkable, m: LabMeasurements, p: Problems): void {
  upEarly(m, p);
  const giveUp = giveUpDelay(r.timers);
  const dpd1 = m.dpdSent.site1[0];
  const in1 = lastInbound(r, "site1", dpd1 ?? r.duration);
  p.near(
    dpd1,
    in1 === undefined ? undefined : in1 + r.timers.dpdDelay.site1,
    LAB_TOLERANCE.event,
    "site1's first DPD",
  );
  const dead1 = m.giveUp.site1.find((t) => dpd1 !== undefined && t > dpd1);
  p.near(dead1, dpd1 === undefined ? undefined : dpd1 + giveUp, 0.5, "site1 gives up on site2 (DPD failed)");
  const dpd2 = m.dpdSent.site2[0];
  const in2 = lastInbound(r, "site2", dpd2 ?? r.duration);
  p.near(
    dpd2,
    in2 === undefined ? undefined : in2 + r.timers.dpdDelay.site2,
    LAB_TOLERANCE.event,
    "site2's first DPD",
  );
  const dead2 = m.giveUp.site2.find((t) => dpd2 !== undefined && t > dpd2);
  p.near(dead2, dpd2 === undefined ? undefined : dpd2 + giveUp, 0.5, "site2 gives up on site1 (DPD failed)");
  if (dead1 === undefined || dead2 === undefined) return;
  p.check(
    dead1 < dead2,
    `site2 gave up (${dead2} s) before site1 (${dead1} s): the ordering the lab needs is lost`,
  );

  // strongSwan sends no DELETE to a peer it declared dead; nothing reaches site2 before its own recovery.
  p.check(
    !m.deleteSent.site1.some((t) => t < dead2),
    `site1 sent a DELETE at ${m.deleteSent.site1.join(", ")} s`,
  );
  p.check(
    !m.deleteReceived.site2.some((t) => t < dead2),
    `site2 received a DELETE at ${m.deleteReceived.site2.join(", ")} s`,
  );

  const asym = m.asymmetries.find((a) => a.up === "site2" && a.down === "site1");
  if (
    p.check(asym !== undefined, `no asymmetry with site2 up and site1 down (found: ${fmt(m.asymmetries)})`) &&
    asym
  ) {
    p.near(asym.start, dead1, LAB_TOLERANCE.state, "site1 sampled down while site2 up");
    p.check(asym.end !== null, "the asymmetry never ended (site2's own DPD should recover it)");
    if (asym.end !== null)
      p.near(asym.end, dead2, LAB_TOLERANCE.state, "asymmetry ends (site2's re-initiation)");
  }
  p.check(
    m.asymmetries.every((a) => a.up === "site2"),
    `asymmetry in the other direction: ${fmt(m.asymmetries)}`,
  );
  // site2 up throughout until it gives up itself, and both up at the end.
  const firstUp2 = m.firstUp.site2 ?? 0;
  const down2 = r.timeline.filter(
    (e) => e.site === "site2" && !e.event && e.t >= firstUp2 && e.t < dead2 && e.state === "down",
  );
  p.check(
    down2.length === 0,
    `site2 sampled down before its own recovery at ${down2.map((e) => e.t).join(", ")} s`,
  );
  p.check(m.recovery !== null, "never both up again after the asymmetry");
  for (const s of SITES) p.check(m.upAtEnd[s], `${s} not up at the end (no recovery)`);
  if (r.counters) {
    p.check(
      (counter(r, "drop_ike4500") ?? 0) > 0,
      "site2 dropped no udp/4500 (site1's DPD should be dropped)",
    );
    p.check(
      (counter(r, "drop_ike500") ?? 0) > 0,
      "site2 dropped no udp/500 (site1's re-initiation should be)",
    );
  }
}

/** V1D: site1's administrative DELETE is dropped; site1 removes the SA, site2 stays up. */
function checkLostDelete(r: Checkable, m: LabMeasurements, p: Problems): void {
  upEarly(m, p);
  const term = r.actions?.find((a) => a.do === "terminate" && a.site === "site1")?.t;
  const del = m.deleteSent.site1[0];
  // The DELETE goes out when charon handles `swanctl --terminate` (a process start later: up to ~1 s under load).
  if (term !== undefined) p.near(del, term, LAB_TOLERANCE.state, "site1 sends DELETE");
  const gone = m.giveUp.site1.find((t) => del !== undefined && t > del);
  p.near(
    gone,
    del === undefined ? undefined : del + giveUpDelay(r.timers),
    0.5,
    "site1 gives up the DELETE exchange",
  );
  p.check(
    eventsOf(r.timeline, "site1", "delete-failed").length > 0,
    "site1 did not log 'proper IKE_SA delete failed'",
  );
  p.check(m.deleteReceived.site2.length === 0, "site2 received the DELETE");
  const firstUp2 = m.firstUp.site2 ?? 0;
  const down2 = r.timeline.filter(
    (e) => e.site === "site2" && !e.event && e.t >= firstUp2 && e.state === "down",
  );
  p.check(down2.length === 0, `site2 sampled down at ${down2.map((e) => e.t).join(", ")} s`);
  const asym = m.asymmetries.find((a) => a.up === "site2");
  if (p.check(asym !== undefined, `no asymmetry with site2 up (found: ${fmt(m.asymmetries)})`) && asym) {
    p.near(asym.start, del, LAB_TOLERANCE.state, "site1 sampled down");
    p.check(asym.end === null, `asymmetry ended at ${asym.end} s (nothing should recover it within the run)`);
  }
  p.check(m.initiate.site1.length > 0, "site1 did not re-initiate");
  if (r.counters) p.check((counter(r, "drop_ike4500") ?? 0) > 0, "site2 dropped no udp/4500 (the DELETE)");
}

/** V2: site1's IKE_SA_INIT never gets through; nothing ever comes up; site2 never hears a thing. */
function checkNeverUp(r: Checkable, m: LabMeasurements, p: Problems): void {
  for (const s of SITES) {
    p.check(m.up[s].length === 0, `${s} was up at ${m.up[s].map((i) => i.start).join(", ")} s`);
    p.check(m.established[s].length === 0, `${s} established an IKE_SA at ${m.established[s].join(", ")} s`);
  }
  const heard = eventsOf(r.timeline, "site2", "pkt-rx");
  p.check(heard.length === 0, `site2's charon received ${heard.length} packets (all should be dropped)`);
  p.check(m.retransmits.site1.length >= 3, `site1 retransmitted ${m.retransmits.site1.length} times`);
  const retries = m.initiate.site1.length;
  p.check(
    retries >= Math.floor(r.duration / giveUpDelay(r.timers)),
    `site1 initiated ${retries} times in ${r.duration} s (keyingtries = 0 must keep retrying)`,
  );
  if (r.counters) p.check((counter(r, "drop_ike500") ?? 0) > 0, "site2 dropped no udp/500");
}

const CHECKS: Record<string, (r: Checkable, m: LabMeasurements, p: Problems) => void> = {
  V0: checkStable,
  V1: checkTrapSite2Initiates,
  V1D: checkLostDelete,
  V2: checkNeverUp,
  V3: (r, m, p) => {
    checkStable(r, m, p);
    if (r.counters)
      p.check(
        (counter(r, "fix_new_ike") ?? 0) > 0,
        "the fix rule accepted nothing (site1's DPD after the pinhole expired should need it)",
      );
  },
};

/** The variant's qualitative sequence and timer-derived timings; returns the violations (empty = as expected). */
export function checkVariant(r: Checkable): string[] {
  const check = CHECKS[r.variant];
  if (!check) return [`no checks for variant ${r.variant}`];
  const p = new Problems();
  check(r, measure(r), p);
  checkPings(r, p);
  return p.list;
}
