/**
 * FortiOS engine benchmark (issue 4): a generated full-configuration backup with 10,000 firewall
 * policies, 20,000 addresses, 2,000 address groups and a local-in table, then parse + model + one
 * symbolic local-in query over every source address (`--src any`).
 *
 *   npx tsx bench/fortios.ts [--policies 10000] [--addresses 20000] [--groups 2000] [--localin 500]
 *
 * Budget: under one second of whole-process time, peak memory under 500 MB. `dist/` (the built
 * CLI) is not measured here: this runs in-process and reports each phase, the in-process total,
 * the process's own uptime (which includes tsx's start-up and TypeScript transpilation), and the
 * peak RSS as the kernel counts it (`process.resourceUsage().maxRSS`) next to the largest
 * `process.memoryUsage().rss` seen at the phase boundaries.
 */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { AddrSet } from "../src/model/addrset.js";
import { fortiosEvaluator } from "../src/platforms/fortios/evaluator.js";
import { buildModel } from "../src/platforms/fortios/model.js";
import { parseFortios } from "../src/platforms/fortios/parse.js";

const { values } = parseArgs({
  options: {
    policies: { type: "string", default: "10000" },
    addresses: { type: "string", default: "20000" },
    groups: { type: "string", default: "2000" },
    localin: { type: "string", default: "500" },
    json: { type: "boolean", default: false },
    /** Also write the generated config here, for whole-process runs of the built CLI. */
    write: { type: "string" },
  },
});
const N_POL = Number(values.policies);
const N_ADDR = Number(values.addresses);
const N_GRP = Number(values.groups);
const N_LOCAL = Number(values.localin);

let peakRss = 0;
const sample = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

/** The backup a large FortiGate writes: interfaces, objects, services, policies, local-in, VPN. */
function generate(): string {
  const out: string[] = [
    "#config-version=FGVM64-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin",
    "#conf_file_ver=1",
    "#buildno=1517",
    "#global_vdom=1",
    "config system global",
    '    set hostname "bench-fgt"',
    "end",
    "config system interface",
  ];
  for (let i = 1; i <= 8; i++) {
    out.push(
      `    edit "port${i}"`,
      '        set vdom "root"',
      `        set ip 192.0.${i}.1 255.255.255.0`,
      "        set allowaccess ping https ssh",
      "    next",
    );
  }
  out.push("end", "config firewall address", '    edit "all"', "    next");
  for (let i = 0; i < N_ADDR; i++) {
    const b = (i >> 8) & 255;
    const c = i & 255;
    if (i % 10 === 9) {
      out.push(
        `    edit "r${i}"`,
        "        set type iprange",
        `        set start-ip 172.${16 + (b & 15)}.${c}.10`,
        `        set end-ip 172.${16 + (b & 15)}.${c}.99`,
        "    next",
      );
    } else if (i % 1000 === 500) {
      out.push(
        `    edit "h${i}"`,
        "        set type fqdn",
        `        set fqdn "host${i}.example.com"`,
        "    next",
      );
    } else {
      out.push(`    edit "h${i}"`, `        set subnet 10.${b}.${c}.0 255.255.255.0`, "    next");
    }
  }
  const addrName = (i: number): string => (i % 10 === 9 ? `r${i}` : `h${i}`);
  out.push("end", "config firewall addrgrp");
  for (let g = 0; g < N_GRP; g++) {
    const members = Array.from({ length: 10 }, (_, k) => `"${addrName((g * 10 + k) % N_ADDR)}"`);
    // Every 10th group nests the previous one; every 25th excludes one of its members' subnets.
    if (g % 10 === 0 && g > 0) members.push(`"g${g - 1}"`);
    out.push(`    edit "g${g}"`, `        set member ${members.join(" ")}`);
    if (g % 25 === 0)
      out.push("        set exclude enable", `        set exclude-member "${addrName(g * 10 + 3)}"`);
    out.push("    next");
  }
  out.push(
    "end",
    "config firewall service custom",
    '    edit "ALL"',
    "        set protocol IP",
    "    next",
    '    edit "HTTPS"',
    "        set tcp-portrange 443",
    "    next",
    '    edit "SSH"',
    "        set tcp-portrange 22",
    "    next",
    '    edit "IKE"',
    "        set udp-portrange 500 4500",
    "    next",
    "end",
    "config vpn ipsec phase1-interface",
    '    edit "hq"',
    '        set interface "port1"',
    "        set remote-gw 198.51.100.7",
    "        set psksecret ENC c2VjcmV0c2VjcmV0c2VjcmV0",
    "    next",
    "end",
    "config firewall policy",
  );
  for (let i = 1; i <= N_POL; i++) {
    out.push(
      `    edit ${i}`,
      `        set name "p${i}"`,
      '        set srcintf "port2"',
      '        set dstintf "port1"',
      "        set action accept",
      `        set srcaddr "g${i % N_GRP}" "${addrName(i % N_ADDR)}"`,
      '        set dstaddr "all"',
      '        set schedule "always"',
      '        set service "HTTPS" "SSH"',
      "        set nat enable",
      "    next",
    );
  }
  out.push("end", "config firewall local-in-policy");
  // Local-in: accept IKE from groups of peers on port1, HTTPS from others, then deny everything.
  for (let i = 1; i < N_LOCAL; i++) {
    out.push(
      `    edit ${i}`,
      `        set intf "${i % 7 === 0 ? "any" : `port${1 + (i % 4)}`}"`,
      `        set srcaddr "g${(i * 7) % N_GRP}" "${addrName((i * 13) % N_ADDR)}"`,
      '        set dstaddr "all"',
      "        set action accept",
      `        set service "${i % 3 === 0 ? "HTTPS" : "IKE"}"`,
      '        set schedule "always"',
      ...(i % 11 === 0 ? ["        set srcaddr-negate enable", "        set action deny"] : []),
      "    next",
    );
  }
  out.push(
    `    edit ${N_LOCAL}`,
    '        set intf "any"',
    '        set srcaddr "all"',
    '        set dstaddr "all"',
    '        set service "ALL"',
    '        set schedule "always"',
    "    next",
    "end",
    "",
  );
  return out.join("\n");
}

