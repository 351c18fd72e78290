import { formatAddress, formatPrefix, parsePrefix } from "../model/address.js";
import { AddrSet } from "../model/addrset.js";
import { generateIptables } from "../platforms/iptables/generate.js";
import { generateRules } from "../platforms/registry.js";
import { defaultGenerateOptions } from "../platforms/types.js";
import type { AuditReport } from "../report/audit.js";
import { type Flow, type Plan, planFlows } from "../vpn/flows.js";
import { makeScenario, type NatMode, type ScenarioInput } from "../vpn/scenario.js";
import { auditGateway, setBrief, setText } from "./audit.js";
import { FINDINGS, type FixSite } from "./findings.js";
import type { DeclaredVpn, GatewayInput, GatewayLoader, LoadedGateway, PlatformName } from "./gateway.js";
import { GatewayInputError } from "./gateway.js";
import type { PortForwardPart } from "./port-forward-set.js";

/** Scenario options a tunnel definition may set on top of what the configs declare. */
export type ScenarioOverrides = Partial<
  Pick<ScenarioInput, "ike" | "ah" | "mobike" | "encap" | "ikeTcp" | "ikeFragmentation" | "publicAddress">
>;

export type TunnelRequest =
  | {
      kind: "site-to-site";
      name?: string;
      between: [string, string];
      /** From `between[0]`'s point of view: `local` = between[0] behind NAT, `peer` = between[1]. */
      nat?: NatMode;
      overrides?: ScenarioOverrides;
      /** Gateway name → the NAT device in front of it (also a gateway of the request). */
      natDevices?: Record<string, string>;
    }
  | {
      kind: "remote-access";
      name?: string;
      vpn: "l2tp-ipsec" | "ikev2-remote-access";
      server: string;
      /** Client addresses/ranges; empty = any. */
      clients: string[];
      nat?: NatMode;
      overrides?: ScenarioOverrides;
      natDevices?: Record<string, string>;
    }
  /** Flags mode: the scenario is given in full (`--vpn … --peer …`). */
  | {
      kind: "scenario";
      name?: string;
      gateway: string;
      scenario: ScenarioInput;
      natDevices?: Record<string, string>;
    };

export interface AuditRequest {
  gateways: GatewayInput[];
  /** Empty: audit every VPN the gateways' own configs declare (FortiOS phase1-interface). */
  tunnels: TunnelRequest[];
}

const addrsOf = (g: LoadedGateway) => new Set([...(g.input.addresses ?? []), ...g.ownAddresses]);

/**
 * Who talks to whom on a site-to-site tunnel, from x's side: x's phase1 towards y, else y's phase1
 * towards x, else the topology's addresses. Throws when y's address cannot be told.
 */
export function siteToSiteEnds(x: LoadedGateway, y: LoadedGateway, tunnel: string) {
  const declX = x.vpns.find((v) => v.peer !== null && addrsOf(y).has(v.peer));
  const declY = y.vpns.find((v) => v.peer !== null && addrsOf(x).has(v.peer));
  const peer = declX?.peer ?? declY?.local ?? y.input.addresses?.[0];
  const local = declX?.local ?? declY?.peer ?? x.input.addresses?.[0];
  if (!peer) {
    throw new GatewayInputError(
      `tunnel ${tunnel}: cannot tell ${y.input.name}'s address as seen by ${x.input.name}; add \`addresses:\` to gateway ${y.input.name}`,
    );
  }
  return { peer, local, declX, declY };
}

const swapNat = (n: NatMode | undefined): NatMode | undefined =>
  n === "local" ? "peer" : n === "peer" ? "local" : n;

