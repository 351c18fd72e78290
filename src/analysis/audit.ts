import { type Family, familyBits, formatAddress, formatPrefix } from "../model/address.js";
import { AddrSet } from "../model/addrset.js";
import type { Flow, Plan } from "../vpn/flows.js";
import {
  FINDINGS,
  type Finding,
  type FindingId,
  type FixSite,
  type OutboundPart,
  type RuleRef,
  siteKey,
} from "./findings.js";
import { overlayPartitions } from "./partition.js";
import type {
  CtState,
  FilterEvaluator,
  FlowQuery,
  IpsecSaFacts,
  OutboundQuery,
  VerdictPart,
} from "./query.js";

export interface GatewayAudit {
  gateway: string;
  tunnel?: string;
  plan: Plan;
  evaluator: FilterEvaluator;
  /**
   * Renders ready rules for one flow on this gateway's platform (the fix); `sites`: where an
   * outbound flow is stopped (a table other than filter), so the fix acts there.
   */
  fixFor?: (flow: Flow, sites?: FixSite[]) => { target: string; text: string } | undefined;
  /** IKE must be open to any source on this address anyway (a dial-up VPN shares it): no ike-open-to-any. */
  ikeOpenToAnyExpected?: boolean;
}

/** Per-flow evaluation, kept for reports ("what did the audit see"). */
export interface FlowVerdict {
  gateway: string;
  tunnel?: string;
  flow: string;
  requirement: Flow["requirement"];
  /**
   * accepted-new | reply-only | blocked | unknown | mixed, over the flow's peers; accepted-reply: an
   * outbound flow the gateway only answers, let out as a reply (all it needs).
   */
  status:
    | "accepted-new"
    | "accepted-reply"
    | "reply-only"
    | "blocked"
    | "unknown"
    | "mixed"
    | "open"
    | "closed";
  parts: Array<{
    sources: string;
    new: VerdictPart["verdict"];
    established?: VerdictPart["verdict"];
    rule: RuleRef | null;
  }>;
}

const REPLY_ONLY: Partial<Record<Flow["service"], FindingId>> = {
  ike: "ike-reply-only",
  "nat-t": "natt-reply-only",
  esp: "esp-reply-only",
};
const BLOCKED: Partial<Record<Flow["service"], FindingId>> = {
  ike: "ike-blocked",
  "nat-t": "natt-blocked",
  esp: "esp-blocked",
  ah: "ah-blocked",
  "ike-tcp": "ike-tcp-blocked",
  l2tp: "l2tp-blocked",
};

const OUT_BLOCKED: Partial<Record<Flow["service"], FindingId>> = {
  ike: "ike-out-blocked",
  "nat-t": "natt-out-blocked",
  esp: "esp-out-blocked",
  ah: "ah-out-blocked",
  "ike-tcp": "ike-tcp-out-blocked",
  l2tp: "l2tp-out-blocked",
};
const OUT_REPLY_ONLY: Partial<Record<Flow["service"], FindingId>> = {
  ike: "ike-out-reply-only",
  "nat-t": "natt-out-reply-only",
};

const describe = (f: Flow): string => {
  const proto =
    f.protocol === "fragment" ? "IP fragments" : `${f.protocol.toUpperCase()}${f.port ? ` ${f.port}` : ""}`;
  return `${proto}${f.condition === "ipsec" ? " (inside IPsec)" : ""}`;
};

/**
 * The IKE datagram non-first fragments belong to: IKE_AUTH, large with certificates, on the NAT-T
 * port once IKE has floated there, else on the IKE port.
 */
function fragmentedDatagram(plan: Plan): Flow | undefined {
  const natt = plan.flows.find((x) => x.id === "natt-in");
  return natt?.requirement === "required" ? natt : plan.flows.find((x) => x.id === "ike-in");
}

