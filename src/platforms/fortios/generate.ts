import { formatAddress, formatPrefix, hostMask, type Prefix } from "../../model/address.js";
import { activeFlows, type Flow, type Plan } from "../../vpn/flows.js";
import type { Scenario } from "../../vpn/scenario.js";
import { type GenerateOptions, scenarioSummary, TargetError } from "../types.js";

/** Prefix of every object tunnelcheck creates, so they are easy to find and remove. */
export const FORTIOS_PREFIX = "tc-";

/** A custom service tunnelcheck defines (predefined ones such as IKE are only referenced). */
interface CustomService {
  name: string;
  lines: string[];
  comment: string;
}

/** One local-in accept: a service for one or more flows from one set of sources. */
interface LocalIn {
  flows: Flow[];
  service: string;
  srcaddr: string;
}

interface Objects {
  v6: boolean;
  addresses: Map<string, Prefix>;
  groups: Map<string, string[]>;
  services: Map<string, CustomService>;
}

/**
 * Renders the plan as FortiOS CLI: address objects, custom services and local-in policies for the
 * FortiGate that terminates the VPN; VIPs and a forwarding policy for a FortiGate NAT device in front.
 */
export function generateFortios(plan: Plan, opts: GenerateOptions): string {
  const s = plan.scenario;
  const v6 = s.family === 6;
  const flows = activeFlows(plan, { requiredOnly: opts.requiredOnly });
  const gwIn = flows.filter((f) => f.location === "gateway" && f.direction === "inbound");
  const nat = flows.filter((f) => f.location === "nat-device");
  const wan = requireWan(s);

  const objs: Objects = { v6, addresses: new Map(), groups: new Map(), services: new Map() };
  const dstaddr = s.local ? addressObject(objs, s.local, "gw") : "all";
  const accepts = groupLocalIn(
    objs,
    gwIn.filter((f) => f.action === "accept" && f.condition === undefined),
  );

  const out: string[] = [
    `# tunnelcheck FortiOS CLI — ${scenarioSummary(s)}`,
    "# Paste into the FortiGate CLI (inside the VDOM when VDOMs are enabled). Contains no secrets:",
    "# pre-shared keys and certificates stay in the phase1 configuration.",
    ...plan.notes.map((n) => `# note: ${n}`),
  ];
  if (nat.length > 0)
    out.push("# Two parts: part 1 is for the FortiGate that terminates the VPN, part 2 for the NAT device.");
  out.push("", "# === Part 1: the FortiGate terminating the VPN ===");

  const policyLines: string[] = [];
  for (const p of accepts) {
    policyLines.push(
      ...p.flows.flatMap(flowComment),
      ...localInEntry({
        intf: wan,
        srcaddr: p.srcaddr,
        dstaddr,
        action: "accept",
        services: [p.service],
        comments: ids(p.flows),
      }),
    );
  }
  const openToAll = new Set(accepts.filter((p) => p.srcaddr === "all").map((p) => p.service));
  const denied = [...new Set(accepts.map((p) => p.service))].filter((svc) => !openToAll.has(svc));
  // Without --default-drop the rules only add: a deny of IKE/ESP from everyone else would also cut
  // off every other phase1 peer and dial-up user on this address, so it is offered, commented out.
  if (denied.length > 0 && !opts.defaultDrop) {
    policyLines.push(
      "    # Optional hardening, commented out: deny the same services from every other source, so the accepts",
      "    # above stay the only way in (Fortinet TT 390429, 'How to block unwanted IKE negotiations and unknown",
      "    # ESP/SPI packets'). It also blocks EVERY other phase1 peer and dial-up client on this address:",
      "    # add their accepts first.",
      ...localInEntry({
        intf: wan,
        srcaddr: "all",
        dstaddr,
        action: "deny",
        services: denied,
        comments: "tunnelcheck: VPN services from other sources",
      }).map((l) => `    #${l.slice(4)}`),
    );
  }
  if (opts.defaultDrop) {
    policyLines.push(
      `    # Default drop on ${wan}. Local-in policies judge only sessions started from outside, so replies to`,
      "    # this FortiGate's own connections still pass (seed 001). This also blocks management (HTTPS, SSH,",
      "    # ping) and DHCP/PPPoE replies on this interface unless an earlier policy allows them.",
      ...localInEntry({
        intf: wan,
        srcaddr: "all",
        dstaddr: "all",
        action: "deny",
        services: ["ALL"],
        comments: "tunnelcheck: default drop",
      }),
    );
  }

  out.push(...renderObjects(objs));
  if (policyLines.length > 0) {
    out.push(
      "# IKE must be accepted from the peers as NEW traffic: if a local-in deny catches it, the peer's rekeys,",
      "# DPD and DELETE are dropped once the FortiGate's own UDP 500 session expires (seed 001, Fortinet TT 294094).",
      "# `edit 0` appends with the next free id; re-running creates duplicates. Local-in policies are matched",
      "# in order: move these above any existing deny, e.g. `config firewall local-in-policy` / `move <id> before <deny-id>`.",
      `config firewall ${v6 ? "local-in-policy6" : "local-in-policy"}`,
      ...policyLines,
      "end",
    );
  }
  out.push(...notExpressed(gwIn, s));
  if (opts.egress) {
    out.push(
      "# --egress: nothing to add. Local-in policies cover traffic to the FortiGate; FortiOS has no firewall",
      "# policy table for traffic the FortiGate itself sends (local-out appears only in traffic shaping).",
    );
  }
  if (nat.length > 0) out.push("", ...natDevicePart(s, nat));
  return `${out.join("\n")}\n`;
}

