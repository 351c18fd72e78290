import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../src/model/ruleset.js";
import type { Ruleset } from "../src/platforms/iptables/model.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";
import {
  type BatchResult,
  type IptablesSymbolicTrace,
  type IptablesTrace,
  IptablesTraceError,
  renderBatchJsonl,
  renderTraceText,
  traceIptables,
  traceIptablesBatch,
} from "../src/platforms/iptables/trace.js";

function load(text: string, file = "gw.rules"): Ruleset {
  const r = parseIptables(text, { file, family: 4 });
  expect(r.errors.map(formatDiagnostic)).toEqual([]);
  return r.ruleset;
}

// hwdsl2/setup-ipsec-vpn's INPUT rules (anchors §5), with a policy DROP and a rate-limited SSH rule.
const RULES = [
  "*filter",
  ":INPUT DROP [0:0]",
  ":FORWARD DROP [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  "-A INPUT -p udp -m udp --dport 1701 -m policy --dir in --pol none -j DROP", // 5
  "-A INPUT -m conntrack --ctstate INVALID -j DROP", // 6
  "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", // 7
  "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT", // 8
  "-A INPUT -p udp -m udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT", // 9
  "-A INPUT -p tcp --dport 22 -m limit --limit 3/min -j ACCEPT", // 10
  "COMMIT",
  "",
].join("\n");
const rs = load(RULES);
const HOST = { hostAddresses: ["192.0.2.1"] };

const packet = (t: ReturnType<typeof traceIptables>): IptablesTrace => {
  expect(t.kind).toBe("packet");
  return t as IptablesTrace;
};

describe("concrete trace (JSON contract)", () => {
  it("verdict, the deciding rule with file/line/text, and every step like -j TRACE", () => {
    const t = packet(
      traceIptables(rs, { src: "198.51.100.7", proto: "udp", sport: 500, dport: 500, iif: "eth0" }, HOST),
    );
    expect(t).toMatchObject({
      verdict: "accept",
      rule: { file: "gw.rules", line: 8, text: "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT" },
      decidedBy: "gw.rules:8",
      route: "local",
      packet: {
        src: "198.51.100.7",
        dst: "192.0.2.1",
        proto: 17,
        sport: 500,
        dport: 500,
        state: "new",
        ipsec: false,
      },
    });
    expect(t.visited.map((v) => v.step)).toEqual(["filter:INPUT:rule:4"]);
    expect(t.visited[0]!.rule?.line).toBe(8);
    // JSON round trip: plain data only.
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });

  it("rule is null when the chain policy decided", () => {
    const t = packet(
      traceIptables(rs, { src: "198.51.100.7", dst: "192.0.2.1", proto: 50, iif: "eth0" }, HOST),
    );
    expect(t).toMatchObject({ verdict: "drop", rule: null, decidedBy: "policy DROP of filter INPUT" });
    expect(t.visited.map((v) => v.step)).toEqual(["filter:INPUT:policy:7"]);
  });

  it("IPsec-decapsulated L2TP is accepted, plain L2TP dropped by the policy match", () => {
    const l2tp = { src: "198.51.100.7", proto: "udp", sport: 1701, dport: 1701, iif: "eth0" } as const;
    expect(packet(traceIptables(rs, { ...l2tp, ipsec: true }, HOST)).rule?.line).toBe(9);
    expect(packet(traceIptables(rs, l2tp, HOST))).toMatchObject({ verdict: "drop", rule: { line: 5 } });
  });

  it("unknown: the rule that cannot be decided, and every outcome with its assumption", () => {
    const t = packet(
      traceIptables(rs, { src: "198.51.100.7", proto: "tcp", sport: 40000, dport: 22, iif: "eth0" }, HOST),
    );
    expect(t.verdict).toBe("unknown");
    expect(t.rule?.line).toBe(10);
    expect(t.reason).toMatch(/limit/);
    expect(t.outcomes?.map((o) => [o.verdict, o.decidedBy])).toEqual([
      ["drop", "policy DROP of filter INPUT"],
      ["accept", "gw.rules:10"],
    ]);
  });

  it("without host addresses the destination is taken as the host's, and said so", () => {
    const t = packet(traceIptables(rs, { src: "198.51.100.7", dst: "192.0.2.9", proto: "udp", dport: 500 }));
    expect(t.route).toBe("local");
    expect(t.notes.join("\n")).toMatch(/192\.0\.2\.9 is taken as its only address/);
    expect(() => traceIptables(rs, { src: "198.51.100.7", proto: "udp", dport: 500 })).toThrow(
      /dst is required/,
    );
  });

  it("host addresses with a prefix length: the subnet's directed broadcast is local", () => {
    const p = { src: "192.0.2.7", dst: "192.0.2.255", proto: "udp", dport: 500, iif: "eth0" } as const;
    expect(packet(traceIptables(rs, p, HOST)).route).toBe("forward");
    expect(packet(traceIptables(rs, p, { hostAddresses: ["192.0.2.1/24"] })).route).toBe("local");
  });

  it("input errors are IptablesTraceError with what is wrong", () => {
    const bad = (p: Parameters<typeof traceIptables>[1], re: RegExp) => {
      expect(() => traceIptables(rs, p, HOST)).toThrow(IptablesTraceError);
      expect(() => traceIptables(rs, p, HOST)).toThrow(re);
    };
    bad({ src: "10.0.0.1", proto: "esp", dport: 500 }, /tcp and udp only/);
    bad({ src: "10.0.0.1", proto: "bogus" }, /not a protocol/);
    bad({ src: "10.0.0.999", proto: "udp" }, /not an IP address/);
    bad({ src: "2001:db8::1", proto: "udp" }, /IPv6, the rule set gw\.rules is IPv4/);
    bad({ src: "10.0.0.1", proto: "udp", dport: 70000 }, /not a port/);
  });
});

