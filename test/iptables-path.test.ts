import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluateTable, formatTraceStep, type Packet } from "../src/analysis/iptables-eval.js";
import {
  concreteSkip,
  conntrackInUse,
  decisionName,
  evaluatePath,
  linkBroadcasts,
  type PathOptions,
  type PathResult,
  ruleIndex,
} from "../src/analysis/iptables-path.js";
import { parsePrefix } from "../src/model/address.js";
import { AddrSet } from "../src/model/addrset.js";
import { formatDiagnostic } from "../src/model/ruleset.js";
import type { Ruleset } from "../src/platforms/iptables/model.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";
import { ruleAt, ruleCount } from "../src/platforms/iptables/rule-store.js";

const A = (s: string) => parsePrefix(s).addr;
const LOCAL = AddrSet.fromPrefix(parsePrefix("192.0.2.1"));

function load(text: string, family: 4 | 6 = 4): Ruleset {
  const r = parseIptables(text, { file: "t.rules", family });
  expect(r.errors.map(formatDiagnostic)).toEqual([]);
  return r.ruleset;
}

const pkt = (over: Partial<Packet> = {}): Packet => ({
  family: 4,
  src: A("198.51.100.7"),
  dst: A("192.0.2.1"),
  proto: 17,
  sport: 500,
  dport: 500,
  iif: "eth0",
  state: "new",
  ipsec: false,
  ...over,
});

const path = (rs: Ruleset, p: Partial<Packet> = {}, o: PathOptions = { local: LOCAL }): PathResult =>
  evaluatePath(rs, pkt(p), o);
const steps = (r: PathResult, k = 0) => r.outcomes[k]!.trace.map((s) => `${s.hook}/${formatTraceStep(s)}`);
const decided = (r: PathResult) => (r.decision ? decisionName(r.decision) : null);

const ALL_TABLES = [
  "*raw",
  ":PREROUTING ACCEPT [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  "-A PREROUTING -m conntrack --ctstate NEW -j DROP", // 4: raw runs before conntrack: never NEW
  "-A PREROUTING -p udp --dport 4500 -j CT --notrack", // 5
  "COMMIT",
  "*mangle",
  ":PREROUTING ACCEPT [0:0]",
  ":INPUT ACCEPT [0:0]",
  ":FORWARD ACCEPT [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  ":POSTROUTING ACCEPT [0:0]",
  "-A PREROUTING -p udp -j MARK --set-xmark 0x7/0xffffffff", // 13
  "-A POSTROUTING -j LOG", // 14
  "COMMIT",
  "*nat",
  ":PREROUTING ACCEPT [0:0]",
  ":INPUT ACCEPT [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  ":POSTROUTING ACCEPT [0:0]",
  "-A PREROUTING -p udp --dport 1701 -j DNAT --to-destination 10.0.0.2", // 21
  "-A PREROUTING -p udp --dport 4501 -j DNAT --to-destination 192.0.2.1:4500", // 22
  "-A INPUT -p udp -j LOG", // 23
  "COMMIT",
  "*filter",
  ":INPUT DROP [0:0]",
  ":FORWARD DROP [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  "-A INPUT -m mark --mark 0x7 -p udp --dport 500 -j ACCEPT", // 29
  "-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT", // 30
  "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT", // 31
  "-A FORWARD -d 10.0.0.2 -p udp --dport 1701 -j ACCEPT", // 32
  "-A OUTPUT -p udp --sport 500 -j REJECT", // 33
  "COMMIT",
  "*security",
  ":INPUT ACCEPT [0:0]",
  ":FORWARD ACCEPT [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  "-A INPUT -p udp --dport 4500 -j DROP", // 39
  "COMMIT",
].join("\n");

