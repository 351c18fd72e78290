import { formatPrefix, type Prefix } from "../../model/address.js";
import { activeFlows, type Flow, type Plan } from "../../vpn/flows.js";
import type { Scenario } from "../../vpn/scenario.js";
import { type GenerateOptions, scenarioSummary, TargetError } from "../types.js";

/** firewalld policy object holding the outbound accepts (--egress). */
export const FIREWALLD_EGRESS_POLICY = "tunnelcheck-out";

const FW = 'firewall-cmd --permanent --zone="$ZONE"';

/** What the predefined `ipsec` service opens (firewalld config/services/ipsec.xml, anchors §4). */
const IPSEC_SERVICE = ["ah", "esp", "udp/500", "udp/4500", "tcp/4500"];

/**
 * Renders the plan as a POSIX shell script of `firewall-cmd --permanent` commands, ending with a
 * reload. When the gateway is behind NAT the script takes `gateway` (default) or `nat-device`.
 */
export function generateFirewalld(plan: Plan, opts: GenerateOptions): string {
  const s = plan.scenario;
  const flows = activeFlows(plan, { requiredOnly: opts.requiredOnly });
  const gwIn = flows.filter((f) => f.location === "gateway" && f.direction === "inbound");
  const gwOut = flows.filter((f) => f.location === "gateway" && f.direction === "outbound");
  const nat = flows.filter((f) => f.location === "nat-device");
  for (const f of flows) {
    for (const p of f.peers) {
      if (p.family !== s.family)
        throw new TargetError(`flow ${f.id}: ${formatPrefix(p)} is not IPv${s.family}`);
    }
  }
  if (nat.length > 0 && !s.local) {
    throw new TargetError(
      "the gateway is behind NAT: give --local (its private address) for the NAT device's forward-ports",
    );
  }

  const gateway = [...gatewayPart(s, gwIn, opts), ...(opts.egress ? egressPart(s, gwOut) : [])];
  const out = [
    "#!/bin/sh",
    `# tunnelcheck firewalld commands — ${scenarioSummary(s)}`,
    "# Run as root. --permanent edits the saved configuration; the final --reload applies it.",
    "# Re-running is harmless: firewall-cmd only warns (ALREADY_ENABLED) about rules it already has.",
    ...plan.notes.map((n) => `# note: ${n}`),
    "set -eu",
  ];
  if (nat.length === 0) {
    out.push("", ...gateway);
  } else {
    out.push(
      "# Two parts: run `sh <file>` (or `sh <file> gateway`) on the VPN gateway, `sh <file> nat-device` on the",
      "# NAT device in front of it.",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
      'PART="${1:-gateway}"',
      'case "$PART" in',
      "  gateway | nat-device) ;;",
      '  *) echo "usage: $0 [gateway|nat-device]" >&2; exit 2 ;;',
      "esac",
      "",
      'if [ "$PART" = gateway ]; then',
      ...indent(gateway),
      "fi",
      "",
      'if [ "$PART" = nat-device ]; then',
      ...indent(natDevicePart(s, nat)),
      "fi",
    );
  }
  out.push("", "firewall-cmd --reload");
  const plain = gwIn.find((f) => f.condition === "no-ipsec" && f.action === "drop");
  if (plain) {
    const cmd = s.family === 4 ? "iptables" : "ip6tables";
    const port = plain.port;
    const check = [
      `# The zone opens port ${port} relying on the direct DROP of traffic without IPsec: check that it is live.`,
      `if ! ${cmd} -S 2>/dev/null | grep -Eq -- "--dport ${port} .*--pol none -j DROP"; then`,
      `  echo "tunnelcheck: the direct rule for ${plain.id} is not loaded; port ${port} is open without IPsec" >&2`,
      "  exit 1",
      "fi",
    ];
    if (nat.length === 0) out.push(...check);
    else out.push('if [ "$PART" = gateway ]; then', ...indent(check), "fi");
  }
  return `${out.join("\n")}\n`;
}

