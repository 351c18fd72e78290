import { describe, expect, it } from "vitest";
import { auditGateway, setBrief, setText } from "../src/analysis/audit.js";
import type { CtState, FilterEvaluator, FlowQuery, VerdictPart } from "../src/analysis/query.js";
import { parsePrefix } from "../src/model/address.js";
import { AddrSet } from "../src/model/addrset.js";
import { planFlows } from "../src/vpn/flows.js";
import { makeScenario } from "../src/vpn/scenario.js";

/** A first-match list of simple rules — a stand-in platform for testing the audit's classification. */
interface FakeRule {
  line: number;
  src?: string;
  proto?: number;
  dport?: number;
  states?: CtState[];
  ipsec?: boolean;
  verdict: "accept" | "drop" | "unknown";
}
function fake(rules: FakeRule[], policy: "accept" | "drop"): FilterEvaluator {
  return {
    platform: "fake",
    evaluate(q: FlowQuery): VerdictPart[] {
      let rest = q.sources;
      const out: VerdictPart[] = [];
      for (const r of rules) {
        if (r.proto !== undefined && r.proto !== q.proto) continue;
        if (r.dport !== undefined && r.dport !== q.dport) continue;
        if (r.states && !r.states.includes(q.state)) continue;
        if (r.ipsec !== undefined && r.ipsec !== q.ipsec) continue;
        const m = r.src ? rest.intersect(AddrSet.fromPrefix(parsePrefix(r.src))) : rest;
        if (m.isEmpty()) continue;
        const rule = { file: "fw.rules", line: r.line, text: `rule ${r.line}` };
        out.push(
          r.verdict === "unknown"
            ? { sources: m, verdict: "unknown", rule: null, unknown: { reason: "-m limit", rule } }
            : { sources: m, verdict: r.verdict, rule },
        );
        rest = rest.difference(m);
        if (rest.isEmpty()) return out;
      }
      out.push({ sources: rest, verdict: policy, rule: null, defaultName: `policy ${policy.toUpperCase()}` });
      return out;
    },
    stateTimeout: () => ({ seconds: 120, source: "nf_conntrack_udp_timeout_stream default" }),
  };
}

const s2s = planFlows(
  makeScenario({ vpn: "site-to-site", ike: 1, peers: ["203.0.113.7"], local: "198.51.100.1" }),
);
const ids = (rules: FakeRule[], policy: "accept" | "drop" = "drop", plan = s2s) =>
  auditGateway({ gateway: "gw", plan, evaluator: fake(rules, policy) })
    .findings.map((f) => f.id)
    .sort();
const EST: FakeRule = { line: 1, states: ["established", "related"], verdict: "accept" };

describe("audit classification", () => {
  it("clean when IKE and ESP are accepted as NEW from the peer only", () => {
    expect(
      ids([
        EST,
        { line: 2, src: "203.0.113.7", proto: 17, dport: 500, verdict: "accept" },
        { line: 3, src: "203.0.113.7", proto: 50, verdict: "accept" },
      ]),
    ).toEqual([]);
  });
  it("ike-reply-only: established accepted, no NEW rule for UDP 500 (the Linux trap)", () => {
    const r = auditGateway({
      gateway: "gw",
      plan: s2s,
      evaluator: fake([EST, { line: 3, proto: 50, verdict: "accept" }], "drop"),
    });
    expect(r.findings.map((f) => f.id)).toEqual(["ike-reply-only"]);
    expect(r.findings[0]!.message).toMatch(/after 120 s without packets/);
    expect(r.findings[0]!.rules.map((x) => x.line)).toEqual([1]);
  });
  it("ike-blocked when nothing lets it in; a DROP for a range containing the peer shadows a later accept", () => {
    expect(ids([{ line: 3, proto: 50, verdict: "accept" }])).toEqual(["ike-blocked"]);
    expect(
      ids([
        { line: 1, src: "203.0.113.0/24", proto: 17, verdict: "drop" },
        { line: 2, proto: 17, dport: 500, verdict: "accept" },
        { line: 3, proto: 50, verdict: "accept" },
      ]),
    ).toEqual(["ike-blocked", "ike-open-to-any"]);
  });
  it("ike-open-to-any when IKE is accepted from everyone", () => {
    expect(
      ids([
        { line: 2, proto: 17, dport: 500, verdict: "accept" },
        { line: 3, proto: 50, verdict: "accept" },
      ]),
    ).toEqual(["ike-open-to-any"]);
  });
  it("verdict-unknown when an unknowable match decides a required flow", () => {
    expect(
      ids([
        { line: 2, proto: 17, verdict: "unknown" },
        { line: 3, proto: 50, verdict: "accept" },
      ]),
    ).toContain("verdict-unknown");
  });
  it("l2tp-unprotected when plain 1701 is accepted", () => {
    const l2tp = planFlows(makeScenario({ vpn: "l2tp-ipsec", ah: false }));
    expect(
      ids(
        [
          { line: 1, proto: 17, verdict: "accept" },
          { line: 2, proto: 50, verdict: "accept" },
        ],
        "drop",
        l2tp,
      ),
    ).toEqual(["l2tp-unprotected"]);
    expect(
      ids(
        [
          { line: 1, proto: 17, dport: 1701, ipsec: false, verdict: "drop" },
          { line: 2, proto: 17, verdict: "accept" },
          { line: 3, proto: 50, verdict: "accept" },
        ],
        "drop",
        l2tp,
      ),
    ).toEqual([]);
  });
  it("esp-open-unneeded when ESP is open behind NAT", () => {
    const nat = planFlows(makeScenario({ vpn: "site-to-site", nat: "peer", peers: ["203.0.113.7"] }));
    expect(
      ids(
        [
          { line: 1, src: "203.0.113.7", proto: 17, verdict: "accept" },
          { line: 2, proto: 50, verdict: "accept" },
        ],
        "drop",
        nat,
      ),
    ).toEqual(["esp-open-unneeded"]);
  });
});

describe("address sets in messages", () => {
  const set = (...ps: string[]) =>
    AddrSet.fromPrefixes(
      4,
      ps.map((p) => parsePrefix(p)),
    );
  it("'any source except' only when the left-out side is the smaller one", () => {
    // Two small blocks: named as they are, not as everything else.
    const fwd = set("198.51.100.0/25", "192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30", "192.0.2.20/32");
    for (const f of [setText, setBrief]) expect(f(fwd)).toBe("192.0.2.10-192.0.2.20, 198.51.100.0/25");
    // Everything but a range and a peer: named by what is left out, as a range, not 30 prefixes.
    const open = set("10.0.0.5/32", "10.0.0.6/31", "10.0.0.8/31", "203.0.113.7/32").complement();
    for (const f of [setText, setBrief])
      expect(f(open)).toBe("any source except 10.0.0.5-10.0.0.9, 203.0.113.7");
  });
});
