/**
 * Simulator benchmark: N tunnels over D virtual days with hourly CHILD SA rekeys and DPD.
 *
 *   npx tsx bench/sim.ts [--tunnels 10000] [--days 30] [--mix fortios|mixed] [--workers N] [--seed 1]
 *
 * or, without npx and tsx (≈ 0.7 s less startup): `npm run -s bench:sim -- --tunnels 10000 --days 30`
 * bundles this file with esbuild into bench/out/sim.mjs and runs it under plain node (the workers
 * then load the same bundle).
 *
 * Each tunnel is its own pair of gateways, each gateway with its own stateful firewall.
 * - fortios (default): FortiOS ⇄ FortiOS, IKEv2, phase2 keylifeseconds 3600 (hourly rekey),
 *   keylife 86400 (daily IKE rekey), DPD on-demand (the default): a one-way burst of 3 packets
 *   every hour makes it probe once an hour.
 * - mixed: half of the tunnels strongSwan ⇄ strongSwan instead: CHILD rekey_time 1 h, IKE 4 h,
 *   dpd_delay 30 s, dpd_action restart, an hourly request/response burst. Idle strongSwan DPD
 *   every 30 s costs ~60× the events of the FortiOS tunnels (see docs/simulator.md).
 * - 1 % of the tunnels carry seed 001's misconfiguration (the responder accepts IKE only through
 *   an existing session), so failures, re-initiations and anomalies are part of the load.
 *
 * Tunnels are independent (each connection has its own random stream), so they are split across
 * worker threads; the results do not depend on the number of workers. Event recording is off;
 * anomalies are still detected, and within a worker `simulate()` runs the independent tunnels one
 * group at a time (same results, see docs/simulator.md §Performance). Prints the plain path's event
 * count (`simulatedEvents`), the events the engine popped from its queue (`engineEvents`: fewer,
 * packet trains that nothing can interrupt are applied in one event, and an arrival that is the
 * next event runs right after the current one), wall and CPU time; for whole-process figures run it
 * under `/usr/bin/time -v`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { ActionSpec, GatewaySpec, Scenario, TrafficSpec, TunnelSpec } from "../src/sim/index.js";

/**
 * The simulator, loaded only where it runs (the workers, or the main thread with one worker): the
 * main thread of a multi-worker run under tsx does not compile it.
 */
type Sim = typeof import("../src/sim/index.js");

interface Shard {
  tunnels: number;
  days: number;
  seed: number;
  mix: "fortios" | "mixed";
  worker: number;
  workers: number;
}

interface ShardResult {
  engineEvents: number;
  simulatedEvents: number;
  simulateMs: number;
  anomalies: Record<string, number>;
  tunnels: number;
  tunnelsUpAtEnd: number;
}

function scenarioFor(s: Shard, { acceptAll, establishedOnly }: Sim): Scenario {
  const gateways: GatewaySpec[] = [];
  const tunnels: TunnelSpec[] = [];
  const traffic: TrafficSpec[] = [];
  const actions: ActionSpec[] = [];
  const ip = (i: number, side: number): string => `10.${(i >> 8) & 255}.${i & 255}.${side}`;
  // A contiguous range per worker: the mixed bench alternates vendors, so taking every n-th tunnel
  // gave one worker all the strongSwan tunnels (≈ 60× the events) and left the other idle.
  const lo = Math.floor((s.tunnels * s.worker) / s.workers);
  const hi = Math.floor((s.tunnels * (s.worker + 1)) / s.workers);
  for (let i = lo; i < hi; i++) {
    const strongswan = s.mix === "mixed" && i % 2 === 1;
    const broken = i % 100 === 37;
    const a = `a${i}`;
    const b = `b${i}`;
    const name = `t${i}`;
    // Spread start times: tunnels come up within the first minute, bursts spread over the hour.
    const start = 600 + (i % 3600);
    if (!strongswan) {
      const o = { keylifeseconds: 3600, keylife: 86400 };
      gateways.push({
        name: a,
        address: ip(i, 1),
        vendor: "fortios",
        ikeVersion: 2,
        overrides: o,
        firewall: { filter: acceptAll() },
      });
      gateways.push({
        name: b,
        address: ip(i, 2),
        vendor: "fortios",
        ikeVersion: 2,
        overrides: o,
        firewall: { filter: broken ? establishedOnly() : acceptAll() },
      });
      traffic.push({ from: a, to: b, tunnel: name, burst: { every: 3600, count: 3 }, start });
    } else {
      const o = {
        childRekeyTime: 3600,
        ikeRekeyTime: 4 * 3600,
        dpdDelay: 30,
        dpdAction: "restart" as const,
        keyingTries: 0,
      };
      gateways.push({
        name: a,
        address: ip(i, 1),
        vendor: "strongswan",
        overrides: o,
        firewall: { filter: acceptAll() },
      });
      gateways.push({
        name: b,
        address: ip(i, 2),
        vendor: "strongswan",
        overrides: o,
        firewall: { filter: broken ? establishedOnly() : acceptAll() },
      });
      traffic.push({ from: a, to: b, tunnel: name, burst: { every: 3600, count: 3 }, start, reply: true });
    }
    tunnels.push({ name, a, b });
    // By the global tunnel index, so a tunnel's schedule does not depend on the sharding.
    actions.push({ at: (i % 600) / 10, gateway: b, action: "initiate", tunnel: name });
  }
  return {
    gateways,
    tunnels,
    initiator: "none",
    // Side b brings each tunnel up within the first minute (as after a power cut).
    actions,
    traffic,
    duration: s.days * 86400,
    seed: s.seed,
    logLevel: "none",
  };
}