function queryFor(plan: Plan, f: Flow, sources: AddrSet, state: CtState): FlowQuery {
  const s = plan.scenario;
  // Fragments carry no ports: they are those of the datagram, for a platform that reassembles first.
  const ports = f.condition === "non-first-fragment" ? fragmentedDatagram(plan) : f;
  return {
    family: s.family,
    proto: f.protoNumber ?? 17,
    ...(ports?.port !== undefined ? { dport: ports.port } : {}),
    ...(ports?.sport !== undefined ? { sport: ports.sport } : {}),
    sources,
    ...(s.local ? { dst: AddrSet.fromPrefix(s.local) } : {}),
    ...(s.wan ? { iif: s.wan } : {}),
    state,
    ipsec: f.condition === "ipsec",
    ...saFacts(plan, f),
    ...(f.condition === "non-first-fragment" ? { fragment: true } : {}),
  };
}

/** What the gateway sends: from its own port (and address) to the peer's port, when no NAT rewrites it. */
function outboundQuery(plan: Plan, f: Flow, peers: AddrSet, state: CtState): OutboundQuery {
  const s = plan.scenario;
  // IKE over TCP (RFC 8229 §3): the initiator connects to the responder's port 4500 from an
  // ephemeral port. As NEW the gateway opens it (to the peer's 4500); as a reply it answers from 4500.
  const tcpNew = f.service === "ike-tcp" && state === "new";
  return {
    family: s.family,
    proto: f.protoNumber ?? 17,
    ...(f.port !== undefined ? (tcpNew ? { dport: f.port } : { sport: f.port }) : {}),
    ...(f.sport !== undefined && !tcpNew ? { dport: f.sport } : {}),
    peers,
    ...(s.local ? { src: s.local.addr } : {}),
    ...(s.wan ? { oif: s.wan } : {}),
    state,
    ipsecOut: f.condition === "ipsec",
    ...saFacts(plan, f),
  };
}

/**
 * The SAs an L2TP flow is carried in: transport mode (RFC 3193 §2), ESP (the plan requires it);
 * with AH in the scenario an AH SA may be bundled outside it — whether is the daemon's configuration.
 */
function saFacts(plan: Plan, f: Flow): { ipsecSa?: IpsecSaFacts[] } {
  if (f.condition !== "ipsec" || f.service !== "l2tp") return {};
  const esp: IpsecSaFacts = { proto: "esp", mode: "transport" };
  return { ipsecSa: plan.scenario.ah ? [{ mode: "transport" }, esp] : [esp] };
}

/**
 * Whether the gateway must be able to send the flow as NEW: ESP and AH are connectionless (a
 * generic conntrack entry lives only while the peer keeps sending), and a site-to-site gateway
 * initiates IKE itself; a remote-access server's IKE and the L2TP daemon only answer.
 */
const sendsNew = (plan: Plan, f: Flow): boolean =>
  f.service === "esp" ||
  f.service === "ah" ||
  (plan.scenario.vpn === "site-to-site" && !plan.scenario.responder && f.service !== "l2tp");

// The flows of a plan share one peer list: built once per list (1,000 prefixes for a hub).
const peerSets = new WeakMap<readonly unknown[], AddrSet>();
const peerSet = (plan: Plan, f: Flow): AddrSet => {
  let set = peerSets.get(f.peers);
  if (set === undefined || set.family !== plan.scenario.family) {
    set =
      f.peers.length === 0
        ? AddrSet.all(plan.scenario.family)
        : AddrSet.fromPrefixes(plan.scenario.family, f.peers);
    peerSets.set(f.peers, set);
  }
  return set;
};

/** Readable source sets: "any source except the peer" beats 32 CIDRs of a complement. */
export const setText = (a: AddrSet): string => {
  if (a.isAll()) return "any source";
  // A hub's peer set comes back in every flow's verdict row: 1,000 ranges written once, not 7 times.
  const hit = lastTexts.find((t) => t.set.equals(a));
  if (hit) return hit.text;
  const text = exceptText(a, a.complement()) ?? readable(a);
  lastTexts.unshift({ set: a, text });
  lastTexts.length = Math.min(lastTexts.length, 4);
  return text;
};
/** The last sets `setText` wrote (sets are immutable; equal sets read the same). */
const lastTexts: Array<{ set: AddrSet; text: string }> = [];