function requireWan(s: Scenario): string {
  if (!s.wan) {
    throw new TargetError(
      "FortiOS local-in policies need the incoming interface: give --wan (e.g. wan1 or port1)",
    );
  }
  if (s.wan.endsWith("+")) {
    throw new TargetError(
      `FortiOS has no interface wildcards: '--wan ${s.wan}' must name one interface or zone`,
    );
  }
  return s.wan;
}

const q = (v: string): string => `"${v.replace(/["\\]/g, "_")}"`;
const ids = (flows: Flow[]): string => `tunnelcheck: ${flows.map((f) => f.id).join(", ")}`;

function flowComment(f: Flow): string[] {
  return [`    # ${f.id}${f.requirement === "optional" ? " (optional)" : ""}: ${f.reason}`];
}

/** Address object name: FortiOS names allow most characters, but `/` and `:` are kept out to be safe. */
function addressObject(objs: Objects, p: Prefix, role: "peer" | "gw"): string {
  const text = formatPrefix(p).replace("/", "_").replace(/:/g, "-");
  const name = `${FORTIOS_PREFIX}${role === "gw" ? "gw-" : ""}${text}`;
  objs.addresses.set(name, p);
  return name;
}

/** srcaddr for a peer list: "all", the single address object, or an address group. */
function sourceObject(objs: Objects, peers: Prefix[]): string {
  if (peers.length === 0) return "all";
  const names = [...new Set(peers.map((p) => addressObject(objs, p, "peer")))];
  if (names.length === 1) return names[0]!;
  const key = names.join(" ");
  for (const [g, members] of objs.groups) if (members.join(" ") === key) return g;
  const name = `${FORTIOS_PREFIX}peers${objs.groups.size === 0 ? "" : `-${objs.groups.size + 1}`}`;
  objs.groups.set(name, names);
  return name;
}

function customService(objs: Objects, f: Flow): string {
  let svc: CustomService;
  if ((f.protocol === "udp" || f.protocol === "tcp") && f.port !== undefined) {
    svc = {
      name: `${FORTIOS_PREFIX}${f.protocol}-${f.port}`,
      lines: ["set protocol TCP/UDP/SCTP", `set ${f.protocol}-portrange ${f.port}`],
      comment: `${f.service} (${f.protocol.toUpperCase()} ${f.port})`,
    };
  } else if ((f.protocol === "esp" || f.protocol === "ah") && f.protoNumber !== undefined) {
    svc = {
      name: `${FORTIOS_PREFIX}${f.protocol}`,
      lines: ["set protocol IP", `set protocol-number ${f.protoNumber}`],
      comment: `${f.protocol.toUpperCase()} (IP protocol ${f.protoNumber})`,
    };
  } else {
    throw new TargetError(`flow ${f.id}: protocol ${f.protocol} has no FortiOS service`);
  }
  objs.services.set(svc.name, svc);
  return svc.name;
}