describe("symbolic trace", () => {
  it("src any, dst omitted: the sources partitioned by verdict, for every host address", () => {
    const t = traceIptables(
      rs,
      { src: "any", proto: "udp", dport: 1701, iif: "eth0" },
      HOST,
    ) as IptablesSymbolicTrace;
    expect(t.kind).toBe("symbolic");
    expect(t.query).toMatch(/from any to any address of the host \(192\.0\.2\.1\)/);
    expect(t.parts).toEqual([
      expect.objectContaining({
        sources: "any",
        verdict: "drop",
        rule: expect.objectContaining({ line: 5 }),
      }),
    ]);
    const ike = traceIptables(
      load("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -p udp --dport 500 -j ACCEPT\nCOMMIT\n"),
      { src: "10.0.0.0/7", proto: "udp", dport: 500 },
      HOST,
    ) as IptablesSymbolicTrace;
    expect(ike.parts.map((p) => [p.sources, p.verdict, p.rule?.line ?? p.defaultName])).toEqual([
      ["10.0.0.0-10.255.255.255", "accept", 3],
      ["11.0.0.0-11.255.255.255", "drop", "policy DROP of filter INPUT"],
    ]);
    const text = renderTraceText(ike);
    expect(text.split("\n")[1]).toMatch(/^SOURCES\s+VERDICT\s+DECIDED BY$/);
    expect(text).toMatch(/10\.0\.0\.0-10\.255\.255\.255\s+accept\s+gw\.rules:3 -A INPUT -s 10\.0\.0\.0\/8/);
  });
});

