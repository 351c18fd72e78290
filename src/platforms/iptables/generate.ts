import type { FixSite } from "../../analysis/findings.js";
import { formatPrefix, type Prefix } from "../../model/address.js";
import { activeFlows, type Flow, type Plan } from "../../vpn/flows.js";
import type { Scenario } from "../../vpn/scenario.js";
import { type GenerateOptions, peerList } from "../types.js";

type Format = "commands" | "restore";
type Table = "filter" | "nat";

const CHAIN_BASE = "TC-BASE-IN";
const CHAIN_IN = "TC-IPSEC-IN";
const CHAIN_OUT = "TC-IPSEC-OUT";
const CHAIN_DNAT = "TC-IPSEC-DNAT";
const CHAIN_FWD = "TC-IPSEC-FWD";
/** Lines for the NAT device are commented out with this prefix, so loading the file on the gateway skips them. */
const NAT_DEVICE_PREFIX = "#@nat-device ";
const JUMP_TAG = "jump";
const WRAP = 100;

type Item = { comment: string } | { rule: string[] };

interface Chain {
  table: Table;
  name: string;
  /** Built-in chain that jumps here; the jump is inserted at position 1 so existing rules cannot shadow it. */
  from: string;
  items: Item[];
}

interface Part {
  chains: Chain[];
  /** Built-in chain policies to set (only with --default-drop). */
  policies: { table: Table; chain: string; policy: "DROP" }[];
}

/** Renders the plan as iptables / ip6tables commands or as an `iptables-restore --noflush` file. */
export function generateIptables(
  plan: Plan,
  opts: GenerateOptions & {
    format: "commands" | "restore";
    /** A fix for the plan's one outbound flow, stopped at these places (the audit's FixSite). */
    outboundSites?: FixSite[];
  },
): string {
  const only = plan.flows[0];
  if (opts.outboundSites && plan.flows.length === 1 && only?.direction === "outbound") {
    const { outboundSites, ...rest } = opts;
    return outboundFix(plan, only, outboundSites, rest);
  }
  const s = plan.scenario;
  const flows = activeFlows(plan, { requiredOnly: opts.requiredOnly });
  const bin = s.family === 6 ? "ip6tables" : "iptables";
  const gatewayFlows = flows.filter((f) => f.location === "gateway");
  const natFlows = flows.filter((f) => f.location === "nat-device");

  const gateway: Part = { chains: [], policies: [] };
  const inbound = gatewayFlows.filter((f) => f.direction === "inbound");
  // With --default-drop the base chain's ESTABLISHED accept comes first: the drops must precede it.
  const drops = opts.defaultDrop
    ? inbound.filter((f) => f.action === "drop" && f.protocol !== "fragment")
    : [];
  if (opts.defaultDrop) {
    gateway.chains.push(baseChain(s, drops));
    gateway.policies.push({ table: "filter", chain: "INPUT", policy: "DROP" });
  }
  const inChain = inboundChain(
    s,
    inbound.filter((f) => !drops.includes(f)),
  );
  // An outbound-only fix has no inbound flow: no empty TC-IPSEC-IN and no jump to it.
  const withInbound = inbound.length > 0 || opts.defaultDrop;
  if (withInbound) gateway.chains.push(inChain);
  if (opts.egress)
    gateway.chains.push(
      outboundChain(
        s,
        gatewayFlows.filter((f) => f.direction === "outbound"),
      ),
    );

  const out: string[] = [];
  out.push(...header(plan, opts, bin, withInbound));
  out.push(...skipped(plan, flows, "gateway"));
  out.push(...render(gateway, opts.format, bin, opts.additive === true), "");

  // Present whenever the plan has NAT-device flows, even if none is active, to say what is not forwarded.
  if (plan.flows.some((f) => f.location === "nat-device")) {
    out.push(...natDevicePart(plan, natFlows, opts.format, bin));
  }
  return `${trimNewlines(out.join("\n"))}\n`;
}

// ---------------------------------------------------------------------------------------------
// Chains