/**
 * "any source except …" when a few ranges are left out and they are the smaller side (else it reads
 * as the opposite); undefined otherwise.
 */
const exceptText = (a: AddrSet, rest: AddrSet): string | undefined =>
  rest.intervalCount <= 3 && a.toPrefixes().length > 4 && rest.size() < a.size()
    ? `any source except ${readable(rest)}`
    : undefined;

/** At most `max` items of a list, then how many more: messages stay readable on a 1,000-peer hub. */
const brief = (items: readonly string[], max = 8): string =>
  items.length <= max + 2
    ? items.join(", ")
    : `${items.slice(0, max).join(", ")} … and ${items.length - max} more`;

/**
 * `setText` for the sentences of a finding: a long set is cut short (the full sets are in the
 * verdict rows), and a set that is everything but a few hundred addresses is said that way.
 */
/** Each range as a prefix when it is one (`10.0.0.0/8`), else as a range: a range cut out of the space is 30 prefixes. */
const readable = (a: AddrSet): string => {
  if (a.isEmpty()) return a.toString();
  return a
    .intervals()
    .map(([lo, hi]) => intervalText(a.family, lo, hi))
    .join(", ");
};

/** An interval is one prefix when its size is a power of two and its start is aligned to it. */
function intervalText(family: Family, lo: bigint, hi: bigint): string {
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) === 0n && (lo & (size - 1n)) === 0n)
    return formatPrefix({ family, addr: lo, len: familyBits(family) - (size.toString(2).length - 1) });
  return `${formatAddress(family, lo)}-${formatAddress(family, hi)}`;
}

export const setBrief = (a: AddrSet): string => {
  if (a.isAll()) return "any source";
  const rest = a.complement();
  const except = exceptText(a, rest);
  if (except !== undefined) return except;
  // Name the smaller side: "any source except" a hub's peers, not the four billion others.
  const [shown, lead] = rest.size() < a.size() ? [rest, "any source except "] : [a, ""];
  if (shown.intervalCount <= 10) return `${lead}${readable(shown)}`;
  const first = AddrSet.fromRanges(shown.family, shown.intervals().slice(0, 8)).toRangeString();
  return `${lead}${first} … and ${shown.intervalCount - 8} more ranges`;
};

/** `setBrief` for the peers a gateway sends to. */
const destBrief = (a: AddrSet): string =>
  a.isAll() ? "any destination" : setBrief(a).replace(/^any source/, "any destination");

/** The places the failing parts are stopped at, each once. */
const sitesOf = (parts: OutboundPart[]): FixSite[] => [
  ...new Map(parts.flatMap((p) => p.fixSites ?? []).map((x) => [siteKey(x), x])).values(),
];

/** One part per distinct decision: a 100k-rule ruleset splits 1,000 peers into thousands of parts. */
function mergeParts(parts: OutboundPart[]): OutboundPart[] {
  const groups = new Map<string, { part: OutboundPart; all: OutboundPart[] }>();
  for (const p of parts) {
    const key = [
      p.verdict,
      p.rule?.file,
      p.rule?.line,
      p.defaultName,
      p.unknown?.reason,
      p.unknown?.rule?.line,
    ].join("\u0000");
    const g = groups.get(key);
    if (g) g.all.push(p);
    else groups.set(key, { part: p, all: [p] });
  }
  return [...groups.values()].map(({ part, all }) => {
    const sites = sitesOf(all);
    return {
      ...part,
      // A decision met once keeps its set as it is (a hub's 1,000 peers are not sorted again).
      sources:
        all.length === 1
          ? part.sources
          : AddrSet.unionAll(
              part.sources.family,
              all.map((p) => p.sources),
            ),
      ...(sites.length ? { fixSites: sites } : {}),
    };
  });
}

/** Intersects two partitions: for each source, the verdict as NEW and as ESTABLISHED. */
const join = (nw: VerdictPart[], est: VerdictPart[]) =>
  overlayPartitions([
    { label: "new", parts: nw },
    { label: "established", parts: est },
  ]).map((r) => ({ sources: r.set, n: r.outs[0]!.part, e: r.outs[1]!.part }));