const indent = (lines: string[]): string[] => lines.map((l) => (l === "" ? l : `  ${l}`));
const fam = (s: Scenario): string => `ipv${s.family}`;
const why = (f: Flow): string => `# ${f.id}${f.requirement === "optional" ? " (optional)" : ""}: ${f.reason}`;

/** The zone the WAN interface is bound to; unbound interfaces (and no --wan) use the default zone. */
function zoneLookup(s: Scenario): string[] {
  if (!s.wan)
    return ["# No --wan: rules go to the default zone.", 'ZONE="$(firewall-cmd --get-default-zone)"'];
  return [
    `# Rich rules have no interface match: they apply through the zone ${s.wan} is bound to.`,
    `ZONE="$(firewall-cmd --permanent --get-zone-of-interface='${s.wan}' 2>/dev/null)" || ZONE="$(firewall-cmd --get-default-zone)"`,
  ];
}

/** Rich-rule element for a flow's protocol/port; `sport` matches the gateway's own port (outbound). */
function richElement(f: Flow, portAs: "port" | "source-port" = "port"): string {
  if ((f.protocol === "udp" || f.protocol === "tcp") && f.port !== undefined) {
    return `${portAs} port="${f.port}" protocol="${f.protocol}"`;
  }
  if (f.protocol === "esp" || f.protocol === "ah") return `protocol value="${f.protocol}"`;
  throw new TargetError(`flow ${f.id}: protocol ${f.protocol} has no firewalld rich-rule element`);
}

/** One rich rule per peer (rich rules take a single source), or one without a source for any. */
function richRules(s: Scenario, f: Flow, element: string, peerSide: "source" | "destination"): string[] {
  const localSide = peerSide === "source" ? "destination" : "source";
  const local = s.local ? ` ${localSide} address="${formatPrefix(s.local)}"` : "";
  const peers: (Prefix | undefined)[] = f.peers.length ? dedupe(f.peers) : [undefined];
  return peers.map((p) => {
    const peer = p ? ` ${peerSide} address="${formatPrefix(p)}"` : "";
    // firewalld wants source before destination.
    const addrs = peerSide === "source" ? `${peer}${local}` : `${local}${peer}`;
    return `rule family="${fam(s)}"${addrs} ${element} accept`;
  });
}

