import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Packet } from "../src/analysis/iptables-eval.js";
import { decisionName, evaluatePath, type PathResult } from "../src/analysis/iptables-path.js";
import { conntrackTimeout, type IptablesPart, iptablesEvaluator } from "../src/analysis/iptables-symbolic.js";
import type { FlowQuery } from "../src/analysis/query.js";
import { formatAddress, parsePrefix } from "../src/model/address.js";
import { AddrSet } from "../src/model/addrset.js";
import { formatDiagnostic } from "../src/model/ruleset.js";
import type { Ruleset } from "../src/platforms/iptables/model.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";

const A = (s: string) => parsePrefix(s).addr;
const P = (s: string) => AddrSet.fromPrefix(parsePrefix(s));
const HOST = P("192.0.2.1").union(P("192.0.2.2"));
const PEERS = P("10.1.2.0/25").union(P("11.0.0.5"));
const IPSETS = new Map([["peers", PEERS]]);

function load(text: string): Ruleset {
  const r = parseIptables(text, { file: "t.rules", family: 4 });
  expect(r.errors.map(formatDiagnostic)).toEqual([]);
  return r.ruleset;
}

const q = (over: Partial<FlowQuery> = {}): FlowQuery => ({
  family: 4,
  proto: 17,
  dport: 500,
  sources: AddrSet.all(4),
  dst: P("192.0.2.1"),
  iif: "eth0",
  state: "new",
  ipsec: false,
  ...over,
});

const partOf = (parts: IptablesPart[], a: string | bigint): IptablesPart => {
  const x = typeof a === "string" ? A(a) : a;
  const p = parts.find((p) => p.sources.has(x));
  if (!p) throw new Error(`no part for ${a}`);
  return p;
};

/** verdict and what decided: `accept L5`, `drop policy DROP of filter INPUT`, `unknown`. */
const shown = (p: IptablesPart): string =>
  p.verdict === "unknown" ? "unknown" : `${p.verdict} ${p.rule ? `L${p.rule.line}` : p.defaultName}`;

