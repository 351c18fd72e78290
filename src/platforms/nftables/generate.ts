import { type Family, formatPrefix, type Prefix } from "../../model/address.js";
import { activeFlows, type Flow, type Plan } from "../../vpn/flows.js";
import type { Scenario } from "../../vpn/scenario.js";
import { type GenerateOptions, scenarioSummary, TargetError } from "../types.js";

/**
 * Table names. The gateway table is `inet` (one base chain sees IPv4 and IPv6), one per plan family
 * (`inet tunnelcheck4`, `inet tunnelcheck6`): a dual-stack gateway loads both plans side by side.
 */
export const NFT_TABLE = "tunnelcheck";
export const NFT_NAT_TABLE = "tunnelcheck-nat";
/** Marker lines around the NAT-device part, so it can be cut out with sed. */
export const NFT_NAT_BEGIN = "# >>> nat-device";
export const NFT_NAT_END = "# <<< nat-device";

interface Ctx {
  s: Scenario;
  fam: Family;
  /** `ip` or `ip6`: address selector for the scenario's family. */
  sel: "ip" | "ip6";
  /** Named peer sets, keyed by their rendered element list. */
  sets: Map<string, { name: string; elements: string[] }>;
}

/**
 * Renders the plan as an `nft -f` file: table `inet tunnelcheck4|6` for this gateway and, when the gateway
 * sits behind NAT, a separately marked `ip(6) tunnelcheck-nat` table for the NAT device in front of it.
 */
export function generateNftables(plan: Plan, opts: GenerateOptions): string {
  const s = plan.scenario;
  const flows = activeFlows(plan, { requiredOnly: opts.requiredOnly });
  const ctx: Ctx = { s, fam: s.family, sel: s.family === 4 ? "ip" : "ip6", sets: new Map() };
  const table = `inet ${NFT_TABLE}${ctx.fam}`;
  for (const f of flows) checkFamily(ctx, f);

  const gw = flows.filter((f) => f.location === "gateway");
  const inbound = gw.filter((f) => f.direction === "inbound");
  const outbound = opts.egress ? gw.filter((f) => f.direction === "outbound") : [];
  const nat = flows.filter((f) => f.location === "nat-device");
  if (nat.length > 0 && !s.local) {
    throw new TargetError(
      "the gateway is behind NAT: give --local (its private address) so the NAT device's port forwards have a destination",
    );
  }

  const drops = inbound.filter((f) => f.action === "drop");
  const accepts = inbound.filter((f) => f.action === "accept");
  const inputRules = [...drops.map((f) => inboundRule(ctx, f)), ...accepts.map((f) => inboundRule(ctx, f))];
  const outputRules = outbound.flatMap((f) => outboundRules(ctx, f));

  const out: string[] = [
    "#!/usr/sbin/nft -f",
    `# tunnelcheck nftables rules — ${scenarioSummary(s)}`,
    `# Load with: nft -f <file>. Reloading replaces table ${table} (add-then-delete idiom).`,
    `# One plan per address family: the IPv${ctx.fam === 4 ? 6 : 4} plan's table (inet ${NFT_TABLE}${ctx.fam === 4 ? 6 : 4}) loads beside this one.`,
    ...plan.notes.map((n) => `# note: ${n}`),
  ];
  if (nat.length > 0) {
    out.push(
      "# This file has two parts. The second is for the NAT device in front of this gateway; extract it with:",
      `#   sed -n '/^${NFT_NAT_BEGIN}/,/^${NFT_NAT_END}/p' <file> > nat-device.nft`,
    );
  }
  out.push("", "# === Part 1: this gateway ===", `table ${table}`, `delete table ${table}`);
  out.push(`table ${table} {`);
  out.push(...setDefinitions(ctx));
  out.push("  chain input {");
  if (opts.defaultDrop) {
    out.push(
      `    # Default drop: any IPv${ctx.fam} not accepted here is dropped at the end of the chain, SSH included;`,
      "    # add management accepts first. A rule, not the chain policy: the chain is inet, and the IPv" +
        `${ctx.fam === 4 ? 6 : 4} plan's table decides for its own family.`,
      "    type filter hook input priority filter; policy accept;",
      '    iif "lo" accept comment "tunnelcheck: loopback"',
    );
  } else {
    out.push(
      "    # Additive (policy accept): the drops below are enforced, but an accept here cannot override a",
      "    # drop in another table (firewalld, iptables-nft, your own ruleset). If one filters input, copy",
      "    # these accepts into it, or generate with --default-drop to make this table the filter.",
      "    type filter hook input priority filter; policy accept;",
    );
  }
  for (const r of inputRules.slice(0, drops.length)) out.push(...r);
  if (opts.defaultDrop) {
    out.push(
      "    # Replies to what this host sent. Placed after the drops so a conntrack entry cannot admit plain L2TP.",
      '    ct state established,related accept comment "tunnelcheck: established"',
      ...(ctx.fam === 6
        ? [
            "    # Neighbour discovery is not connection-tracked; without it IPv6 neighbours cannot reach this host.",
            '    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept comment "tunnelcheck: ipv6-nd"',
            "    # MLD (RFC 4890 §4.4.1, link-local only): MLD-snooping switches need it to keep forwarding ND.",
            '    ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } accept comment "tunnelcheck: ipv6-mld"',
          ]
        : []),
    );
  }
  for (const r of inputRules.slice(drops.length)) out.push(...r);
  if (opts.defaultDrop)
    out.push(`    meta nfproto ipv${ctx.fam} counter drop comment "tunnelcheck: default-drop"`);
  out.push("  }");
  if (opts.egress) {
    out.push(
      "",
      "  chain output {",
      "    # Outbound flows. policy accept: like the input accepts, these only take effect where they are the",
      "    # filter; copy them into the chain that restricts output.",
      "    type filter hook output priority filter; policy accept;",
    );
    if (outputRules.length === 0) out.push("    # (no outbound flows in this plan)");
    for (const r of outputRules) out.push(...r);
    out.push("  }");
  }
  out.push("}");

  if (nat.length > 0) out.push("", ...natDevicePart(ctx, nat));
  return `${out.join("\n")}\n`;
}