async function runShard(s: Shard): Promise<ShardResult> {
  const sim: Sim = await import("../src/sim/index.js");
  const sc = scenarioFor(s, sim);
  const t0 = performance.now();
  const r = sim.simulate(sc);
  const simulateMs = performance.now() - t0;
  const anomalies: Record<string, number> = {};
  for (const a of r.anomalies) anomalies[a.type] = (anomalies[a.type] ?? 0) + 1;
  return {
    engineEvents: r.stats.engineEvents,
    simulatedEvents: r.stats.simulatedEvents,
    simulateMs,
    anomalies,
    tunnels: r.tunnels.length,
    tunnelsUpAtEnd: r.tunnels.filter((t) => Object.values(t.final).every((x) => x === "up")).length,
  };
}

/**
 * What the workers run. Loading TypeScript through tsx costs each worker ≈ 1 s (a loader thread,
 * every module compiled); one esbuild bundle of this file, built once, loads in ≈ 50 ms. Run as
 * plain JS (e.g. bundled), the workers load this very file.
 */
async function workerEntry(): Promise<{ code: string | URL; eval: boolean }> {
  const self = import.meta.url;
  if (!self.endsWith(".ts")) return { code: new URL(self), eval: false };
  try {
    const { build } = await import("esbuild");
    const dir = mkdtempSync(join(tmpdir(), "tunnelcheck-bench-"));
    const out = join(dir, "sim.mjs");
    await build({
      entryPoints: [fileURLToPath(self)],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: out,
      logLevel: "warning",
      // Only the main thread builds; the workers need not parse esbuild's API.
      external: ["esbuild"],
    });
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return { code: pathToFileURL(out), eval: false };
  } catch {
    // No esbuild: the workers load this TypeScript file through tsx's loader.
    return {
      code: `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(self)}); });`,
      eval: true,
    };
  }
}

if (!isMainThread) {
  parentPort!.postMessage(await runShard(workerData as Shard));
} else {
  const { values } = parseArgs({
    options: {
      tunnels: { type: "string", default: "10000" },
      days: { type: "string", default: "30" },
      seed: { type: "string", default: "1" },
      mix: { type: "string", default: "fortios" },
      workers: { type: "string", default: String(availableParallelism()) },
    },
  });
  const base = {
    tunnels: Number(values.tunnels),
    days: Number(values.days),
    seed: Number(values.seed),
    mix: values.mix === "mixed" ? ("mixed" as const) : ("fortios" as const),
  };
  const workers = Math.max(1, Math.min(Number(values.workers), base.tunnels));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const entry = workers > 1 ? await workerEntry() : null;
  const results: ShardResult[] =
    entry === null
      ? [await runShard({ ...base, worker: 0, workers: 1 })]
      : await Promise.all(
          Array.from(
            { length: workers },
            (_, w) =>
              new Promise<ShardResult>((resolve, reject) => {
                // A larger young generation: most objects (packets, messages) die young.
                const wk = new Worker(entry.code, {
                  eval: entry.eval,
                  workerData: { ...base, worker: w, workers },
                  resourceLimits: { maxYoungGenerationSizeMb: 64 },
                });
                wk.once("message", resolve);
                wk.once("error", reject);
              }),
          ),
        );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const anomalies: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.anomalies)) anomalies[k] = (anomalies[k] ?? 0) + v;
  const events = results.reduce((a, r) => a + r.engineEvents, 0);
  const simulated = results.reduce((a, r) => a + r.simulatedEvents, 0);
  console.log(
    JSON.stringify(
      {
        tunnels: base.tunnels,
        virtualDays: base.days,
        mix: base.mix,
        workers,
        // Events of the plain path (every send, arrival, timer) and those the engine popped (packet
        // trains that nothing can interrupt are applied in one event; arrivals that are next skip
        // the queue).
        simulatedEvents: simulated,
        engineEvents: events,
        eventsPerTunnelHour: Math.round((simulated / base.tunnels / base.days / 24) * 10) / 10,
        engineEventsPerTunnelHour: Math.round((events / base.tunnels / base.days / 24) * 10) / 10,
        simulateWallMs: Math.round(wall),
        // Each worker's own simulate() time: their balance bounds the wall time.
        workerSimulateMs: results.map((r) => Math.round(r.simulateMs)),
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
        nsPerSimulatedEventCpu: Math.round(((cpu.user + cpu.system) * 1000) / simulated),
        wholeProcessMs: Math.round(performance.now()),
        loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
        anomalies,
        tunnelsUpAtEnd: results.reduce((a, r) => a + r.tunnelsUpAtEnd, 0),
      },
      null,
      2,
    ),
  );
}