const isUdpPort = (f: Flow, port: number) => f.protocol === "udp" && f.port === port;

/**
 * One local-in accept per flow, except IKE (UDP 500) and NAT-T (UDP 4500) from the same sources,
 * which together are exactly the predefined service IKE.
 */
function groupLocalIn(objs: Objects, flows: Flow[]): LocalIn[] {
  const out: LocalIn[] = [];
  const used = new Set<Flow>();
  for (const ike of flows.filter((f) => isUdpPort(f, 500))) {
    const natt = flows.find(
      (f) =>
        isUdpPort(f, 4500) && !used.has(f) && sourceObject(objs, f.peers) === sourceObject(objs, ike.peers),
    );
    if (!natt) continue;
    used.add(ike).add(natt);
    out.push({ flows: [ike, natt], service: "IKE", srcaddr: sourceObject(objs, ike.peers) });
  }
  for (const f of flows) {
    if (used.has(f) || f.protocol === "fragment") continue;
    out.push({ flows: [f], service: customService(objs, f), srcaddr: sourceObject(objs, f.peers) });
  }
  return out;
}

function localInEntry(p: {
  intf: string;
  srcaddr: string;
  dstaddr: string;
  action: "accept" | "deny";
  services: string[];
  comments: string;
}): string[] {
  return [
    "    edit 0",
    `        set intf ${q(p.intf)}`,
    `        set srcaddr ${q(p.srcaddr)}`,
    `        set dstaddr ${q(p.dstaddr)}`,
    `        set action ${p.action}`,
    `        set service ${p.services.map(q).join(" ")}`,
    '        set schedule "always"',
    `        set comments ${q(p.comments)}`,
    "    next",
  ];
}

function renderObjects(objs: Objects): string[] {
  const out: string[] = [];
  if (objs.addresses.size > 0) {
    out.push(`config firewall ${objs.v6 ? "address6" : "address"}`);
    for (const [name, p] of objs.addresses) {
      out.push(
        `    edit ${q(name)}`,
        objs.v6
          ? `        set ip6 ${formatPrefix(p, { alwaysLen: true })}`
          : `        set subnet ${formatAddress(4, p.addr)} ${formatAddress(4, ~hostMask(4, p.len) & 0xffffffffn)}`,
        `        set comment ${q("tunnelcheck")}`,
        "    next",
      );
    }
    out.push("end");
  }
  if (objs.groups.size > 0) {
    out.push(`config firewall ${objs.v6 ? "addrgrp6" : "addrgrp"}`);
    for (const [name, members] of objs.groups) {
      out.push(
        `    edit ${q(name)}`,
        `        set member ${members.map(q).join(" ")}`,
        `        set comment ${q("tunnelcheck: VPN peers")}`,
        "    next",
      );
    }
    out.push("end");
  }
  if (objs.services.size > 0) {
    out.push("config firewall service custom");
    for (const svc of objs.services.values()) {
      out.push(
        `    edit ${q(svc.name)}`,
        ...svc.lines.map((l) => `        ${l}`),
        `        set comment ${q(`tunnelcheck: ${svc.comment}`)}`,
        "    next",
      );
    }
    out.push("end");
  }
  return out;
}

/** Flows the gateway part does not turn into local-in policies, each with the reason. */
function notExpressed(flows: Flow[], s: Scenario): string[] {
  const out: string[] = [];
  if (flows.some((f) => f.protocol === "esp" || f.protocol === "ah")) {
    out.push(
      "# ESP/AH: FortiOS accepts ESP on the external interface without any local-in policy; the ESP policy",
      "# above takes effect only after (FortiOS 7.2.4+): config system settings / set detect-unknown-esp disable",
      "# / end (Fortinet TT 390429).",
    );
  }
  for (const f of flows) {
    if (f.protocol === "fragment") {
      out.push(
        `# ${f.id}${f.requirement === "optional" ? " (optional)" : ""}: no policy; local-in policies cannot match`,
        "# fragments by offset. The IKE deny above does not catch them; a deny of service ALL (such as",
        "# --default-drop) may, unless FortiOS reassembles first (not documented). Prefer IKE fragmentation.",
      );
    } else if (f.condition === "ipsec") {
      out.push(
        `# ${f.id}: no WAN policy. UDP ${f.port} arrives inside the IPsec SA and is terminated by FortiOS's own`,
        "# L2TP/IPsec (config vpn l2tp), not on the WAN interface.",
      );
    }
  }
  const plain = flows.find((f) => f.condition === "no-ipsec" && f.action === "drop");
  if (plain) {
    out.push(
      `# ${plain.id}: ${plain.reason}`,
      "# FortiOS refuses L2TP that did not arrive through IPsec when IPsec enforcement is on:",
      "config vpn l2tp",
      "    set enforce-ipsec enable",
      "end",
    );
  }
  if (s.vpn === "l2tp-ipsec") {
    out.push(
      "# The L2TP address pool and user group (config vpn l2tp: sip, eip, usrgrp) are not part of this plan.",
    );
  }
  return out;
}