function baseChain(s: Scenario, drops: Flow[]): Chain {
  const items: Item[] = [];
  if (drops.length > 0) {
    items.push({
      comment: "Plain L2TP before the conntrack accept: a conntrack entry carries no IPsec state, so a",
    });
    items.push({
      comment: "cleartext packet of an L2TP flow that came in over IPsec would pass as ESTABLISHED.",
    });
    for (const f of drops) items.push(...flowItems(s, f));
  }
  items.push(
    { comment: "Loopback, replies to this host's own traffic and related ICMP come first: with policy DROP" },
    { comment: "nothing else would let them in." },
    { rule: ["-i", "lo", ...tag("base-loopback"), "-j", "ACCEPT"] },
    {
      rule: [
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        ...tag("base-established"),
        "-j",
        "ACCEPT",
      ],
    },
  );
  if (s.family === 6) {
    // Conntrack classifies neighbour discovery as INVALID, so it must be accepted before that drop.
    items.push({
      comment:
        "IPv6 neighbour discovery (RFC 4861: router/neighbour solicitation and advertisement, hop limit",
    });
    items.push({
      comment: "255 = on-link only); without it nobody can resolve this host's link-layer address.",
    });
    for (const type of [133, 134, 135, 136]) {
      items.push({
        rule: [
          "-p",
          "ipv6-icmp",
          "-m",
          "icmp6",
          "--icmpv6-type",
          String(type),
          "-m",
          "hl",
          "--hl-eq",
          "255",
        ].concat(tag("base-ndp"), ["-j", "ACCEPT"]),
      });
    }
    items.push({
      comment:
        "MLD (RFC 4890 §4.4.1: must not be dropped; link-local only): without it, MLD-snooping switches stop",
    });
    items.push({
      comment: "forwarding this host's solicited-node multicast, and neighbour discovery with it.",
    });
    for (const type of [130, 131, 132, 143]) {
      items.push({
        rule: ["-s", "fe80::/10", "-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", String(type)].concat(
          tag("base-mld"),
          ["-j", "ACCEPT"],
        ),
      });
    }
  }
  items.push({
    comment: "Packets conntrack cannot place (bogus TCP flags, out-of-window, stray ICMP errors).",
  });
  items.push({ rule: ["-m", "conntrack", "--ctstate", "INVALID", ...tag("base-invalid"), "-j", "DROP"] });
  return { table: "filter", name: CHAIN_BASE, from: "INPUT", items };
}

function inboundChain(s: Scenario, flows: Flow[]): Chain {
  const items: Item[] = [];
  // Drops first (plain L2TP), then accepts; fragment rules last because the IPv6 one RETURNs first fragments.
  const frag = flows.filter((f) => f.protocol === "fragment");
  const ordered = [
    ...flows.filter((f) => f.action === "drop" && f.protocol !== "fragment"),
    ...flows.filter((f) => f.action === "accept" && f.protocol !== "fragment"),
    ...frag,
  ];
  for (const f of ordered) {
    if (f.protocol === "fragment") {
      items.push(...flowComments(f), ...fragmentRules(s, f));
      continue;
    }
    items.push(...flowItems(s, f));
  }
  return { table: "filter", name: CHAIN_IN, from: "INPUT", items };
}

/** An inbound flow's comments and its rule per source. */
function flowItems(s: Scenario, f: Flow): Item[] {
  const items = flowComments(f);
  // What follows the source is the same for every peer (a hub has a thousand).
  const rest = [...addrs(undefined, s.local, s.wan, "-i"), ...match(s, f, "in"), ...tag(f.id), ...verdict(f)];
  for (const src of sources(f.peers)) items.push({ rule: src ? ["-s", formatPrefix(src), ...rest] : rest });
  return items;
}

function fragmentRules(s: Scenario, f: Flow): Item[] {
  const items: Item[] = [];
  if (s.family === 4) {
    items.push({
      comment:
        "Linux reassembles IPv4 before INPUT, so here -f is normally a no-op (the reassembled datagram",
    });
    items.push({
      comment:
        "meets the UDP rules above); harmless, and right wherever fragments are filtered unreassembled.",
    });
    for (const src of sources(f.peers)) {
      items.push({ rule: [...addrs(src, s.local, s.wan, "-i"), "-f", ...tag(f.id), ...verdict(f)] });
    }
    return items;
  }
  // ip6tables cannot match "offset > 0" directly: hand first fragments (which carry the UDP header and were
  // judged by the port rules above) back to INPUT, then accept the remaining fragments.
  items.push({
    comment: "First fragments carry the transport header: the port rules above already judged them, so",
  });
  items.push({ comment: "return them to INPUT instead of accepting every first fragment from the peer." });
  items.push({
    rule: [
      ...addrs(undefined, s.local, s.wan, "-i"),
      "-m",
      "frag",
      "--fragfirst",
      ...tag(f.id),
      "-j",
      "RETURN",
    ],
  });
  for (const src of sources(f.peers)) {
    items.push({ rule: [...addrs(src, s.local, s.wan, "-i"), "-m", "frag", ...tag(f.id), ...verdict(f)] });
  }
  return items;
}

