/**
 * What the host may send: a packet from one of its own addresses to a set of peers, along the
 * local-output path (raw → mangle → nat → filter → security OUTPUT, then mangle → nat POSTROUTING;
 * ../../analysis/iptables-path.ts). The peers are cut into the classes no address condition of
 * the rule set tells apart, and one representative of each is evaluated concretely: every peer of
 * a class gets the same verdict, by construction.
 */
import { type FixSite, type OutboundPart, type RuleRef, siteKey } from "../../analysis/findings.js";
import type { Packet } from "../../analysis/iptables-eval.js";
import {
  decisionName,
  evaluatePath,
  type PathOptions,
  type PathOutcome,
  type PathResult,
} from "../../analysis/iptables-path.js";
import { ruleRef } from "../../analysis/iptables-symbolic.js";
import { mergeParts, sweepAtoms } from "../../analysis/partition.js";
import type { OutboundQuery, VerdictPart } from "../../analysis/query.js";
import { formatAddress } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { cutsOf, PATHS, type PacketShape, rulesOn } from "./address-cuts.js";
import { BUILTIN_CHAINS, type Chain, type Hook, type Rule, type Ruleset, type TableName } from "./model.js";
import { protoName } from "./names.js";
import { parseIptables } from "./parse.js";

export interface LocalOutOptions {
  hostAddresses?: AddrSet;
  ipsets?: ReadonlyMap<string, AddrSet>;
  broadcast?: AddrSet;
}

// Classes come from one sweep and each is one concrete walk of the path: a hub with a rule per peer stays decided.
const MAX_CLASSES = 4096;

/** The chain line that set the deciding policy (`:OUTPUT DROP`, `-P OUTPUT DROP`). */
function policyLine(rs: Ruleset, r: PathResult): RuleRef | undefined {
  const d = r.decision;
  if (!d || d.rule || !d.policy) return undefined;
  const prov = rs.tables.get(d.table)?.chains.get(d.hook)?.prov;
  return prov ? { file: prov.file, line: prov.line, text: prov.text } : undefined;
}

function partOf(rs: Ruleset, r: PathResult, peers: AddrSet, pkt: Packet): OutboundPart {
  if (r.verdict === "unknown") {
    const o = r.outcomes.find((x) => x.verdict === "unknown") ?? r.outcomes[0];
    const undecided = o?.assumed.find((a) => a.rule)?.rule ?? o?.decision?.rule ?? null;
    const reason = r.truncated
      ? "too many undecidable rules on the output path"
      : (o?.reason ??
        r.outcomes.flatMap((x) => x.assumed.map((a) => a.why)).find((w) => w) ??
        "the outcomes on the output path disagree");
    return {
      sources: peers,
      verdict: "unknown",
      rule: null,
      unknown: undecided ? { reason, rule: ruleRef(undecided) } : { reason },
    };
  }
  const d = r.decision;
  const policy = policyLine(rs, r);
  const away = r.verdict === "accept" ? rewrite(rs.family, r, pkt) : null;
  if (away === "mixed") {
    const rule = r.outcomes.flatMap((o) => o.nat).find((n) => n.hook === "OUTPUT")?.rule;
    return {
      sources: peers,
      verdict: "unknown",
      rule: null,
      unknown: {
        reason: "whether nat OUTPUT rewrites the destination is undecidable",
        ...(rule ? { rule: ruleRef(rule) } : {}),
      },
    };
  }
  if (away) {
    // Accepted, but towards another address: the peer never gets it.
    return {
      sources: peers,
      verdict: "drop",
      rule: ruleRef(away.rule),
      forwardedTo: away.to,
      stoppedIn: "nat OUTPUT",
    };
  }
  return {
    sources: peers,
    verdict: r.verdict,
    rule: d?.rule ? ruleRef(d.rule) : null,
    ...(d?.rule ? {} : { defaultName: d ? decisionName(d) : (r.reason ?? "not filtered") }),
    ...(policy ? { defaultAt: policy } : {}),
    ...(d && d.table !== "filter" && r.verdict !== "accept" ? { stoppedIn: `${d.table} ${d.hook}` } : {}),
  };
}