function natDevicePart(s: Scenario, flows: Flow[]): string[] {
  if (s.family === 6) {
    throw new TargetError(
      "IPv6 port forwarding on a FortiGate (vip6 and the policy syntax for it) differs across FortiOS releases; tunnelcheck does not generate it",
    );
  }
  if (!s.local)
    throw new TargetError(
      "the gateway is behind NAT: give --local (its private address) for the VIPs' mappedip",
    );
  if (!s.publicAddress)
    throw new TargetError("FortiOS VIPs need the NAT device's public address: give --public");
  const objs: Objects = { v6: false, addresses: new Map(), groups: new Map(), services: new Map() };
  const vips: string[] = [];
  const entries: string[] = [];
  for (const f of flows) {
    if ((f.protocol !== "udp" && f.protocol !== "tcp") || f.port === undefined) {
      throw new TargetError(`flow ${f.id}: only UDP/TCP ports can be forwarded by a VIP`);
    }
    const name = `${FORTIOS_PREFIX}vip-${f.id}`;
    vips.push(name);
    entries.push(
      ...flowComment(f),
      `    edit ${q(name)}`,
      `        set comment ${q(`tunnelcheck: ${f.id}`)}`,
      `        set extip ${formatPrefix(s.publicAddress)}`,
      `        set mappedip ${q(formatPrefix(s.local))}`,
      '        set extintf "any"',
      "        set portforward enable",
      `        set protocol ${f.protocol}`,
      `        set extport ${f.port}`,
      `        set mappedport ${f.port}`,
      "    next",
    );
  }
  const services = [...new Set(groupLocalIn(objs, flows).map((p) => p.service))];
  const srcaddr = sourceObject(objs, flows[0]!.peers);
  if (flows.some((f) => sourceObject(objs, f.peers) !== srcaddr)) {
    throw new TargetError(
      "the NAT device's forwards have different sources; tunnelcheck writes one forwarding policy",
    );
  }
  return [
    "# === Part 2: the NAT device in front of the gateway (a FortiGate) — paste THERE, not on the gateway ===",
    `# Port-forwards IKE/NAT-T from ${formatPrefix(s.publicAddress)} to the gateway at ${formatPrefix(s.local)}.`,
    "# ESP/AH are not forwarded: NAT-T carries ESP in UDP 4500. If this FortiGate terminates IPsec itself on",
    "# that address, its own IKE daemon holds UDP 500/4500: use a separate public address for the VIPs.",
    "# --wan names the gateway's interface, not this device's: interfaces are 'any'; narrow extintf,",
    "# srcintf (its WAN) and dstintf (towards the gateway) to this device's ports.",
    ...renderObjects(objs),
    "config firewall vip",
    ...entries,
    "end",
    "config firewall policy",
    "    edit 0",
    `        set name ${q(`${FORTIOS_PREFIX}vpn-forward`)}`,
    '        set srcintf "any"',
    '        set dstintf "any"',
    `        set srcaddr ${q(srcaddr)}`,
    `        set dstaddr ${vips.map(q).join(" ")}`,
    "        set action accept",
    '        set schedule "always"',
    `        set service ${services.map(q).join(" ")}`,
    `        set comments ${q(ids(flows))}`,
    "    next",
    "end",
    "# Move this policy above any deny policy that would match it first.",
  ];
}
