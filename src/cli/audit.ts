import { basename, relative } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type GatewayInput,
  GatewayInputError,
  type GatewayLoader,
  type PlatformName,
} from "../analysis/gateway.js";
import { type AuditRequest, runAudit, type TunnelRequest } from "../analysis/run-audit.js";
import { loadIptablesGateway } from "../platforms/iptables/gateway.js";
import { auditJson, auditMarkdown, auditText, failsOn } from "../report/audit.js";
import { toSarif } from "../report/sarif.js";
import { colorsFor } from "../report/style.js";
import type { LoadedTopology } from "../topology/load.js";
import type { TunnelDef } from "../topology/schema.js";
import { readInput, sniffPlatform } from "./files.js";
import { EXIT, type Io, UsageError } from "./io.js";
import { type ScenarioFlags, scenarioInput } from "./scenario-options.js";
import { VERSION } from "./version.js";

// The FortiOS parser (and the YAML/zod topology loader) are loaded only when a request needs
// them: an `audit --iptables` run does not pay for their compilation.
let fortiosLoader: GatewayLoader | undefined;

/** Loads the platform modules the gateways need; `fromTopology` and `fromFlags` call it. */
async function preload(platforms: Iterable<PlatformName>): Promise<void> {
  for (const p of platforms)
    if (p === "fortios" && !fortiosLoader)
      fortiosLoader = (await import("../platforms/fortios/gateway.js")).loadFortiosGateway;
}

/**
 * One loader per platform: parse, then the evaluator the audit and the simulator ask. The
 * FortiOS one is loaded by `fromTopology` / `fromFlags` when a gateway is a FortiGate.
 */
export const loaders = (): Record<PlatformName, GatewayLoader> => ({
  fortios: (g) => {
    if (!fortiosLoader) throw new Error("the FortiOS loader was not loaded (fromTopology / fromFlags)");
    return fortiosLoader(g);
  },
  iptables: loadIptablesGateway,
});

export interface AuditFlags extends Partial<ScenarioFlags> {
  iptables?: string;
  fortios?: string;
  topology?: string;
  vdom?: string;
  ipset?: string;
  address?: string[];
  format: "text" | "json" | "sarif" | "md";
  failOn: "error" | "warning" | "note" | "none";
}

export async function fromTopology(
  path: string,
  io: Io,
): Promise<{ request: AuditRequest; topology: LoadedTopology }> {
  const { file, text } = await readInput(path, io);
  const { configPath, parseTopology } = await import("../topology/load.js");
  const topo = parseTopology(text, file);
  const gateways: GatewayInput[] = [];
  for (const [name, g] of Object.entries(topo.gateways)) {
    const cfg = await readInput(configPath(topo, g.config), io);
    gateways.push({
      name,
      platform: g.platform,
      file: relative(process.cwd(), cfg.file) || cfg.file,
      text: cfg.text,
      ...(cfg.bytes ? { bytes: cfg.bytes } : {}),
      ...(g.addresses ? { addresses: g.addresses } : {}),
      ...(g.wan ? { wan: g.wan } : {}),
      ...(g.vdom ? { vdom: g.vdom } : {}),
      ...(g.ipset ? { ipset: await readInput(configPath(topo, g.ipset), io) } : {}),
    });
  }
  await preload(gateways.map((g) => g.platform));
  return { request: { gateways, tunnels: (topo.tunnels ?? []).map(tunnelRequest) }, topology: topo };
}

function tunnelRequest(t: TunnelDef): TunnelRequest {
  const overrides = {
    ...(t.ike !== undefined ? { ike: t.ike } : {}),
    ...(t.ah !== undefined ? { ah: t.ah } : {}),
    ...(t.mobike !== undefined ? { mobike: t.mobike } : {}),
    ...(t.encap !== undefined ? { encap: t.encap } : {}),
    ...(t["ike-tcp"] !== undefined ? { ikeTcp: t["ike-tcp"] } : {}),
    ...(t["ike-fragmentation"] !== undefined ? { ikeFragmentation: t["ike-fragmentation"] } : {}),
  };
  const common = {
    ...(t.name ? { name: t.name } : {}),
    ...(t.nat ? { nat: t.nat } : {}),
    overrides: { ...overrides, ...(t.public ? { publicAddress: t.public } : {}) },
    ...(t["nat-devices"] ? { natDevices: t["nat-devices"] } : {}),
  };
  if (t.type === "site-to-site") return { kind: "site-to-site", between: t.between, ...common };
  return {
    kind: "remote-access",
    vpn: t.type,
    server: t.server,
    clients: t.clients === "any" ? [] : t.clients,
    ...common,
  };
}