describe("the kernel's path through every table", () => {
  const rs = load(ALL_TABLES);

  it("local delivery: raw, mangle, nat PREROUTING; mangle, filter, security, nat INPUT — traced in order", () => {
    const r = path(rs);
    expect([r.verdict, r.route, decided(r)]).toEqual(["accept", "local", "t.rules:29"]);
    expect(steps(r)).toEqual([
      "PREROUTING/raw:PREROUTING:policy:3",
      "PREROUTING/mangle:PREROUTING:rule:1",
      "PREROUTING/mangle:PREROUTING:policy:2",
      "PREROUTING/nat:PREROUTING:policy:3",
      "INPUT/mangle:INPUT:policy:1",
      "INPUT/filter:INPUT:rule:1",
      "INPUT/security:INPUT:policy:2",
      "INPUT/nat:INPUT:rule:1",
      "INPUT/nat:INPUT:policy:2",
    ]);
    expect(r.outcomes[0]!.packet.mark).toBe(7);
  });

  it("raw sees no conntrack state; CT --notrack makes the packet UNTRACKED and skips nat", () => {
    const r = path(rs, { dport: 4500, sport: 4500 });
    expect([r.verdict, decided(r)]).toEqual(["drop", "t.rules:39"]); // filter accepted (30), security dropped
    expect(r.outcomes[0]!.packet.state).toBe("untracked");
    expect(steps(r).filter((s) => s.includes("nat:"))).toEqual([]);
    expect(steps(r)).toContain("INPUT/filter:INPUT:rule:2");
  });

  it("nat only for a connection's first packet; an established one gets its DNAT binding by direction", () => {
    const est = path(rs, { state: "established", dport: 1701, sport: 1701, ctDir: "REPLY" });
    expect([est.verdict, est.route, decided(est)]).toEqual(["accept", "local", "t.rules:31"]);
    expect(steps(est).filter((s) => s.includes("nat:"))).toEqual([]);
    const orig = path(rs, { state: "established", dport: 1701, sport: 1701, ctDir: "ORIGINAL" });
    expect([orig.verdict, orig.route, decided(orig)]).toEqual(["accept", "forward", "t.rules:32"]);
    expect(orig.outcomes[0]!.notes[0]).toMatch(/DNAT binding \(t\.rules:21\)/);
    const dir = path(rs, { state: "established", dport: 1701, sport: 1701 });
    expect(dir.verdict).toBe("unknown");
    expect(dir.reason).toMatch(/conntrack direction is unknown/);
  });

  it("DNAT decides local delivery or forwarding (FORWARD, then POSTROUTING)", () => {
    const fwd = path(rs, { dport: 1701, sport: 1701 });
    expect([fwd.verdict, fwd.route, decided(fwd)]).toEqual(["accept", "forward", "t.rules:32"]);
    expect(fwd.outcomes[0]!.packet.dst).toBe(A("10.0.0.2"));
    expect(steps(fwd).slice(4)).toEqual([
      "FORWARD/mangle:FORWARD:policy:1",
      "FORWARD/filter:FORWARD:rule:1",
      "FORWARD/security:FORWARD:policy:1",
      "POSTROUTING/mangle:POSTROUTING:rule:1",
      "POSTROUTING/mangle:POSTROUTING:policy:2",
      "POSTROUTING/nat:POSTROUTING:policy:1",
    ]);
    const moved = path(rs, { dport: 4501, sport: 4500 });
    // DNAT to the host itself on port 4500: delivered locally, where nothing accepts 4500.
    expect([moved.verdict, moved.route, decided(moved)]).toEqual([
      "drop",
      "local",
      "policy DROP of filter INPUT",
    ]);
    expect(moved.outcomes[0]!.packet.dport).toBe(4500);
    expect(moved.outcomes[0]!.nat.map((n) => n.rule.prov.line)).toEqual([22]);
  });

  it("local output: raw, mangle, nat, filter, security OUTPUT, then POSTROUTING", () => {
    const r = evaluatePath(rs, pkt({ src: A("192.0.2.1"), dst: A("198.51.100.7"), iif: "", oif: "eth0" }), {
      local: LOCAL,
      origin: "local",
    });
    expect([r.verdict, r.route, decided(r)]).toEqual(["reject", "output", "t.rules:33"]);
    expect(steps(r).map((s) => s.split("/")[1]!.split(":")[0])).toEqual(["raw", "mangle", "nat", "filter"]);
  });

  it("unknown host addresses: local delivery and forwarding both explored", () => {
    const r = path(rs, {}, {});
    expect(r.route).toBe("unknown");
    expect(r.verdict).toBe("unknown"); // local: accepted by 29; forwarded: FORWARD policy DROP
    expect(r.outcomes.map((o) => [o.route, o.verdict])).toEqual([
      ["local", "accept"],
      ["forward", "drop"],
    ]);
    const mc = path(rs, { dst: A("239.1.2.3") });
    expect(mc.verdict).toBe("unknown");
    expect(mc.reason).toMatch(/multicast/);
  });

  it("a subnet's directed broadcast is delivered locally when the host's prefix is known", () => {
    const fw = load("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n");
    const b = linkBroadcasts([
      parsePrefix("192.0.2.1/24", { allowHostBits: true }),
      parsePrefix("198.51.100.1/31", { allowHostBits: true }),
      parsePrefix("2001:db8::1/64", { allowHostBits: true }),
    ]);
    expect(b.toString()).toBe("192.0.2.255");
    expect(path(fw, { dst: A("192.0.2.255") }).route).toBe("forward");
    const r = path(fw, { dst: A("192.0.2.255") }, { local: LOCAL, broadcast: b });
    expect([r.verdict, r.route, decided(r)]).toEqual(["accept", "local", "t.rules:4"]);
  });

  it("-j TTL in mangle changes the TTL later rules see (set, dec clamped at 0; unknown stays unknown)", () => {
    const rs = load(
      "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j TTL --ttl-set 200\n-A PREROUTING -p tcp -j TTL --ttl-dec 100\nCOMMIT\n" +
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m ttl --ttl-eq 200 -j DROP\n-A INPUT -m ttl --ttl-eq 0 -j REJECT\nCOMMIT\n",
    );
    expect([path(rs, { ttl: 64 }).verdict, decided(path(rs, { ttl: 64 }))]).toEqual(["drop", "t.rules:8"]);
    expect(path(rs, {}).verdict).toBe("drop"); // set: known whatever it was
    const tcp = { proto: 6, sport: 40000, dport: 22 };
    expect(path(rs, { ...tcp, ttl: 64 }).verdict).toBe("reject"); // 64 - 100 → 0
    expect(path(rs, { ...tcp, ttl: 150 }).verdict).toBe("accept"); // 50
    expect(path(rs, { ...tcp }).verdict).toBe("unknown"); // TTL unknown: -m ttl may match
  });

  it("REDIRECT in nat OUTPUT sends to the loopback address (NF_INET_LOCAL_OUT), whatever the host's addresses", () => {
    const rs4 = load(
      "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p udp --dport 500 -j REDIRECT --to-ports 4501\nCOMMIT\n*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 127.0.0.1/32 -p udp --dport 4501 -j DROP\nCOMMIT\n",
    );
    const out = pkt({ src: A("192.0.2.1"), dst: A("198.51.100.7"), iif: "", oif: "eth0" });
    for (const local of [LOCAL, LOCAL.union(AddrSet.fromPrefix(parsePrefix("192.0.2.2"))), undefined]) {
      const r = evaluatePath(rs4, out, { ...(local ? { local } : {}), origin: "local" });
      expect([r.verdict, decided(r)]).toEqual(["drop", "t.rules:7"]);
      expect(r.outcomes[0]!.packet).toMatchObject({ dst: A("127.0.0.1"), dport: 4501 });
    }
    const rs6 = load(
      "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p udp --dport 500 -j REDIRECT\nCOMMIT\n*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d ::1/128 -j DROP\nCOMMIT\n",
      6,
    );
    const r6 = evaluatePath(
      rs6,
      pkt({ family: 6, src: A("2001:db8::1"), dst: A("2001:db8::7"), iif: "", oif: "eth0" }),
      { local: AddrSet.fromPrefix(parsePrefix("2001:db8::1")), origin: "local" },
    );
    expect([r6.verdict, decided(r6)]).toEqual(["drop", "t.rules:7"]);
  });

  it("DNAT to a range or REDIRECT without a single host address: the kernel chooses at run time", () => {
    const nat = load(
      "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp --dport 500 -j DNAT --to-destination 10.0.0.2-10.0.0.3\n-A PREROUTING -p udp --dport 4500 -j REDIRECT --to-ports 4501\nCOMMIT\n",
    );
    expect(path(nat).reason).toMatch(/address range/);
    const red = path(nat, { dport: 4500 });
    expect([red.verdict, red.route]).toEqual(["accept", "local"]);
    expect(red.outcomes[0]!.packet).toMatchObject({ dst: A("192.0.2.1"), dport: 4501 });
    const two = path(
      nat,
      { dport: 4500 },
      { local: LOCAL.union(AddrSet.fromPrefix(parsePrefix("192.0.2.2"))) },
    );
    expect(two.verdict).toBe("unknown");
    expect(two.reason).toMatch(/primary address/);
  });
});