describe("batch (JSONL)", () => {
  it("one result per packet line, in order, with precise per-line errors", () => {
    const input = [
      '{"src":"198.51.100.7","dst":"192.0.2.1","proto":"udp","sport":500,"dport":500,"iif":"eth0","state":"new","ipsec":false}',
      "",
      '{"src":"198.51.100.7","proto":17,"sport":4500,"dport":4500,"iif":"eth0","state":"ESTABLISHED"}',
      '{"src":"198.51.100.7","proto":"esp","dport":500}',
      "{not json",
      '{"src":"198.51.100.7","proto":"udp","dprot":500}',
      '{"src":"198.51.100.0/24","proto":"udp","dport":500}',
      '{"proto":"udp"}',
      '{"src":"198.51.100.7","proto":"udp","dport":1701,"ipsec":true,"iif":"eth0"}',
      '{"src":"198.51.100.7","proto":"udp","dport":500,"state":"closed"}',
      "[1,2]",
    ].join("\n");
    const out = traceIptablesBatch(rs, input, HOST);
    const brief = (r: BatchResult) =>
      "error" in r
        ? `${r.line}: error: ${r.error}`
        : `${r.line}: ${r.verdict} ${r.rule?.line ?? r.decidedBy}`;
    expect(out.map(brief)).toEqual([
      "1: accept 8",
      "3: accept 7",
      "4: error: sport/dport are for tcp and udp only (proto esp)",
      expect.stringMatching(/^5: error: not JSON: /),
      "6: error: unknown field 'dprot'; allowed: src, dst, proto, sport, dport, iif, state, ipsec, fragment, fragId",
      "7: error: src '198.51.100.0/24' must be a single address in a batch",
      "8: error: src is required: an IP address (string)",
      "9: accept 9",
      "10: error: state 'closed' is not one of new, established, related, invalid, untracked",
      "11: error: expected a JSON object (a packet)",
    ]);
    const jsonl = renderBatchJsonl(out).trimEnd().split("\n");
    expect(jsonl).toHaveLength(10);
    expect(JSON.parse(jsonl[0]!)).toMatchObject({ line: 1, verdict: "accept", rule: { line: 8 } });
  });

  it("10,000 packets against a kube-proxy-like rule set (time reported, not asserted)", () => {
    // The shape of ../shared/bench/gen-kube-like-iptables.py, 20,000 rules.
    const n = 20000;
    const nat: string[] = [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":INPUT ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":POSTROUTING ACCEPT [0:0]",
      ":KUBE-SERVICES - [0:0]",
    ];
    const natRules: string[] = ["-A PREROUTING -j KUBE-SERVICES"];
    for (let s = 0; s < n / 8; s++) {
      const ip = `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`;
      const pod = `10.244.${(s >> 8) & 255}.${s & 255}`;
      nat.push(`:KUBE-SVC-${s} - [0:0]`, `:KUBE-SEP-${s} - [0:0]`);
      natRules.push(
        `-A KUBE-SERVICES -d ${ip}/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-${s}`,
        `-A KUBE-SVC-${s} -j KUBE-SEP-${s}`,
        `-A KUBE-SEP-${s} -s ${pod}/32 -j MARK --set-xmark 0x4000/0x4000`,
        `-A KUBE-SEP-${s} -p tcp -m tcp -j DNAT --to-destination ${pod}:80`,
      );
    }
    let seed = 1;
    const rnd = (k: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % k;
    };
    const filter = [
      "*filter",
      ":INPUT DROP [0:0]",
      ":FORWARD DROP [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":HOSTFW - [0:0]",
      "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A INPUT -j HOSTFW",
    ];
    const ports = [22, 80, 443, 500, 4500, 1701, 8443, 3389, 53, 123];
    for (let i = 0; i < n / 2; i++) {
      const proto = rnd(2) ? "tcp" : "udp";
      filter.push(
        `-A HOSTFW -s ${1 + rnd(222)}.${rnd(256)}.${rnd(256)}.0/24 -p ${proto} -m ${proto} --dport ${ports[rnd(10)]} -j ${["ACCEPT", "DROP", "REJECT"][rnd(3)]}`,
      );
    }
    const big = load([...nat, ...natRules, "COMMIT", ...filter, "COMMIT", ""].join("\n"), "big.rules");
    const lines: string[] = [];
    for (let i = 0; i < 10000; i++) {
      const proto = ["udp", "tcp", "esp"][i % 3]!;
      const ports =
        proto === "esp" ? "" : `,"sport":${40000 + (i % 1000)},"dport":${[500, 4500, 22, 80][i % 4]}`;
      lines.push(
        `{"src":"${1 + rnd(222)}.${rnd(256)}.${rnd(256)}.${rnd(256)}","dst":"192.0.2.1","proto":"${proto}"${ports},"iif":"eth0","state":"${i % 5 ? "new" : "established"}"}`,
      );
    }
    const t0 = performance.now();
    const out = traceIptablesBatch(big, lines.join("\n"), HOST);
    const ms = performance.now() - t0;
    console.log(`10,000-packet batch over ${n} rules: ${ms.toFixed(0)} ms`);
    expect(out).toHaveLength(10000);
    expect(out.every((r) => !("error" in r))).toBe(true);
    const verdicts = new Set(out.map((r) => ("error" in r ? "error" : r.verdict)));
    expect(verdicts).toEqual(new Set(["accept", "drop", "reject"]));
  });
});