/** CPU time (user + system) of this process so far, ms: robust against other load on the machine. */
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const text = generate();
if (values.write) writeFileSync(values.write, text);
const tGen = performance.now();
const cGen = cpu();
sample();
const parsed = parseFortios(text, { file: "bench.conf" });
const tParse = performance.now();
const cParse = cpu();
sample();
const model = buildModel(parsed.tree);
const tModel = performance.now();
const cModel = cpu();
sample();
const ev = fortiosEvaluator(model);
const parts = ev.partition({
  family: 4,
  proto: 17,
  dport: 500,
  sources: AddrSet.all(4),
  iif: "port1",
  state: "new",
  ipsec: false,
});
const tQuery = performance.now();
const cQuery = cpu();
sample();
// The same query as established (session bypass for the phase1 peer, new for the rest).
const est = ev.partition({
  family: 4,
  proto: 17,
  dport: 500,
  sources: AddrSet.all(4),
  iif: "port1",
  state: "established",
  ipsec: false,
});
const tEst = performance.now();
sample();
// What a trace never builds: the forward policy table, the address objects and groups no local-in
// policy names, and the reference checks (an audit or a consumer reading `diagnostics` pays this once).
const cRest0 = cpu();
const nDiagnostics = model.diagnostics.length;
const nPolicies = model.vdoms.get("root")!.policies.length;
const tRest = performance.now();
const cRest = cpu();
sample();

const v = model.vdoms.get("root")!;
const verdicts = new Map<string, number>();
for (const p of parts) verdicts.set(p.verdict, (verdicts.get(p.verdict) ?? 0) + 1);
const maxRssKernel = process.resourceUsage().maxRSS * 1024;
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
const ms = (n: number): string => `${n.toFixed(0)} ms`;
const result = {
  input: {
    bytes: text.length,
    lines: text.split("\n").length,
    policies: nPolicies,
    addresses: v.addresses.size,
    groups: v.addrgrps.size,
    localIn: v.localIn.length,
    parseErrors: parsed.errorCount,
    diagnostics: nDiagnostics,
  },
  ms: {
    generate: Math.round(tGen - t0),
    parse: Math.round(tParse - tGen),
    model: Math.round(tModel - tParse),
    symbolicQuery: Math.round(tQuery - tModel),
    parseModelQuery: Math.round(tQuery - tGen),
    establishedQuery: Math.round(tEst - tQuery),
    restOfModel: Math.round(tRest - tEst),
    processUptime: Math.round(process.uptime() * 1000),
  },
  cpuMs: {
    parse: Math.round(cParse - cGen),
    model: Math.round(cModel - cParse),
    symbolicQuery: Math.round(cQuery - cModel),
    parseModelQuery: Math.round(cQuery - cGen),
    restOfModel: Math.round(cRest - cRest0),
    process: Math.round(cpu()),
  },
  loadAverage: loadavg()[0] ?? 0,
  memory: { peakRssKernel: maxRssKernel, peakRssSampled: peakRss },
  query: { parts: parts.length, verdicts: Object.fromEntries(verdicts), establishedParts: est.length },
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  const r = result;
  console.log(
    [
      `input: ${r.input.lines} lines (${mb(r.input.bytes)}): ${r.input.policies} policies, ${r.input.addresses} addresses, ${r.input.groups} groups, ${r.input.localIn} local-in policies; ${r.input.parseErrors} parse errors, ${r.input.diagnostics} model diagnostics`,
      `                           wall     cpu   (1-min load average ${r.loadAverage.toFixed(1)})`,
      `parse                      ${ms(r.ms.parse).padStart(7)}  ${ms(r.cpuMs.parse).padStart(7)}`,
      `model                      ${ms(r.ms.model).padStart(7)}  ${ms(r.cpuMs.model).padStart(7)}  (interfaces, services, local-in, VPN; addresses and groups only indexed)`,
      `symbolic local-in query    ${ms(r.ms.symbolicQuery).padStart(7)}  ${ms(r.cpuMs.symbolicQuery).padStart(7)}  (UDP 500 on port1 from any: ${r.query.parts} parts ${JSON.stringify(r.query.verdicts)}; builds the objects its policies name)`,
      `parse + model + query      ${ms(r.ms.parseModelQuery).padStart(7)}  ${ms(r.cpuMs.parseModelQuery).padStart(7)}`,
      `same query, established    ${ms(r.ms.establishedQuery).padStart(7)}           (${r.query.establishedParts} parts)`,
      `rest of the model          ${ms(r.ms.restOfModel).padStart(7)}  ${ms(r.cpuMs.restOfModel).padStart(7)}  (forward policies, the other addresses and groups, reference checks: never built by a trace)`,
      `whole process              ${ms(r.ms.processUptime).padStart(7)}  ${ms(r.cpuMs.process).padStart(7)}  (includes start-up — tsx transpiles when run with tsx — and config generation, ${ms(r.ms.generate)} wall)`,
      `peak RSS                   ${mb(r.memory.peakRssKernel)} (kernel maxRSS); ${mb(r.memory.peakRssSampled)} sampled at phase ends`,
    ].join("\n"),
  );
}