const uniqueRules = (rs: RuleRef[]): RuleRef[] =>
  rs.filter((r, i) => rs.findIndex((x) => x.file === r.file && x.line === r.line) === i);

const ruleOf = (p: VerdictPart): RuleRef[] => (p.rule ? [p.rule] : p.unknown?.rule ? [p.unknown.rule] : []);

/** Audits one gateway against the flows its VPN needs: the real evaluated verdicts, never rule text. */
export function auditGateway(g: GatewayAudit): { findings: Finding[]; verdicts: FlowVerdict[] } {
  const findings: Finding[] = [];
  const verdicts: FlowVerdict[] = [];
  const { plan, evaluator } = g;
  const base = { gateway: g.gateway, ...(g.tunnel ? { tunnel: g.tunnel } : {}) };
  const byKey = new Map<string, Finding>();
  const seenRules = new Map<Finding, Set<string>>();
  const add = (
    id: FindingId,
    f: Flow,
    message: string,
    rules: RuleRef[],
    withFix = true,
    sites?: FixSite[],
  ) => {
    const key = `${id}|${f.id}`;
    const prev = byKey.get(key);
    if (prev) {
      prev.message += `\n${message}`;
      // The rules already listed, by file and line (a finding may gather hundreds of them).
      let seen = seenRules.get(prev);
      if (seen === undefined) {
        seen = new Set(prev.rules.map((p) => `${p.line}:${p.file}`));
        seenRules.set(prev, seen);
      }
      for (const r of rules) {
        const k = `${r.line}:${r.file}`;
        if (!seen.has(k)) {
          seen.add(k);
          prev.rules.push(r);
        }
      }
      return;
    }
    const fix = withFix ? g.fixFor?.(f, sites?.length ? sites : undefined) : undefined;
    const finding: Finding = {
      id,
      severity: FINDINGS[id].severity,
      ...base,
      flow: f.id,
      message,
      rules: [...rules],
      ...(fix ? { fix } : {}),
    };
    byKey.set(key, finding);
    findings.push(finding);
  };

  const outbound = (f: Flow) => {
    const ev = evaluator.evaluateOutbound;
    if (!ev) return;
    const peers = peerSet(plan, f);
    const needNew = sendsNew(plan, f);
    const nw = mergeParts(ev(outboundQuery(plan, f, peers, "new")));
    // ESP/AH are judged as new only; the others also as replies (what a responder needs).
    const est =
      f.service === "esp" || f.service === "ah"
        ? []
        : mergeParts(ev(outboundQuery(plan, f, peers, "established")));
    const rows: Array<{ sources: AddrSet; n: OutboundPart; e: OutboundPart | undefined }> = est.length
      ? join(nw, est)
      : nw.map((n) => ({ sources: n.sources, n, e: undefined }));
    verdicts.push(verdictRow(base, f, rows, { needNew }));
    if (f.requirement !== "required") return;
    const failing = rows.filter(
      ({ n, e }) => !(n.verdict === "accept" || (!needNew && e?.verdict === "accept")),
    );
    // Where the packets are stopped: the fix acts there (all of them; one fix per flow).
    const sites = sitesOf(failing.map(({ n, e }) => (needNew ? n : (e ?? n))));
    for (const { sources, n, e } of failing) {
      const who = destBrief(sources);
      const what = `${describe(f)} from ${g.gateway} to ${who}`;
      const decided = (p: OutboundPart) =>
        p.forwardedTo !== undefined && p.rule
          ? `rewritten by ${p.rule.file}:${p.rule.line}${p.stoppedIn ? ` (${p.stoppedIn})` : ""} and sent to ${p.forwardedTo} instead`
          : `${p.verdict === "reject" ? "rejected" : "dropped"} by ${
              p.rule
                ? `${p.rule.file}:${p.rule.line}${p.stoppedIn ? ` in ${p.stoppedIn}` : ""}`
                : `${p.defaultName ?? "the default policy"}${p.defaultAt ? ` (${p.defaultAt.file}:${p.defaultAt.line})` : ""}`
            }`;
      const refs = (p: VerdictPart) => [...ruleOf(p), ...(p.defaultAt ? [p.defaultAt] : [])];
      const unknown = needNew ? n : n.verdict === "unknown" && e?.verdict !== "unknown" ? e! : (e ?? n);
      if (unknown.verdict === "unknown") {
        add(
          "verdict-unknown",
          f,
          `${what}${needNew ? " as a new connection" : " as a reply"}: unknown — ${unknown.unknown?.reason ?? "unsupported construct"}.`,
          ruleOf(unknown),
          true,
          sites,
        );
        continue;
      }
      const replyOnly = OUT_REPLY_ONLY[f.service];
      if (needNew && e?.verdict === "accept" && replyOnly) {
        add(
          replyOnly,
          f,
          `${what} is let out only as a reply (${decided(n)} when new${e.rule ? `; replies leave by ${e.rule.file}:${e.rule.line}` : ""}). ${g.gateway} can answer the peer, but never initiate: it cannot bring the tunnel up itself, and once the conntrack entry has expired its rekeys as initiator, DPD probes and DELETE are dropped — the tunnel lives only as long as the peer initiates every time.`,
          uniqueRules([...refs(n), ...ruleOf(e)]),
          true,
          sites,
        );
        continue;
      }
      if (needNew && e?.verdict === "unknown") {
        add(
          "verdict-unknown",
          f,
          `${what} is ${decided(n)} when new; as a reply it is unknown — ${e.unknown?.reason ?? "unsupported construct"}.`,
          uniqueRules([...refs(n), ...ruleOf(e)]),
          true,
          sites,
        );
        continue;
      }
      const id = OUT_BLOCKED[f.service];
      const p = needNew ? n : e!;
      const how = !needNew
        ? " even as a reply"
        : e
          ? ", new or as a reply"
          : f.service === "esp" || f.service === "ah"
            ? " (judged as new: ESP has no connection a reply could belong to)"
            : "";
      if (id)
        add(
          id,
          f,
          `${what} is ${decided(p)}${how}. ${FINDINGS[id].help}`,
          uniqueRules([...refs(n), ...(e ? refs(e) : [])]),
          true,
          sites,
        );
    }
  };

  for (const f of plan.flows) {
    if (f.location === "gateway" && f.direction === "outbound" && f.requirement !== "not-needed") {
      outbound(f);
      continue;
    }
    if (f.location !== "gateway" || f.direction !== "inbound" || f.requirement === "not-needed") continue;
    const peers = peerSet(plan, f);
    if (f.action === "drop") {
      // Must be blocked: anything accepted from anyone is a finding.
      const parts = mergeParts(
        evaluator.evaluate(queryFor(plan, f, AddrSet.all(plan.scenario.family), "new")),
      );
      verdicts.push(
        verdictRow(
          base,
          f,
          parts.map((n) => ({ sources: n.sources, n, e: undefined })),
        ),
      );
      for (const p of parts) {
        if (p.verdict === "accept" && f.service === "l2tp") {
          add(
            "l2tp-unprotected",
            f,
            `UDP 1701 without IPsec is accepted from ${setBrief(p.sources)}${p.rule ? "" : " by the default policy"}: L2TP is unencrypted and must only be accepted after IPsec decapsulation.`,
            ruleOf(p),
          );
        } else if (p.verdict === "unknown" && f.service === "l2tp") {
          add(
            "verdict-unknown",
            f,
            `Whether plain UDP 1701 is blocked for ${setBrief(p.sources)} is unknown: ${p.unknown?.reason ?? "unsupported construct"}.`,
            ruleOf(p),
            false,
          );
        }
      }
      continue;
    }
    const nw = mergeParts(evaluator.evaluate(queryFor(plan, f, peers, "new")));
    const est = mergeParts(evaluator.evaluate(queryFor(plan, f, peers, "established")));
    const rows = join(nw, est);
    verdicts.push(verdictRow(base, f, rows));
    if (f.requirement !== "required") continue;
    for (const { sources, n, e } of rows) {
      if (n.verdict === "accept") continue;
      const who = setBrief(sources);
      if (n.verdict === "unknown") {
        add(
          "verdict-unknown",
          f,
          `${describe(f)} as a new connection from ${who}: unknown — ${n.unknown?.reason ?? "unsupported construct"}.`,
          ruleOf(n),
        );
        continue;
      }
      // A port forward (FortiOS VIP, DNAT) that takes the packet away: no input accept can help.
      const away = n.forwardedTo !== undefined && n.rule !== null;
      const advice = away
        ? " No input accept can help: remove or narrow that port forward (its source or port), or terminate the VPN on another address."
        : "";
      const by = away
        ? `taken by ${n.rule!.file}:${n.rule!.line}, a port forward to ${n.forwardedTo}, before the input filter`
        : n.rule
          ? `${n.verdict === "reject" ? "rejected" : "dropped"} by ${n.rule.file}:${n.rule.line}`
          : `${n.verdict === "reject" ? "rejected" : "dropped"} by ${n.defaultName ?? "the default policy"}`;
      const replyOnly = REPLY_ONLY[f.service];
      if (e.verdict === "accept" && f.mustAcceptNew && replyOnly && f.initiator !== "peer") {
        const t = evaluator.stateTimeout?.(queryFor(plan, f, sources, "established"));
        const after = !t
          ? "once the session/conntrack entry expires"
          : Number.isFinite(t.seconds)
            ? `after ${t.seconds} s without packets (${t.source})`
            : `once the session is cleared (it never times out: ${t.source}; a reboot, failover or \`diagnose sys session clear\` ends it)`;
        const consequence =
          f.service === "esp"
            ? `ESP from the peer passes only while this side keeps sending ESP; ${after} the peer's ESP is new again and dropped, black-holing its traffic while both sides show the tunnel up.`
            : `The tunnel can come up when ${g.gateway} initiates (its own ${describe(f)} packets let the replies in), but ${after} the peer's DPD probes, rekeys and DELETE are dropped: the peer declares ${g.gateway} dead and tears the tunnel down on its side while ${g.gateway} keeps showing it up, until ${g.gateway} itself sends or re-negotiates.`;
        add(
          replyOnly,
          f,
          `${describe(f)} from ${who} is accepted only as a reply (${by} when new${e.rule ? `; the reply is let in by ${e.rule.file}:${e.rule.line}` : ""}). ${consequence}${advice}`,
          [...ruleOf(n), ...ruleOf(e)],
          !away,
        );
      } else if (e.verdict === "unknown" && f.initiator !== "peer") {
        add(
          "verdict-unknown",
          f,
          `${describe(f)} from ${who} is ${by} when new; as a reply it is unknown — ${e.unknown?.reason ?? "unsupported construct"}.${advice}`,
          uniqueRules([...ruleOf(n), ...ruleOf(e)]),
          !away,
        );
      } else {
        const id = BLOCKED[f.service];
        // Accepted as a reply, but only the peer ever starts this flow (a remote-access server):
        // no client packet is a reply, so the clients can never connect.
        // (Whether it would pass as a reply may be unknown: it does not matter then.)
        const neverReply = e.verdict !== "drop" && e.verdict !== "reject" && f.initiator === "peer";
        const asReply =
          e.verdict === "unknown"
            ? `whether it would pass as a reply is unknown (${e.unknown?.reason ?? "unsupported construct"})`
            : `it would pass only as a reply${e.rule ? ` (${e.rule.file}:${e.rule.line})` : ""}`;
        const tail = neverReply
          ? ` when new; ${asReply}, but ${who === "any source" ? "the clients" : who} always start it and ${g.gateway} never sends first, so ${f.service === "ike" || f.service === "nat-t" || f.service === "ike-tcp" ? "the tunnel is never set up" : "it never gets through"}`
          : e.verdict === "accept"
            ? ""
            : ", new or not";
        if (id)
          add(
            id,
            f,
            `${describe(f)} from ${who} is ${by}${tail}.${advice}`,
            uniqueRules([...ruleOf(n), ...(neverReply ? ruleOf(e) : [])]),
            !away,
          );
      }
    }
  }

  // Over-exposure: IKE from non-peers on a site-to-site gateway, ESP when nothing sends raw ESP.
  const ike = plan.flows.find((f) => f.id === "ike-in");
  if (ike && plan.scenario.vpn === "site-to-site" && ike.peers.length > 0 && !g.ikeOpenToAnyExpected) {
    const others = peerSet(plan, ike).complement();
    // One sentence for every non-peer source let in, whichever rules let them in (a 100k-rule ruleset
    // splits a hub's non-peers into hundreds of parts).
    const open = mergeParts(evaluator.evaluate(queryFor(plan, ike, others, "new"))).filter(
      (p) => p.verdict === "accept",
    );
    if (open.length > 0) {
      const sources = AddrSet.unionAll(
        plan.scenario.family,
        open.map((p) => p.sources),
      );
      const rules = new Map(open.flatMap((p) => ruleOf(p)).map((r) => [`${r.file}:${r.line}`, r]));
      add(
        "ike-open-to-any",
        ike,
        `IKE (UDP ${ike.port ?? 500}) is accepted as new from ${sources.equals(others) ? "every source that is not a peer" : `sources that are not peers (${setBrief(sources)})`}, although the peers are known (${brief(ike.peers.map((x) => formatPrefix(x)))}). Allow IKE from the intended peers only.`,
        [...rules.values()],
      );
    }
  }
  const esp = plan.flows.find((f) => f.id === "esp-in");
  if (esp && esp.requirement === "not-needed") {
    for (const p of mergeParts(
      evaluator.evaluate(queryFor(plan, esp, AddrSet.all(plan.scenario.family), "new")),
    )) {
      if (p.verdict === "accept" && p.rule) {
        add(
          "esp-open-unneeded",
          esp,
          `ESP (IP protocol 50) is accepted from ${setBrief(p.sources)}, but this VPN encapsulates ESP in UDP 4500 (${plan.scenario.nat !== "none" ? "NAT" : "forced encapsulation"}); close it.`,
          ruleOf(p),
          false,
        );
      }
    }
  }
  return { findings, verdicts };
}