/**
 * A DNAT/REDIRECT in nat OUTPUT that sends the packet elsewhere: in every outcome, none, or some
 * ("mixed"). A DNAT to the packet's own destination and port changes nothing: none. A DNAT that
 * changes only the port does send it elsewhere (the peer's other port); a REDIRECT sends it to
 * the host itself.
 */
function rewrite(family: 4 | 6, r: PathResult, orig: Packet): { rule: Rule; to: string } | "mixed" | null {
  const each = r.outcomes.map((o) => {
    const n = o.nat.find((x) => x.hook === "OUTPUT" && (x.kind === "DNAT" || x.kind === "REDIRECT"));
    if (!n) return null;
    const p = o.packet;
    if (n.kind === "DNAT" && p.dst === orig.dst && p.dport === orig.dport) return null;
    return { rule: n.rule, o, redirect: n.kind === "REDIRECT" };
  });
  const first = each[0];
  if (each.some((x) => (x === null) !== (first === null) || (x && x.rule !== first?.rule))) return "mixed";
  if (!first) return null;
  // The engine has applied the rewrite (a REDIRECT here: 127.0.0.1 / ::1, iptables-path.ts applyRedirect).
  const p = first.o.packet;
  const addr = formatAddress(family, p.dst);
  // An IPv6 address takes brackets only before a port (ESP has none).
  const where = p.dport === undefined ? addr : family === 6 ? `[${addr}]:${p.dport}` : `${addr}:${p.dport}`;
  if (first.redirect)
    return {
      rule: first.rule,
      to: `${where} (the host itself: REDIRECT in nat OUTPUT sends to the loopback address)`,
    };
  if (p.dst === orig.dst)
    return {
      rule: first.rule,
      to: `port ${p.dport} of ${addr} (the same address; the port changed from ${orig.dport})`,
    };
  return { rule: first.rule, to: where };
}

/** The built-in chains of `table` from which `chain` is reached (jumps and gotos). */
function reachedFrom(rs: Ruleset, table: TableName, chain: string): Set<string> {
  const chains = rs.tables.get(table)?.chains;
  const from = new Set<string>();
  if (!chains) return from;
  for (const root of BUILTIN_CHAINS[table]) {
    const seen = new Set<string>([root]);
    const todo: string[] = [root];
    while (todo.length) {
      const c = chains.get(todo.pop()!);
      for (const rule of c?.rules ?? []) {
        const t = rule.target;
        if ((t?.kind === "jump" || t?.kind === "goto") && !seen.has(t.chain)) {
          seen.add(t.chain);
          todo.push(t.chain);
        }
      }
    }
    if (seen.has(chain)) from.add(root);
  }
  return from;
}

/**
 * Where an accept must go so that this outcome's packet passes the table that stops it: before
 * the dropping (or rewriting) rule in its chain, or at the end of the chain the walk falls off
 * before a DROP policy. An ACCEPT ends only that table's walk; the packet goes on to the next.
 */