describe("fragments", () => {
  const noCt = load(
    "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -f -j LOG\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -f -j ACCEPT\n-A INPUT -p udp --dport 500 -j ACCEPT\nCOMMIT\n",
  );
  const frag = { fragment: true, sport: undefined, dport: undefined };

  it("IPv4: PREROUTING sees the fragment, INPUT the reassembled datagram (ip_local_deliver)", () => {
    expect(conntrackInUse(noCt)).toBe(false);
    const r = path(noCt, frag);
    expect(r.verdict).toBe("accept");
    expect(r.decision).toBeNull();
    expect(r.reason).toMatch(/reassembled before INPUT.*ports are not given/);
    expect(steps(r)).toEqual(["PREROUTING/raw:PREROUTING:rule:1", "PREROUTING/raw:PREROUTING:policy:2"]);
    // With the datagram's ports: judged whole, `-f` no longer matches.
    const whole = path(noCt, { fragment: true });
    expect([whole.verdict, decided(whole)]).toEqual(["accept", "t.rules:8"]);
  });

  it("conntrack in use: nf_defrag reassembles before raw; IPv6 INPUT sees fragments otherwise", () => {
    const ct = load(`${ALL_TABLES}\n`);
    expect(conntrackInUse(ct)).toBe(true);
    const r = path(ct, frag);
    expect(r.reason).toMatch(/nf_defrag/);
    expect(steps(r)).toEqual([]);
    const v6 = load("*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp --dport 500 -j ACCEPT\nCOMMIT\n", 6);
    const p6 = {
      family: 6 as const,
      src: A("2001:db8::7"),
      dst: A("2001:db8::1"),
      ...frag,
    };
    const r6 = evaluatePath(v6, pkt(p6), { local: AddrSet.fromPrefix(parsePrefix("2001:db8::1")) });
    // No conntrack, no reassembly before ip6tables INPUT: the UDP match fails on the fragment.
    expect([r6.verdict, decided(r6)]).toEqual(["drop", "policy DROP of filter INPUT"]);
  });
});