/** Runs the audit: every tunnel, every gateway on it, every flow it needs — real evaluated verdicts. */
export function runAudit(req: AuditRequest, loaders: Record<PlatformName, GatewayLoader>): AuditReport {
  const report: AuditReport = { findings: [], verdicts: [], audited: [], warnings: [], notes: [] };
  const gws = new Map<string, LoadedGateway>();
  for (const g of req.gateways) {
    const loaded = loaders[g.platform](g);
    gws.set(g.name, loaded);
    report.warnings.push(...loaded.warnings);
    report.notes.push(...(loaded.notes ?? []));
  }
  const gw = (name: string): LoadedGateway => {
    const g = gws.get(name);
    if (!g) throw new GatewayInputError(`unknown gateway '${name}'`);
    return g;
  };

  /** The NAT device's port forwards for the flows the plan puts there (UDP 500/4500, TCP 4500). */
  const portForwards = (g: LoadedGateway, dev: LoadedGateway, tunnel: string | undefined, plan: Plan) => {
    const base = { gateway: dev.input.name, ...(tunnel ? { tunnel } : {}) };
    const s = plan.scenario;
    const pub = s.publicAddress
      ? formatPrefix(s.publicAddress)
      : (dev.input.addresses?.[0] ?? dev.ownAddresses[0]);
    if (!dev.portForward) {
      report.warnings.push(
        `${dev.input.name}: checking port forwards on a ${dev.input.platform} NAT device is not supported yet`,
      );
      return;
    }
    if (!pub || !s.local) {
      report.warnings.push(
        `${dev.input.name}: port forwards not checked: give the NAT device's public address (public: or its addresses:) and the gateway's --local address`,
      );
      return;
    }
    // Packets from the device's own addresses do not arrive from outside.
    const own = AddrSet.fromPrefixes(
      s.family,
      [...(dev.input.addresses ?? []), ...dev.ownAddresses, pub].flatMap((a) => {
        try {
          const p = parsePrefix(a, { allowHostBits: true });
          return p.family === s.family ? [{ ...p, len: s.family === 4 ? 32 : 128 }] : [];
        } catch {
          return [];
        }
      }),
    );
    for (const f of plan.flows) {
      if (f.location !== "nat-device" || f.requirement !== "required" || f.port === undefined) continue;
      const clients = (
        f.peers.length ? AddrSet.fromPrefixes(s.family, f.peers) : AddrSet.all(s.family)
      ).difference(own);
      const q = {
        proto: f.protoNumber ?? 17,
        port: f.port,
        publicAddress: pub.replace(/\/\d+$/, ""),
        to: formatPrefix(s.local),
        ...(dev.input.wan ? { iif: dev.input.wan } : {}),
      };
      const parts: PortForwardPart[] = dev.portForwardSet
        ? dev.portForwardSet({ ...q, sources: clients })
        : clients.isEmpty()
          ? []
          : [
              {
                ...dev.portForward({
                  ...q,
                  src: formatAddress(s.family, clients.first()!),
                  srcClass: clients,
                }),
                sources: clients,
              },
            ];
      const verdictOf = (c: PortForwardPart) =>
        c.status === "forwarded" ? "accept" : c.status === "unknown" ? "unknown" : "drop";
      const statuses = new Set(parts.map(verdictOf));
      report.verdicts.push({
        ...base,
        flow: f.id,
        requirement: f.requirement,
        status:
          statuses.size > 1
            ? "mixed"
            : statuses.has("accept")
              ? "accepted-new"
              : statuses.has("unknown")
                ? "unknown"
                : "blocked",
        parts: parts.map((c) => ({
          sources: setText(c.sources),
          new: verdictOf(c),
          rule: c.rules[0] ?? null,
        })),
      });
      const bad = parts.filter((c) => c.status !== "forwarded");
      if (bad.length === 0) continue;
      const to = `must reach ${g.input.name} at ${formatPrefix(s.local)}:${f.port}`;
      const what = `${f.protocol.toUpperCase()} ${f.port} to ${pub}`;
      const ok = parts.filter((c) => c.status === "forwarded");
      const fine = ok.length
        ? ` (forwarded from ${setBrief(
            AddrSet.fromRanges(
              s.family,
              ok.flatMap((c) => c.sources.intervals()),
            ),
          )})`
        : "";
      for (const id of ["port-forward-missing", "verdict-unknown"] as const) {
        const mine = bad.filter((c) => (c.status === "unknown") === (id === "verdict-unknown"));
        if (mine.length === 0) continue;
        const rules = mine.flatMap((c) => c.rules);
        report.findings.push({
          id,
          severity: FINDINGS[id].severity,
          ...base,
          flow: f.id,
          message: mine
            .map((c) => `${what} (from ${setBrief(c.sources)}) ${to}: ${c.reason}${fine}.`)
            .join("\n"),
          rules: rules.filter((r, i) => rules.findIndex((x) => x.file === r.file && x.line === r.line) === i),
        });
      }
    }
  };

  const outboundNoted = new Set<LoadedGateway>();
  const audit = (
    g: LoadedGateway,
    tunnel: string | undefined,
    input: ScenarioInput,
    notes: string[] = [],
    unknown: string[] = [],
    device?: string,
    ikeOpenToAnyExpected = false,
  ) => {
    const scenario = makeScenario(input);
    const plan = planFlows(scenario);
    const target = g.fixTarget(scenario.family);
    // One rendering per flow (several findings of a flow share its fix; 1,000 peers make it long).
    const fixes = new Map<string, { target: string; text: string } | undefined>();
    const render = (flow: Flow, sites: FixSite[] | undefined) => {
      try {
        // An outbound flow stopped in a given table and chain: the fix acts there.
        if (sites && flow.direction === "outbound" && /^ip6?tables/.test(target))
          return {
            target,
            text: generateIptables(
              { ...plan, flows: [flow], notes: [] },
              {
                ...defaultGenerateOptions,
                additive: true,
                format: target.endsWith("-restore") ? "restore" : "commands",
                outboundSites: sites,
              },
            ),
          };
        return {
          target,
          // Additive: an engineer pastes the fixes of several findings one after another.
          text: generateRules({ ...plan, flows: [flow], notes: [] }, target, {
            ...defaultGenerateOptions,
            additive: true,
            egress: flow.direction === "outbound",
          }),
        };
      } catch {
        return undefined; // the target cannot express it for this scenario; the message still stands
      }
    };
    const fixFor = (flow: Flow, sites?: FixSite[]) => {
      const key = `${flow.id}|${JSON.stringify(sites ?? null)}`;
      if (!fixes.has(key)) fixes.set(key, render(flow, sites));
      const fix = fixes.get(key);
      return fix && { ...fix };
    };
    const r = auditGateway({
      gateway: g.input.name,
      ...(tunnel ? { tunnel } : {}),
      plan,
      evaluator: g.evaluator,
      fixFor,
      ...(ikeOpenToAnyExpected ? { ikeOpenToAnyExpected } : {}),
    });
    report.findings.push(...r.findings);
    report.verdicts.push(...r.verdicts);
    report.audited.push({
      gateway: g.input.name,
      platform: g.input.platform,
      ...(tunnel ? { tunnel } : {}),
      config: g.input.file,
    });
    if (device !== undefined) portForwards(g, gw(device), tunnel, plan);
    const who = `${g.input.name}${tunnel ? ` (${tunnel})` : ""}`;
    for (const n of notes) report.notes.push(`${who}: ${n}`);
    const outNote = g.evaluator.outboundNote;
    if (outNote && !outboundNoted.has(g)) {
      outboundNoted.add(g);
      report.notes.push(`${g.input.name}: ${outNote}`);
    }
    for (const u of unknown) report.warnings.push(`${who}: ${u}`);
  };

  if (req.tunnels.length === 0) {
    for (const g of gws.values()) {
      if (g.vpns.length === 0) {
        report.warnings.push(
          `${g.input.name}: ${g.input.file} declares no VPN (no phase1-interface); give the scenario (--vpn, --peer) or a topology`,
        );
      }
      for (const v of g.vpns) {
        // A dial-up phase1 on the same address needs IKE from any source: not an over-exposure there.
        const dialup =
          v.peer !== null ? g.vpns.find((w) => w.peer === null && sharesAddress(v, w)) : undefined;
        const notes = dialup
          ? [
              ...v.notes,
              `IKE from any source is expected on ${v.local ?? v.scenario.wan}: dial-up phase1 "${dialup.name}" serves its clients there, so ike-open-to-any is not reported; who may connect is decided by the dial-up's peer IDs and credentials`,
            ]
          : v.notes;
        audit(g, v.name, v.scenario, notes, v.unknown, undefined, dialup !== undefined);
      }
    }
    return report;
  }

  for (const t of req.tunnels) {
    if (t.kind === "scenario") {
      audit(gw(t.gateway), t.name, t.scenario, [], [], t.natDevices?.[t.gateway]);
    } else if (t.kind === "site-to-site") {
      const [a, b] = [gw(t.between[0]), gw(t.between[1])];
      const name = t.name ?? `${t.between[0]}-${t.between[1]}`;
      for (const [x, y, nat] of [
        [a, b, t.nat],
        [b, a, swapNat(t.nat)],
      ] as const) {
        const { peer, local, declX } = siteToSiteEnds(x, y, name);
        const base: ScenarioInput = declX?.scenario ?? { vpn: "site-to-site" };
        const wan = x.input.wan ?? base.wan;
        const input: ScenarioInput = {
          ...base,
          vpn: "site-to-site",
          peers: [peer],
          ...(local ? { local } : {}),
          ...(wan ? { wan } : {}),
          ...(nat ? { nat } : {}),
          ...t.overrides,
        };
        const unknown = declX ? [...declX.unknown] : [];
        if (!declX && x.input.platform === "fortios") {
          unknown.push(`no phase1-interface towards ${peer} in ${x.input.file}`);
        }
        // A topology that states the NAT answers the config's "is NAT on the path?" question.
        const open = nat ? unknown.filter((u) => !/NAT is on the path/.test(u)) : unknown;
        audit(x, name, input, declX?.notes ?? [], open, t.natDevices?.[x.input.name]);
      }
    } else {
      const s = gw(t.server);
      const decl = s.vpns.find((v) => v.peer === null);
      const wan = s.input.wan ?? decl?.scenario.wan;
      const local = decl?.local ?? s.input.addresses?.[0];
      const input: ScenarioInput = {
        ...(decl?.scenario ?? {}),
        vpn: t.vpn,
        peers: t.clients,
        ...(local ? { local } : {}),
        ...(wan ? { wan } : {}),
        ...(t.nat ? { nat: t.nat } : {}),
        ...t.overrides,
      };
      audit(
        s,
        t.name ?? `${t.vpn}@${t.server}`,
        input,
        decl?.notes ?? [],
        decl?.unknown ?? [],
        t.natDevices?.[t.server],
      );
    }
  }
  return report;
}

/** Two declared VPNs terminate on the same address (or, without one, the same interface). */
function sharesAddress(a: DeclaredVpn, b: DeclaredVpn): boolean {
  if (a.local !== null && b.local !== null) return a.local === b.local;
  return a.scenario.wan !== undefined && a.scenario.wan === b.scenario.wan;
}
