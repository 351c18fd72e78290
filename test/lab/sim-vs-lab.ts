/**
 * The simulator against the real charon lab (issue 6, "Ground truth from a real IKE daemon"): a lab run's own
 * timers, script and firewall become a simulator scenario; the simulator's result becomes a timeline of the
 * lab's shape (state samples at the lab's own poll times, charon event names); both are measured the same way
 * and compared within the lab's measurement error. See docs/lab.md, "Simulator vs real charon".
 */

import { evaluateTable, type Packet } from "../../src/analysis/iptables-eval.js";
import { parsePrefix } from "../../src/model/address.js";
import type { Hook as IptHook } from "../../src/platforms/iptables/model.js";
import { parseIptablesOrThrow } from "../../src/platforms/iptables/parse.js";
import type {
  ActionSpec,
  Decision,
  SimResult,
  StatelessFilter,
  TimelineEvent,
  TrafficSpec,
} from "../../src/sim/index.js";
import { simulate } from "../../src/sim/index.js";
import { strongswanLabScenarioFrom } from "../../src/sim/presets.js";
import type { Scenario } from "../../src/sim/scenario.js";
import { type Checkable, checkVariant, LAB_TOLERANCE, MIN_ASYMMETRY, measure } from "./checks.js";
import {
  DEFAULT_TIMERS,
  type LabResult,
  type LabTimers,
  type LabVariant,
  site2Firewall,
} from "./strongswan-lab.js";
import {
  type Asymmetry,
  asymmetries,
  type Interval,
  intervals,
  type LabEventType,
  SITES,
  type Site,
  type TimelineEntry,
  type TunnelState,
} from "./timeline.js";

/** What the conversion needs of a lab run (a `LabResult` has it all). */
export type LabRun = Pick<
  LabResult,
  "variant" | "firewall" | "timers" | "duration" | "timeline" | "pings" | "actions" | "counters"
>;

// ---------------------------------------------------------------------------------------------
// Lab run → simulator scenario

/** site2's wan interface in the lab (the iptables rules see packets arrive on it). */
const SITE2_IFACE = "wan";

/**
 * The iptables rules the lab loads into site2 (`site2Firewall`), parsed and evaluated by the project's own
 * iptables engine, as the simulator's stateless filter. Also counts packets per rule comment, like
 * `iptables-save -c` does for the lab's `counters`.
 */
export function iptablesFilter(
  rules: string,
  file = "site2.rules",
): { filter: StatelessFilter; counters: Map<string, number> } {
  const rs = parseIptablesOrThrow(rules, { file, family: 4 }).ruleset;
  const counters = new Map<string, number>();
  const cache = new Map<string, { d: Decision; comment: string | null }>();
  const hooks: Record<string, IptHook> = { input: "INPUT", output: "OUTPUT", forward: "FORWARD" };
  const filter: StatelessFilter = {
    decide(pkt, state, iface, hook) {
      const key = `${hook}|${pkt.proto}|${pkt.src}|${pkt.sport}|${pkt.dst}|${pkt.dport}|${state}|${iface}`;
      let hit = cache.get(key);
      if (!hit) {
        const p: Packet = {
          family: 4,
          src: parsePrefix(pkt.src).addr,
          dst: parsePrefix(pkt.dst).addr,
          proto: pkt.proto === "udp" ? 17 : pkt.proto === "tcp" ? 6 : 50,
          ...(pkt.sport !== undefined ? { sport: pkt.sport } : {}),
          ...(pkt.dport !== undefined ? { dport: pkt.dport } : {}),
          ...(hook === "output" ? { oif: iface } : { iif: iface }),
          state,
          ipsec: false,
        };
        const r = evaluateTable(rs, "filter", hooks[hook] ?? "INPUT", p);
        // The lab's rules are exactly evaluable; an undecided packet would be a gap in the engine.
        if (r.verdict === "unknown")
          throw new Error(
            `${file}: the iptables engine cannot decide ${key} (${r.outcomes[0]?.reason ?? "?"})`,
          );
        const text = r.rule?.prov.text ?? `${hooks[hook]} policy`;
        hit = {
          d: {
            verdict: r.verdict === "reject" ? "drop" : r.verdict,
            rule: r.rule ? { file, line: r.rule.prov.line, text } : { text },
          },
          comment: /--comment "?([\w-]+)"?/.exec(text)?.[1] ?? null,
        };
        cache.set(key, hit);
      }
      if (hit.comment && hook === "input") counters.set(hit.comment, (counters.get(hit.comment) ?? 0) + 1);
      return hit.d;
    },
  };
  return { filter, counters };
}