function checkFamily(ctx: Ctx, f: Flow): void {
  for (const p of [
    ...f.peers,
    ...(ctx.s.local ? [ctx.s.local] : []),
    ...(ctx.s.publicAddress ? [ctx.s.publicAddress] : []),
  ]) {
    if (p.family !== ctx.fam) {
      throw new TargetError(
        `flow ${f.id}: address ${formatPrefix(p)} is not IPv${ctx.fam} like the scenario`,
      );
    }
  }
}

function setDefinitions(ctx: Ctx): string[] {
  // auto-merge: overlapping or duplicate peer prefixes would otherwise make the load fail.
  return [...ctx.sets.values()].flatMap((set) => [
    `  set ${set.name} {`,
    `    type ${ctx.fam === 4 ? "ipv4_addr" : "ipv6_addr"}; flags interval; auto-merge;`,
    `    elements = { ${set.elements.join(", ")} }`,
    "  }",
    "",
  ]);
}

/** nft's interface wildcard is `*`; the scenario uses iptables' `+`. */
const ifname = (wan: string): string => `"${wan.replace(/\+$/, "*")}"`;
const commentOf = (id: string): string => `comment "tunnelcheck: ${id.replace(/[^A-Za-z0-9_.:-]/g, "_")}"`;

/** `ip saddr @peers` (named set, shared by every flow with the same peers) or "" for any source. */
function addrMatch(ctx: Ctx, dir: "saddr" | "daddr", peers: Prefix[]): string {
  if (peers.length === 0) return "";
  const elements = [...new Set(peers.map((p) => formatPrefix(p)))];
  const key = elements.join(",");
  let set = ctx.sets.get(key);
  if (!set) {
    set = { name: ctx.sets.size === 0 ? "peers" : `peers_${ctx.sets.size + 1}`, elements };
    ctx.sets.set(key, set);
  }
  return `${ctx.sel} ${dir} @${set.name}`;
}

/** Protocol/port match; `portAs: "sport"` matches the gateway's own port as the source (outbound). */
function protoMatch(ctx: Ctx, f: Flow, portAs: "dport" | "sport"): string {
  if (f.protocol === "fragment" || f.condition === "non-first-fragment") {
    // Non-first fragments carry no L4 header: match on the fragment offset alone.
    return ctx.fam === 4 ? "ip frag-off & 0x1fff != 0" : "frag frag-off != 0";
  }
  if ((f.protocol === "udp" || f.protocol === "tcp") && f.port !== undefined)
    return `${f.protocol} ${portAs} ${f.port}`;
  if (f.protocol === "esp" || f.protocol === "ah" || f.protocol === "udp" || f.protocol === "tcp") {
    return `meta l4proto ${f.protocol}`;
  }
  if (f.protoNumber !== undefined) return `meta l4proto ${f.protoNumber}`;
  throw new TargetError(`flow ${f.id}: protocol ${f.protocol} has no nftables match`);
}

/** Inbound: the packet was decapsulated from an SA (secpath). Outbound: its route leads into an SA. */
function conditionMatch(f: Flow): string {
  const key = f.direction === "inbound" ? "meta ipsec" : "rt ipsec";
  if (f.condition === "ipsec") return `${key} exists`;
  if (f.condition === "no-ipsec") return `${key} missing`;
  return "";
}

function flowComments(f: Flow): string[] {
  const lines = [`# ${f.id}: ${f.reason}`];
  if (f.requirement === "optional") lines[0] = `# ${f.id} (optional): ${f.reason}`;
  return lines;
}

const join = (parts: string[]): string => parts.filter((p) => p !== "").join(" ");