function outboundChain(s: Scenario, flows: Flow[]): Chain {
  const items: Item[] = [
    {
      comment:
        "UDP/TCP rules match the port on either side (multiport --ports): the IKE daemon sends from its",
    },
    { comment: "own port 500/4500, while a NATed peer's port is arbitrary." },
  ];
  for (const f of flows) {
    items.push(...flowComments(f));
    for (const dst of sources(f.peers)) {
      items.push({
        rule: [...outAddrs(dst, s.local, s.wan), ...match(s, f, "out"), ...tag(f.id), ...verdict(f)],
      });
    }
  }
  return { table: "filter", name: CHAIN_OUT, from: "OUTPUT", items };
}

function natDevicePart(plan: Plan, flows: Flow[], format: Format, bin: string): string[] {
  const s = plan.scenario;
  const lines = [
    "# ==================================================================================================",
    "# PART 2: run on the NAT device in front of the gateway, NOT on the gateway.",
    "# ==================================================================================================",
  ];
  const notForwarded = plan.flows.filter((f) => f.location === "nat-device" && !flows.includes(f));
  const notes = notForwarded.flatMap((f) => wrap(`Not forwarded: ${f.id} (${f.requirement}). ${f.reason}`));
  if (!s.local) {
    lines.push(...notes);
    const ports = flows.map((f) => `${f.protocol.toUpperCase()} ${f.port}`).join(", ");
    lines.push(
      ...wrap(
        `Cannot write the port forwards: the scenario has no --local (the gateway's address behind the NAT device). ` +
          `Forward ${ports} from the NAT device's public address to the gateway, or re-run with --local.`,
      ),
    );
    return lines;
  }
  const extract = format === "restore" ? `${bin}-restore --noflush` : "sh";
  lines.push(
    `# Every line of this part starts with "${NAT_DEVICE_PREFIX.trim()}", so loading this file on the gateway skips it.`,
    "# On the NAT device, apply it with:",
    `#   sed -n 's/^${NAT_DEVICE_PREFIX}//p' THIS_FILE | ${extract}`,
    "# Port forwards (DNAT) to the gateway, plus FORWARD accepts for exactly the DNATed flows.",
    ...notes,
  );
  lines.push("# Replies from the gateway pass the device's usual RELATED,ESTABLISHED accept in FORWARD.");
  if (s.wan) {
    lines.push(
      `# -i ${s.wan}: assumes the NAT device's outside interface is also named ${s.wan}; adjust if not.`,
    );
  } else if (!s.publicAddress) {
    const ports = flows.map((f) => `${f.protocol.toUpperCase()} ${f.port}`).join(", ");
    lines.push(
      ...wrap(
        `Neither --public nor --wan is set, so these DNAT rules also catch ${ports} that hosts behind the NAT ` +
          "device send out (e.g. to another VPN). Give --public.",
      ),
    );
  }
  const to = formatPrefix(s.local);
  const dnat: Item[] = [];
  const fwd: Item[] = [];
  for (const f of flows) {
    dnat.push(...flowComments(f));
    fwd.push({ comment: `${f.id}: let through what ${CHAIN_DNAT} forwarded to the gateway.` });
    for (const src of sources(f.peers)) {
      dnat.push({
        rule: [
          ...addrs(src, s.publicAddress, s.wan, "-i"),
          ...match(s, f, "in"),
          ...tag(f.id),
          "-j",
          "DNAT",
        ].concat(["--to-destination", to]),
      });
      fwd.push({
        rule: [...addrs(src, s.local, s.wan, "-i"), ...match(s, f, "in")].concat(
          ["-m", "conntrack", "--ctstate", "DNAT"],
          tag(f.id),
          ["-j", "ACCEPT"],
        ),
      });
    }
  }
  const part: Part = {
    chains: [
      { table: "nat", name: CHAIN_DNAT, from: "PREROUTING", items: dnat },
      { table: "filter", name: CHAIN_FWD, from: "FORWARD", items: fwd },
    ],
    policies: [],
  };
  for (const line of render(part, format, bin)) lines.push(`${NAT_DEVICE_PREFIX}${line}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Matches

const sources = (peers: Prefix[]): (Prefix | undefined)[] => (peers.length > 0 ? peers : [undefined]);

function addrs(
  src: Prefix | undefined,
  dst: Prefix | undefined,
  iface: string | undefined,
  ifFlag: string,
): string[] {
  return [
    ...(src ? ["-s", formatPrefix(src)] : []),
    ...(dst ? ["-d", formatPrefix(dst)] : []),
    ...(iface ? [ifFlag, iface] : []),
  ];
}

function outAddrs(peer: Prefix | undefined, local: Prefix | undefined, iface: string | undefined): string[] {
  return [
    ...(local ? ["-s", formatPrefix(local)] : []),
    ...(peer ? ["-d", formatPrefix(peer)] : []),
    ...(iface ? ["-o", iface] : []),
  ];
}

function match(s: Scenario, f: Flow, dir: "in" | "out"): string[] {
  const policy =
    f.condition === "ipsec"
      ? ["-m", "policy", "--dir", dir, "--pol", "ipsec"]
      : f.condition === "no-ipsec"
        ? ["-m", "policy", "--dir", dir, "--pol", "none"]
        : [];
  switch (f.protocol) {
    case "udp":
    case "tcp": {
      if (f.port === undefined) return ["-p", f.protocol, ...policy];
      const port =
        dir === "in"
          ? ["-m", f.protocol, "--dport", String(f.port)]
          : ["-m", "multiport", "--ports", String(f.port)];
      return ["-p", f.protocol, ...policy, ...port];
    }
    case "esp":
      return ["-p", "esp", ...policy];
    case "ah":
      // AH is an IPv6 extension header: legacy ip6tables' -p never sees it ("never matched protocol"); -m ah does.
      return s.family === 6 ? ["-m", "ah", ...policy] : ["-p", "ah", ...policy];
    case "fragment":
      return s.family === 6 ? ["-m", "frag", ...policy] : ["-f", ...policy];
  }
}

const tag = (id: string): string[] => ["-m", "comment", "--comment", `"tunnelcheck: ${id}"`];
const verdict = (f: Flow): string[] => ["-j", f.action === "accept" ? "ACCEPT" : "DROP"];

// ---------------------------------------------------------------------------------------------
// Comments

function flowComments(f: Flow): Item[] {
  const rfcs = f.rfcs.length > 0 ? ` (${f.rfcs.join(", ")})` : "";
  const text = `[${f.requirement}] ${f.id}: ${f.reason}${rfcs}`;
  const lines = wrap(text).map((l) => ({ comment: l.replace(/^# ?/, "") }));
  if (f.requirement === "optional") {
    lines.push({ comment: "Optional (why: see above): included by default; --required-only leaves it out." });
  }
  const who = f.direction === "inbound" ? "from" : "to";
  if (f.peers.length > 0) lines.push({ comment: `Only ${who}: ${peerList(f.peers)}.` });
  return lines;
}

function skipped(plan: Plan, active: Flow[], location: Flow["location"]): string[] {
  const lines: string[] = [];
  for (const f of plan.flows) {
    if (f.location !== location || active.includes(f)) continue;
    if (f.requirement === "not-needed") lines.push(...wrap(`Not opened: ${f.id}. ${f.reason}`));
    else lines.push(...wrap(`Left out (optional, --required-only): ${f.id}. ${f.reason}`));
  }
  return lines;
}

function wrap(text: string): string[] {
  // Keep "RFC 7296" on one line.
  const words = text
    .replace(/RFC (\d)/g, "RFC\u00a0$1")
    .split(/[ \t\n]+/) // not \s: it would split at the no-break space
    .map((w) => w.replace("\u00a0", " "));
  const lines: string[] = [];
  let cur = "#";
  for (const w of words) {
    if (cur.length + 1 + w.length > WRAP && cur !== "#") {
      lines.push(cur);
      cur = "#  ";
    }
    cur += ` ${w}`;
  }
  lines.push(cur);
  return lines;
}

/** `# peers: …; local: …; wan: …`, the second line of every header. */
const endpointsLine = (s: Scenario): string =>
  `# peers: ${peerList(s.peers)}; local: ${s.local ? formatPrefix(s.local) : "(any)"}; wan: ${s.wan ?? "(any)"}`;

function header(
  plan: Plan,
  opts: GenerateOptions & { format: Format },
  bin: string,
  withInbound = true,
): string[] {
  const s = plan.scenario;
  const lines = [
    `# tunnelcheck: ${bin} rules for ${s.vpn}, IKEv${s.ike}, NAT ${s.nat}, IPv${s.family}` +
      `${s.ah ? ", AH" : ""}${s.encap ? ", forced UDP encapsulation" : ""}${s.mobike ? ", MOBIKE" : ""}` +
      `${s.ikeTcp ? ", IKE over TCP" : ""}`,
    `${endpointsLine(s)}${s.publicAddress ? `; NAT device public address: ${formatPrefix(s.publicAddress)}` : ""}`,
  ];
  if (!withInbound) {
    lines.push(
      `# Outbound only: these rules add to ${CHAIN_OUT}, jumped to from the top of OUTPUT; a rule or jump`,
      "#   already there is not added again. Packets they do not match return to OUTPUT unchanged.",
      "",
    );
    return lines;
  }
  if (opts.format === "restore") {
    lines.push(
      `# PART 1: apply on the VPN gateway with: ${bin}-restore --noflush < THIS_FILE`,
      "#   --noflush keeps your existing rules (without it every table in this file is replaced).",
      `#   Re-applying refills ${CHAIN_IN} but adds another jump from INPUT; remove extras with`,
      `#   ${bin} -D INPUT -m comment --comment "tunnelcheck: ${JUMP_TAG}" -j ${CHAIN_IN}`,
    );
  } else if (opts.additive) {
    lines.push(
      `# Run on the VPN gateway (as root), or paste the lines. They add to ${CHAIN_IN} without flushing it,`,
      "#   so the fixes of several findings add up; a rule or jump already there is not added again.",
    );
  } else {
    lines.push(
      `# PART 1: run on the VPN gateway (as root): sh THIS_FILE, or paste the lines. Re-running is safe:`,
      "#   chains are flushed and refilled, jumps are only added when missing.",
    );
  }
  lines.push(
    `# The VPN rules live in ${CHAIN_IN}, jumped to from the top of INPUT, so they work on top of an existing`,
    "# ruleset; packets they do not match return to INPUT unchanged.",
    "# Inbound accepts take NEW packets, not only replies: the peer starts rekeys, DPD and DELETE on its own,",
    "# and a firewall that only admits replies silently breaks the tunnel once its state expires (seed 001).",
  );
  if (opts.defaultDrop) {
    lines.push(
      `# --default-drop: INPUT policy becomes DROP; ${CHAIN_BASE} (loopback, established/related, invalid)`,
      `# runs before ${CHAIN_IN}.${opts.format === "commands" ? " The policy is set last, once the accepts are in place." : ""}`,
    );
  } else {
    lines.push("# Policies are not changed: these rules only add accepts (and drops for plain L2TP).");
  }
  if (opts.egress)
    lines.push(`# --egress: outbound VPN traffic is accepted in ${CHAIN_OUT}, jumped to from OUTPUT.`);
  for (const n of plan.notes) lines.push(...wrap(`Note: ${n}`));
  lines.push("");
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render(part: Part, format: Format, bin: string, additive = false): string[] {
  return format === "restore" ? renderRestore(part) : renderCommands(part, bin, additive);
}

function renderRestore(part: Part): string[] {
  const out: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    const chains = part.chains.filter((c) => c.table === table);
    if (chains.length === 0) continue;
    out.push(`*${table}`);
    for (const p of part.policies.filter((x) => x.table === table)) out.push(`:${p.chain} ${p.policy} [0:0]`);
    for (const c of chains) out.push(`:${c.name} - [0:0]`);
    for (const c of chains) {
      for (const it of c.items)
        out.push("comment" in it ? `# ${it.comment}` : `-A ${c.name} ${it.rule.join(" ")}`);
    }
    // Inserting at position 1 in reverse order leaves the jumps in chain order at the top of each built-in chain.
    for (const c of [...chains].reverse()) out.push(`-I ${c.from} 1 ${tag(JUMP_TAG).join(" ")} -j ${c.name}`);
    out.push("COMMIT");
  }
  return out;
}

/** `additive`: never flush; a rule is appended only when `-C` does not find it already. */
function renderCommands(part: Part, bin: string, additive: boolean): string[] {
  const out: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    const chains = part.chains.filter((c) => c.table === table);
    if (chains.length === 0) continue;
    const ipt = table === "filter" ? bin : `${bin} -t ${table}`;
    for (const c of chains) {
      out.push(`${ipt} -N ${c.name} 2>/dev/null || ${additive ? "true" : `${ipt} -F ${c.name}`}`);
      for (const it of c.items) {
        if ("comment" in it) out.push(`# ${it.comment}`);
        else if (additive) {
          const spec = `${c.name} ${it.rule.join(" ")}`;
          out.push(`${ipt} -C ${spec} 2>/dev/null || ${ipt} -A ${spec}`);
        } else out.push(`${ipt} -A ${c.name} ${it.rule.join(" ")}`);
      }
    }
    // Jumps are added only when missing, so re-running the script changes nothing.
    for (const c of [...chains].reverse()) {
      const spec = `${tag(JUMP_TAG).join(" ")} -j ${c.name}`;
      out.push(`${ipt} -C ${c.from} ${spec} 2>/dev/null || ${ipt} -I ${c.from} 1 ${spec}`);
    }
    for (const p of part.policies.filter((x) => x.table === table))
      out.push(`${ipt} -P ${p.chain} ${p.policy}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Outbound fixes where the packet is stopped

/**
 * The fix for one outbound flow stopped outside the filter table (raw, mangle, nat, security
 * OUTPUT; POSTROUTING): an ACCEPT inserted before the stopping rule in its own table and chain
 * (it ends only that table's walk; the packet goes on to the next table), or, where an inserted
 * rule cannot help, the rule to remove or narrow. A stop in filter gets the usual TC-IPSEC-OUT
 * accepts, and nothing inbound.
 *
 * Commands: each site's accept carries its own comment (so `-C` checks that site, not another
 * site's same accept), and its position is looked up when the command runs: just before the
 * stopping rule, counted among the rules tunnelcheck did not add (FixSite.nth). The fixes of
 * several findings, applied one after another in any order, or again, then all land where they
 * were meant to. Restore lines cannot look anything up: their positions are those of the ruleset
 * as audited, later positions first.
 */
function outboundFix(
  plan: Plan,
  flow: Flow,
  sites: FixSite[],
  opts: GenerateOptions & { format: Format },
): string {
  const s = plan.scenario;
  const bin = s.family === 6 ? "ip6tables" : "iptables";
  const one: Plan = { ...plan, flows: [flow], notes: [] };
  const filter = sites.some((x) => x.table === "filter");
  const out: string[] = [];
  if (filter) out.push(trimNewlines(generateIptables(one, { ...opts, egress: true })), "");
  else {
    out.push(`# tunnelcheck: ${bin} fix for ${flow.id} (${s.vpn}, IPv${s.family})`, endpointsLine(s));
  }
  const here = sites.filter((x) => x.table !== "filter");
  if (here.some((x) => !x.cannot && x.at !== null))
    out.push(
      ...wrap(
        opts.format === "restore"
          ? `Insert positions are those of the ruleset as audited (later positions first): load this file into that ruleset as it was, not after another fix that inserts into the same chains; the ${bin} commands form looks each position up when it runs.`
          : `Each ACCEPT goes just before the stopping rule: its position is looked up when the command runs, counting the chain's rules without those tunnelcheck added, so the fixes of several findings can be applied one after another in any order (or again). If the chain no longer has that rule, nothing is inserted and a message says so: audit again.`,
      ),
    );
  const rules = (x: FixSite) =>
    sources(flow.peers).map((dst) => [
      ...outAddrs(dst, s.local, s.wan),
      ...match(s, flow, "out"),
      ...tag(
        `${flow.id} ${x.at === null ? "at the end of" : `before rule ${x.nth ?? x.at} of`} ${x.table} ${x.chain}`,
      ),
      "-j",
      "ACCEPT",
    ]);
  // Later positions first: in restore lines an insert must not shift a position still to come.
  here.sort((a, b) =>
    a.table !== b.table
      ? a.table.localeCompare(b.table)
      : a.chain !== b.chain
        ? a.chain.localeCompare(b.chain)
        : (b.at ?? Number.MAX_SAFE_INTEGER) - (a.at ?? Number.MAX_SAFE_INTEGER),
  );
  const restore: Map<string, string[]> = new Map();
  const conntrack: string[] = [];
  for (const x of here) {
    const where = x.before ? `${x.before.file}:${x.before.line}` : `the end of ${x.table} ${x.chain}`;
    if (x.cannot) {
      out.push(
        ...wrap(
          `${flow.id} is stopped in ${x.table} ${x.chain} by ${where}${x.before ? ` (${x.before.text})` : ""}; no inserted rule can help: ${x.cannot}. Remove or narrow that rule so it no longer matches ${flow.id}. Further stops may follow on the path (not evaluated past this one): audit again once it is changed.`,
        ),
      );
      continue;
    }
    if (x.rewrite !== undefined) {
      out.push(
        ...wrap(
          `${flow.id} is rewritten by ${where}${x.before ? ` (${x.before.text})` : ""} in ${x.table} ${x.chain} and sent to ${x.rewrite} instead of the peer: accept it there first, before that rule (an ACCEPT in nat OUTPUT ends the nat walk, so the packet keeps its destination).`,
        ),
      );
      conntrack.push(...conntrackDelete(s, flow));
    } else
      out.push(
        ...wrap(
          `${flow.id} is stopped in ${x.table} ${x.chain} ${x.before ? `by ${where}` : "by its policy"}, where the filter table's accepts do not act: accept it there first (an ACCEPT ends only the ${x.table} table's walk; the packet goes on to the next table).`,
        ),
      );
    const ipt = `${bin} -t ${x.table}`;
    for (const r of rules(x)) {
      const spec = r.join(" ");
      if (opts.format === "restore") {
        const l = restore.get(x.table) ?? [];
        l.push(`${x.at === null ? `-A ${x.chain}` : `-I ${x.chain} ${x.at}`} ${spec}`);
        restore.set(x.table, l);
      } else if (x.at === null)
        out.push(`${ipt} -C ${x.chain} ${spec} 2>/dev/null || ${ipt} -A ${x.chain} ${spec}`);
      else {
        const k = x.nth ?? x.at;
        // `-S CHAIN`: its policy (or -N) line, then one line per rule, in order.
        const pos = `${ipt} -S ${x.chain} | awk -v k=${k} 'NR > 1 && !/tunnelcheck: / && ++c == k { print NR - 1; f = 1; exit } END { exit !f }'`;
        out.push(
          `${ipt} -C ${x.chain} ${spec} 2>/dev/null || { n=$(${pos}) && ${ipt} -I ${x.chain} "$n" ${spec}; } || echo "tunnelcheck: ${x.table} ${x.chain} has no rule ${k} (${where}) any more: ${flow.id} not inserted; audit again" >&2`,
        );
      }
    }
  }
  for (const [table, lines] of restore) out.push(`*${table}`, ...lines, "COMMIT");
  if (conntrack.length) {
    out.push(
      ...wrap(
        `nat sees only a connection's first packet: a connection already rewritten keeps its DNAT binding, and ${flow.id}'s conntrack entries are refreshed by every packet, so they never expire. Once the ACCEPT is in, delete them (conntrack-tools), and the next packet is NAT-evaluated afresh:`,
      ),
      ...[...new Set(conntrack)].map((c) => `${c} || true`),
    );
  }
  return `${trimNewlines(out.join("\n"))}\n`;
}

/** `conntrack -D` for the flow's connections to its peers (what a DNAT in nat OUTPUT bound). */
function conntrackDelete(s: Scenario, flow: Flow): string[] {
  const proto =
    flow.protocol === "udp" || flow.protocol === "tcp" || flow.protocol === "esp" || flow.protocol === "ah"
      ? flow.protocol
      : undefined;
  if (!proto) return [];
  return sources(flow.peers).map((dst) =>
    [
      "conntrack -D",
      ...(s.family === 6 ? ["-f ipv6"] : []),
      `-p ${proto}`,
      ...(s.local && isHost(s.local) ? [`--orig-src ${formatPrefix(s.local)}`] : []),
      ...(dst ? [`--orig-dst ${formatPrefix(dst)}`] : []),
      ...(flow.port !== undefined && (proto === "udp" || proto === "tcp")
        ? [`--orig-port-dst ${flow.port}`]
        : []),
    ].join(" "),
  );
}

/** The text without its trailing newlines (a regex scans a hub's 300 KB fix from every newline in it). */
function trimNewlines(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 10) end--;
  return s.slice(0, end);
}

const isHost = (p: Prefix): boolean => p.len === (p.family === 4 ? 32 : 128);
