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

export async function runSimulateCommand(o: SimulateFlags, io: Io): Promise<number> {
  if (!o.topology)
    throw new UsageError(
      "give the tunnels to simulate: --topology FILE (gateways, tunnels and an optional simulate: section)",
    );
  let built: ReturnType<typeof scenarioFromConfigs>;
  try {
    const { request, topology } = await fromTopology(o.topology, io);
    const sim = topology.simulate ?? {};
    const duration = seconds(o.duration ?? sim.duration ?? "2h", "--duration");
    const traffic: TrafficSpec[] = (sim.traffic ?? []).map((t) => ({
      from: t.from,
      to: t.to,
      every: seconds(t.every, "traffic.every"),
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
  const r = simulate(built.scenario);
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
