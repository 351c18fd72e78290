/**
 * In-process benchmark of the iptables parser on the kube-proxy-like ruleset (issue 3).
 *
 *   npx tsx bench/iptables-parse.ts [--rules 100000] [--file big.rules] [--runs 5]
 *          [--dump out.json]   (canonical model + diagnostics, to compare two versions)
 *
 * Generates bench/out/big-<N>.rules with ../shared/bench/gen-kube-like-iptables.py unless
 * --file is given. Prints the first (cold: JIT not warm, as in the CLI) parse time, the median
 * of the warm runs, and the heap the parsed model keeps.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { parseIptables } from "../src/platforms/iptables/parse.js";

const { values: o } = parseArgs({
  options: {
    rules: { type: "string", default: "100000" },
    file: { type: "string" },
    runs: { type: "string", default: "5" },
    dump: { type: "string" },
  },
});

let file = o.file;
if (!file) {
  mkdirSync("bench/out", { recursive: true });
  file = `bench/out/big-${o.rules}.rules`;
  if (!existsSync(file)) {
    const text = execFileSync("python3", ["../shared/bench/gen-kube-like-iptables.py", o.rules!, "1"], {
      maxBuffer: 1 << 30,
    });
    writeFileSync(file, text);
  }
}
const text = readFileSync(file, "utf8");
const lines = text.split("\n").length;

/** Canonical JSON of a parse result: Maps as entry lists, bigints as strings. */
export function canonical(r: ReturnType<typeof parseIptables>): string {
  return JSON.stringify(r, (_k, v) =>
    v instanceof Map ? [...v.entries()] : typeof v === "bigint" ? `${v}n` : v,
  );
}

const gc = (globalThis as { gc?: () => void }).gc;
const heap = () => process.memoryUsage().heapUsed;
const ms = (t: bigint) => Number(t) / 1e6;
const cpu = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e3;

const h0 = heap();
let t = process.hrtime.bigint();
let c = process.cpuUsage();
let keep = parseIptables(text, { file });
const cold = ms(process.hrtime.bigint() - t);
const coldCpu = cpu(process.cpuUsage(c));
gc?.();
const kept = heap() - h0;
if (keep.errors.length > 0) throw new Error(`parse errors: ${keep.errors[0]!.message}`);
if (o.dump) writeFileSync(o.dump, canonical(keep));

const warm: number[] = [];
const warmCpu: number[] = [];
for (let i = 0; i < Number(o.runs); i++) {
  t = process.hrtime.bigint();
  c = process.cpuUsage();
  keep = parseIptables(text, { file });
  warm.push(ms(process.hrtime.bigint() - t));
  warmCpu.push(cpu(process.cpuUsage(c)));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(0);
let rules = 0;
for (const tb of keep.ruleset.tables.values()) for (const c of tb.chains.values()) rules += c.rules.length;
console.log(
  `${file}: ${lines} lines, ${rules} rules; parse cold ${cold.toFixed(0)} ms wall / ${coldCpu.toFixed(0)} ms CPU, ` +
    `warm median ${med(warm)} ms wall / ${med(warmCpu)} ms CPU` +
    `${gc ? `, model heap ${(kept / 2 ** 20).toFixed(0)} MB` : ""} (load ${loadavg()[0]!.toFixed(2)})`,
);
