import { GatewayInputError } from "../analysis/gateway.js";
import { SimulateInputError, scenarioFromConfigs } from "../sim/from-configs.js";
import { renderJson, renderMarkdown, renderSvg, renderText, simulate } from "../sim/index.js";
import type { TrafficSpec } from "../sim/scenario.js";
import { parseDuration } from "../topology/duration.js";
import { TopologyError } from "../topology/load.js";
import { fromTopology, loaders } from "./audit.js";
import { EXIT, type Io, UsageError } from "./io.js";

export interface SimulateFlags {
  topology?: string;
  duration?: string;
  initiator?: string;
  seed?: string;
  level: "state" | "info" | "debug";
  format: "text" | "json" | "svg" | "md";
  failOn: "anomaly" | "none";
}

const seconds = (v: string | number, what: string): number => {
  const s = parseDuration(v);
  if (s === null) throw new UsageError(`invalid ${what} '${v}': expected a duration like 90s, 30m, 2h, 7d`);
  return s;
};

/**
 * Longest simulated time: 90 days hold dozens of every IKE lifetime cycle (FortiOS keylife is at
 * most 2 days); a typo (`100000d`) would otherwise run for hours instead of failing.
 */
const MAX_DURATION = 90 * 86400;

/** A length of time that must be more than zero (a zero duration or period is a typo, not a result). */
const positive = (v: string | number, what: string, max = Number.POSITIVE_INFINITY): number => {
  const s = seconds(v, what);
  if (!(s > 0)) throw new UsageError(`invalid ${what} '${v}': must be more than zero`);
  if (s > max) throw new UsageError(`invalid ${what} '${v}': at most ${max / 86400}d`);
  return s;
};

export async function runSimulateCommand(o: SimulateFlags, io: Io): Promise<number> {
  if (!o.topology)
    throw new UsageError(
      "give the tunnels to simulate: --topology FILE (gateways, tunnels and an optional simulate: section)",
    );
  let built: ReturnType<typeof scenarioFromConfigs>;
  try {
    const { request, topology } = await fromTopology(o.topology, io);
    const sim = topology.simulate ?? {};
    const duration = positive(
      o.duration ?? sim.duration ?? "2h",
      o.duration !== undefined ? "--duration" : "simulate.duration",
      MAX_DURATION,
    );
    const traffic: TrafficSpec[] = (sim.traffic ?? []).map((t) => ({
      from: t.from,
      to: t.to,
      every: positive(t.every, "traffic.every"),
      ...(t.start !== undefined ? { start: seconds(t.start, "traffic.start") } : {}),
      ...(t.stop !== undefined ? { end: seconds(t.stop, "traffic.stop") } : {}),
    }));
    const seed = o.seed ?? sim.seed;
    if (seed !== undefined && !/^\d+$/.test(String(seed)))
      throw new UsageError(`invalid --seed '${seed}': expected a whole number`);
    built = scenarioFromConfigs(request, loaders(), {
      duration,
      ...((o.initiator ?? sim.initiator) ? { initiator: (o.initiator ?? sim.initiator)! } : {}),
      ...(seed !== undefined ? { seed: Number(seed) } : {}),
      traffic,
      ...(sim.overrides ? { overrides: sim.overrides } : {}),
    });
  } catch (e) {
    if (e instanceof TopologyError || e instanceof GatewayInputError || e instanceof SimulateInputError)
      throw new UsageError(e.message);
    throw e;
  }
  let r: ReturnType<typeof simulate>;
  try {
    r = simulate(built.scenario);
  } catch (e) {
    // A gateway's rules that cannot answer the run's packets (another address family): input error.
    if (e instanceof GatewayInputError) throw new UsageError(e.message);
    throw e;
  }
  const out =
    o.format === "json"
      ? renderJson(r, { level: o.level, notes: built.notes })
      : o.format === "svg"
        ? renderSvg(r)
        : o.format === "md"
          ? renderMarkdown(r, { level: o.level })
          : renderText(r, { level: o.level });
  io.stdout.write(out.endsWith("\n") ? out : `${out}\n`);
  if (o.format === "text") for (const n of built.notes) io.stdout.write(`note: ${n}\n`);
  return o.failOn === "anomaly" && r.anomalies.length > 0 ? EXIT.findings : EXIT.ok;
}