describe("rule index", () => {
  const NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "11.0.0.0/8"];
  const ruleArb = fc.record({
    src: fc.option(fc.tuple(fc.boolean(), fc.constantFrom(...NETS))),
    dst: fc.option(fc.constantFrom("192.0.2.1", "192.0.2.0/24", "198.51.100.0/24")),
    proto: fc.option(
      fc.constantFrom(
        "-p udp --dport 500",
        "-p udp --dport 4500",
        "-p tcp --dport 22",
        "-p udp",
        "! -p tcp",
        "-p udp -m multiport --dports 500,1701",
        // As iptables-save writes them: such rules are kept packed (read from columns).
        "-p udp -m udp --dport 500",
        "-p udp -m udp --dport 4500",
        "-p tcp -m tcp --dport 22",
      ),
    ),
    target: fc.constantFrom("ACCEPT", "DROP", "RETURN", "LOG", "U"),
  });
  const text = (rules: Array<typeof ruleArb extends fc.Arbitrary<infer T> ? T : never>) =>
    [
      "*filter",
      ":INPUT DROP [0:0]",
      ":U - [0:0]",
      ...rules.map(
        (r) =>
          `-A INPUT ${r.src ? `${r.src[0] ? "! " : ""}-s ${r.src[1]}` : ""} ${r.dst ? `-d ${r.dst}` : ""} ${r.proto ?? ""} -j ${r.target}`,
      ),
      ...rules
        .slice(0, 30)
        .map(
          (r) =>
            `-A U ${r.proto ?? ""} ${r.src ? `-s ${r.src[1]}` : ""} -j ${r.target === "U" ? "RETURN" : r.target}`,
        ),
      "COMMIT",
      "",
    ].join("\n");

  it("skipping rules never changes the verdict, the deciding rule or the trace", () => {
    fc.assert(
      fc.property(
        fc.array(ruleArb, { minLength: 24, maxLength: 80 }),
        fc.array(
          fc.record({
            src: fc.constantFrom("10.1.2.3", "10.1.9.9", "10.200.0.1", "11.0.0.1", "12.0.0.1"),
            dst: fc.constantFrom("192.0.2.1", "192.0.2.7", "198.51.100.1"),
            proto: fc.constantFrom(6, 17, 50),
            dport: fc.constantFrom(22, 500, 1701, 4500, undefined),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        (rules, packets) => {
          const rs = load(text(rules));
          const skip = concreteSkip(rs);
          for (const x of packets) {
            const p = pkt({ src: A(x.src), dst: A(x.dst), proto: x.proto, dport: x.dport });
            const plain = evaluateTable(rs, "filter", "INPUT", p);
            const fast = evaluateTable(rs, "filter", "INPUT", p, { skip });
            expect(fast.verdict).toBe(plain.verdict);
            expect(fast.rule?.prov.line).toBe(plain.rule?.prov.line);
            expect(fast.outcomes.map((o) => o.trace.map(formatTraceStep))).toEqual(
              plain.outcomes.map((o) => o.trace.map(formatTraceStep)),
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a chain's first symbolic-source keys (one pass each, no index) give what the full index gives", () => {
    fc.assert(
      fc.property(
        fc.array(ruleArb, { minLength: 24, maxLength: 80 }),
        fc.array(
          fc.record({
            proto: fc.constantFrom(-1, 6, 17, 50),
            dport: fc.constantFrom(22, 500, 1701, 4500, undefined),
            dst: fc.option(fc.constantFrom("192.0.2.1", "192.0.2.7", "198.51.100.1", "203.0.113.1")),
          }),
          { minLength: 1, maxLength: 7 },
        ),
        (rules, keys) => {
          // Two parses: chains of `direct` are asked with the symbolic-source keys (a pass each
          // for the first ones, then the index); those of `indexed` with a concrete key first,
          // which builds the full index. The rules stay packed (never read through `rules`).
          const direct = load(text(rules));
          const indexed = load(text(rules));
          // The same passes over rule objects (kept, not packed).
          const kept = parseIptables(text(rules), { file: "t.rules", family: 4, keepRules: true }).ruleset;
          const nd = ruleIndex(direct);
          const ni = ruleIndex(indexed);
          const nk = ruleIndex(kept);
          for (const name of ["INPUT", "U"]) {
            const cd = direct.tables.get("filter")!.chains.get(name)!;
            const ci = indexed.tables.get("filter")!.chains.get(name)!;
            const ck = kept.tables.get("filter")!.chains.get(name)!;
            ni(ci, 0, { proto: 17, dport: 500, src: A("10.1.2.3"), dst: A("192.0.2.1") });
            // Some rules already built (a walk builds those it looks at), the others still packed.
            for (let i = 0; i < ruleCount(cd); i += 3) ruleAt(cd, i);
            for (const k of keys) {
              const key = { proto: k.proto, dport: k.dport, src: null, dst: k.dst ? A(k.dst) : null };
              for (let from = 0; from <= ruleCount(cd); from++) {
                const want = ni(ci, from, key);
                expect(nd(cd, from, key)).toBe(want);
                expect(nk(ck, from, key)).toBe(want);
              }
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