async function fromFlags(o: AuditFlags, positional: string | undefined, io: Io): Promise<AuditRequest> {
  const given = [o.iptables && "--iptables", o.fortios && "--fortios", positional && "a config file"].filter(
    Boolean,
  );
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "give a config to audit: tunnelcheck audit FORTIGATE.conf, --iptables FILE, or --topology FILE"
        : `give one config at a time (got ${given.join(" and ")}); use --topology for several gateways`,
    );
  }
  const path = (o.iptables ?? o.fortios ?? positional)!;
  const { file, text, bytes } = await readInput(path, io);
  const platform = o.iptables ? "iptables" : o.fortios ? "fortios" : sniffPlatform(text);
  if (!platform)
    throw new UsageError(
      `${file}: cannot tell whether this is a FortiOS or an iptables-save file; use --fortios or --iptables`,
    );
  await preload([platform]);
  const name = file === "<stdin>" ? "gateway" : basename(file).replace(/\.[^.]*$/, "") || "gateway";
  const gateway: GatewayInput = {
    name,
    platform,
    file,
    text,
    ...(bytes ? { bytes } : {}),
    ...(o.address?.length ? { addresses: o.address } : o.local ? { addresses: [o.local] } : {}),
    ...(o.wan ? { wan: o.wan } : {}),
    ...(o.vdom ? { vdom: o.vdom } : {}),
    ...(o.ipset ? { ipset: await readInput(o.ipset, io) } : {}),
  };
  if (o.vpn === undefined) {
    if (platform === "iptables")
      throw new UsageError(
        "--iptables needs the scenario: --vpn TYPE (and --peer, --local, --nat as for plan)",
      );
    return { gateways: [gateway], tunnels: [] }; // the FortiGate declares its VPNs
  }
  return {
    gateways: [gateway],
    tunnels: [{ kind: "scenario", gateway: name, scenario: scenarioInput(o as ScenarioFlags) }],
  };
}

/** With --topology, only these flags mean something; the rest would be silently ignored. */
const TOPOLOGY_FLAGS = new Set(["--topology", "--format", "--fail-on"]);

export async function runAuditCommand(
  o: AuditFlags,
  positional: string | undefined,
  io: Io,
  given: readonly string[] = [],
): Promise<number> {
  if (o.topology) {
    const extra = [
      ...(positional !== undefined ? ["a config file"] : []),
      ...given.filter((f) => !TOPOLOGY_FLAGS.has(f)),
    ];
    if (extra.length > 0)
      throw new UsageError(
        `--topology takes the gateways, their configs, VDOMs and addresses and the tunnels from the file; ${extra.join(", ")} cannot be combined with it (set ${extra.length === 1 ? "it" : "them"} in the topology)`,
      );
  }
  let req: AuditRequest;
  try {
    req = o.topology ? (await fromTopology(o.topology, io)).request : await fromFlags(o, positional, io);
  } catch (e) {
    if (o.topology && e instanceof (await import("../topology/load.js")).TopologyError)
      throw new UsageError(e.message);
    throw e;
  }
  let report: ReturnType<typeof runAudit>;
  try {
    report = runAudit(req, loaders());
  } catch (e) {
    if (e instanceof GatewayInputError) throw new UsageError(e.message);
    throw e;
  }
  if (report.audited.length === 0) {
    // "No findings" for a config nothing was checked in would be a silent wrong answer.
    throw new UsageError(`nothing to audit: ${report.warnings.join("; ") || "no VPN found"}`);
  }
  if (o.format === "json") io.stdout.write(`${JSON.stringify(auditJson(report), null, 2)}\n`);
  else if (o.format === "sarif")
    io.stdout.write(
      `${JSON.stringify(toSarif(report.findings, { version: VERSION, srcRoot: pathToFileURL(`${process.cwd()}/`).href }), null, 2)}\n`,
    );
  else if (o.format === "md") io.stdout.write(auditMarkdown(report));
  else io.stdout.write(auditText(report, colorsFor(io.stdout)));
  return failsOn(report, o.failOn) ? EXIT.findings : EXIT.ok;
}