function siteOf(rs: Ruleset, o: PathOutcome, stopRule: Rule | null, table: TableName, hook: Hook): FixSite {
  const steps = o.trace.filter((x) => x.table === table && x.hook === hook);
  let i = steps.length - 1;
  if (stopRule) while (i >= 0 && !(steps[i]!.type === "rule" && steps[i]!.rule === stopRule)) i--;
  const last = steps[i];
  let site: FixSite;
  if (table === "filter") return { table, chain: hook, at: 1, before: stopRule ? ruleRef(stopRule) : null };
  if (!last || last.type === "rule") {
    const rule = last?.rule ?? stopRule;
    site = { table, chain: last?.chain ?? hook, at: last?.num ?? 1, before: rule ? ruleRef(rule) : null };
  } else {
    // The policy decided: the accept goes where the walk left off (the built-in chain's end, or
    // the end of a chain reached by a goto, which returns straight to the policy).
    const prev = steps[i - 1];
    if (prev && prev.chain !== hook && prev.type === "rule" && prev.rule?.target?.kind !== "RETURN")
      return {
        table,
        chain: prev.chain,
        at: null,
        before: prev.rule ? ruleRef(prev.rule) : null,
        cannot: "the walk leaves this chain in a way an inserted rule cannot precede",
      };
    site =
      prev && prev.chain !== hook
        ? {
            table,
            chain: prev.chain,
            at: prev.type === "rule" ? prev.num : null,
            before: prev.rule ? ruleRef(prev.rule) : null,
          }
        : { table, chain: hook, at: null, before: null };
  }
  if (site.chain !== hook) {
    const others = [...reachedFrom(rs, table, site.chain)].filter(
      (h) => h !== "OUTPUT" && h !== "POSTROUTING",
    );
    if (others.length)
      return {
        ...site,
        cannot: `chain ${site.chain} is also reached from ${table} ${others.join(", ")}: an accept there would act on that path too`,
      };
  }
  return site;
}

/** The stop of one outcome: the deciding rule of a drop, or the rewriting rule of a DNAT away; null when it passes. */
function stopOf(
  family: 4 | 6,
  r: PathResult,
  pkt: Packet,
): { rule: Rule | null; table: TableName; hook: Hook; rewrite?: string } | null {
  const o = r.outcomes[0];
  if (!o) return null;
  if (r.verdict === "accept") {
    const away = rewrite(family, r, pkt);
    return away && away !== "mixed"
      ? { rule: away.rule, table: "nat", hook: "OUTPUT", rewrite: away.to }
      : null;
  }
  const d = o.decision;
  if ((o.verdict !== "drop" && o.verdict !== "reject") || !d) return null;
  return { rule: d.rule, table: d.table, hook: d.hook };
}

/** A rule tunnelcheck added (a fix's accept): tagged with a `tunnelcheck: …` comment. */
const ours = (rule: Rule): boolean =>
  rule.matches.some((m) => m.kind === "comment" && m.text.startsWith("tunnelcheck: "));

/** `site.at` counted without the rules tunnelcheck added (FixSite.nth). */
function nthOf(rs: Ruleset, site: FixSite): { nth?: number } {
  if (site.at === null) return {};
  const rules = rs.tables.get(site.table as TableName)?.chains.get(site.chain)?.rules ?? [];
  return { nth: rules.slice(0, site.at - 1).filter((x) => !ours(x)).length + 1 };
}

/** The rule set with an accept for `spec` inserted at `site` (a copy: the original and its caches stay). */
function withAccept(rs: Ruleset, site: FixSite, spec: string): Ruleset | null {
  const table = rs.tables.get(site.table as TableName);
  const chain = table?.chains.get(site.chain);
  if (!table || !chain) return null;
  const decl = chain.builtin ? `:${chain.name} ACCEPT [0:0]` : `:${chain.name} - [0:0]`;
  const text = `*${table.name}\n${decl}\n-A ${chain.name} ${spec} -j ACCEPT\nCOMMIT\n`;
  const parsed = parseIptables(text, { file: "(fix)", family: rs.family });
  const rule = parsed.ruleset.tables.get(table.name)?.chains.get(chain.name)?.rules[0];
  if (parsed.errors.length || !rule) return null;
  const at = (site.at ?? chain.rules.length + 1) - 1;
  const rules = [
    ...chain.rules.slice(0, at),
    { ...rule, num: at + 1 },
    ...chain.rules.slice(at).map((x) => ({ ...x, num: x.num + 1 })),
  ];
  const chains = new Map(table.chains);
  chains.set(chain.name, { ...chain, rules } as Chain);
  const tables = new Map(rs.tables);
  tables.set(table.name, { ...table, chains });
  return { ...rs, tables };
}

/**
 * Every place an accept is needed for this packet: the first stop, then (with an accept there)
 * the next one on the path, until it passes, an accept cannot help, or the verdict is unknown.
 */