function dedupe(peers: Prefix[]): Prefix[] {
  const seen = new Set<string>();
  return peers.filter((p) => {
    const k = formatPrefix(p);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const portOrProto = (f: Flow): string =>
  f.protocol === "esp" || f.protocol === "ah"
    ? `--add-protocol=${f.protocol}`
    : `--add-port=${f.port}/${f.protocol}`;
const ipsecKey = (f: Flow): string =>
  f.protocol === "esp" || f.protocol === "ah" ? f.protocol : `${f.protocol}/${f.port}`;

function gatewayPart(s: Scenario, flows: Flow[], opts: GenerateOptions): string[] {
  const out = ["# === Part 1: this gateway ===", ...zoneLookup(s)];
  if (opts.defaultDrop) {
    out.push(
      "# Default drop: firewalld already accepts loopback and established/related traffic before the zone's",
      "# rules. Services the zone already allows (e.g. ssh) stay open: review with --list-all.",
      `${FW} --set-target=DROP`,
    );
  }
  const plain = flows.filter(
    (f) => f.action === "accept" && f.condition === undefined && f.protocol !== "fragment",
  );
  const unrestricted = !s.local && plain.every((f) => f.peers.length === 0);
  const keys = plain.map(ipsecKey).sort();
  if (unrestricted && keys.join(" ") === [...IPSEC_SERVICE].sort().join(" ")) {
    out.push(
      ...plain.map(why),
      "# Exactly what the predefined ipsec service opens (ah, esp, udp 500/4500, tcp 4500):",
    );
    out.push(`${FW} --add-service=ipsec`);
  } else {
    for (const f of plain) {
      out.push(why(f));
      if (unrestricted) out.push(`${FW} ${portOrProto(f)}`);
      else
        for (const r of richRules(s, f, richElement(f), "source")) out.push(`${FW} --add-rich-rule='${r}'`);
    }
  }
  for (const f of flows.filter((x) => x.protocol === "fragment")) {
    out.push(
      why(f),
      "# No rule: firewalld always uses conntrack, which reassembles fragments before filtering, so the",
      "# reassembled IKE packet is matched by the UDP 500 rule above.",
    );
  }
  const l2tp = flows.filter((f) => f.condition === "ipsec" || f.condition === "no-ipsec");
  if (l2tp.length > 0) out.push(...l2tpRules(s, l2tp));
  if (flows.some((f) => f.condition === "non-first-fragment" && f.protocol !== "fragment")) {
    throw new TargetError("firewalld cannot match fragments of a specific protocol");
  }
  return out;
}

/**
 * firewalld has no IPsec policy match (iptables -m policy / nft meta ipsec): only the deprecated direct
 * interface can say "UDP 1701 only via IPsec". With the nftables backend an iptables ACCEPT does not
 * bypass firewalld's own rules, while an iptables DROP is final (Fedora 32 release notes, "firewalld now
 * uses nftables"): so the zone opens 1701 and the direct rules decide by IPsec policy.
 */
function l2tpRules(s: Scenario, flows: Flow[]): string[] {
  const ipv = fam(s);
  const out = [
    "# firewalld cannot express an IPsec policy match; L2TP uses the direct interface, which is deprecated",
    "# (firewalld.direct(5)) and needs iptables with xt_policy. Direct rules run before the zone; with the",
    "# nftables backend a direct ACCEPT still passes through the zone, a direct DROP is final.",
  ];
  for (const f of flows.filter((x) => x.action === "drop")) {
    const pol = f.condition === "no-ipsec" ? "none" : "ipsec";
    out.push(
      why(f),
      `firewall-cmd --permanent --direct --add-rule ${ipv} filter INPUT 0 -p ${f.protocol} --dport ${f.port} -m policy --dir in --pol ${pol} -j DROP`,
    );
  }
  for (const f of flows.filter((x) => x.action === "accept")) {
    if (f.condition !== "ipsec" || f.port === undefined) {
      throw new TargetError(`flow ${f.id}: firewalld can only express the IPsec condition for a port`);
    }
    const iface = s.wan ? ` -i ${s.wan}` : "";
    const dst = s.local ? ` -d ${formatPrefix(s.local)}` : "";
    const srcs = f.peers.length ? dedupe(f.peers).map((p) => ` -s ${formatPrefix(p)}`) : [""];
    out.push(why(f));
    for (const src of srcs) {
      out.push(
        `firewall-cmd --permanent --direct --add-rule ${ipv} filter INPUT 1${iface}${src}${dst} -p ${f.protocol} --dport ${f.port} -m policy --dir in --pol ipsec -j ACCEPT`,
      );
    }
    out.push(
      "# Open it in the zone too (needed with the nftables backend); the direct DROP above keeps plain L2TP out.",
    );
    for (const r of richRules(s, f, richElement(f), "source")) out.push(`${FW} --add-rich-rule='${r}'`);
  }
  return out;
}

function egressPart(s: Scenario, flows: Flow[]): string[] {
  const P = `firewall-cmd --permanent --policy=${FIREWALLD_EGRESS_POLICY}`;
  const out = [
    "",
    "# Outbound flows. firewalld filters output only through policies from the HOST zone; these accepts",
    "# matter where such a policy restricts output: this policy must come first (lower priority number).",
    `firewall-cmd --permanent --info-policy=${FIREWALLD_EGRESS_POLICY} >/dev/null 2>&1 || firewall-cmd --permanent --new-policy=${FIREWALLD_EGRESS_POLICY}`,
    `${P} --add-ingress-zone=HOST`,
    `${P} --add-egress-zone=ANY`,
    `${P} --set-priority=-100`,
  ];
  for (const f of flows) {
    if (f.condition === "ipsec") {
      out.push(...egressIpsecRules(s, f));
      continue;
    }
    // The gateway sends IKE/NAT-T from its own port; a peer behind NAT listens on a mapped port instead.
    const elements =
      f.port === undefined
        ? [richElement(f)]
        : f.protocol === "udp"
          ? [richElement(f, "source-port")]
          : [richElement(f), richElement(f, "source-port")];
    out.push(why(f));
    for (const el of elements) {
      for (const r of richRules(s, f, el, "destination")) out.push(`${P} --add-rich-rule='${r}'`);
    }
  }
  if (flows.length === 0) out.push("# (no outbound flows in this plan)");
  return out;
}

/**
 * An outbound flow allowed only through IPsec (L2TP from the server): as for inbound L2TP, only the
 * direct interface has the IPsec policy match; the direct DROP of plain packets is final.
 */
function egressIpsecRules(s: Scenario, f: Flow): string[] {
  if (f.port === undefined)
    throw new TargetError(`flow ${f.id}: firewalld can only express the IPsec condition for a port`);
  const ipv = fam(s);
  const iface = s.wan ? ` -o ${s.wan}` : "";
  const src = s.local ? ` -s ${formatPrefix(s.local)}` : "";
  const dsts = f.peers.length ? dedupe(f.peers).map((p) => ` -d ${formatPrefix(p)}`) : [""];
  return [
    why(f),
    `firewall-cmd --permanent --direct --add-rule ${ipv} filter OUTPUT 0 -p ${f.protocol} --sport ${f.port} -m policy --dir out --pol none -j DROP`,
    ...dsts.map(
      (dst) =>
        `firewall-cmd --permanent --direct --add-rule ${ipv} filter OUTPUT 1${iface}${src}${dst} -p ${f.protocol} --sport ${f.port} -m policy --dir out --pol ipsec -j ACCEPT`,
    ),
    "# And in the egress policy (needed with the nftables backend); the direct DROP above keeps plain L2TP in.",
    ...richRules(s, f, richElement(f, "source-port"), "destination").map(
      (r) => `firewall-cmd --permanent --policy=${FIREWALLD_EGRESS_POLICY} --add-rich-rule='${r}'`,
    ),
  ];
}

function natDevicePart(s: Scenario, flows: Flow[]): string[] {
  const local = formatPrefix(s.local!);
  const out = [
    "# === Part 2: the NAT device in front of the gateway — run THERE, with `nat-device` ===",
    `# Forwards IKE/NAT-T to the gateway at ${local}. ESP/AH are not forwarded: NAT-T carries ESP in UDP 4500.`,
    "# --wan names the gateway's interface, not this device's: set ZONE to the zone of this device's WAN.",
    'ZONE="$(firewall-cmd --get-default-zone)"',
    "# Forwarding to another host needs IP forwarding, which firewalld turns on with masquerading.",
    `${FW} --query-masquerade >/dev/null || echo "tunnelcheck: zone $ZONE does not masquerade; enable IP forwarding" >&2`,
  ];
  for (const f of flows) {
    if ((f.protocol !== "udp" && f.protocol !== "tcp") || f.port === undefined) {
      throw new TargetError(`flow ${f.id}: only UDP/TCP ports can be forwarded`);
    }
    out.push(why(f));
    const pub = s.publicAddress ? ` destination address="${formatPrefix(s.publicAddress)}"` : "";
    if (f.peers.length === 0 && !pub && s.family === 4) {
      out.push(
        `${FW} --add-forward-port=port=${f.port}:proto=${f.protocol}:toport=${f.port}:toaddr=${local}`,
      );
      continue;
    }
    const peers: (Prefix | undefined)[] = f.peers.length ? dedupe(f.peers) : [undefined];
    for (const p of peers) {
      const src = p ? ` source address="${formatPrefix(p)}"` : "";
      const rule = `rule family="${fam(s)}"${src}${pub} forward-port port="${f.port}" protocol="${f.protocol}" to-port="${f.port}" to-addr="${local}"`;
      out.push(`${FW} --add-rich-rule='${rule}'`);
    }
  }
  return out;
}