/** Script times of the run as it happened: the actions' measured start times, the probes' first echoes. */
export function labActions(r: LabRun): ActionSpec[] {
  return r.actions.map((a) => ({ at: a.t, gateway: a.site, action: a.do as ActionSpec["action"] }));
}

/**
 * The probes (`icmp.py`: 3 echoes, 0.5 s apart when answered, 1 s apart when not, since each waits up to
 * 1 s for its reply). The spacing follows the script's expectation, not the measured outcome.
 */
export function labTraffic(r: LabRun): TrafficSpec[] {
  return r.pings.map((p) => ({
    from: p.from,
    to: p.to,
    at: [p.t],
    count: p.sent,
    interval: p.expect === "fail" ? 1 : 0.5,
    reply: true,
  }));
}

export interface Perturbation {
  /** Seconds added to both sites' `dpd_delay` in the prediction (to show that the comparison can fail). */
  dpdDelay?: number;
}

/** The simulator scenario of one lab run: its timers, its firewall's rules, its actions and probes. */
export function labScenario(
  r: LabRun,
  perturb: Perturbation = {},
): { scenario: Scenario; counters: Map<string, number> } {
  const rules = site2Firewall(r.firewall);
  const fw = rules ? iptablesFilter(rules) : null;
  const d = perturb.dpdDelay ?? 0;
  const timers: LabTimers = {
    ...r.timers,
    dpdDelay: { site1: r.timers.dpdDelay.site1 + d, site2: r.timers.dpdDelay.site2 + d },
  };
  const scenario = strongswanLabScenarioFrom({
    timers,
    site2Filter: fw?.filter ?? null,
    site2Iface: SITE2_IFACE,
    actions: labActions(r),
    traffic: labTraffic(r),
    duration: r.duration,
    initiator: "none",
    logLevel: "debug",
  });
  return { scenario, counters: fw?.counters ?? new Map() };
}

/**
 * A lab run as scripted, without the lab: the variant's actions and probes at their nominal times, polls at
 * whole seconds. For predicting a variant where the lab cannot run (the prediction's `checkVariant`).
 */
export function scriptedRun(variant: LabVariant, timers: LabTimers = DEFAULT_TIMERS): LabRun {
  const timeline: TimelineEntry[] = [];
  for (let t = 0; t <= variant.duration; t += timers.pollInterval)
    for (const site of SITES) timeline.push({ site, t, state: "down" });
  const other = (s: Site): Site => (s === "site1" ? "site2" : "site1");
  return {
    variant: variant.name,
    firewall: variant.firewall,
    timers,
    duration: variant.duration,
    timeline,
    actions: variant.actions.flatMap((a) =>
      a.do === "ping" ? [] : [{ t: a.t, site: a.site, do: a.do, exitCode: 0 }],
    ),
    pings: variant.actions.flatMap((a) =>
      a.do === "ping"
        ? [
            {
              t: a.t,
              scheduled: a.t,
              lastReply: null,
              from: a.site,
              to: other(a.site),
              sent: 3,
              received: 0,
              ...(a.expect ? { expect: a.expect } : {}),
            },
          ]
        : [],
    ),
    counters: {},
  };
}

// ---------------------------------------------------------------------------------------------
// Simulator result → lab timeline

/** Simulator event types → the lab's charon event names (`classifyLogLine`). */
function labEventOf(e: TimelineEvent): LabEventType | null {
  switch (e.type) {
    case "ike-initiate":
      return "initiate";
    case "ike-established":
      return "ike-established";
    case "child-installed":
      return "child-established";
    case "child-rekey":
      return "child-rekey";
    case "dpd-send":
      return "dpd-sent";
    case "ike-retransmit":
      return "retransmit";
    case "ike-giveup":
      return "give-up";
    case "ike-retry":
      return "retry";
    case "dpd-action":
      return e.action === "restart" ? "restart" : null;
    case "delete-send":
      return "spi" in e ? null : "delete-sent";
    case "delete-recv":
      return "spi" in e ? null : "delete-received";
    case "delete-failed":
      return "delete-failed";
    case "ike-deleted":
      return "ike-deleted";
    case "ike-ignored":
      return "ignored";
    case "ike-send":
      return "pkt-tx";
    case "ike-recv":
      return "pkt-rx";
    default:
      return null;
  }
}

const isSite = (g: string): g is Site => g === "site1" || g === "site2";