/** Matches only the scenario's family when nothing else (address, family-specific header) does. */
function familyGuard(ctx: Ctx, parts: string[]): string {
  const specific = parts.some((p) => p.startsWith("ip ") || p.startsWith("ip6 ") || p.startsWith("frag "));
  return specific ? "" : `meta nfproto ipv${ctx.fam}`;
}

function inboundRule(ctx: Ctx, f: Flow): string[] {
  const isDrop = f.action === "drop";
  // Drops are not narrowed to the WAN, the local address or the family: drop wherever it arrives.
  const parts = [
    !isDrop && ctx.s.wan ? `iifname ${ifname(ctx.s.wan)}` : "",
    addrMatch(ctx, "saddr", f.peers),
    !isDrop && ctx.s.local ? `${ctx.sel} daddr ${formatPrefix(ctx.s.local)}` : "",
    conditionMatch(f),
    protoMatch(ctx, f, "dport"),
  ];
  if (!isDrop) parts.splice(1, 0, familyGuard(ctx, parts));
  const lines = flowComments(f);
  if (f.protocol === "fragment") {
    lines.push("# Only needed where conntrack is off: with it, the kernel reassembles before this hook.");
  }
  // No `ct state` match: the peer's packets must be accepted when new (seed 001).
  lines.push(`${join([...parts, "counter", isDrop ? "drop" : "accept", commentOf(f.id)])}`);
  return lines.map((l) => `    ${l}`);
}

function outboundRules(ctx: Ctx, f: Flow): string[][] {
  const base = [
    ctx.s.wan ? `oifname ${ifname(ctx.s.wan)}` : "",
    addrMatch(ctx, "daddr", f.peers),
    ctx.s.local ? `${ctx.sel} saddr ${formatPrefix(ctx.s.local)}` : "",
    conditionMatch(f),
  ];
  // The gateway sends IKE/NAT-T from its own port; a peer behind NAT listens on a mapped port, not f.port.
  // TCP either side opens: ours to the peer's port, or replies from our listening port.
  const variants: ("dport" | "sport")[] =
    f.port === undefined ? ["dport"] : f.protocol === "udp" ? ["sport"] : ["dport", "sport"];
  return variants.map((v) => {
    const parts = [...base, protoMatch(ctx, f, v)];
    parts.splice(1, 0, familyGuard(ctx, parts));
    const lines = flowComments(f);
    if (v === "sport") lines.push(`# Matched on this gateway's source port ${f.port}.`);
    lines.push(join([...parts, "counter", "accept", commentOf(f.id)]));
    return lines.map((l) => `    ${l}`);
  });
}

function natDevicePart(gwCtx: Ctx, flows: Flow[]): string[] {
  // Named sets belong to one table: the NAT table gets its own.
  const ctx: Ctx = { ...gwCtx, sets: new Map() };
  const s = ctx.s;
  const fam = ctx.fam === 4 ? "ip" : "ip6";
  const local = formatPrefix(s.local!);
  const pre: string[] = [];
  const fwd: string[] = [];
  for (const f of flows) {
    if ((f.protocol !== "udp" && f.protocol !== "tcp") || f.port === undefined) {
      throw new TargetError(`flow ${f.id}: only UDP/TCP ports can be forwarded by the NAT device`);
    }
    const src = addrMatch(ctx, "saddr", f.peers);
    const l4 = `${f.protocol} dport ${f.port}`;
    const why = flowComments(f).map((l) => `    ${l}`);
    pre.push(
      ...why,
      `    ${join([
        src,
        s.publicAddress ? `${ctx.sel} daddr ${formatPrefix(s.publicAddress)}` : "",
        l4,
        "counter",
        `dnat to ${local}`,
        commentOf(f.id),
      ])}`,
    );
    fwd.push(
      `    ${join([
        "ct status dnat",
        src,
        `${ctx.sel} daddr ${local}`,
        l4,
        "counter",
        "accept",
        commentOf(f.id),
      ])}`,
    );
  }
  return [
    NFT_NAT_BEGIN,
    "# === Part 2: the NAT device in front of this gateway — load this part THERE, not on the gateway ===",
    `# Forwards IKE/NAT-T to the gateway at ${local}. ESP/AH are not forwarded: NAT-T carries ESP in UDP 4500.`,
    "# --wan names the gateway's interface, not this device's, so rules match the public address instead.",
    "# Needs IP forwarding on (sysctl net.ipv4.ip_forward / net.ipv6.conf.all.forwarding) and the device's",
    "# existing outbound NAT; conntrack reverses the DNAT for the gateway's replies.",
    `table ${fam} ${NFT_NAT_TABLE}`,
    `delete table ${fam} ${NFT_NAT_TABLE}`,
    `table ${fam} ${NFT_NAT_TABLE} {`,
    ...setDefinitions(ctx),
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    ...pre,
    "  }",
    "",
    "  chain forward {",
    "    # Additive like part 1: if another table filters forwarding, copy these accepts into it.",
    "    type filter hook forward priority filter; policy accept;",
    ...fwd,
    "  }",
    "}",
    NFT_NAT_END,
  ];
}
