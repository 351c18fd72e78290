import Table from "cli-table3";
import { formatPrefix, type Prefix } from "../model/address.js";
import type { Flow, Plan } from "../vpn/flows.js";
import type { Scenario } from "../vpn/scenario.js";
import { type Colors, noColors } from "./style.js";

const peersText = (ps: Prefix[]): string =>
  ps.length === 0 ? "any" : ps.map((p) => formatPrefix(p)).join(", ");

export function protoText(f: Flow): string {
  if (f.protocol === "fragment") return "IP fragments";
  const name = f.protocol.toUpperCase();
  const cond = f.condition === "ipsec" ? " via IPsec" : f.condition === "no-ipsec" ? " not via IPsec" : "";
  return (f.port === undefined ? `${name} (${f.protoNumber})` : `${name} ${f.port}`) + cond;
}

export function scenarioJson(s: Scenario) {
  return {
    vpn: s.vpn,
    ike: s.ike,
    nat: s.nat,
    ah: s.ah,
    family: s.family === 6 ? "ipv6" : "ipv4",
    peers: s.peers.map((p) => formatPrefix(p, { alwaysLen: true })),
    local: s.local ? formatPrefix(s.local) : null,
    public: s.publicAddress ? formatPrefix(s.publicAddress) : null,
    wan: s.wan ?? null,
    mobike: s.mobike,
    encap: s.encap,
    ikeTcp: s.ikeTcp,
    ikeFragmentation: s.ikeFragmentation,
  };
}

export function flowJson(f: Flow) {
  return {
    id: f.id,
    service: f.service,
    protocol: f.protocol,
    protoNumber: f.protoNumber ?? null,
    port: f.port ?? null,
    direction: f.direction,
    initiator: f.initiator,
    mustAcceptNew: f.mustAcceptNew,
    condition: f.condition ?? null,
    action: f.action,
    requirement: f.requirement,
    location: f.location,
    peers: f.peers.map((p) => formatPrefix(p, { alwaysLen: true })),
    reason: f.reason,
    rfcs: f.rfcs,
  };
}

export const planJson = (plan: Plan) => ({
  scenario: scenarioJson(plan.scenario),
  flows: plan.flows.map(flowJson),
  notes: plan.notes,
});

function scenarioLine(s: Scenario): string {
  const bits = [
    s.vpn,
    `IKEv${s.ike}`,
    `NAT: ${s.nat}`,
    s.family === 6 ? "IPv6" : "IPv4",
    `peers: ${peersText(s.peers)}`,
    ...(s.local ? [`local: ${formatPrefix(s.local)}`] : []),
    ...(s.wan ? [`WAN: ${s.wan}`] : []),
    ...(s.ah ? ["AH"] : []),
    ...(s.mobike ? ["MOBIKE"] : []),
    ...(s.encap ? ["forced UDP encapsulation"] : []),
    ...(s.ikeTcp ? ["IKE over TCP"] : []),
  ];
  return bits.join(" · ");
}

function needText(f: Flow, c: Colors): string {
  if (f.action === "drop") return c.red("block");
  if (f.requirement === "required") return c.green("required");
  if (f.requirement === "optional") return c.yellow("optional");
  return c.dim("not needed");
}

const LOCATION_TITLE = {
  gateway: "At the VPN gateway",
  "nat-device": "At the NAT device in front of the gateway (port forwards)",
} as const;

export function planText(plan: Plan, c: Colors = noColors, width = 120): string {
  const out: string[] = [c.bold(`tunnelcheck plan — ${scenarioLine(plan.scenario)}`), ""];
  for (const loc of ["gateway", "nat-device"] as const) {
    const flows = plan.flows.filter((f) => f.location === loc);
    if (flows.length === 0) continue;
    out.push(c.bold(LOCATION_TITLE[loc]));
    const reasonWidth = Math.max(30, width - 80);
    const t = new Table({
      head: ["flow", "protocol", "dir", "remote", "initiates", "as NEW", "need", "why"],
      style: { head: [], border: [] },
      wordWrap: true,
      colWidths: [null, null, null, null, null, null, null, reasonWidth] as unknown as number[],
    });
    for (const f of flows) {
      t.push([
        f.id,
        protoText(f),
        f.direction === "inbound" ? "in" : "out",
        peersText(f.peers),
        f.initiator,
        f.mustAcceptNew ? "yes" : "reply only",
        needText(f, c),
        `${f.reason} (${f.rfcs.join(", ")})`,
      ]);
    }
    out.push(t.toString(), "");
  }
  if (plan.notes.length > 0) {
    out.push(c.bold("Notes"));
    for (const n of plan.notes) out.push(`- ${n}`);
  }
  return out.join("\n").trimEnd() + "\n";
}

const mdCell = (s: string) => s.replace(/\|/g, "\\|");

export function planMarkdown(plan: Plan): string {
  const out = [`# VPN flow plan`, "", `**Scenario:** ${mdCell(scenarioLine(plan.scenario))}`, ""];
  for (const loc of ["gateway", "nat-device"] as const) {
    const flows = plan.flows.filter((f) => f.location === loc);
    if (flows.length === 0) continue;
    out.push(`## ${LOCATION_TITLE[loc]}`, "");
    out.push(
      "| flow | protocol | dir | remote | initiates | as NEW | need | why | RFC |",
      "|---|---|---|---|---|---|---|---|---|",
    );
    for (const f of flows) {
      const need = f.action === "drop" ? "block" : f.requirement;
      out.push(
        `| \`${f.id}\` | ${mdCell(protoText(f))} | ${f.direction} | ${mdCell(peersText(f.peers))} | ${f.initiator} | ${f.mustAcceptNew ? "yes" : "reply only"} | ${need} | ${mdCell(f.reason)} | ${f.rfcs.join(", ")} |`,
      );
    }
    out.push("");
  }
  if (plan.notes.length > 0) out.push("## Notes", "", ...plan.notes.map((n) => `- ${mdCell(n)}`), "");
  return out.join("\n");
}