function fixSites(
  rs: Ruleset,
  pkt: Packet,
  q: OutboundQuery,
  opts: PathOptions,
  first: PathResult,
): FixSite[] {
  const port = q.sport ?? q.dport;
  const name = protoName(q.proto);
  // What the generator's outbound accept matches, for this one packet.
  const spec = [
    ...(q.src !== undefined ? ["-s", formatAddress(rs.family, pkt.src)] : []),
    "-d",
    formatAddress(rs.family, pkt.dst),
    ...(q.oif !== undefined ? ["-o", q.oif] : []),
    "-p",
    name,
    ...(q.ipsecOut ? ["-m", "policy", "--dir", "out", "--pol", "ipsec"] : []),
    ...(port !== undefined && (q.proto === 6 || q.proto === 17)
      ? ["-m", "multiport", "--ports", String(port)]
      : []),
    // Tagged as the generated accept is: not counted in a later site's FixSite.nth.
    ...["-m", "comment", "--comment", '"tunnelcheck: fix"'],
  ].join(" ");
  const sites: FixSite[] = [];
  let cur = rs;
  let r = first;
  for (let i = 0; i < 8; i++) {
    const stop = stopOf(rs.family, r, pkt);
    if (!stop) break;
    const o = r.outcomes[0]!;
    const at = siteOf(cur, o, stop.rule, stop.table, stop.hook);
    const site = { ...at, ...nthOf(cur, at), ...(stop.rewrite ? { rewrite: stop.rewrite } : {}) };
    if (sites.some((x) => x.table === site.table && x.chain === site.chain)) break;
    sites.push(site);
    if (site.cannot) break;
    const next = withAccept(cur, site, spec);
    if (!next) break;
    cur = next;
    r = evaluatePath(cur, pkt, opts);
    if (r.verdict === "unknown") break;
  }
  return sites;
}

interface Cuts {
  /** Of the peers (destination side). */
  dst: AddrSet[];
  /** Of the host's own address (source side), from the rules only: empty when none looks at it. */
  src: AddrSet[];
}

// Per rule set and packet shape: a gateway's flows × states share them.
const cutCache = new WeakMap<Ruleset, Map<string, Cuts>>();

function cutsFor(rs: Ruleset, opts: LocalOutOptions, q: OutboundQuery): Cuts {
  const shape: PacketShape = {
    proto: q.proto,
    ...(q.sport !== undefined ? { sport: q.sport } : {}),
    ...(q.dport !== undefined ? { dport: q.dport } : {}),
  };
  const key = `${q.proto}|${q.sport}|${q.dport}|${opts.hostAddresses?.toString()}|${opts.broadcast?.toString()}|${opts.ipsets?.size}`;
  let byShape = cutCache.get(rs);
  if (!byShape) {
    byShape = new Map();
    cutCache.set(rs, byShape);
  }
  let c = byShape.get(key);
  if (!c) {
    const rules = rulesOn(rs, PATHS.localOut, shape);
    c = {
      dst: [loopback(rs.family), ...cutsOf(rs, "dst", rules, opts, true)],
      src: cutsOf(rs, "src", rules, opts, false),
    };
    byShape.set(key, c);
  }
  return c;
}

/** Where a locally generated packet leaves through `lo`: loopback (the host's own addresses aside). */
const loopback = (family: 4 | 6): AddrSet =>
  family === 4
    ? AddrSet.fromPrefix({ family, addr: 0x7f000000n, len: 8 })
    : AddrSet.fromPrefix({ family, addr: 1n, len: 128 });

/** An address of the family for a source nothing on the path looks at (any gives the same answer). */
const anySource = (family: 4 | 6): bigint => (family === 4 ? 0xc0000201n : (0x20010db8n << 96n) | 1n);

const partKey = (p: OutboundPart) =>
  `${p.verdict}|${p.rule?.line}|${p.defaultName}|${p.unknown?.reason}|${p.unknown?.rule?.line}|${p.forwardedTo}|${p.fixSites?.map(siteKey).join(";")}`;