describe("text", () => {
  it("a TRACE-like listing: the packet, each step with its rule, the verdict", () => {
    const t = packet(
      traceIptables(rs, { src: "198.51.100.7", proto: "udp", sport: 1701, dport: 1701, iif: "eth0" }, HOST),
    );
    expect(renderTraceText(t)).toBe(
      [
        "packet UDP 198.51.100.7:1701 -> 192.0.2.1:1701 IN=eth0 state NEW",
        "TRACE: filter:INPUT:rule:1  gw.rules:5: -A INPUT -p udp -m udp --dport 1701 -m policy --dir in --pol none -j DROP",
        "verdict: DROP (local delivery) by gw.rules:5: -A INPUT -p udp -m udp --dport 1701 -m policy --dir in --pol none -j DROP",
        "",
      ].join("\n"),
    );
    const u = renderTraceText(
      packet(traceIptables(rs, { src: "198.51.100.7", proto: "tcp", dport: 22 }, HOST)),
    );
    expect(u).toMatch(/^verdict: UNKNOWN \(local delivery\) — /m);
    expect(u).toMatch(/^ {2}if gw\.rules:10 matches \(-m limit: .*\): ACCEPT by gw\.rules:10$/m);
  });
});

describe("symbolic trace text", () => {
  it("cuts a row's source list short (a non-contiguous mask makes tens of thousands of ranges); JSON keeps all", async () => {
    const { renderPartitionTable } = await import("../src/report/partition-table.js");
    const many = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(", ");
    const text = renderPartitionTable("q", [
      { sources: many, verdict: "accept", rule: null, defaultName: "policy" },
    ]);
    expect(text).toContain("… and 960 more (all of them in --format json)");
    expect(text.split("\n").length).toBeLessThan(30);
  });
});

describe("reversed ranges (a:b with a > b) never hold, whatever the packet's unknown fields", () => {
  // Loaded by iptables 1.8.9 as written; the kernel tests min <= x && x <= max (xt_length, xt_esp,
  // xt_ah, ip6t_frag, xt_conntrack), so the rule never matches and its `!` always does.
  const cases: Array<[4 | 6, string, Record<string, unknown>]> = [
    [4, "-m length --length 200:100", { proto: "udp", sport: 1, dport: 2 }],
    [4, "-p esp -m esp --espspi 10:5", { proto: "esp" }],
    [4, "-p ah -m ah --ahspi 10:5", { proto: "ah" }],
    [6, "-m frag --fragid 10:5", { proto: "udp", sport: 1, dport: 2, fragment: "later" }],
    [4, "-m conntrack --ctexpire 20:10", { proto: "udp", sport: 1, dport: 2, state: "established" }],
  ];
  const host = (f: 4 | 6) => (f === 4 ? "192.0.2.2" : "2001:db8::2");
  const trace = (f: 4 | 6, rule: string, pkt: Record<string, unknown>, src: string) => {
    const text = `*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ${rule} -j DROP\nCOMMIT\n`;
    const rs = parseIptables(text, { file: "r.rules", family: f }).ruleset;
    return traceIptables(rs, { src, ...(src === "any" ? {} : { dst: host(f) }), ...pkt } as never, {
      hostAddresses: [host(f)],
    });
  };

  it("concrete: the policy decides; inverted, the rule drops", () => {
    for (const [f, rule, pkt] of cases) {
      const src = f === 4 ? "192.0.2.1" : "2001:db8::1";
      const plain = trace(f, rule, pkt, src) as IptablesTrace;
      expect(plain.verdict, rule).toBe("accept");
      expect(plain.rule, rule).toBeNull();
      const inverted = rule.replace(/(--\w+ \d+:\d+)$/, "! $1");
      const inv = trace(f, inverted, pkt, src) as IptablesTrace;
      expect(inv.verdict, inverted).toBe("drop");
      expect(inv.rule?.line, inverted).toBe(3);
    }
  });

  it("symbolic: every source gets the same definite answer", () => {
    for (const [f, rule, pkt] of cases) {
      const t = trace(f, rule, pkt, "any") as IptablesSymbolicTrace;
      expect(
        t.parts.map((p) => p.verdict),
        rule,
      ).toEqual(["accept"]);
    }
  });
});