/** The site's state in the simulation at t (exact transitions; down before the first). */
function simStateAt(sim: SimResult, site: Site, t: number): TunnelState {
  let s: TunnelState = "down";
  for (const tr of sim.transitions) {
    if (tr.t > t) break;
    if (tr.gateway === site) s = tr.up ? "up" : "down";
  }
  return s;
}

/**
 * The prediction as a lab result: the simulator's state sampled at the lab run's own poll times, its events
 * under the charon log names, its pings (replies delivered back to the sender) and firewall counters.
 */
export function simAsLab(r: LabRun, sim: SimResult, counters: Map<string, number>): Checkable {
  const samples: TimelineEntry[] = r.timeline
    .filter((e) => e.event === undefined)
    .map((e) => ({ site: e.site, t: e.t, state: simStateAt(sim, e.site, e.t) }));
  const events: TimelineEntry[] = [];
  for (const e of sim.events) {
    if (!isSite(e.gateway)) continue;
    const ev = labEventOf(e);
    if (!ev) continue;
    events.push({
      site: e.gateway,
      t: e.t,
      state: simStateAt(sim, e.gateway, e.t),
      event: ev,
      detail: e.msg,
    });
  }
  // A ping's replies: ESP delivered back at the sender within the probe's 3 s.
  const pings = r.pings.map((p) => {
    const replies = sim.events
      .filter((e) => e.type === "esp-recv" && e.gateway === p.from && e.t >= p.t && e.t <= p.t + p.sent)
      .map((e) => e.t);
    return {
      t: p.t,
      from: p.from,
      sent: p.sent,
      received: Math.min(p.sent, replies.length),
      lastReply: replies.length > 0 ? Math.max(...replies) : null,
      ...(p.expect ? { expect: p.expect } : {}),
    };
  });
  return {
    variant: r.variant,
    timeline: [...samples, ...events].sort((a, b) => a.t - b.t || (a.event === undefined ? -1 : 1)),
    duration: r.duration,
    timers: r.timers,
    pings,
    ...(r.firewall === "none" ? {} : { counters: Object.fromEntries(counters) }),
    actions: r.actions.map((a) => ({ t: a.t, site: a.site, do: a.do })),
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison

/**
 * Tolerances, from the lab's measurement error (docs/lab.md):
 * - `event` ±1.5 s (`LAB_TOLERANCE.event`): charon's DPD check runs on whole seconds (a DPD leaves 24.1 to
 *   25.3 s after the last inbound packet for a 25 s `dpd_delay`; the model sends at exactly 25.0), plus up to
 *   0.3 s of `swanctl` start-up for scripted actions. Retransmission timers are exact to ~10 ms, so every
 *   event that follows a DPD or an action carries the same offset, not a growing one.
 * - `state` ±2.5 s: both timelines are sampled at the lab's own poll instants, so the polling lag is the
 *   same on both sides; an event shifted by up to 1.5 s moves its sampled change by up to one more poll
 *   (1 s).
 * - `duration` ±3 s: a difference of two sampled changes whose event offsets largely cancel (the lab's figure).
 * - `packets` ±2 per iptables counter, zero / non-zero exact: a retransmission or an echo within the event
 *   tolerance of the end of the run may be counted on one side only.
 */
export const SIM_TOLERANCE = {
  event: LAB_TOLERANCE.event,
  state: LAB_TOLERANCE.state,
  duration: 3,
  packets: 2,
} as const;

/** Events compared one by one (the i-th in the lab with the i-th in the prediction, per site). */
export const COMPARED_EVENTS: readonly LabEventType[] = [
  "initiate",
  "ike-established",
  "dpd-sent",
  "retransmit",
  "give-up",
  "retry",
  "restart",
  "delete-sent",
  "delete-received",
  "delete-failed",
];

export interface Row {
  variant: string;
  /** "site1", "site2" or "both". */
  site: string;
  what: string;
  lab: number | string | null;
  sim: number | string | null;
  /** sim − lab, seconds (times only). */
  delta: number | null;
  tol: number | null;
  ok: boolean;
  note?: string;
}

export interface Comparison {
  variant: string;
  rows: Row[];
  /** `checkVariant` on the prediction (empty: the prediction shows the variant's sequence). */
  simChecks: string[];
  /** Rows that disagree, plus the prediction's failed checks. */
  problems: string[];
  lab: Checkable;
  sim: Checkable;
  simResult: SimResult;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Down gaps shorter than `MIN_ASYMMETRY` merged away: a restart between two polls is not a state. */
function upIntervals(tl: TimelineEntry[], site: Site): Interval[] {
  const out: Interval[] = [];
  for (const iv of intervals(tl, site, "up")) {
    const last = out[out.length - 1];
    if (last && last.end !== null && iv.start - last.end < MIN_ASYMMETRY) last.end = iv.end;
    else out.push({ ...iv });
  }
  return out;
}

const times = (tl: TimelineEntry[], site: Site, type: LabEventType) =>
  tl.filter((e) => e.site === site && e.event === type).map((e) => e.t);

/** Compares one lab run with the simulator's prediction of it. */
export function compareRun(r: LabRun, perturb: Perturbation = {}): Comparison {
  const { scenario, counters } = labScenario(r, perturb);
  const simResult = simulate(scenario);
  const sim = simAsLab(r, simResult, counters);
  const lab: Checkable = {
    variant: r.variant,
    timeline: r.timeline,
    duration: r.duration,
    timers: r.timers,
    pings: r.pings,
    counters: r.counters,
    actions: r.actions,
  };
  const rows: Row[] = [];
  const v = r.variant;
  const time = (
    site: string,
    what: string,
    a: number | null,
    b: number | null,
    tol: number,
    note?: string,
  ) => {
    const both = a !== null && b !== null;
    const delta = both ? round2(b - a) : null;
    rows.push({
      variant: v,
      site,
      what,
      lab: a,
      sim: b === null ? null : round2(b),
      delta,
      tol,
      ok: both ? Math.abs(b - a) <= tol + 1e-9 : a === b,
      ...(note ? { note } : {}),
    });
  };
  const fact = (site: string, what: string, a: string, b: string) =>
    rows.push({ variant: v, site, what, lab: a, sim: b, delta: null, tol: null, ok: a === b });

  // 1. Sampled state: each site's up intervals (never-up included), then the asymmetric windows.
  for (const s of SITES) {
    const L = upIntervals(lab.timeline, s);
    const S = upIntervals(sim.timeline, s);
    fact(s, "up intervals (sampled)", String(L.length), String(S.length));
    for (let i = 0; i < Math.max(L.length, S.length); i++) {
      const a = L[i];
      const b = S[i];
      time(s, `up #${i + 1} from`, a?.start ?? null, b?.start ?? null, SIM_TOLERANCE.state);
      if (a?.end === null && b?.end === null) fact(s, `up #${i + 1} until`, "end", "end");
      else time(s, `up #${i + 1} until`, a?.end ?? null, b?.end ?? null, SIM_TOLERANCE.state);
    }
  }
  const asymL = asymmetries(lab.timeline, MIN_ASYMMETRY);
  const asymS = asymmetries(sim.timeline, MIN_ASYMMETRY);
  const kind = (a: Asymmetry[]) => a.map((x) => `${x.up} up/${x.down} down`).join(", ") || "none";
  fact("both", "asymmetric windows", kind(asymL), kind(asymS));
  for (let i = 0; i < Math.min(asymL.length, asymS.length); i++) {
    const a = asymL[i] as Asymmetry;
    const b = asymS[i] as Asymmetry;
    time("both", `asymmetry #${i + 1} from`, a.start, b.start, SIM_TOLERANCE.state);
    if (a.end === null || b.end === null)
      fact(
        "both",
        `asymmetry #${i + 1} until`,
        a.end === null ? "end" : String(a.end),
        b.end === null ? "end" : String(b.end),
      );
    else {
      time("both", `asymmetry #${i + 1} until`, a.end, b.end, SIM_TOLERANCE.state);
      time("both", `asymmetry #${i + 1} length`, a.end - a.start, b.end - b.start, SIM_TOLERANCE.duration);
    }
  }
  const mL = measure(lab);
  const mS = measure(sim);
  if (mL.recovery !== null || mS.recovery !== null)
    time("both", "recovery (both up again)", mL.recovery, mS.recovery, SIM_TOLERANCE.state);

  // 2. Log events, i-th with i-th. An event only one side has is a mismatch unless it lies within the event
  //    tolerance of the end of the recording (the other side's may have fallen just past it).
  for (const s of SITES) {
    for (const type of COMPARED_EVENTS) {
      const L = times(lab.timeline, s, type);
      const S = times(sim.timeline, s, type);
      for (let i = 0; i < Math.max(L.length, S.length); i++) {
        const a = L[i] ?? null;
        const b = S[i] ?? null;
        const near = (a ?? b ?? 0) > r.duration - SIM_TOLERANCE.event;
        if ((a === null || b === null) && near) {
          time(s, `${type} #${i + 1}`, a, b, SIM_TOLERANCE.event, "at the end of the run: not counted");
          const row = rows[rows.length - 1] as Row;
          row.ok = true;
        } else time(s, `${type} #${i + 1}`, a, b, SIM_TOLERANCE.event);
      }
    }
  }

  // 3. Probes: each ping's outcome.
  for (const [i, p] of lab.pings?.entries() ?? []) {
    const q = sim.pings?.[i];
    const show = (x: { received: number; sent: number } | undefined) => (x ? `${x.received}/${x.sent}` : "-");
    fact(p.from, `ping @${Math.round(p.t)} replies`, show(p), show(q));
  }

  // 4. site2's iptables counters (packets per rule comment). `tun` (decrypted payload on ipsec0) is not
  //    filtered in the model. Zero / non-zero must agree; counts within ±2 packets (a retransmission or an
  //    echo within the event tolerance of the end of the run can fall on either side of it).
  if (r.firewall !== "none") {
    const names = new Set([...Object.keys(r.counters), ...Object.keys(sim.counters ?? {})]);
    names.delete("tun");
    for (const name of [...names].sort()) {
      const a = r.counters[name] ?? 0;
      const b = sim.counters?.[name] ?? 0;
      rows.push({
        variant: v,
        site: "site2",
        what: `iptables ${name} (packets)`,
        lab: a,
        sim: b,
        delta: b - a,
        tol: SIM_TOLERANCE.packets,
        ok: a > 0 === b > 0 && Math.abs(b - a) <= SIM_TOLERANCE.packets,
      });
    }
  }

  const simChecks = checkVariant(sim);
  const problems = [
    ...rows
      .filter((x) => !x.ok)
      .map((x) => {
        const count = x.what.startsWith("iptables");
        return `${x.site} ${x.what}: lab ${cell(x.lab, count)}, sim ${cell(x.sim, count)}`;
      }),
    ...simChecks.map((c) => `checkVariant(prediction): ${c}`),
  ];
  return { variant: v, rows, simChecks, problems, lab, sim, simResult };
}

// ---------------------------------------------------------------------------------------------
// Table

const cell = (x: number | string | null, count: boolean) =>
  x === null ? "–" : typeof x === "number" ? (count ? String(x) : x.toFixed(2)) : x;

/**
 * Rows left out of the "key" table when they agree: retransmissions (one timer, see `retransmitSummary`), the
 * `retry` / `restart` lines logged with the give-up they follow, the `initiate` logged with them, and the
 * zero counters.
 */
const KEY_SKIP = /^(retransmit|retry|restart|initiate) #|^iptables (lo|ssh|drop_other|drop_esp50) /;

/** A markdown table: event, lab t, sim t, Δ, tolerance. `onlyFailed` for the failure message. */
export function comparisonTable(
  cs: Comparison[],
  opts: { onlyFailed?: boolean; events?: "key" | "all" } = {},
): string {
  const out = [
    "| variant | site | what | lab | sim | Δ (s) | tol (s) | ok |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const c of cs) {
    for (const x of c.rows) {
      if (opts.onlyFailed && x.ok) continue;
      if (opts.events === "key" && x.ok && KEY_SKIP.test(x.what)) continue;
      const count = x.what.startsWith("iptables");
      const delta =
        x.delta === null ? "" : `${x.delta > 0 ? "+" : ""}${count ? x.delta : x.delta.toFixed(2)}`;
      const ok = x.ok ? (x.note ? `ok (${x.note})` : "ok") : "**NO**";
      out.push(
        `| ${c.variant} | ${x.site} | ${x.what} | ${cell(x.lab, count)} | ${cell(x.sim, count)} | ${delta} | ${x.tol === null ? "" : `±${x.tol}`} | ${ok} |`,
      );
    }
  }
  return out.join("\n");
}

/** The retransmission rows of a comparison in one line (they all follow the same timer). */
export function retransmitSummary(c: Comparison): string {
  const rx = c.rows.filter((x) => /^retransmit #/.test(x.what));
  if (rx.length === 0) return "no retransmissions";
  const worst = Math.max(...rx.map((x) => Math.abs(x.delta ?? 0)));
  return `${rx.length} retransmissions, largest |Δ| ${worst.toFixed(2)} s${rx.every((x) => x.ok) ? "" : " (some disagree)"}`;
}