describe("symbolic INPUT path", () => {
  const ev = (text: string, opts = {}) => iptablesEvaluator(load(text), { hostAddresses: HOST, ...opts });

  it("partitions the sources by the first deciding rule, policies named", () => {
    const e = ev(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", // 3
        "-A INPUT -s 10.0.0.0/8 -p udp --dport 500 -j DROP", // 4
        "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT", // 5
        "-A INPUT -p esp -j ACCEPT", // 6
        "COMMIT",
      ].join("\n"),
    );
    const parts = e.partition(q());
    expect(shown(partOf(parts, "10.1.2.3"))).toBe("drop L4");
    expect(shown(partOf(parts, "11.0.0.1"))).toBe("accept L5");
    expect(parts.map((p) => p.sources.toString())).toEqual([
      expect.stringContaining("0.0.0.0/5"),
      "10.0.0.0/8",
    ]);
    const tcp = e.partition(q({ proto: 6, dport: 22 }));
    expect(tcp.map(shown)).toEqual(["drop policy DROP of filter INPUT"]);
    expect(e.partition(q({ state: "established" })).map(shown)).toEqual(["accept L3"]);
  });

  it("user chains: RETURN for non-peers falls back to the caller; goto returns past it", () => {
    const e = ev(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":PEERS - [0:0]",
        ":G - [0:0]",
        "-A INPUT -p udp --dport 500 -j PEERS", // 5
        "-A INPUT -p udp --dport 500 -s 11.0.0.0/8 -j REJECT", // 6
        "-A INPUT -p udp --dport 4500 -g G", // 7
        "-A INPUT -p udp --dport 4500 -j ACCEPT", // 8: never reached via the goto
        "-A PEERS ! -s 10.1.2.0/24 -j RETURN", // 9
        "-A PEERS -j ACCEPT", // 10
        "-A G -s 10.1.2.3 -j ACCEPT", // 11
        "COMMIT",
      ].join("\n"),
    );
    const parts = e.partition(q());
    expect(shown(partOf(parts, "10.1.2.3"))).toBe("accept L10");
    expect(shown(partOf(parts, "11.2.3.4"))).toBe("reject L6");
    expect(shown(partOf(parts, "12.0.0.1"))).toBe("drop policy DROP of filter INPUT");
    const natt = e.partition(q({ dport: 4500 }));
    expect(shown(partOf(natt, "10.1.2.3"))).toBe("accept L11");
    expect(shown(partOf(natt, "10.1.2.4"))).toBe("drop policy DROP of filter INPUT");
  });

  it("undecidable rules make only the sources they decide unknown, with the rule", () => {
    const e = ev(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        "-A INPUT -p udp -m limit --limit 1/s -j LOG", // 3: observe only, no fork
        "-A INPUT -s 10.0.0.0/8 -p udp --dport 500 -m limit --limit 5/s -j ACCEPT", // 4
        "-A INPUT -s 10.1.0.0/16 -j ACCEPT", // 5
        "COMMIT",
      ].join("\n"),
    );
    const parts = e.partition(q());
    // 10.1/16 is accepted either way: certain, decided by rule 5 in the reading where 4 does not match.
    expect(shown(partOf(parts, "10.1.2.3"))).toBe("accept L5");
    const u = partOf(parts, "10.2.0.1");
    expect(u.verdict).toBe("unknown");
    expect(u.unknown?.rule?.line).toBe(4);
    expect(u.unknown?.reason).toMatch(/limit/);
    expect(shown(partOf(parts, "12.0.0.1"))).toBe("drop policy DROP of filter INPUT");
  });

  it("PREROUTING can decide: raw DROP, NOTRACK makes it UNTRACKED, DNAT moves it away", () => {
    const e = ev(
      [
        "*raw",
        ":PREROUTING ACCEPT [0:0]",
        "-A PREROUTING -s 10.9.0.0/16 -j DROP", // 3
        "-A PREROUTING -s 10.8.0.0/16 -p udp -j CT --notrack", // 4
        "-A PREROUTING -m conntrack --ctstate NEW -j DROP", // 5: never: raw sees no conntrack state
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        "-A PREROUTING -s 10.7.0.0/16 -p udp -j DNAT --to-destination 172.16.0.9", // 12
        "-A PREROUTING -s 10.6.0.0/16 -p udp -j DNAT --to-destination 192.0.2.2:4500", // 13
        "COMMIT",
        "*filter",
        ":INPUT DROP [0:0]",
        "-A INPUT -m conntrack --ctstate UNTRACKED -j REJECT", // 17
        "-A INPUT -d 192.0.2.2 -p udp --dport 4500 -j ACCEPT", // 18
        "-A INPUT -p udp --dport 500 -j ACCEPT", // 19
        "COMMIT",
      ].join("\n"),
    );
    const parts = e.partition(q());
    expect(shown(partOf(parts, "10.9.1.1"))).toBe("drop L3");
    expect(shown(partOf(parts, "10.8.1.1"))).toBe("reject L17");
    expect(shown(partOf(parts, "10.7.1.1"))).toBe("drop L12");
    expect(partOf(parts, "10.7.1.1").explanation).toMatch(/DNAT to 172\.16\.0\.9 .*forwarded, not delivered/);
    expect(shown(partOf(parts, "10.6.1.1"))).toBe("accept L18");
    expect(shown(partOf(parts, "1.2.3.4"))).toBe("accept L19");
    // Established: nat is not walked, but the connection's DNAT binding depends on its direction.
    const est = e.partition(q({ state: "established" }));
    expect(partOf(est, "10.7.1.1").verdict).toBe("unknown");
    expect(partOf(est, "10.7.1.1").unknown?.reason).toMatch(/direction is unknown/);
  });

  it("policy match against ipsec, addrtype via host addresses, ipsets exact only when given", () => {
    const text = [
      "*filter",
      ":INPUT DROP [0:0]",
      "-A INPUT -p udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT", // 3
      "-A INPUT -m addrtype ! --dst-type LOCAL -j REJECT", // 4
      "-A INPUT -p udp --dport 500 -m set --match-set peers src -j ACCEPT", // 5
      "COMMIT",
    ].join("\n");
    const e = ev(text, { ipset: IPSETS });
    expect(e.partition(q({ dport: 1701, ipsec: true })).map(shown)).toEqual(["accept L3"]);
    expect(e.partition(q({ dport: 1701 })).map(shown)).toEqual(["drop policy DROP of filter INPUT"]);
    const ike = e.partition(q());
    expect(shown(partOf(ike, "10.1.2.100"))).toBe("accept L5");
    expect(shown(partOf(ike, "10.1.2.200"))).toBe("drop policy DROP of filter INPUT");
    expect(e.partition(q({ dst: P("192.0.2.9") })).map(shown)).toEqual([
      `drop ${"not addressed to this host: routed, not delivered locally"} (192.0.2.9 is not one of its addresses)`,
    ]);
    const noSet = ev(text).partition(q());
    expect(noSet.map((p) => p.verdict)).toEqual(["unknown"]);
    expect(noSet[0]!.unknown?.reason).toMatch(/ipset peers/);
  });

  it("destination omitted: every host address; disagreeing ones make it unknown", () => {
    const e = ev("*filter\n:INPUT DROP [0:0]\n-A INPUT -d 192.0.2.1 -p udp --dport 500 -j ACCEPT\nCOMMIT\n");
    const { dst: _d, ...noDst } = q();
    const parts = e.partition(noDst);
    expect(parts.map((p) => p.verdict)).toEqual(["unknown"]);
    expect(parts[0]!.unknown?.reason).toMatch(/which of the host's addresses/);
    // No host addresses known: -d is unknown, addrtype LOCAL is certain.
    const bare = iptablesEvaluator(
      load("*filter\n:INPUT DROP [0:0]\n-A INPUT -m addrtype --dst-type LOCAL -p udp -j ACCEPT\nCOMMIT\n"),
    );
    expect(bare.partition(noDst).map(shown)).toEqual(["accept L3"]);
  });

  it("fragments: reassembled before INPUT (IPv4), or before everything when conntrack is used", () => {
    const text =
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -f -j DROP\n-A INPUT -p udp --dport 500 -j ACCEPT\nCOMMIT\n";
    const frag = q({ fragment: true, dport: undefined });
    const parts = ev(text).partition(frag);
    expect(parts.map((p) => [p.verdict, p.defaultName])).toEqual([
      ["accept", "reassembled before the rules: the fragment itself is not filtered"],
    ]);
    // With the datagram's port given, the whole datagram is judged.
    expect(
      ev(text)
        .partition(q({ fragment: true }))
        .map(shown),
    ).toEqual(["accept L4"]);
    // PREROUTING sees the fragment itself when nothing uses conntrack...
    const pre = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -f -j DROP\nCOMMIT\n";
    expect(ev(pre).partition(frag).map(shown)).toEqual(["drop L3"]);
    // ...and the reassembled datagram when something does (nf_defrag).
    const ct = `${pre}*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m state --state INVALID -j DROP\nCOMMIT\n`;
    expect(
      ev(ct)
        .partition(frag)
        .map((p) => p.verdict),
    ).toEqual(["accept"]);
  });

  it("IPv6: the same walk over 128-bit source sets", () => {
    const r = parseIptables(
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8:1::/48 -p udp --dport 500 -j DROP\n-A INPUT -s 2001:db8::/32 -p udp -m multiport --dports 500,4500 -j ACCEPT\n-A INPUT -m addrtype --src-type MULTICAST -j REJECT\nCOMMIT\n",
      { file: "t6.rules", family: 6 },
    );
    expect(r.errors).toEqual([]);
    const host6 = AddrSet.fromPrefix(parsePrefix("2001:db8:ffff::1"));
    const e = iptablesEvaluator(r.ruleset, { hostAddresses: host6 });
    const parts = e.partition({ ...q(), family: 6, sources: AddrSet.all(6), dst: host6 });
    expect(shown(partOf(parts, A("2001:db8:1::7")))).toBe("drop L3");
    expect(shown(partOf(parts, A("2001:db8:2::7")))).toBe("accept L4");
    expect(shown(partOf(parts, A("ff02::1")))).toBe("reject L5");
    expect(shown(partOf(parts, A("2001:db9::1")))).toBe("drop policy DROP of filter INPUT");
    expect(() => e.partition(q())).toThrow(/does not fit the IPv6 rule set t6\.rules: its sources are IPv4/);
  });

  it("state timeouts: UDP stream 120 s, ESP generic 600 s", () => {
    const rs = load("*filter\n:INPUT DROP [0:0]\nCOMMIT\n");
    const e = iptablesEvaluator(rs, { hostAddresses: HOST });
    expect(e.stateTimeout(q({ state: "established" }))).toMatchObject({
      seconds: 120,
      source: expect.stringMatching(/nf_conntrack_udp_timeout_stream.*30 s while unreplied/),
    });
    expect(conntrackTimeout(rs, 50)).toMatchObject({
      seconds: 600,
      source: expect.stringMatching(/generic/),
    });
    expect(conntrackTimeout(rs, 1)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// symbolic = concrete, for random member addresses over random rule sets

const NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "11.0.0.0/8", "192.0.2.1"];
const RANGE = "10.1.0.0-10.1.2.200";

/** One condition of each kind at most; most rules get one or two, so they often match. */
const KINDS = {
  src: fc.tuple(fc.boolean(), fc.constantFrom(...NETS)).map(([neg, net]) => `${neg ? "! " : ""}-s ${net}`),
  dst: fc.constantFrom("-d 192.0.2.1", "! -d 192.0.2.2", "-d 192.0.2.0/24", "-m addrtype --dst-type LOCAL"),
  proto: fc.constantFrom(
    "-p udp --dport 500",
    "-p udp -m multiport --dports 500,4500",
    "-p udp ! --dport 4500",
    "-p tcp --dport 22",
    "-p esp",
    "! -p udp",
  ),
  state: fc.constantFrom(
    "-m conntrack --ctstate NEW",
    "-m state --state ESTABLISHED,RELATED",
    "-m conntrack ! --ctstate INVALID",
    "-m conntrack --ctstate UNTRACKED",
    "-m state --state INVALID",
    // conntrack's virtual NAT states (firewalld starts INPUT with RELATED,ESTABLISHED,DNAT).
    "-m conntrack --ctstate RELATED,ESTABLISHED,DNAT",
    "-m conntrack --ctstate DNAT",
    "-m conntrack ! --ctstate SNAT",
  ),
  policy: fc.constantFrom("-m policy --dir in --pol ipsec", "-m policy --dir in --pol none"),
  range: fc.constantFrom(`-m iprange --src-range ${RANGE}`, `-m iprange ! --src-range ${RANGE}`),
  srctype: fc.constantFrom("-m addrtype --src-type LOCAL", "-m addrtype ! --src-type MULTICAST"),
  set: fc.constantFrom("-m set --match-set peers src", "-m set ! --match-set peers src"),
  limit: fc.constant("-m limit --limit 1/s"),
  mark: fc.constantFrom("-m mark --mark 0x1", "-m mark ! --mark 0x1/0x1"),
  iif: fc.constantFrom("-i eth0", "! -i eth+"),
};
type Kind = keyof typeof KINDS;
const ORDER = Object.keys(KINDS) as Kind[];
const condArb = fc
  .uniqueArray(fc.constantFrom(...ORDER), { maxLength: 3 })
  .chain((kinds) =>
    fc.tuple(...kinds.sort((x, y) => ORDER.indexOf(x) - ORDER.indexOf(y)).map((k) => KINDS[k])),
  )
  .map((parts) => parts.join(" "));
// Rare on purpose (most rule sets stay decidable, so verdicts are compared, not just "unknown").
const condText = (c: string): string =>
  c.includes("-m limit") && !c.includes("-s ") ? c.replace("-m limit --limit 1/s", "") : c;

const CHAINS = ["INPUT", "C1", "C2", "C3"];
const targetArb = (k: number) => {
  const later = CHAINS.slice(k + 1);
  return fc.constantFrom(
    "-j ACCEPT",
    "-j DROP",
    "-j REJECT",
    "-j RETURN",
    "-j LOG",
    "-j MARK --set-xmark 0x1/0xffffffff",
    ...later.flatMap((c) => [`-j ${c}`, `-g ${c}`]),
  );
};
const ruleArb = (k: number) => fc.tuple(condArb, targetArb(k));

const rulesetArb = fc.record({
  policy: fc.constantFrom("ACCEPT", "DROP"),
  chains: fc.tuple(...CHAINS.map((_, k) => fc.array(ruleArb(k), { maxLength: k === 0 ? 6 : 4 }))),
  raw: fc.array(fc.tuple(condArb, fc.constantFrom("-j CT --notrack", "-j DROP", "-j ACCEPT", "-j LOG")), {
    maxLength: 2,
  }),
  mangle: fc.array(
    fc.tuple(condArb, fc.constantFrom("-j MARK --set-xmark 0x1/0xffffffff", "-j DROP", "-j RETURN")),
    { maxLength: 2 },
  ),
  nat: fc.array(
    fc.tuple(
      condArb,
      fc.constantFrom(
        "-j DNAT --to-destination 192.0.2.2",
        "-j DNAT --to-destination 172.16.0.9",
        "-j REDIRECT",
        "-j ACCEPT",
        "-j RETURN",
      ),
    ),
    { maxLength: 2 },
  ),
});

type RS = typeof rulesetArb extends fc.Arbitrary<infer T> ? T : never;

function rulesetText(r: RS): string {
  const out = [
    "*raw",
    ":PREROUTING ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ...r.raw.map(([c, t]) => `-A PREROUTING ${condText(c)} ${t}`),
    "COMMIT",
    "*mangle",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...r.mangle.map(([c, t]) => `-A PREROUTING ${condText(c)} ${t}`),
    "COMMIT",
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...r.nat.map(([c, t]) => `-A PREROUTING ${condText(c)} ${t}`),
    "COMMIT",
    "*filter",
    `:INPUT ${r.policy} [0:0]`,
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ...CHAINS.slice(1).map((c) => `:${c} - [0:0]`),
  ];
  r.chains.forEach((rules, k) => {
    for (const [c, t] of rules) out.push(`-A ${CHAINS[k]} ${condText(c)} ${t}`);
  });
  out.push("COMMIT", "");
  return out.join("\n");
}

/** The concrete path judged the way the INPUT-path evaluator judges: not delivered = dropped. */
function concreteInput(res: PathResult): string {
  const mapped = res.outcomes.map((o) => {
    if (o.route === "forward") {
      const dnat = o.nat.find((n) => n.kind === "DNAT" || n.kind === "REDIRECT");
      return `drop ${dnat ? `L${dnat.rule.prov.line}` : "routed"}`;
    }
    if (o.verdict === "unknown") return "unknown";
    const d = o.decision;
    return `${o.verdict} ${d?.rule ? `L${d.rule.prov.line}` : d ? decisionName(d) : "-"}`;
  });
  if (res.truncated) return "unknown";
  const verdicts = new Set(mapped.map((m) => m.split(" ")[0]));
  if (verdicts.size > 1 || verdicts.has("unknown")) return "unknown";
  return mapped[0]!;
}

function symbolicShown(p: IptablesPart): string {
  if (p.verdict === "unknown") return "unknown";
  if (p.rule) return `${p.verdict} L${p.rule.line}`;
  return `${p.verdict} ${p.decision ? decisionName(p.decision) : "-"}`;
}

/** Addresses around every boundary the rules use, plus a few others. */
function probes(extra: bigint[]): bigint[] {
  const out = new Set<bigint>(extra);
  for (const n of [...NETS, RANGE.split("-")[0]!, RANGE.split("-")[1]!, "10.1.2.127", "11.0.0.5"]) {
    const s = n.includes("/") ? P(n) : P(n);
    const [lo, hi] = s.intervals()[0]!;
    for (const a of [lo - 1n, lo, lo + 1n, hi - 1n, hi, hi + 1n]) if (a >= 0n && a < 2n ** 32n) out.add(a);
  }
  return [...out];
}

describe("symbolic = concrete (fast-check)", () => {
  it("every probed source gets the concrete path's verdict and deciding rule", () => {
    fc.assert(
      fc.property(
        rulesetArb,
        fc.record({
          proto: fc.constantFrom(
            { proto: 17, dport: 500 },
            { proto: 17, dport: 4500 },
            { proto: 6, dport: 22 },
            { proto: 50 },
          ),
          state: fc.constantFrom("new", "established", "related", "invalid", "untracked") as fc.Arbitrary<
            FlowQuery["state"]
          >,
          ipsec: fc.boolean(),
          iif: fc.constantFrom("eth0", "ppp0", undefined),
          dst: fc.constantFrom("192.0.2.1", "192.0.2.2"),
          // A part of the address space too (a hub's peers): rules whose source misses it are skipped unbuilt.
          sources: fc.constantFrom(
            undefined,
            ["10.1.0.0/16"],
            ["11.0.0.5", "10.1.2.3", "172.16.0.1"],
            ["10.0.0.0/8"],
            ["9.0.0.0/8", "192.0.2.1"],
            // Only in the upper half of a rule's prefix.
            ["10.200.0.0/16", "10.1.2.200", "11.255.0.1"],
          ),
        }),
        fc.array(fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), { maxLength: 4 }),
        (r, qq, extra) => {
          const sources = qq.sources
            ? AddrSet.fromPrefixes(
                4,
                qq.sources.map((x) => parsePrefix(x)),
              )
            : AddrSet.all(4);
          const rs = load(rulesetText(r));
          const ev = iptablesEvaluator(rs, { hostAddresses: HOST, ipset: IPSETS });
          const query = q({
            proto: qq.proto.proto,
            dport: qq.proto.dport,
            state: qq.state,
            ipsec: qq.ipsec,
            dst: P(qq.dst),
            sources,
            ...(qq.iif ? { iif: qq.iif } : { iif: undefined }),
          });
          if (!qq.iif) delete query.iif;
          const parts = ev.partition(query);
          // A partition: disjoint, covering every source asked about.
          let union = AddrSet.empty(4);
          for (const p of parts) {
            expect(union.overlaps(p.sources)).toBe(false);
            union = union.union(p.sources);
          }
          expect(union.equals(sources)).toBe(true);
          for (const src of probes([...extra, ...sources.intervals().flat()])) {
            if (!sources.has(src)) continue;
            const pkt: Packet = {
              family: 4,
              src,
              dst: A(qq.dst),
              proto: qq.proto.proto,
              ...(qq.proto.dport !== undefined ? { dport: qq.proto.dport } : {}),
              ...(qq.iif ? { iif: qq.iif } : {}),
              state: qq.state,
              ipsec: qq.ipsec,
            };
            const want = concreteInput(evaluatePath(rs, pkt, { local: HOST, ipsets: IPSETS }));
            const got = symbolicShown(partOf(parts, src));
            if (got !== want) {
              throw new Error(
                `source ${formatAddress(4, src)}: symbolic "${got}", concrete "${want}"\n${rulesetText(r)}\nquery ${JSON.stringify({ ...qq })}`,
              );
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("performance shape", () => {
  it("a 20,000-rule chain is answered in one walk (no per-address work)", () => {
    const lines = ["*filter", ":INPUT DROP [0:0]"];
    for (let i = 0; i < 20000; i++)
      lines.push(
        `-A INPUT -s ${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24 -p udp --dport ${i % 2 ? 500 : 4500} -j ${i % 3 ? "ACCEPT" : "DROP"}`,
      );
    lines.push("COMMIT", "");
    const rs = load(lines.join("\n"));
    const parts = iptablesEvaluator(rs, { hostAddresses: HOST }).evaluate(q());
    expect(parts.filter((p) => p.verdict === "accept").length).toBeGreaterThan(1000);
    expect(parts.find((p) => p.sources.has(A("10.0.1.7")))).toMatchObject({ verdict: "accept" });
    expect(parts.find((p) => p.sources.has(A("10.0.3.7")))).toMatchObject({ verdict: "drop" });
  });
});