/** Partitions `q.peers` by the verdict on what the host sends them. */
export function evaluateLocalOut(rs: Ruleset, opts: LocalOutOptions, q: OutboundQuery): VerdictPart[] {
  const family = rs.family;
  if (q.peers.isEmpty()) return [];
  const cuts = cutsFor(rs, opts, q);
  // The source address: given; else each class of the host's addresses the rules tell apart (the
  // route picks one); else, when no rule on the path looks at the source, any address will do.
  let srcs: bigint[];
  if (q.src !== undefined) srcs = [q.src];
  else if (opts.hostAddresses && !opts.hostAddresses.isEmpty()) {
    const classes = sweepAtoms(opts.hostAddresses, cuts.src, MAX_CLASSES);
    if (classes === null) {
      const reason = `the host's addresses fall into more than ${MAX_CLASSES} classes for the rules on the source; give --local`;
      return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
    }
    srcs = classes.map((c) => c.first()!);
  } else if (cuts.src.length === 0) srcs = [anySource(family)];
  else {
    const reason =
      "the gateway's own address is not given (--local or addresses:), and rules on the output path look at the source";
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const atoms = sweepAtoms(q.peers, cuts.dst, MAX_CLASSES);
  if (atoms === null) {
    const reason = `too many destination classes to evaluate (more than ${MAX_CLASSES})`;
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const parts: OutboundPart[] = [];
  for (const atom of atoms) {
    const each = srcs.map((src) => evaluateOne(rs, opts, q, src, atom));
    // The same verdict from each source is the answer (the rule cited: the first address's).
    const first = each[0]!;
    if (
      each.every(
        (p) => partKey(p) === partKey(first) || (first.verdict !== "unknown" && p.verdict === first.verdict),
      )
    ) {
      // Each source address may be stopped at other places: the fix needs them all.
      const sites = new Map(each.flatMap((p) => p.fixSites ?? []).map((x) => [siteKey(x), x]));
      parts.push(sites.size ? { ...first, fixSites: [...sites.values()] } : first);
    } else
      parts.push({
        sources: atom,
        verdict: "unknown",
        rule: null,
        unknown: {
          reason: "depends on which of the host's addresses the route picks as the source; give --local",
        },
      });
  }
  // One part per distinct outcome, by address.
  return mergeParts(parts, partKey).sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
}

function evaluateOne(
  rs: Ruleset,
  opts: LocalOutOptions,
  q: OutboundQuery,
  src: bigint,
  atom: AddrSet,
): OutboundPart {
  const own = opts.hostAddresses ? loopback(rs.family).union(opts.hostAddresses) : loopback(rs.family);
  const pkt: Packet = {
    family: rs.family,
    src,
    dst: atom.first()!,
    proto: q.proto,
    ...(q.sport !== undefined ? { sport: q.sport } : {}),
    ...(q.dport !== undefined ? { dport: q.dport } : {}),
    ...(q.oif !== undefined ? { oif: q.oif } : {}),
    state: q.state,
    // A reply leaves in the connection's reply direction: no DNAT binding of its own to look up.
    ctDir: q.state === "new" ? "ORIGINAL" : "REPLY",
    ipsec: false,
    ipsecOut: q.ipsecOut,
    ...(q.ipsecOut && q.ipsecSa ? { ipsecOutSas: q.ipsecSa } : {}),
    // No --wan: the outgoing interface is unknown, but it is not lo unless the peer is the host itself.
    ...(q.oif === undefined && !atom.overlaps(own) ? { oifNotLo: true } : {}),
  };
  const pathOpts: PathOptions = {
    origin: "local",
    ...(opts.hostAddresses ? { local: opts.hostAddresses } : {}),
    ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
    ...(opts.broadcast ? { broadcast: opts.broadcast } : {}),
  };
  const r = evaluatePath(rs, pkt, pathOpts);
  const part = partOf(rs, r, atom, pkt);
  if (part.verdict !== "drop" && part.verdict !== "reject") return part;
  const sites = fixSites(rs, pkt, q, pathOpts, r);
  return sites.length ? { ...part, fixSites: sites } : part;
}