function verdictRow(
  base: { gateway: string; tunnel?: string },
  f: Flow,
  /** The sources by their verdict as new and, when judged, as established (`join`). */
  joined: Array<{ sources: AddrSet; n: VerdictPart; e: VerdictPart | undefined }>,
  /** Outbound rows: whether the gateway must send the flow as new (else replies are all it needs). */
  outbound?: { needNew: boolean },
): FlowVerdict {
  // Outbound parts hold the peers the gateway sends to.
  const text = outbound ? (a: AddrSet) => setText(a).replace(/^any source/, "any destination") : setText;
  const rows: FlowVerdict["parts"] = joined.map(({ sources, n, e }) => ({
    sources: text(sources),
    new: n.verdict,
    ...(e ? { established: e.verdict } : {}),
    rule: n.rule,
  }));
  const statusOf = (r: FlowVerdict["parts"][number]): FlowVerdict["status"] => {
    if (f.action === "drop") return r.new === "accept" ? "open" : r.new === "unknown" ? "unknown" : "closed";
    if (r.new === "accept") return "accepted-new";
    // A responder only answers (remote-access IKE, L2TP): a reply let out is all it needs; the
    // status follows what the findings judge (sendsNew).
    if (outbound && !outbound.needNew)
      return r.established === "accept"
        ? "accepted-reply"
        : r.established === "unknown"
          ? "unknown"
          : "blocked";
    if (r.new === "unknown" || r.established === "unknown") return "unknown";
    // Only the peer ever starts this flow (remote access): nothing is a reply to let in.
    return r.established === "accept" && f.initiator !== "peer" ? "reply-only" : "blocked";
  };
  const statuses = new Set(rows.map(statusOf));
  const status = statuses.size === 1 ? [...statuses][0]! : "mixed";
  return { ...base, flow: f.id, requirement: f.requirement, status, parts: rows };
}
