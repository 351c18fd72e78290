/**
 * Pure functions over a lab timeline (state samples plus log events). They work on any timeline of this
 * shape, so the simulator test can run the same analysis on its predictions and compare like with like.
 */

export type Site = "site1" | "site2";
export const SITES: readonly Site[] = ["site1", "site2"];
export type TunnelState = "up" | "down";

/**
 * One point of the timeline. Without `event` it is a state sample (polled vici `list-sas`); with
 * `event` it is a charon log event and `state` is that site's state as last sampled at or before `t`.
 */
export interface TimelineEntry {
  site: Site;
  /** Seconds since the scenario's t=0 (the first scripted action). */
  t: number;
  state: TunnelState;
  event?: LabEventType;
  /** The log line's message (events only), e.g. "retransmit 2 of request with message ID 3". */
  detail?: string;
}

/** Charon log events the lab extracts (see `classifyLogLine` in strongswan-lab.ts). */
export type LabEventType =
  | "initiate" // initiating IKE_SA x[n] to ...
  | "ike-established" // IKE_SA x[n] established between ...
  | "child-established" // CHILD_SA x{n} established with SPIs ... (also after a CHILD_SA rekey)
  | "child-rekey" // the CREATE_CHILD_SA rekey was started on this side
  | "dpd-sent" // sending DPD request
  | "retransmit" // retransmit n of request with message ID m
  | "give-up" // giving up after n retransmits
  | "peer-dead" // establishing failed / DPD failed: peer not responding (any "not responding" line)
  | "retry" // peer not responding, trying again (n/0)  (keyingtries)
  | "restart" // restarting CHILD_SA after a DPD failure (dpd_action = restart)
  | "delete-sent" // sending DELETE for IKE_SA
  | "delete-received" // received DELETE for IKE_SA
  | "delete-failed" // proper IKE_SA delete failed, peer not responding
  | "ike-deleted" // deleting IKE_SA ... / IKE_SA deleted
  | "ignored" // a packet charon dropped (e.g. an INFORMATIONAL for an unknown IKE_SA)
  | "msg-tx" // generating <exchange> request|response <id> [ payloads ]
  | "msg-rx" // parsed <exchange> request|response <id> [ payloads ]
  | "pkt-tx" // sending packet: from a[p] to b[q]
  | "pkt-rx"; // received packet: from a[p] to b[q]

export interface Interval {
  start: number;
  /** null: still in that state when the timeline ends. */
  end: number | null;
}

export interface Asymmetry extends Interval {
  up: Site;
  down: Site;
}

const samplesOf = (timeline: readonly TimelineEntry[], site: Site): TimelineEntry[] =>
  timeline.filter((e) => e.site === site && e.event === undefined).sort((a, b) => a.t - b.t);

export const eventsOf = (
  timeline: readonly TimelineEntry[],
  site: Site,
  type: LabEventType,
): TimelineEntry[] => timeline.filter((e) => e.site === site && e.event === type).sort((a, b) => a.t - b.t);

/** The sampled state of `site` at time t (the last sample at or before t; "down" before the first one). */
export function stateAt(timeline: readonly TimelineEntry[], site: Site, t: number): TunnelState {
  let state: TunnelState = "down";
  for (const s of samplesOf(timeline, site)) {
    if (s.t > t) break;
    state = s.state;
  }
  return state;
}

/** Maximal intervals in which `site` was sampled in `state` (a state holds from its sample to the next change). */
export function intervals(timeline: readonly TimelineEntry[], site: Site, state: TunnelState): Interval[] {
  const out: Interval[] = [];
  let open: number | null = null;
  for (const s of samplesOf(timeline, site)) {
    if (s.state === state && open === null) open = s.t;
    if (s.state !== state && open !== null) {
      out.push({ start: open, end: s.t });
      open = null;
    }
  }
  if (open !== null) out.push({ start: open, end: null });
  return out;
}

/**
 * Intervals in which one side was up and the other down, from both sides' samples. Differences shorter
 * than `minDuration` seconds are dropped: an exchange that completes between two polls (a DELETE, an
 * IKE_AUTH) is seen on one side one sample earlier than on the other.
 */
export function asymmetries(timeline: readonly TimelineEntry[], minDuration = 3): Asymmetry[] {
  const times = [...new Set(timeline.filter((e) => e.event === undefined).map((e) => e.t))].sort(
    (a, b) => a - b,
  );
  const out: Asymmetry[] = [];
  let cur: Asymmetry | null = null;
  for (const t of times) {
    const s1 = stateAt(timeline, "site1", t);
    const s2 = stateAt(timeline, "site2", t);
    const up: Site | null = s1 === s2 ? null : s1 === "up" ? "site1" : "site2";
    if (cur && cur.up !== up) {
      cur.end = t;
      out.push(cur);
      cur = null;
    }
    if (up && !cur) cur = { up, down: up === "site1" ? "site2" : "site1", start: t, end: null };
  }
  if (cur) out.push(cur);
  const last = times[times.length - 1] ?? 0;
  return out.filter((a) => (a.end ?? last) - a.start >= minDuration);
}

/** First time at or after `from` at which both sides are sampled up, or null. */
export function bothUpAfter(timeline: readonly TimelineEntry[], from: number): number | null {
  const times = [
    ...new Set(timeline.filter((e) => e.event === undefined && e.t >= from).map((e) => e.t)),
  ].sort((a, b) => a - b);
  for (const t of times) {
    if (stateAt(timeline, "site1", t) === "up" && stateAt(timeline, "site2", t) === "up") return t;
  }
  return null;
}
