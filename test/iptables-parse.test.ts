import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { formatDiagnostic, RulesetParseError } from "../src/model/ruleset.js";
import { formatRule, formatRuleset } from "../src/platforms/iptables/format.js";
import type { Match, Rule, Ruleset, TableName, Target } from "../src/platforms/iptables/model.js";
import {
  type IptablesParseOptions,
  parseIptables,
  parseIptablesOrThrow,
} from "../src/platforms/iptables/parse.js";
import { quoteArg, tokenize } from "../src/platforms/iptables/tokenize.js";

// ---------------------------------------------------------------------------------------------
// Ground truth from the real iptables (see the header of the data block at the end of the file).

const parse = (text: string, opts: IptablesParseOptions = {}) =>
  parseIptables(text, { file: "t.rules", ...opts });

function allRules(rs: Ruleset): Rule[] {
  return [...rs.tables.values()].flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules));
}

/** One rule line inside a table with two user chains U and V declared. */
function one(line: string, table: TableName = "filter", family: 4 | 6 = 4) {
  const r = parse(`*${table}\n:U - [0:0]\n:V - [0:0]\n${line}\nCOMMIT\n`, { family });
  return { ...r, rules: allRules(r.ruleset), msgs: [...r.errors, ...r.warnings].map((d) => d.message) };
}

/** The single rule of a line that must parse cleanly (no errors). */
function rule(line: string, table: TableName = "filter", family: 4 | 6 = 4): Rule {
  const r = one(line, table, family);
  expect(r.errors.map(formatDiagnostic)).toEqual([]);
  expect(r.rules).toHaveLength(1);
  return r.rules[0]!;
}

/** The member(s) of a union whose `kind` admits K (some members share one type for two kinds). */
type Of<U extends { kind: string }, K extends string> = U extends unknown
  ? K extends U["kind"]
    ? U
    : never
  : never;

function match<K extends Match["kind"]>(r: Rule, kind: K): Of<Match, K> {
  const m = r.matches.find((x) => x.kind === kind);
  expect(m, `no ${kind} match in ${r.prov.text}`).toBeDefined();
  return m as Of<Match, K>;
}

function target<K extends Target["kind"]>(r: Rule, kind: K): Of<Target, K> {
  expect(r.target?.kind).toBe(kind);
  return r.target as Of<Target, K>;
}

function errorsOf(line: string, table: TableName = "filter", family: 4 | 6 = 4): string[] {
  return one(line, table, family).errors.map((e) => e.message);
}

const SKIP = new Set(["col", "argCol", "prov", "num"]);
/** Model without positions, for comparing parses of different spellings of the same rule. */
function shape(x: unknown): string {
  return JSON.stringify(x, (k, v) => {
    if (SKIP.has(k)) return undefined;
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Map) return [...v.entries()];
    if (k === "unknown" && Array.isArray(v)) return v.map((u: { what: string }) => u.what).sort();
    return v;
  });
}

describe("agreement with iptables 1.8.9", () => {
  // Options of opaque modules are kept as written; iptables-save adds its defaults to some of them.
  const NORMALISED_BY_IPTABLES = new Set([
    "recent",
    "statistic",
    "u32",
    "time",
    "connlimit",
    "dscp",
    "ipv6header",
  ]);
  const opaqueNormalised = (line: string) =>
    [...NORMALISED_BY_IPTABLES].some((m) => line.includes(`-m ${m} `));
  // iptables-save 1.8.9 writes a backslash in a comment unescaped, so its own output does not read back.
  const lossyInIptables = (saved: string) => saved.includes("\\s");

  for (const [family, golden] of [
    [4, GOLDEN4],
    [6, GOLDEN6],
  ] as const) {
    for (const [table, input, saved] of golden) {
      it(`IPv${family} ${table}: ${input}`, () => {
        const r = one(input, table as TableName, family);
        expect(r.errors.map(formatDiagnostic)).toEqual([]);
        const ours = r.rules.map((x) => formatRule(x, family));
        if (!opaqueNormalised(input) && !input.includes("back\\\\slash")) expect(ours).toEqual(saved);
        // The canonical form is a fixed point, and means the same as the input.
        if (!lossyInIptables(saved[0] ?? "")) {
          const again = one(saved.join("\n"), table as TableName, family);
          expect(again.errors).toEqual([]);
          expect(again.rules.map((x) => formatRule(x, family))).toEqual(saved);
          if (!opaqueNormalised(input))
            expect(shape(again.rules.map((x) => ({ ...x, unknown: [] })))).toEqual(
              shape(r.rules.map((x) => ({ ...x, unknown: [] }))),
            );
        }
      });
    }
  }

  // Where we deliberately differ: kept with a warning (the brief: never drop, mark), or the
  // refusal comes from kernel state a dump cannot show.
  const DELIBERATE: Record<string, string> = {
    "-A INPUT -p udplite --dport 7 -j DROP": "unknown option kept and marked",
    "-A INPUT -m set --match-set blocklist src -j DROP": "ipset existence is kernel state",
    "-A INPUT -m set ! --match-set allow src,dst -j DROP": "ipset existence is kernel state",
    "-A INPUT -j QUEUE": "refused by the nft backend only; iptables-legacy accepts QUEUE",
  };
  for (const [table, input, says] of REJECTED4) {
    it(`refuses what iptables refuses: ${input}  (${says.replace(/^iptables-restore v[\d.]+ \(nf_tables\): /, "")})`, () => {
      const r = one(input, table as TableName);
      if (DELIBERATE[input]) {
        expect(r.rules).toHaveLength(1);
        return;
      }
      expect(r.errors.length).toBeGreaterThan(0);
      for (const e of r.errors) {
        expect(e.line).toBeGreaterThan(0);
        expect(e.col).toBeGreaterThan(0);
      }
    });
  }
});

describe("addresses", () => {
  it("reads CIDR, dotted masks, non-contiguous masks and clears host bits", () => {
    const a = rule("-A INPUT -s 10.0.0.0/255.255.0.0 -d 1.2.3.4");
    expect(a.src).toEqual({
      spec: { kind: "net", family: 4, addr: 0x0a000000n, mask: 0xffff0000n, len: 16 },
      invert: false,
    });
    expect(a.dst?.spec).toMatchObject({ addr: 0x01020304n, len: 32 });
    const odd = rule("-A INPUT -s 1.2.3.4/255.0.255.0");
    expect(odd.src?.spec).toMatchObject({ addr: 0x01000300n, mask: 0xff00ff00n, len: null });
    const hb = one("-A INPUT -s 10.1.2.3/8 -j DROP");
    expect(hb.errors).toEqual([]);
    expect(hb.rules[0]!.src?.spec).toMatchObject({ addr: 0x0a000000n, len: 8 });
    expect(hb.warnings[0]!.message).toBe("host bits set in '10.1.2.3/8'; iptables uses 10.0.0.0/8");
  });

  it("reads IPv4 the way libxtables does: octal parts, missing parts", () => {
    const r = one("-A INPUT -s 010.1.1.1 -d 10.1");
    expect(r.rules[0]!.src?.spec).toMatchObject({ addr: 0x08010101n });
    expect(r.rules[0]!.dst?.spec).toMatchObject({ addr: 0x0a010000n });
    expect(r.msgs).toContain("'010.1.1.1' is read by iptables as 8.1.1.1");
    // It reads the first 19 characters only.
    const cut = one("-A INPUT -s 00000000010.00000000.0.1 -d 10.0.0.000000000001");
    expect(cut.rules[0]!.src?.spec).toMatchObject({ addr: 0x08000000n, len: 32 });
    expect(cut.rules[0]!.dst?.spec).toMatchObject({ addr: 0x0a000001n });
    expect(cut.msgs).toContain("'00000000010.00000000.0.1' is read by iptables as 8.0.0.0");
  });

  it("negates in the new and the old (deprecated) position identically", () => {
    const a = rule("-A INPUT ! -s 10.0.0.0/8 -p tcp ! --dport 22 -j DROP");
    const b = one("-A INPUT -s ! 10.0.0.0/8 -p tcp --dport ! 22 -j DROP");
    expect(b.errors).toEqual([]);
    expect(shape(b.rules[0])).toEqual(shape(a));
    expect(a.src?.invert).toBe(true);
    expect(match(a, "tcp").dport).toEqual({ range: { lo: 22, hi: 22 }, invert: true });
    expect(b.warnings.map((w) => w.message)).toEqual([
      "'-s ! value' is deprecated; iptables 1.8 expects '! -s value'",
      "'--dport ! value' is deprecated; iptables 1.8 expects '! --dport value'",
    ]);
    expect(errorsOf("-A INPUT ! ! -s 1.2.3.4")).toEqual(["multiple consecutive ! not allowed"]);
    expect(errorsOf("-A INPUT ! -s ! 1.2.3.4")).toEqual(["multiple ! flags not allowed"]);
    expect(errorsOf("-A INPUT -j ACCEPT !")).toEqual([
      "'!' at the end of the line: expected an option after it",
    ]);
  });

  it("expands address lists into one rule per pair, source-major, sharing provenance", () => {
    const r = one("-A INPUT -s 1.2.3.4,5.6.7.0/24 -d 9.9.9.9,8.8.8.8 -j DROP");
    expect(r.rules.map((x) => formatRule(x, 4))).toEqual([
      "-A INPUT -s 1.2.3.4/32 -d 9.9.9.9/32 -j DROP",
      "-A INPUT -s 1.2.3.4/32 -d 8.8.8.8/32 -j DROP",
      "-A INPUT -s 5.6.7.0/24 -d 9.9.9.9/32 -j DROP",
      "-A INPUT -s 5.6.7.0/24 -d 8.8.8.8/32 -j DROP",
    ]);
    expect(new Set(r.rules.map((x) => x.prov.line))).toEqual(new Set([4]));
    expect(r.rules.map((x) => x.num)).toEqual([1, 2, 3, 4]);
    expect(errorsOf("-A INPUT ! -s 1.2.3.4,5.6.7.8")).toEqual([
      "! not allowed with multiple source or destination IP addresses",
    ]);
  });

  it("keeps host names as unknown, with a precise message", () => {
    const r = one("-A INPUT -s PH_IP_CAROL -j ACCEPT");
    expect(r.errors).toEqual([]);
    expect(r.rules[0]!.src?.spec).toEqual({ kind: "name", name: "PH_IP_CAROL" });
    expect(r.rules[0]!.unknown).toEqual([
      { col: 13, what: "-s PH_IP_CAROL", reason: "host name resolved by DNS at load time" },
    ]);
    expect(r.warnings[0]!.message).toMatch(/^unsupported: host name 'PH_IP_CAROL' in -s/);
  });

  it("rejects bad addresses with the column of the value", () => {
    const r = one("-A INPUT -s 1.2.3.4/33 -j DROP");
    expect(r.errors.map(formatDiagnostic)).toEqual([
      "t.rules:4:13: -s: expected a prefix length 0..32 after '/', got '33'",
    ]);
    expect(errorsOf("-A INPUT -d 1.2.3.256")).toEqual(["-d: expected an IPv4 address, got '1.2.3.256'"]);
    expect(errorsOf("-A INPUT -s 2001:db8::1")).toEqual([
      "-s: expected an IPv4 address, got IPv6 '2001:db8::1'",
    ]);
    expect(errorsOf("-A INPUT -s 10.0.0.1", "filter", 6)).toEqual([
      "-s: expected an IPv6 address, got IPv4 '10.0.0.1'",
    ]);
    expect(errorsOf("-A INPUT -s 1.2.3.4,,5.6.7.8")[0]).toMatch(/^-s: expected an IPv4 address, got ''/);
  });

  it("reads IPv6 prefixes and masks and prints v4-mapped addresses like inet_ntop", () => {
    const r = rule("-A INPUT -s 2001:db8::/32 -d ::ffff:127.0.0.1", "filter", 6);
    expect(r.src?.spec).toMatchObject({ family: 6, addr: 0x20010db8n << 96n, len: 32 });
    expect(formatRule(r, 6)).toBe("-A INPUT -s 2001:db8::/32 -d ::ffff:127.0.0.1/128");
    const m = rule("-A INPUT -s 2001:db8::1/ffff:ffff:0:ffff::", "filter", 6);
    expect(m.src?.spec).toMatchObject({ len: null });
  });
});

describe("protocols and interfaces", () => {
  it("accepts names, numbers, any case, and 'all' as no condition", () => {
    expect(rule("-A INPUT -p TCP").proto).toEqual({ num: 6, invert: false });
    expect(rule("-A INPUT -p 50").proto).toEqual({ num: 50, invert: false });
    expect(rule("-A INPUT -p esp").proto).toEqual({ num: 50, invert: false });
    expect(rule("-A INPUT -p ah").proto).toEqual({ num: 51, invert: false });
    expect(rule("-A INPUT -p gre").proto).toEqual({ num: 47, invert: false });
    expect(rule("-A INPUT -p sctp").proto).toEqual({ num: 132, invert: false });
    expect(rule("-A INPUT -p udplite").proto).toEqual({ num: 136, invert: false });
    expect(rule("-A INPUT -p icmpv6", "filter", 6).proto).toEqual({ num: 58, invert: false });
    expect(rule("-A INPUT -p ipv6-icmp", "filter", 6).proto).toEqual({ num: 58, invert: false });
    expect(rule("-A INPUT ! -p udp").proto).toEqual({ num: 17, invert: true });
    expect(rule("-A INPUT -p all").proto).toBeNull();
    expect(rule("-A INPUT -p 0").proto).toBeNull();
    expect(errorsOf("-A INPUT ! -p all")).toEqual(["rule would never match protocol: ! -p all"]);
    expect(errorsOf("-A INPUT -p nosuch")[0]).toMatch(/^-p: unknown protocol 'nosuch'/);
    expect(errorsOf("-A INPUT -p 256")[0]).toMatch(/^-p: unknown protocol '256'/);
    // /etc/protocols' mptcp is 262: nft matches 262 & 255 (tcp), the tcp match sees 262.
    const mptcp = one("-A INPUT -p mptcp");
    expect(mptcp.rules[0]!.proto).toEqual({ num: 6, invert: false });
    expect(mptcp.msgs).toEqual([
      "-p mptcp is protocol 262: iptables-nft matches its low byte (tcp), while extensions see 262",
    ]);
    expect(errorsOf("-A INPUT -p mptcp -m tcp --dport 80")).toEqual(["tcp match requires '-p tcp'"]);
    expect(errorsOf("-A INPUT -p tcp -p udp")).toEqual(["multiple -p flags not allowed"]);
  });

  it("reads interface wildcards and negation", () => {
    const r = rule("-A FORWARD -i ppp+ ! -o eth0");
    expect(r.iif).toEqual({ name: "ppp", wildcard: true, invert: false });
    expect(r.oif).toEqual({ name: "eth0", wildcard: false, invert: true });
    expect(rule("-A INPUT -i +").iif).toBeNull();
    expect(rule("-A INPUT ! -i +").iif).toEqual({ name: "", wildcard: true, invert: true });
    expect(errorsOf("-A INPUT -i aaaaaaaaaaaaaaaaaaa")).toEqual([
      "-i: interface name 'aaaaaaaaaaaaaaaaaaa' must be shorter than IFNAMSIZ (15)",
    ]);
    expect(errorsOf("-A INPUT -o eth0")).toEqual(["can't use -o with INPUT"]);
    expect(errorsOf("-A OUTPUT -i eth0")).toEqual(["can't use -i with OUTPUT"]);
  });

  it("reads -f (IPv4 only)", () => {
    expect(rule("-A INPUT -f").fragment).toEqual({ invert: false });
    expect(rule("-A INPUT ! -f").fragment).toEqual({ invert: true });
    expect(errorsOf("-A INPUT -f", "filter", 6)[0]).toMatch(/^-f is IPv4-only/);
  });
});

describe("match modules", () => {
  it("tcp: ports, ranges, flags, --syn, --tcp-option, implicit loading", () => {
    const r = rule("-A INPUT -p tcp --sport 1024: --dport :100 ! --syn --tcp-option 5");
    const t = match(r, "tcp");
    expect(t.sport).toEqual({ range: { lo: 1024, hi: 65535 }, invert: false });
    expect(t.dport).toEqual({ range: { lo: 0, hi: 100 }, invert: false });
    expect(t.flags).toEqual({ mask: 0x17, comp: 0x02, invert: true });
    expect(t.option).toEqual({ num: 5, invert: false });
    expect(t.col).toBe(17); // implicit: the column of the first tcp option
    expect(match(rule("-A INPUT -p tcp -m tcp --tcp-flags ALL NONE"), "tcp").flags).toEqual({
      mask: 0x3f,
      comp: 0,
      invert: false,
    });
    expect(match(rule("-A INPUT -p tcp --dport ssh"), "tcp").dport?.range).toEqual({ lo: 22, hi: 22 });
    expect(match(rule("-A INPUT -p tcp --destination-port https"), "tcp").dport?.range).toEqual({
      lo: 443,
      hi: 443,
    });
    expect(errorsOf("-A INPUT -p tcp --dport 5:1")).toEqual([
      "--dport: invalid portrange (min > max): '5:1'",
    ]);
    expect(errorsOf("-A INPUT -p tcp --dport 70000")).toEqual([
      "--dport: expected a port 0..65535, got '70000'",
    ]);
    expect(errorsOf("-A INPUT -p tcp --dport nosuch")).toEqual([
      "--dport: expected a port number or service name, got 'nosuch'",
    ]);
    expect(errorsOf("-A INPUT -p tcp --dport 1 --dport 2")).toEqual(["tcp: only one --dport allowed"]);
    expect(errorsOf("-A INPUT -m tcp --dport 22")).toEqual(["tcp match requires '-p tcp'"]);
    expect(errorsOf("-A INPUT ! -p tcp -m tcp --dport 22")).toEqual([
      "tcp match requires '-p tcp' (not inverted)",
    ]);
    expect(errorsOf("-A INPUT -p tcp --tcp-flags SYN")).toEqual([
      "option --tcp-flags requires two arguments",
    ]);
  });

  it("udp accepts a reversed range, which then never matches (like iptables)", () => {
    const r = one("-A INPUT -p udp --dport 60000:29 -j ACCEPT");
    expect(r.errors).toEqual([]);
    expect(match(r.rules[0]!, "udp").dport?.range).toEqual({ lo: 60000, hi: 29 });
    expect(r.msgs).toEqual(["--dport 60000:29: min > max, so this condition never holds"]);
  });

  it("sctp and dccp keep their chunk/type options and mark the rule unknown", () => {
    const r = rule("-A INPUT -p sctp --dport 5 --chunk-types any INIT -j DROP");
    expect(match(r, "sctp").chunkTypes).toMatchObject({ name: "--chunk-types", args: ["any", "INIT"] });
    expect(r.unknown.map((u) => u.what)).toEqual(["--chunk-types"]);
    expect(target(r, "DROP")).toBeTruthy();
  });

  it("multiport: directions, ranges, inversion, limits", () => {
    const m = match(rule("-A INPUT -p udp -m multiport ! --dports 500,4500,1000:2000"), "multiport");
    expect(m).toMatchObject({
      dir: "dst",
      invert: true,
      ranges: [
        { lo: 500, hi: 500 },
        { lo: 4500, hi: 4500 },
        { lo: 1000, hi: 2000 },
      ],
    });
    expect(match(rule("-A INPUT -p tcp -m multiport --sports 1,2"), "multiport").dir).toBe("src");
    expect(match(rule("-A INPUT -p tcp -m multiport --ports 1,2"), "multiport").dir).toBe("any");
    expect(match(rule("-A INPUT -p tcp -m multiport --source-ports 1"), "multiport").dir).toBe("src");
    expect(errorsOf("-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16")).toEqual([
      "--dports: expected at most 15 ports (a range counts as two), got 16",
    ]);
    expect(errorsOf("-A INPUT -m multiport --dports 22")[0]).toMatch(/^multiport needs '-p tcp'/);
    expect(errorsOf("-A INPUT -p tcp -m multiport")).toEqual([
      "multiport: expected exactly one of --sports, --dports, --ports",
    ]);
  });

  it("conntrack: every condition", () => {
    const c = match(
      rule(
        "-A INPUT -m conntrack ! --ctstate NEW,INVALID --ctproto udp --ctorigsrc 10.0.0.0/8 ! --ctorigdst 1.2.3.4 --ctreplsrc 5.6.7.8/32 --ctrepldst 9.9.9.0/24 --ctorigsrcport 500 --ctorigdstport 1000:2000 ! --ctreplsrcport 5 --ctrepldstport 6 --ctstatus SEEN_REPLY,ASSURED --ctdir REPLY",
      ),
      "conntrack",
    );
    expect(c.state).toEqual({ values: ["INVALID", "NEW"], invert: true });
    expect(c.proto).toEqual({ num: 17, invert: false });
    expect(c.origSrc?.net).toMatchObject({ addr: 0x0a000000n, len: 8 });
    expect(c.origDst).toMatchObject({ invert: true, net: { addr: 0x01020304n, len: 32 } });
    expect(c.replSrc?.net.len).toBe(32);
    expect(c.replDst?.net.len).toBe(24);
    expect(c.origSrcPort?.range).toEqual({ lo: 500, hi: 500 });
    expect(c.origDstPort?.range).toEqual({ lo: 1000, hi: 2000 });
    expect(c.replSrcPort).toEqual({ range: { lo: 5, hi: 5 }, invert: true });
    expect(c.status?.values).toEqual(["SEEN_REPLY", "ASSURED"]);
    expect(c.dir).toBe("REPLY");
    expect(match(rule("-A INPUT -m conntrack --ctstate new"), "conntrack").state?.values).toEqual(["NEW"]);
    const e = rule("-A INPUT -m conntrack --ctexpire 10:20");
    expect(e.unknown.map((u) => u.what)).toEqual(["--ctexpire"]);
    expect(errorsOf("-A INPUT -m conntrack --ctstate BOGUS")[0]).toMatch(
      /^--ctstate: expected one of INVALID, NEW/,
    );
    expect(errorsOf("-A INPUT -m conntrack --ctdir SIDEWAYS")).toEqual([
      "--ctdir: expected ORIGINAL or REPLY, got 'SIDEWAYS'",
    ]);
    expect(errorsOf("-A INPUT -m conntrack")).toEqual(["conntrack: expected at least one option"]);
  });

  it("state", () => {
    expect(match(rule("-A INPUT -m state --state ESTABLISHED,RELATED"), "state")).toMatchObject({
      values: ["RELATED", "ESTABLISHED"],
      invert: false,
    });
    expect(match(rule("-A INPUT -m state ! --state NEW"), "state").invert).toBe(true);
    expect(errorsOf("-A INPUT -m state --state SNAT")[0]).toMatch(
      /^--state: expected one of INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED/,
    );
    expect(errorsOf("-A INPUT -m state")).toEqual(["state: option --state must be specified"]);
  });

  it("policy: direction, policy, strict elements", () => {
    const p = match(
      rule(
        "-A FORWARD -m policy --dir in --pol ipsec --strict --reqid 1 ! --spi 0x10 --proto esp --mode tunnel --tunnel-src 1.1.1.1 --tunnel-dst 2.2.2.0/24 --next --proto ah --mode transport",
      ),
      "policy",
    );
    expect(p).toMatchObject({ dir: "in", pol: "ipsec", strict: true });
    expect(p.elements).toHaveLength(2);
    expect(p.elements[0]).toMatchObject({
      reqid: { value: 1, invert: false },
      spi: { value: 16, invert: true },
      proto: { value: "esp", invert: false },
      mode: { value: "tunnel", invert: false },
      tunnelSrc: { net: { addr: 0x01010101n, len: 32 } },
      tunnelDst: { net: { addr: 0x02020200n, len: 24 } },
    });
    expect(p.elements[1]).toMatchObject({
      proto: { value: "ah" },
      mode: { value: "transport" },
      reqid: null,
    });
    expect(match(rule("-A INPUT -m policy --dir in --pol none"), "policy")).toMatchObject({
      pol: "none",
      strict: false,
      elements: [],
    });
    expect(match(rule("-A INPUT -m policy --dir in"), "policy").pol).toBe("ipsec");
    expect(
      match(rule("-A INPUT -m policy --dir in --pol ipsec --proto 50"), "policy").elements[0]!.proto?.value,
    ).toBe("esp");
    expect(errorsOf("-A INPUT -m policy --pol ipsec")).toEqual([
      "policy match: neither --dir in nor --dir out specified",
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol none --strict")).toEqual([
      "policy match: policy none but --strict given",
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --next --proto esp")).toEqual([
      'policy: option "--next" also requires "--strict"',
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --strict --next --proto esp")).toEqual([
      "policy match: empty policy element",
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --proto esp --tunnel-dst 1.2.3.4")).toEqual([
      "policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode",
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --proto tcp")).toEqual([
      "--proto: expected ah, esp or ipcomp (case-sensitive), got 'tcp'",
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --reqid 1 --reqid 2")[0]).toMatch(
      /^policy: only one --reqid per element/,
    );
  });

  it("policy: the direction must suit every hook that reaches the rule", () => {
    expect(errorsOf("-A OUTPUT -m policy --dir in --pol none")).toEqual([
      "policy --dir in is not valid in OUTPUT (only PREROUTING, INPUT, FORWARD)",
    ]);
    const r = parse(
      "*filter\n:U - [0:0]\n-A U -m policy --dir in --pol ipsec -j ACCEPT\n-A INPUT -j U\n-A OUTPUT -j U\nCOMMIT\n",
    );
    expect(r.errors.map(formatDiagnostic)).toEqual([
      "t.rules:3:6: policy --dir in is not valid in chain U, reached from OUTPUT (only PREROUTING, INPUT, FORWARD)",
    ]);
    // Unreached user chains are not checked (the kernel does not either).
    expect(parse("*filter\n:U - [0:0]\n-A U -m policy --dir in --pol ipsec\nCOMMIT\n").errors).toEqual([]);
  });

  it("comment: spaces, quotes and escapes as iptables-save writes them", () => {
    expect(match(rule('-A INPUT -m comment --comment "a \\"q\\" b"'), "comment").text).toBe('a "q" b');
    expect(match(rule('-A INPUT -m comment --comment "has space"'), "comment").text).toBe("has space");
    expect(match(rule('-A INPUT -m comment --comment "!"'), "comment").text).toBe("!");
    expect(match(rule('-A INPUT -m comment --comment "\\\\"'), "comment").text).toBe("\\");
    expect(match(rule('-A INPUT -m comment --comment ""'), "comment").text).toBe("");
    // iptables 1.8.9 loads a longer comment cut to 255 bytes (test/kernel/spellings.test.ts).
    const long = one(`-A INPUT -m comment --comment ${"x".repeat(256)}`);
    expect(long.errors).toEqual([]);
    expect(long.warnings.map((w) => w.message)).toEqual([
      "comment: longer than 255 bytes; iptables keeps the first 255",
    ]);
    expect(match(long.rules[0]!, "comment").text).toBe("x".repeat(255));
    expect(errorsOf("-A INPUT -m comment")).toEqual(['comment: option "--comment" must be specified']);
    const u = one('-A INPUT -m comment --comment "unterminated');
    expect(u.errors).toEqual([]);
    // iptables-restore takes the newline too (iptables-save prints the comment over two lines).
    expect(match(u.rules[0]!, "comment").text).toBe("unterminated\n");
    expect(u.msgs).toEqual(["unterminated quote: taken to the end of the line, newline included"]);
    // Log prefixes refuse a newline, so such a line makes iptables-restore refuse the file.
    expect(errorsOf('-A INPUT -j LOG --log-prefix "abc')).toEqual(["Newlines not allowed in --log-prefix"]);
    expect(errorsOf('-A INPUT -j NFLOG --nflog-prefix "abc def')).toEqual([
      "NFLOG: Newlines not allowed in --log-prefix",
    ]);
  });

  it("addrtype, iprange", () => {
    const a = match(
      rule("-A INPUT -m addrtype ! --src-type LOCAL,broadcast --dst-type MULTICAST --limit-iface-in"),
      "addrtype",
    );
    expect(a).toMatchObject({
      src: { types: ["LOCAL", "BROADCAST"], invert: true },
      dst: { types: ["MULTICAST"], invert: false },
      limitIfaceIn: true,
      limitIfaceOut: false,
    });
    expect(errorsOf("-A INPUT -m addrtype --limit-iface-in")).toEqual([
      "addrtype: you must specify --src-type or --dst-type",
    ]);
    expect(errorsOf("-A INPUT -m addrtype --src-type LOCAL --limit-iface-out")[0]).toMatch(
      /^addrtype --limit-iface-out is not valid in INPUT/,
    );
    const i = match(rule("-A INPUT -m iprange --src-range 1.1.1.1-1.1.1.5 ! --dst-range 2.2.2.2"), "iprange");
    expect(i.src).toEqual({ range: { lo: 0x01010101n, hi: 0x01010105n }, invert: false });
    expect(i.dst).toEqual({ range: { lo: 0x02020202n, hi: 0x02020202n }, invert: true });
    const i6 = match(
      rule("-A INPUT -m iprange --src-range 2001:db8::1-2001:db8::ff", "filter", 6),
      "iprange",
    );
    expect(i6.src?.range.hi).toBe((0x20010db8n << 96n) | 0xffn);
  });

  it("icmp and icmp6 types, names, codes and any", () => {
    expect(match(rule("-A INPUT -p icmp --icmp-type echo-request"), "icmp")).toMatchObject({
      any: false,
      type: 8,
      codeLo: 0,
      codeHi: 255,
    });
    expect(match(rule("-A INPUT -p icmp --icmp-type 3/4"), "icmp")).toMatchObject({
      type: 3,
      codeLo: 4,
      codeHi: 4,
    });
    expect(match(rule("-A INPUT -p icmp --icmp-type fragmentation-needed"), "icmp")).toMatchObject({
      type: 3,
      codeLo: 4,
      codeHi: 4,
    });
    expect(match(rule("-A INPUT -p icmp ! --icmp-type any"), "icmp")).toMatchObject({
      any: true,
      invert: true,
    });
    expect(match(rule("-A INPUT -p icmp --icmp-type ping"), "icmp").type).toBe(8);
    expect(
      match(rule("-A INPUT -p icmpv6 --icmpv6-type neighbour-solicitation", "filter", 6), "icmp6").type,
    ).toBe(135);
    expect(
      match(rule("-A INPUT -p ipv6-icmp -m icmpv6 --icmpv6-type 1/4", "filter", 6), "icmp6"),
    ).toMatchObject({ type: 1, codeLo: 4 });
    expect(errorsOf("-A INPUT -p icmp --icmp-type 300")[0]).toMatch(/^--icmp-type: expected a type name/);
    expect(errorsOf("-A INPUT -p icmp --icmp-type echo-re")[0]).toMatch(/^--icmp-type: expected/); // ambiguous prefix
    expect(errorsOf("-A INPUT -p tcp -m icmp --icmp-type 8")).toEqual(["icmp match requires '-p icmp'"]);
  });

  it("mark, connmark, set, mac, physdev, length, ttl, hl, frag, esp, ah, pkttype", () => {
    expect(match(rule("-A INPUT -m mark --mark 0x1/0xff"), "mark")).toMatchObject({
      value: 1,
      mask: 0xff,
      invert: false,
    });
    expect(match(rule("-A INPUT -m connmark ! --mark 5"), "connmark")).toMatchObject({
      value: 5,
      mask: 0xffffffff,
      invert: true,
    });
    // --mark belongs to the most recently loaded module that has it.
    const both = rule("-A INPUT -m mark --mark 1 -m connmark --mark 2");
    expect(match(both, "mark").value).toBe(1);
    expect(match(both, "connmark").value).toBe(2);
    expect(errorsOf("-A INPUT -m mark --mark 0x100000000")).toEqual([
      "--mark: expected a 32-bit value[/mask], got '0x100000000'",
    ]);
    const s = match(rule("-A INPUT -m set ! --match-set vpn-peers src,dst"), "set");
    expect(s).toMatchObject({ name: "vpn-peers", flags: ["src", "dst"], invert: true });
    expect(match(rule("-A INPUT -m set --set old src"), "set").name).toBe("old");
    expect(rule("-A INPUT -m set --match-set x src --packets-gt 5").unknown.map((u) => u.what)).toEqual([
      "--packets-gt",
    ]);
    expect(match(rule("-A INPUT -m mac --mac-source 00:50:BF:6A:D3:F9"), "mac").mac).toBe(
      "00:50:bf:6a:d3:f9",
    );
    expect(errorsOf("-A INPUT -m mac --mac-source 00:11:22:33:44")[0]).toMatch(
      /^--mac-source: expected XX:XX:XX:XX:XX:XX/,
    );
    expect(errorsOf("-A OUTPUT -m mac --mac-source 00:11:22:33:44:55")[0]).toMatch(
      /^mac match is not valid in OUTPUT/,
    );
    const red = one("-A INPUT -m mac --mac-source XX:XX:XX:XX:XX:XX -j ACCEPT");
    expect(red.errors).toEqual([]);
    expect(red.rules[0]!.matches[0]).toMatchObject({ kind: "opaque", module: "mac" });
    expect(red.msgs[0]).toMatch(/placeholder \(redacted dump\?\)/);
    const p = match(rule("-A FORWARD -m physdev ! --physdev-out vnet+ --physdev-is-bridged"), "physdev");
    expect(p).toMatchObject({
      physOut: { name: "vnet", wildcard: true, invert: true },
      isBridged: { invert: false },
      physIn: null,
    });
    expect(match(rule("-A INPUT -m length --length 10:20"), "length")).toMatchObject({
      lo: 10,
      hi: 20,
      invert: false,
    });
    expect(match(rule("-A INPUT -m ttl ! --ttl-eq 64"), "ttl")).toMatchObject({ op: "ne", value: 64 });
    expect(match(rule("-A INPUT -m ttl --ttl-gt 5"), "ttl")).toMatchObject({ op: "gt", value: 5 });
    expect(match(rule("-A INPUT -m hl --hl-lt 2", "filter", 6), "hl")).toMatchObject({ op: "lt", value: 2 });
    expect(match(rule("-A INPUT -m frag --fragid 5:10 --fragmore", "filter", 6), "frag")).toMatchObject({
      id: { lo: 5, hi: 10 },
      more: true,
    });
    expect(match(rule("-A INPUT -p esp -m esp --espspi 5:7"), "esp").spi).toEqual({
      lo: 5,
      hi: 7,
      invert: false,
    });
    expect(match(rule("-A INPUT -p ah --ahspi 9"), "ah").spi).toEqual({ lo: 9, hi: 9, invert: false });
    expect(errorsOf("-A INPUT -m esp --espspi 5")).toEqual(["esp match requires '-p esp'"]);
    // ip6tables' ah needs no -p ah (it looks for the AH header); only it has --ahres.
    expect(match(rule("-A INPUT -m ah --ahspi 5", "filter", 6), "ah").spi).toMatchObject({ lo: 5 });
    expect(match(rule("-A INPUT -p ah -m ah --ahspi 5", "filter", 6), "ah").spi).toMatchObject({ lo: 5 });
    expect(diags("-A INPUT -p ah -m ah --ahres")).toEqual([
      "t.rules:4:22: unknown option '--ahres': only the IPv6 ah match has it",
    ]);
    expect(match(rule("-A INPUT -m pkttype --pkt-type BROADCAST"), "pkttype").type).toBe("broadcast");
  });

  it("keeps statically unknowable modules opaque, with their arguments bound right", () => {
    const r = rule(
      "-A INPUT -p tcp -m multiport ! --dports 80,443 -m hashlimit --hashlimit-above 10/sec --hashlimit-burst 20 --hashlimit-mode srcip --hashlimit-name aflood --hashlimit-srcmask 8 -j LOG --log-prefix x",
    );
    const h = match(r, "opaque");
    expect(h).toMatchObject({ module: "hashlimit", why: "runtime" });
    expect(h.options.map((o) => [o.name, ...o.args])).toEqual([
      ["--hashlimit-above", "10/sec"],
      ["--hashlimit-burst", "20"],
      ["--hashlimit-mode", "srcip"],
      ["--hashlimit-name", "aflood"],
      ["--hashlimit-srcmask", "8"],
    ]);
    expect(target(r, "LOG").prefix).toBe("x");
    expect(r.unknown.map((u) => u.what)).toEqual(["-m hashlimit"]);
    for (const [line, mod, why] of [
      ["-A INPUT -m limit --limit 3/min --limit-burst 7 -j ACCEPT", "limit", "runtime"],
      ["-A INPUT -m recent --rcheck --seconds 60 --name X --rsource -j DROP", "recent", "runtime"],
      ["-A INPUT -m statistic --mode nth --every 3 --packet 1 -j DROP", "statistic", "runtime"],
      ['-A INPUT -m string --string "a b" --algo bm -j DROP', "string", "unmodelled"],
      ['-A INPUT -m u32 --u32 "0>>22&0x3C@12>>26&0x3C@0=0x0" -j DROP', "u32", "unmodelled"],
      ["-A INPUT -m time --timestart 06:59 --timestop 23:59 --days Sun,Mon -j DROP", "time", "runtime"],
      ["-A INPUT -m connlimit --connlimit-above 15 --connlimit-saddr -j REJECT", "connlimit", "runtime"],
      ["-A OUTPUT -m owner --uid-owner 0 -j ACCEPT", "owner", "unmodelled"],
    ] as const) {
      const x = rule(line);
      expect(match(x, "opaque")).toMatchObject({ module: mod, why });
      expect(x.unknown.map((u) => u.what)).toEqual([`-m ${mod}`]);
      expect(x.target).not.toBeNull();
    }
  });

  it("keeps unknown modules and options, marked, never dropped", () => {
    const g = one("-A INPUT -m geoip --src-cc CN,RU ! --dst-cc US -j DROP");
    expect(g.errors).toEqual([]);
    const m = g.rules[0]!.matches[0]!;
    expect(m).toMatchObject({ kind: "opaque", module: "geoip", why: "unknown-module" });
    expect(m.kind === "opaque" && m.options.map((o) => [o.invert, o.name, ...o.args])).toEqual([
      [false, "--src-cc", "CN,RU"],
      [true, "--dst-cc", "US"],
    ]);
    expect(g.rules[0]!.unknown.map((u) => u.what)).toEqual(["-m geoip"]);
    expect(g.msgs).toEqual(["unsupported: unknown match module 'geoip' — rule kept, its result is unknown"]);
    expect(formatRule(g.rules[0]!, 4)).toBe("-A INPUT -m geoip --src-cc CN,RU ! --dst-cc US -j DROP");

    const u = one("-A FORWARD -p udp -m multiport --ports 8080:8081,8082 --something-else -j ACCEPT");
    expect(u.errors).toEqual([]);
    expect(u.rules[0]!.matches.map((x) => x.kind)).toEqual(["multiport", "unknown-option"]);
    expect(u.rules[0]!.unknown).toEqual([
      { col: 55, what: "--something-else", reason: "option not known after -m multiport" },
    ]);
    expect(formatRule(u.rules[0]!, 4)).toBe(
      "-A FORWARD -p udp -m multiport --ports 8080:8081,8082 --something-else -j ACCEPT",
    );

    const fam = one("-A INPUT -p icmpv6 -m icmp6 --icmpv6-type 133 -j ACCEPT");
    expect(fam.errors).toEqual([]);
    expect(fam.msgs[0]).toMatch(/^unsupported: match icmp6 is IPv6-only; iptables cannot load it/);
  });

  it("checks what iptables insists on in modules and targets it keeps opaque", () => {
    expect(errorsOf("-A INPUT -m helper")).toEqual(['helper: option "--helper" must be specified']);
    expect(errorsOf("-A INPUT -m recent --name x")).toEqual([
      "recent: at least one of --set, --rcheck, --update, --remove is required",
    ]);
    expect(errorsOf("-A INPUT -m statistic --mode random")).toEqual([
      "statistic: --probability must be specified when using random mode",
    ]);
    expect(errorsOf("-A INPUT -m limit --limit -f")).toEqual([
      "limit: --limit: expected a rate like 10/second, got '-f'",
    ]);
    expect(errorsOf("-A INPUT -m statistic --mode nth --every 3 --packet NEW")).toEqual([
      "statistic: --packet: expected a number 0..4294967295, got 'NEW'",
    ]);
    expect(errorsOf("-A FORWARD -p tcp -j TCPMSS", "mangle")).toEqual([
      "TCPMSS: at least one of --set-mss, --clamp-mss-to-pmtu is required",
    ]);
    expect(errorsOf("-A PREROUTING -j TTL --ttl-set 300", "mangle")).toEqual([
      "TTL: --ttl-set: expected a number 0..255, got '300'",
    ]);
    expect(errorsOf("-A INPUT -j NFLOG --nflog-group 70000")).toEqual([
      'NFLOG: bad value for option "--nflog-group", or out of range (0-65535)',
    ]);
    const hl = "-A INPUT -m hashlimit --hashlimit-upto 1/sec --hashlimit-name x --hashlimit-srcmask";
    expect(diags(`${hl} 33`)).toEqual([
      "t.rules:4:85: hashlimit: --hashlimit-srcmask: expected a prefix length 0..32 or a contiguous netmask, got '33'",
    ]);
    expect(diags(`${hl} 33`, 6)).toEqual([]);
    expect(diags(`${hl} 255.255.0.0`)).toEqual([]);
    expect(errorsOf(`${hl} ffff::ffff`, "filter", 6)).toHaveLength(1);
    expect(diags("-A INPUT -j NFLOG --nflog-threshold 65536")).toEqual([
      't.rules:4:37: NFLOG: bad value for option "--nflog-threshold", or out of range (0-65535)',
    ]);
    expect(errorsOf("-A INPUT -m policy --dir in --pol ipsec --strict")[0]).toMatch(
      /^policy match: empty policy element 0\. --strict is in effect/,
    );
    expect(one("-A INPUT -m string --string x -j DROP").msgs).toEqual([
      'string: iptables 1.8 requires "--algo" (bm or kmp); this looks like an older dump',
    ]);
  });

  it("reads numbers and keywords as leniently as iptables does", () => {
    const r = one("-A INPUT -p tcp --dport 0x16 -m ttl --ttl-gt 0x1 -m conntrack --ctstate in,est");
    expect(r.errors).toEqual([]);
    expect(match(r.rules[0]!, "tcp").dport?.range).toEqual({ lo: 22, hi: 22 });
    expect(match(r.rules[0]!, "ttl").value).toBe(1);
    expect(match(r.rules[0]!, "conntrack").state?.values).toEqual(["INVALID", "ESTABLISHED"]);
    expect(r.msgs).toEqual([
      "--ctstate: 'in' is read by iptables as INVALID",
      "--ctstate: 'est' is read by iptables as ESTABLISHED",
    ]);
    // -s/-d go through the resolver when iptables' own parser refuses: inet_aton forms.
    const a = one("-A INPUT -s 500 -d 10.300");
    expect(a.rules[0]!.src?.spec).toMatchObject({ addr: 0x000001f4n });
    expect(a.rules[0]!.dst?.spec).toMatchObject({ addr: 0x0a00012cn });
    expect(a.msgs).toEqual([
      "'500' is read by iptables (through the resolver) as 0.0.1.244",
      "'10.300' is read by iptables (through the resolver) as 10.0.1.44",
    ]);
  });

  it("binds options like getopt: abbreviations, --opt=value, ambiguity", () => {
    const r = one("-A INPUT -p tcp --dpo=22 -m mac --mac 00:11:22:33:44:55 --src 10.0.0.1 -j ACCEPT");
    expect(r.errors).toEqual([]);
    expect(match(r.rules[0]!, "tcp").dport?.range.lo).toBe(22);
    expect(match(r.rules[0]!, "mac").mac).toBe("00:11:22:33:44:55");
    expect(r.rules[0]!.src?.spec).toMatchObject({ addr: 0x0a000001n });
    expect(r.msgs).toEqual([
      "abbreviated option '--dpo' taken as '--dport'",
      "abbreviated option '--mac' taken as '--mac-source'",
    ]);
    expect(errorsOf("-A INPUT -m conntrack --ctorig 1.2.3.4")[0]).toMatch(
      /^option '--ctorig' is ambiguous \(--ctorigsrc, --ctorigdst/,
    );
    // iptables' other long options (--list, --line-numbers, --modprobe, …) count too.
    expect(diags("-A INPUT -m length --l 5")).toEqual([
      "t.rules:4:20: option '--l' is ambiguous (--list, --list-rules, --line-numbers, --length)",
    ]);
    expect(errorsOf("-A INPUT --m tcp")).toEqual(["option '--m' is ambiguous (--modprobe, --match)"]);
    expect(errorsOf("-A INPUT -m mark --ma 1")).toEqual(["option '--ma' is ambiguous (--match, --mark)"]);
    expect(rule("-A INPUT --fragment").fragment).toEqual({ invert: false });
    // -p -s -d -i -o -j read argv[optind-1]: an inline argument is the whole word.
    expect(diags("-A INPUT --src=10.0.0.1")).toEqual([
      "t.rules:4:10: -s: expected an IPv4 address, got '--src=10.0.0.1'",
    ]);
    expect(errorsOf("-A INPUT -ptcp")[0]).toMatch(/^-p: unknown protocol '-ptcp'/);
    expect(rule("-A INPUT -ieth0").iif).toMatchObject({ name: "-ieth0" });
    expect(target(rule("-A INPUT -gU"), "goto").chain).toBe("U");
    // Blanks before each address of -s/-d are skipped.
    const blanks = one('-A INPUT -s " 2001:db8::1,\t2001:db8::2"', "filter", 6);
    expect(blanks.errors).toEqual([]);
    expect(blanks.rules.map((r) => r.src?.spec)).toMatchObject([
      { addr: 0x20010db8000000000000000000000001n },
      { addr: 0x20010db8000000000000000000000002n },
    ]);
    expect(diags('-A INPUT -s "2001:db8::1 "', 6)).toEqual([
      "t.rules:4:13: -s: expected an IPv6 address, got '2001:db8::1 '",
    ]);
    expect(errorsOf("-A INPUT -s 1.2.3.4 extra")).toEqual(["expected an option, got 'extra'"]);
    expect(errorsOf("-A INPUT -s")).toEqual(["option -s requires an argument"]);
  });
});

/** Errors of one rule line (line 4 of the file `one` builds), as `file:line:col: message`. */
function diags(line: string, family: 4 | 6 = 4): string[] {
  return one(line, "filter", family).errors.map(formatDiagnostic);
}

describe("option values as iptables 1.8.9 reads them (checked against iptables-restore)", () => {
  it("numbers by xtables_strtoui: C notation, leading blanks, '+'", () => {
    expect(rule("-A INPUT -p 0x6").proto?.num).toBe(6);
    expect(rule("-A INPUT -p +6").proto?.num).toBe(6);
    expect(rule('-A INPUT -p " 6"').proto?.num).toBe(6);
    expect(rule("-A INPUT -p 010").proto?.num).toBe(8); // octal: iptables-save prints egp
    expect(rule("-A INPUT -s 10.0.0.0/+8").src?.spec).toMatchObject({ addr: 0x0a000000n, len: 8 });
    expect(rule('-A INPUT -s "10.0.0.0/ 8"').src?.spec).toMatchObject({ addr: 0x0a000000n, len: 8 });
    expect(rule('-A INPUT -s " 10.0.0.1"').src?.spec).toMatchObject({ addr: 0x0a000001n, len: 32 });
    expect(rule("-A INPUT -s 2001:db8::/+64", "filter", 6).src?.spec).toMatchObject({ len: 64 });
    for (const m of ["mark", "connmark"] as const) {
      expect(match(rule(`-A INPUT -m ${m} --mark +5`), m)).toMatchObject({ value: 5, mask: 0xffffffff });
      expect(match(rule(`-A INPUT -m ${m} --mark " 5"`), m)).toMatchObject({ value: 5, mask: 0xffffffff });
      expect(match(rule(`-A INPUT -m ${m} --mark 5/+1`), m)).toMatchObject({ value: 5, mask: 1 });
    }
    expect(diags('-A INPUT -m mark --mark "5 /1"')).toEqual([
      "t.rules:4:25: --mark: expected a 32-bit value[/mask], got '5 /1'",
    ]);
    expect(match(rule("-A INPUT -m ttl --ttl-eq +64"), "ttl").value).toBe(64);
    expect(match(rule("-A INPUT -p tcp --tcp-option +2"), "tcp").option).toEqual({ num: 2, invert: false });
    const p = match(rule('-A INPUT -m policy --dir in --pol ipsec --spi +5 --reqid " 1"'), "policy");
    expect(p.elements[0]).toMatchObject({ spi: { value: 5 }, reqid: { value: 1 } });
  });

  it("--ttl and --hl: hidden exact aliases of --ttl-eq and --hl-eq", () => {
    expect(match(rule("-A INPUT -m ttl --ttl 64"), "ttl")).toMatchObject({ op: "eq", value: 64 });
    expect(match(rule("-A INPUT -m ttl ! --ttl 64"), "ttl")).toMatchObject({ op: "ne", value: 64 });
    expect(match(rule("-A INPUT -m hl --hl 5", "filter", 6), "hl")).toMatchObject({ op: "eq", value: 5 });
    expect(errorsOf("-A INPUT -m ttl --ttl 1 --ttl-eq 2")).toEqual(["ttl: only one comparison allowed"]);
  });

  it("uint ranges of --length, --ctexpire, --fragid and SPIs: a, a:b, :b, a:, reversed never holds", () => {
    const len = (arg: string) => match(rule(`-A INPUT -m length --length ${arg}`), "length");
    expect(len(":100")).toMatchObject({ lo: 0, hi: 100 });
    expect(len("100:")).toMatchObject({ lo: 100, hi: 65535 });
    expect(len("+100")).toMatchObject({ lo: 100, hi: 100 });
    expect(len('" 100"')).toMatchObject({ lo: 100, hi: 100 });
    expect(len("100:+200")).toMatchObject({ lo: 100, hi: 200 });
    expect(len('""')).toMatchObject({ lo: 0, hi: 0 });
    // Kept as written (iptables-save prints 200:100); the kernel's min <= len <= max never holds.
    const rev = one("-A INPUT -m length --length 200:100");
    expect(match(rev.rules[0]!, "length")).toMatchObject({ lo: 200, hi: 100, invert: false });
    expect(rev.warnings.map(formatDiagnostic)).toEqual([
      "t.rules:4:20: warning: --length 200:100: min > max, so this condition never holds",
    ]);
    expect(diags("-A INPUT -m length --length 1:2:3")).toEqual([
      "t.rules:4:29: --length: expected a number or range lo:hi (at most 2 components), got '1:2:3'",
    ]);
    expect(diags("-A INPUT -m length --length 10x")).toEqual([
      "t.rules:4:29: --length: expected a number 0..65535 or range lo:hi, got '10x'",
    ]);
    const ct = match(rule("-A INPUT -m conntrack --ctexpire 10:"), "conntrack");
    expect(ct.expire).toEqual({ lo: 10, hi: 0xffffffff, invert: false });
    expect(match(rule("-A INPUT -m conntrack --ctexpire 20:10"), "conntrack").expire).toMatchObject({
      lo: 20,
      hi: 10,
    });
    const frag = (arg: string) => match(rule(`-A INPUT -m frag --fragid ${arg}`, "filter", 6), "frag").id;
    expect(frag(":10")).toEqual({ lo: 0, hi: 10, invert: false });
    expect(frag("10:5")).toEqual({ lo: 10, hi: 5, invert: false });
    expect(frag("5:+10")).toEqual({ lo: 5, hi: 10, invert: false });
    expect(match(rule("-A INPUT -p esp -m esp --espspi :5"), "esp").spi).toEqual({
      lo: 0,
      hi: 5,
      invert: false,
    });
  });

  it("tcp: flag lists split like strtok, options 1..255", () => {
    expect(match(rule("-A INPUT -p tcp --tcp-flags SYN, SYN"), "tcp").flags).toEqual({
      mask: 2,
      comp: 2,
      invert: false,
    });
    expect(match(rule("-A INPUT -p tcp --tcp-flags ,SYN,,ACK SYN"), "tcp").flags).toMatchObject({
      mask: 0x12,
      comp: 2,
    });
    expect(one("-A INPUT -p tcp --tcp-flags NONE SYN").msgs).toEqual([
      "--tcp-flags NONE SYN: no flag is tested, so the comparison never holds in xt_tcp (iptables-legacy); iptables-nft drops the condition",
    ]);
    expect(diags("-A INPUT -p tcp --tcp-option 0")).toEqual([
      "t.rules:4:30: --tcp-option: expected a number 1..255, got '0'",
    ]);
  });

  it("mac: strtoul base 16, at most two characters per byte", () => {
    const mac = (arg: string) => match(rule(`-A INPUT -m mac --mac-source ${arg}`), "mac").mac;
    expect(mac("0:1:2:3:4:5")).toBe("00:01:02:03:04:05");
    expect(mac("+1:-1:a:B:c:")).toBe("01:ff:0a:0b:0c:00");
    expect(mac('" 1:2:3:4:5:6"')).toBe("01:02:03:04:05:06");
    expect(diags("-A INPUT -m mac --mac-source 0x1:2:3:4:5:6")).toEqual([
      "t.rules:4:30: --mac-source: expected XX:XX:XX:XX:XX:XX, got '0x1:2:3:4:5:6'",
    ]);
  });

  it("limit: the rate by atoi, at most 10000/second; burst 0..10000", () => {
    for (const ok of ['" 5/sec"', "+5/sec", "5x/sec", "5abc", "600000/min", "4294967297/sec"])
      expect(errorsOf(`-A INPUT -m limit --limit ${ok}`), ok).toEqual([]);
    expect(diags("-A INPUT -m limit --limit 0/sec")).toEqual([
      "t.rules:4:27: limit: --limit: expected a rate like 10/second, got '0/sec'",
    ]);
    expect(diags("-A INPUT -m limit --limit 10001/sec --limit-burst 10001")).toEqual([
      "t.rules:4:27: limit: --limit: rate too fast (at most 10000/second), got '10001/sec'",
      "t.rules:4:51: limit: --limit-burst: expected a number 0..10000, got '10001'",
    ]);
    expect(diags("-A INPUT -m limit --limit -5/sec")).toEqual([
      "t.rules:4:27: limit: --limit: rate too fast (at most 10000/second), got '-5/sec'",
    ]);
  });

  it("connlimit --connlimit-mask: a prefix length or a netmask; a non-contiguous one leaves the default", () => {
    const cl = "-A INPUT -p tcp -m connlimit --connlimit-above 2 --connlimit-mask";
    const all = (line: string, family: 4 | 6 = 4) => {
      const r = one(line, "filter", family);
      return [...r.errors, ...r.warnings].map(formatDiagnostic);
    };
    expect(all(`${cl} 24`)).toEqual([]);
    expect(all(`${cl} 255.255.255.0`)).toEqual([]);
    expect(all(`${cl} 0x18`)).toEqual([]);
    // iptables-save: --connlimit-mask 32; the kernel counts per address (checked with connections).
    expect(all(`${cl} 255.0.255.0`)).toEqual([
      "t.rules:4:67: warning: connlimit: --connlimit-mask: the netmask 255.0.255.0 is not contiguous: iptables 1.8.9 keeps the default mask instead, /32 (iptables-save prints 32)",
    ]);
    expect(all(`${cl} 33`)).toEqual([
      "t.rules:4:67: warning: connlimit: --connlimit-mask: '33' (the netmask 0.0.0.33) is not contiguous: iptables 1.8.9 keeps the default mask instead, /32 (iptables-save prints 32)",
    ]);
    expect(all(`${cl} 33`, 6)).toEqual([]);
    expect(all(`${cl} ffff::ffff`, 6)).toEqual([
      "t.rules:4:67: warning: connlimit: --connlimit-mask: the netmask ffff::ffff is not contiguous: iptables 1.8.9 keeps the default mask instead, /128 (iptables-save prints 128)",
    ]);
    // iptables: connlimit: bad value for option "--connlimit-mask", neither a valid network mask nor valid CIDR (0-32).
    expect(all(`${cl} -1`)).toEqual([
      "t.rules:4:67: connlimit: --connlimit-mask: expected a prefix length 0..32 or a netmask, got '-1'",
    ]);
    expect(all(`${cl} 4294967296`)).toEqual([
      "t.rules:4:67: connlimit: --connlimit-mask: expected a prefix length 0..32 or a netmask, got '4294967296'",
    ]);
    // ip6tables reads no IPv4 mask: (0-128).
    expect(all(`${cl} 255.255.0.0`, 6)).toEqual([
      "t.rules:4:67: connlimit: --connlimit-mask: expected a prefix length 0..128 or a netmask, got '255.255.0.0'",
    ]);
    expect(all(`${cl} 129`, 6)).toEqual([
      "t.rules:4:67: connlimit: --connlimit-mask: expected a prefix length 0..128 or a netmask, got '129'",
    ]);
  });

  it("connlimit: options that exclude each other, named in iptables' order whatever the rule's", () => {
    // iptables: connlimit: option "--connlimit-upto" cannot be used together with "--connlimit-above".
    expect(diags("-A INPUT -m connlimit --connlimit-upto 3 --connlimit-above 2")).toEqual([
      't.rules:4:42: connlimit: option "--connlimit-upto" cannot be used together with "--connlimit-above"',
    ]);
    expect(diags("-A INPUT -m connlimit --connlimit-daddr --connlimit-upto 3 --connlimit-saddr")).toEqual([
      't.rules:4:60: connlimit: option "--connlimit-saddr" cannot be used together with "--connlimit-daddr"',
    ]);
  });

  it("reports an option given twice where iptables takes it once", () => {
    const cases: Array<[string, string, 4 | 6]> = [
      ["-A INPUT -m limit --limit 5/sec --limit 6/sec", "4:33: limit: only one --limit allowed", 4],
      ["-A INPUT -m length --length 1 --length 2", "4:31: length: only one --length allowed", 4],
      [
        "-A INPUT -m mac --mac-source 0:1:2:3:4:5 --mac-source 0:1:2:3:4:6",
        "4:42: mac: only one --mac-source allowed",
        4,
      ],
      ["-A INPUT -m frag --fraglen 1 --fraglen 2", "4:30: frag: only one --fraglen allowed", 6],
      ["-A INPUT -p esp -m esp --espspi 5 --espspi 6", "4:35: esp: only one --espspi allowed", 4],
      ["-A INPUT -m policy --dir in --dir in --pol ipsec", "4:29: policy: only one --dir allowed", 4],
      ["-A INPUT -m policy --dir in --pol ipsec --pol none", "4:41: policy: only one --pol allowed", 4],
      ["-A INPUT -m recent --name a --name b --set", "4:29: recent: only one --name allowed", 4],
      [
        "-A INPUT -m connlimit --connlimit-above 2 --connlimit-mask 24 --connlimit-mask 16",
        "4:63: connlimit: only one --connlimit-mask allowed",
        4,
      ],
    ];
    for (const [line, want, family] of cases) expect(diags(line, family), line).toEqual([`t.rules:${want}`]);
  });

  it("protocol names of --ctproto and policy --proto are case-sensitive (/etc/protocols aliases count)", () => {
    expect(diags("-A INPUT -m policy --dir in --pol ipsec --proto ESP")).toEqual([
      "t.rules:4:49: --proto: expected ah, esp or ipcomp (case-sensitive), got 'ESP'",
    ]);
    const p = match(rule("-A INPUT -m policy --dir in --pol ipsec --proto IPSEC-ESP"), "policy");
    expect(p.elements[0]?.proto).toEqual({ value: "esp", invert: false });
    expect(match(rule("-A INPUT -m conntrack --ctproto TCP"), "conntrack").proto?.num).toBe(6);
    expect(diags("-A INPUT -m conntrack --ctproto Tcp")).toEqual([
      "t.rules:4:33: --ctproto: expected a protocol number or name (case-sensitive), got 'Tcp'",
    ]);
  });

  it("addrtype: the types the kernel refuses for IPv6", () => {
    expect(diags("-A INPUT -m addrtype --src-type LOCAL,BROADCAST", 6)).toEqual([
      "t.rules:4:33: addrtype: the kernel does not match BROADCAST for IPv6",
    ]);
    for (const t of ["BLACKHOLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"])
      expect(errorsOf(`-A INPUT -m addrtype --dst-type ${t}`, "filter", 6)).toHaveLength(1);
    expect(errorsOf("-A INPUT -m addrtype --dst-type UNREACHABLE,ANYCAST", "filter", 6)).toEqual([]);
    expect(errorsOf("-A INPUT -m addrtype --dst-type BROADCAST")).toEqual([]);
  });

  it("recent: one mode, --reap needs --seconds, what the kernel refuses", () => {
    expect(diags("-A INPUT -m recent --rcheck --set")).toEqual([
      "t.rules:4:29: recent: --set cannot be used together with --rcheck",
    ]);
    expect(diags("-A INPUT -m recent --rcheck --reap")).toEqual([
      "t.rules:4:29: recent: --reap requires --seconds",
    ]);
    expect(diags("-A INPUT -m recent --rcheck --seconds 0")).toEqual([
      "t.rules:4:39: recent: --seconds: expected a number 1..4294967295, got '0'",
    ]);
    expect(diags("-A INPUT -m recent --set --seconds 5")).toEqual([
      "t.rules:4:26: recent: the kernel refuses --seconds with --set",
    ]);
    expect(diags("-A INPUT -m recent --set --rttl")).toEqual([
      "t.rules:4:26: recent: --rttl cannot be used together with --set",
    ]);
    expect(diags('-A INPUT -m recent --name "" --set')).toEqual([
      "t.rules:4:27: recent: --name: the kernel refuses the name ''",
    ]);
    expect(diags("-A INPUT -m recent --name a/b --set")).toEqual([
      "t.rules:4:27: recent: --name: the kernel refuses the name 'a/b'",
    ]);
    for (const ok of [
      "--set --hitcount 0",
      "--rcheck --rttl",
      "--update --seconds 5 --reap",
      "--rcheck --seconds +5",
      "--name ... --rcheck",
    ])
      expect(errorsOf(`-A INPUT -m recent ${ok}`), ok).toEqual([]);
  });

  it("conntrack --ctstatus: NONE is no bit, so it adds nothing to a list", () => {
    const st = (arg: string) => match(rule(`-A INPUT -m conntrack --ctstatus ${arg}`), "conntrack").status;
    expect(st("NONE,EXPECTED,CONFIRMED")).toEqual({ values: ["EXPECTED", "CONFIRMED"], invert: false });
    expect(st("NONE")).toEqual({ values: ["NONE"], invert: false });
  });
});

describe("targets", () => {
  it("verdicts, jumps, gotos", () => {
    expect(rule("-A INPUT -j ACCEPT").target).toMatchObject({ kind: "ACCEPT" });
    expect(rule("-A INPUT -j DROP").target).toMatchObject({ kind: "DROP" });
    expect(rule("-A U -j RETURN").target).toMatchObject({ kind: "RETURN" });
    expect(rule("-A INPUT -j U").target).toMatchObject({ kind: "jump", chain: "U" });
    expect(rule("-A INPUT -g U").target).toMatchObject({ kind: "goto", chain: "U" });
    expect(rule("-A INPUT").target).toBeNull();
    expect(errorsOf("-A INPUT -g ACCEPT")).toEqual(["-g needs a user-defined chain, not ACCEPT"]);
    expect(errorsOf("-A INPUT -j INPUT")).toEqual(["cannot jump to built-in chain INPUT"]);
    expect(errorsOf("-A INPUT -j ACCEPT -j DROP")).toEqual(["multiple -j/-g flags not allowed"]);
    expect(errorsOf("-A INPUT -j nosuch")[0]).toMatch(/^unknown chain 'nosuch' referenced/);
    expect(errorsOf("-A INPUT -j LOGDROP")[0]).toMatch(/^unknown chain 'LOGDROP' referenced/);
  });

  it("REJECT, LOG, NFLOG", () => {
    expect(target(rule("-A INPUT -j REJECT"), "REJECT").with).toBe("icmp-port-unreachable");
    expect(target(rule("-A INPUT -j REJECT", "filter", 6), "REJECT").with).toBe("icmp6-port-unreachable");
    expect(target(rule("-A INPUT -j REJECT --reject-with host-prohib"), "REJECT").with).toBe(
      "icmp-host-prohibited",
    );
    expect(target(rule("-A INPUT -p tcp -j REJECT --reject-with tcp-reset"), "REJECT").with).toBe(
      "tcp-reset",
    );
    expect(errorsOf("-A INPUT -j REJECT --reject-with tcp-reset")).toEqual([
      "REJECT --reject-with tcp-reset is only valid with '-p tcp'",
    ]);
    expect(errorsOf("-A INPUT -j REJECT --reject-with icmp6-no-route")[0]).toMatch(
      /^--reject-with: unknown type/,
    );
    expect(errorsOf("-A PREROUTING -j REJECT", "raw")[0]).toMatch(
      /^REJECT is only valid in the filter table/,
    );
    const l = target(
      rule('-A INPUT -j LOG --log-prefix "IPT drop: " --log-level info --log-tcp-options --log-uid'),
      "LOG",
    );
    expect(l).toMatchObject({ prefix: "IPT drop: ", level: 6, flags: ["tcp-options", "uid"] });
    expect(errorsOf("-A INPUT -j LOG --log-level 9")[0]).toMatch(/^--log-level: expected 0..7/);
    expect(
      target(rule('-A INPUT -j NFLOG --nflog-group 3 --nflog-prefix "x y"'), "NFLOG").options,
    ).toHaveLength(2);
  });

  it("NFLOG: each option once; --nflog-range and --nflog-size exclude each other", () => {
    // iptables-restore: 'NFLOG: option "--nflog-threshold" can only be used once.' (before the value is read)
    expect(diags("-A INPUT -j NFLOG --nflog-threshold 1 --nflog-threshold 70000")).toEqual([
      't.rules:4:39: NFLOG: option "--nflog-threshold" can only be used once',
    ]);
    expect(errorsOf("-A INPUT -j NFLOG --nflog-group 1 --nflog-group 2")).toEqual([
      'NFLOG: option "--nflog-group" can only be used once',
    ]);
    // Whatever the order: 'NFLOG: option "--nflog-range" cannot be used together with "--nflog-size".'
    for (const line of [
      "-A INPUT -j NFLOG --nflog-range 1 --nflog-size 2",
      "-A INPUT -j NFLOG --nflog-size 2 --nflog-range 1",
    ]) {
      expect(errorsOf(line), line).toEqual([
        'NFLOG: option "--nflog-range" cannot be used together with "--nflog-size"',
      ]);
    }
  });

  it("NFLOG --nflog-prefix as iptables 1.8.9 loads it: 1..127 bytes, longer ones cut", () => {
    // iptables-restore: "Argument must have a minimum length of 1 characters"
    expect(diags('-A INPUT -j NFLOG --nflog-prefix ""')).toEqual([
      "t.rules:4:34: NFLOG: --nflog-prefix: Argument must have a minimum length of 1 characters",
    ]);
    const prefix = (line: string) => {
      const r = one(line);
      expect(r.errors).toEqual([]);
      const t = target(r.rules[0]!, "NFLOG");
      return {
        kept: t.options[0]!.args[0],
        warnings: r.warnings.map(formatDiagnostic),
        saved: formatRule(r.rules[0]!, 4),
      };
    };
    expect(prefix(`-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(63)}`).warnings).toEqual([]);
    // iptables-nft keeps 64..127 bytes (iptables-save prints them whole); iptables-legacy cuts to 63.
    expect(prefix(`-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(64)}`)).toEqual({
      kept: "p".repeat(64),
      warnings: [
        "t.rules:4:34: warning: NFLOG: --nflog-prefix is 64 bytes: iptables-nft keeps it whole, iptables-legacy cuts it to its first 63",
      ],
      saved: `-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(64)}`,
    });
    // 200 bytes: iptables-save prints the first 127.
    expect(prefix(`-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(200)} --nflog-group 2`)).toEqual({
      kept: "p".repeat(127),
      warnings: [
        "t.rules:4:34: warning: NFLOG: --nflog-prefix is 200 bytes: iptables-nft cuts it to its first 127 (iptables-legacy to 63); the rule is read with the cut prefix",
      ],
      saved: `-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(127)} --nflog-group 2`,
    });
    // The cut is in bytes: 126 ASCII + 'é' (2 bytes) keeps half of the 'é' (iptables-save prints byte 0xc3).
    const split = prefix(`-A INPUT -j NFLOG --nflog-prefix ${"p".repeat(126)}é`);
    expect(split.warnings).toEqual([
      "t.rules:4:34: warning: NFLOG: --nflog-prefix is 128 bytes: iptables-nft cuts it to its first 127, splitting a character (iptables-legacy to 63); the rule is read with the cut prefix",
    ]);
    expect(split.kept).toBe(`${"p".repeat(126)}\ufffd`);
  });

  it("MARK and CONNMARK normalise to the kernel's xmark form", () => {
    const m = (opt: string) => target(rule(`-A PREROUTING -j MARK ${opt}`, "mangle"), "MARK");
    expect(m("--set-mark 5")).toMatchObject({ value: 5, mask: 0xffffffff });
    expect(m("--set-mark 0x5/0xff")).toMatchObject({ value: 5, mask: 0xff });
    expect(m("--and-mark 0xf0")).toMatchObject({ value: 0, mask: 0xffffff0f });
    expect(m("--or-mark 0x3")).toMatchObject({ value: 3, mask: 3 });
    expect(m("--xor-mark 0x3")).toMatchObject({ value: 3, mask: 0 });
    expect(m("--set-xmark 0x4000/0x4000")).toMatchObject({ value: 0x4000, mask: 0x4000 });
    const c = (opt: string) => target(rule(`-A PREROUTING -j CONNMARK ${opt}`, "mangle"), "CONNMARK");
    expect(c("--save-mark")).toMatchObject({ mode: "save", nfmask: 0xffffffff, ctmask: 0xffffffff });
    expect(c("--restore-mark --mask 0xff")).toMatchObject({ mode: "restore", nfmask: 0xff, ctmask: 0xff });
    expect(c("--save-mark --nfmask 0xf --ctmask 0xf0")).toMatchObject({ nfmask: 0xf, ctmask: 0xf0 });
    expect(c("--set-mark 7")).toMatchObject({ mode: "set", value: 7, mask: 0xffffffff });
    expect(errorsOf("-A INPUT -j MARK")[0]).toMatch(/^MARK: expected exactly one of/);
  });

  it("NAT targets, with their tables and hooks", () => {
    const d = target(
      rule("-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1-10.0.0.5:8080-8090", "nat"),
      "DNAT",
    );
    expect(d.ranges).toEqual([
      { addrLo: 0x0a000001n, addrHi: 0x0a000005n, portLo: 8080, portHi: 8090, basePort: null },
    ]);
    const d6 = target(
      rule("-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080", "nat", 6),
      "DNAT",
    );
    expect(d6.ranges[0]).toMatchObject({ addrLo: (0x20010db8n << 96n) | 1n, portLo: 8080 });
    expect(
      target(
        rule(
          "-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4:1000-2000 --random-fully --persistent",
          "nat",
        ),
        "SNAT",
      ),
    ).toMatchObject({ randomFully: true, persistent: true, random: false });
    expect(
      target(
        rule("-A POSTROUTING -p udp -o eth0 -j MASQUERADE --to-ports 1000-2000 --random", "nat"),
        "MASQUERADE",
      ),
    ).toMatchObject({ ports: { lo: 1000, hi: 2000 }, random: true });
    expect(target(rule("-A PREROUTING -p tcp -j REDIRECT --to-ports 3128", "nat"), "REDIRECT").ports).toEqual(
      { lo: 3128, hi: 3128 },
    );
    expect(errorsOf("-A INPUT -j DNAT --to-destination 1.2.3.4")[0]).toMatch(
      /^DNAT is only valid in the nat table, not filter/,
    );
    expect(errorsOf("-A POSTROUTING -j DNAT --to-destination 1.2.3.4", "nat")).toEqual([
      "DNAT is only valid in PREROUTING/OUTPUT, not POSTROUTING",
    ]);
    expect(errorsOf("-A PREROUTING -j DROP", "nat")[0]).toMatch(/^the nat table does not support DROP/);
    expect(errorsOf("-A PREROUTING -j DNAT", "nat")).toEqual(["DNAT: needs --to-destination"]);
    // Addresses by inet_pton (iptables: Bad IP address "010.0.0.1").
    expect(
      one("-A PREROUTING -p tcp -j DNAT --to-destination 010.0.0.1", "nat").errors.map(formatDiagnostic),
    ).toEqual(["t.rules:4:47: --to-destination: expected an IPv4 address a.b.c.d, got '010.0.0.1'"]);
    // The port part as iptables 1.8.9 reads it (test/kernel/nat-ports.test.ts compares with the binary).
    const dnat = (p: string) => `-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:${p}`;
    expect(errorsOf(dnat("80-90-100"), "nat")).toEqual([
      "--to-destination: expected port[-port], got '80-90-100' ('-100' after the port range)",
    ]);
    expect(errorsOf(dnat("80/100"), "nat")).toEqual([
      "--to-destination: expected port[-port], got '80/100' ('/100' after the port)",
    ]);
    expect(errorsOf(dnat("80-http"), "nat")[0]).toMatch(/the upper port must be a number/);
    expect(target(rule(dnat("80-90/100x"), "nat"), "DNAT").ranges[0]).toMatchObject({
      portLo: 80,
      portHi: 90,
      basePort: 100,
    });
    expect(target(rule(dnat("0x50"), "nat"), "DNAT").ranges[0]).toMatchObject({ portLo: 80, portHi: 80 });
    expect(errorsOf("-A PREROUTING -p tcp -j REDIRECT --to-ports 80:90", "nat")[0]).toMatch(/with a dash/);
    expect(errorsOf("-A PREROUTING -p tcp -j REDIRECT --to-ports 80-90/5", "nat")[0]).toMatch(/no '\/base'/);
    expect(errorsOf("-A POSTROUTING -j MASQUERADE --to-ports 1000", "nat")[0]).toMatch(
      /^MASQUERADE: --to-ports needs '-p tcp'/,
    );
    const viaChain = parse(
      "*nat\n:N - [0:0]\n-A N -j DNAT --to-destination 1.2.3.4\n-A POSTROUTING -j N\nCOMMIT\n",
    );
    expect(viaChain.errors.map((e) => e.message)).toEqual([
      "DNAT is not valid in chain N, reached from POSTROUTING (only PREROUTING, OUTPUT)",
    ]);
  });

  it("raw table: CT --notrack, NOTRACK, TRACE", () => {
    expect(target(rule("-A PREROUTING -p udp -j CT --notrack", "raw"), "CT")).toMatchObject({
      notrack: true,
      options: [],
    });
    expect(target(rule("-A PREROUTING -p tcp --dport 21 -j CT --helper ftp", "raw"), "CT")).toMatchObject({
      notrack: false,
    });
    expect(rule("-A PREROUTING -j NOTRACK", "raw").target?.kind).toBe("NOTRACK");
    expect(rule("-A OUTPUT -j TRACE", "raw").target?.kind).toBe("TRACE");
    expect(errorsOf("-A INPUT -j CT --notrack")[0]).toMatch(/^CT is only valid in the raw table/);
    expect(one("-A INPUT -j TRACE").msgs).toEqual(["TRACE is only valid in the raw table, not filter"]);
  });

  it("keeps other targets opaque with their effect; unknown ones marked", () => {
    const c = rule(
      "-A INPUT -d 192.168.0.5 -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:c0:a8:00:05 --total-nodes 2 --local-node 1",
    );
    expect(c.target).toMatchObject({ kind: "opaque", name: "CLUSTERIP", effect: "unknown", known: true });
    expect(c.unknown.map((u) => u.what)).toEqual(["-j CLUSTERIP"]);
    const t = rule("-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", "mangle");
    expect(t.target).toMatchObject({ kind: "opaque", name: "TCPMSS", effect: "continue" });
    expect(t.unknown).toEqual([]);
    const u = one("-A INPUT -p tcp -j TARPIT --tarpit");
    expect(u.errors).toEqual([]);
    expect(u.rules[0]!.target).toMatchObject({
      kind: "opaque",
      name: "TARPIT",
      effect: "unknown",
      known: false,
    });
    expect(u.msgs).toEqual([
      "unsupported: unknown target 'TARPIT' (no such chain either) — rule kept, its effect is unknown",
    ]);
  });
});

describe("file structure", () => {
  it("creates built-in chains with ACCEPT policies, reads policies and counters", () => {
    const r = parse("*filter\n:INPUT DROP [5:800]\n:FORWARD - [0:0]\n:X - [1:2]\nCOMMIT\n*nat\nCOMMIT\n");
    expect(r.errors).toEqual([]);
    const f = r.ruleset.tables.get("filter")!;
    expect([...f.chains.keys()]).toEqual(["INPUT", "FORWARD", "OUTPUT", "X"]);
    expect(f.chains.get("INPUT")).toMatchObject({
      policy: "DROP",
      builtin: true,
      counters: { packets: 5n, bytes: 800n },
    });
    expect(f.chains.get("FORWARD")!.policy).toBe("ACCEPT");
    expect(f.chains.get("OUTPUT")).toMatchObject({ policy: "ACCEPT", prov: null });
    expect(f.chains.get("X")).toMatchObject({
      builtin: false,
      policy: null,
      counters: { packets: 1n, bytes: 2n },
    });
    expect([...r.ruleset.tables.get("nat")!.chains.keys()]).toEqual([
      "PREROUTING",
      "INPUT",
      "OUTPUT",
      "POSTROUTING",
    ]);
  });

  it("reads rule counters in both spellings", () => {
    const r = parse("*filter\n[3:400] -A INPUT -j ACCEPT\n-A INPUT -c 7 800 -j DROP\nCOMMIT\n");
    expect(allRules(r.ruleset).map((x) => x.counters)).toEqual([
      { packets: 3n, bytes: 400n },
      { packets: 7n, bytes: 800n },
    ]);
    expect(parse("*filter\n[1:2] -A INPUT -c 3 4\nCOMMIT\n").errors.map((e) => e.message)).toEqual([
      "counters given twice ([p:b] and -c)",
    ]);
    expect(parse("*filter\n[1:x] -A INPUT\nCOMMIT\n").errors.map((e) => e.message)).toEqual([
      "expected counters [packets:bytes], got '[1:x]'",
    ]);
  });

  it("reports structural errors with file:line:col, all of them", () => {
    const text = [
      "# comment",
      "-A INPUT -j ACCEPT", // 2: rule before table
      "*filter",
      ":INPUT BOGUS [0:0]", // 4
      ":PREROUTING ACCEPT [0:0]", // 5
      ":X ACCEPT [0:0]", // 6
      "-A NOSUCH -j ACCEPT", // 7
      "-A INPUT -j MISSING", // 8
      "garbage here", // 9
      "*nat", // 10: COMMIT missing before
      "-A PREROUTING -j ACCEPT",
      "COMMIT",
      "COMMIT", // 13
      "*bogus", // 14
      "*raw", // 15: COMMIT missing before; then end of input
      "-A PREROUTING -j ACCEPT",
    ].join("\n");
    const r = parse(text);
    expect(r.errors.map(formatDiagnostic)).toEqual([
      "t.rules:2:1: rule before table: expected a '*table' line (e.g. *filter) first",
      "t.rules:4:8: expected policy ACCEPT or DROP for built-in chain INPUT, got 'BOGUS'",
      "t.rules:5:13: 'PREROUTING' is not a built-in chain of table filter, so it cannot have policy ACCEPT (use -)",
      "t.rules:6:4: 'X' is not a built-in chain of table filter, so it cannot have policy ACCEPT (use -)",
      "t.rules:7:4: unknown chain 'NOSUCH' in table filter",
      "t.rules:9:1: expected '*table', ':chain', a rule or COMMIT, got 'garbage'",
      "t.rules:10:1: expected COMMIT before '*nat' (table filter opened at line 3)",
      "t.rules:8:10: unknown chain 'MISSING' referenced (not declared in table filter, and not a target iptables knows)",
      "t.rules:13:1: COMMIT without a table: expected a '*table' line first",
      "t.rules:14:2: unknown table 'bogus' (expected one of raw, mangle, nat, filter, security)",
      "t.rules:15:1: expected COMMIT before '*raw' (table filter opened at line 14)",
      "t.rules:16:1: expected COMMIT at end of input for table raw (opened at line 15)",
    ]);
    // Good parts are still there.
    expect(r.ruleset.tables.get("nat")!.chains.get("PREROUTING")!.rules).toHaveLength(1);
  });

  it("stops at the error limit, says so, and never throws", () => {
    const text = `*filter\n${"-A INPUT -s 1.2.3.4/99\n".repeat(80)}COMMIT\n`;
    const r = parse(text, { maxErrors: 10 });
    expect(r.errors).toHaveLength(11);
    expect(r.errors[10]!.message).toBe("too many errors; stopped parsing at line 12");
    expect(() => parseIptablesOrThrow(text)).toThrow(RulesetParseError);
    try {
      parseIptablesOrThrow(text, { file: "t.rules" });
    } catch (e) {
      expect((e as RulesetParseError).errors).toHaveLength(51);
      expect((e as Error).message.split("\n")[1]).toBe(
        "t.rules:2:13: -s: expected a prefix length 0..32 after '/', got '99'",
      );
    }
  });

  it("ignores comments, blank lines and CRLF (warning once: iptables-restore refuses it); warns on a repeated table", () => {
    const r = parse(
      "# Generated by iptables-save\r\n\r\n*filter\r\n  # indented comment\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n*filter\r\n-A INPUT -j DROP\r\nCOMMIT\r\n",
    );
    expect(r.errors).toEqual([]);
    expect(allRules(r.ruleset).map((x) => x.target?.kind)).toEqual(["DROP"]);
    // The comment's CR is harmless; the blank line's is iptables-restore's first refusal.
    expect(r.warnings.map(formatDiagnostic)).toEqual([
      "t.rules:2:1: warning: line ends in a carriage return (CRLF line endings): iptables-restore and iptables refuse such a line (they read the CR into the last word), so this file does not load as it is; read here as if it ended in LF (convert it with sed -i 's/\\r$//'); said once per file",
      "t.rules:7:1: warning: table filter appears again; iptables-restore flushes it, so this block replaces the earlier one",
    ]);
    expect(allRules(r.ruleset)[0]!.prov).toEqual({ file: "t.rules", line: 8, text: "-A INPUT -j DROP" });
  });

  it("rejects chain names iptables rejects", () => {
    expect(parse("*filter\n:LOG - [0:0]\nCOMMIT\n").errors.map((e) => e.message)).toEqual([
      "chain name 'LOG' may not clash with a target name",
    ]);
    expect(parse(`*filter\n:${"a".repeat(29)} - [0:0]\nCOMMIT\n`).errors[0]!.message).toMatch(/too long/);
    expect(parse("*filter\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n").warnings.map((w) => w.message)).toEqual([
      "chain X declared twice; iptables-restore flushes it again",
    ]);
  });

  it("detects chain loops", () => {
    const r = parse("*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -g A\nCOMMIT\n");
    expect(r.errors.map(formatDiagnostic)).toEqual([
      "t.rules:6:6: chain loop: A -> B -> A (the kernel refuses loops)",
    ]);
  });

  it("rejects -t, skips lines for the other family, refuses non-dump inputs", () => {
    expect(errorsOf("-A INPUT -t nat -j ACCEPT")[0]).toMatch(/^-t is not allowed here/);
    const r = parse("*filter\n-4 -A INPUT -s 1.2.3.4 -j ACCEPT\n-6 -A INPUT -s ::1 -j ACCEPT\nCOMMIT\n");
    expect(r.errors).toEqual([]);
    expect(allRules(r.ruleset)).toHaveLength(1);
    expect(
      parse(
        "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n target prot opt source destination\n",
      ).errors.map((e) => e.message),
    ).toEqual([
      "unsupported format: this is `iptables -L` output, which loses match details; give `iptables-save` or `iptables -S` output",
    ]);
    expect(parse("#!/bin/sh\niptables -A INPUT -j ACCEPT\n").errors[0]!.message).toMatch(
      /^unsupported format: this is a shell script/,
    );
    expect(parse("").errors).toEqual([]);
  });
});

describe("restore commands and iptables -S", () => {
  it("applies -N, -I, -D, -R, -F, -X, -E, -P, -Z in order", () => {
    const r = parse(
      [
        "*filter",
        "-N A",
        "-N B",
        "-A A -j ACCEPT",
        "-I A -j DROP",
        "-I A 2 -j RETURN",
        "-A A -p tcp -j REJECT",
        "-D A -j RETURN",
        "-D A 1",
        "-R A 2 -p udp -j REJECT",
        "-A INPUT -j A",
        "-A B -j DROP",
        "-F B",
        "-X B",
        "-E A C",
        "-P INPUT DROP",
        "-Z",
        "COMMIT",
      ].join("\n"),
    );
    expect(r.errors.map(formatDiagnostic)).toEqual([]);
    const f = r.ruleset.tables.get("filter")!;
    expect([...f.chains.keys()]).toEqual(["INPUT", "FORWARD", "OUTPUT", "C"]);
    expect(f.chains.get("C")!.rules.map((x) => formatRule(x, 4))).toEqual([
      "-A C -j ACCEPT",
      "-A C -p udp -j REJECT --reject-with icmp-port-unreachable",
    ]);
    expect(f.chains.get("INPUT")!.rules.map((x) => formatRule(x, 4))).toEqual(["-A INPUT -j C"]);
    expect(f.chains.get("INPUT")!.policy).toBe("DROP");
  });

  it("reports misuse of commands", () => {
    const bad = (lines: string[]) =>
      parse(`*filter\n${lines.join("\n")}\nCOMMIT\n`).errors.map((e) => e.message);
    expect(bad(["-N A", "-A INPUT -j A", "-X A"])).toEqual([
      "can't delete chain A: it is referenced from INPUT",
    ]);
    expect(bad(["-N A", "-N A"])).toEqual(["chain 'A' already exists"]);
    expect(bad(["-P X ACCEPT"])).toEqual(["unknown chain 'X' in table filter"]);
    expect(bad(["-N A", "-P A DROP"])).toEqual(["can't set policy on user chain A"]);
    expect(bad(["-P INPUT REJECT"])).toEqual(["expected policy ACCEPT or DROP, got 'REJECT'"]);
    expect(bad(["-D INPUT 3"])).toEqual(["-D: no rule 3 in chain INPUT"]);
    expect(bad(["-D INPUT -j ACCEPT"])).toEqual(["-D: no matching rule in chain INPUT"]);
    expect(bad(["-I INPUT 5 -j ACCEPT"])).toEqual(["index of insertion too big: chain INPUT has 0 rule(s)"]);
    expect(bad(["-N A -p tcp"])).toEqual(["-N takes no rule options"]);
    expect(bad(["-A INPUT -A OUTPUT"])).toEqual(["only one command per line (already -A)"]);
    expect(bad(["-p tcp"])).toEqual(["expected a command (-A, -I, -N, -P, …)"]);
    expect(bad(["-A"])).toEqual(["-A requires a chain name"]);
  });

  it("reads iptables -S output, inferring the table from its built-in chains", () => {
    const s =
      "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT -c 10 20\n-N HOSTFW\n-A INPUT -j HOSTFW\n-A HOSTFW -s 10.0.0.0/8 -p udp -m udp --dport 500 -c 1 2 -j ACCEPT\n";
    const r = parse(s);
    expect(r.errors).toEqual([]);
    expect(r.ruleset.format).toBe("list-rules");
    const f = r.ruleset.tables.get("filter")!;
    expect(f.chains.get("INPUT")!.policy).toBe("DROP");
    expect(f.chains.get("OUTPUT")!.counters).toEqual({ packets: 10n, bytes: 20n });
    expect(f.chains.get("HOSTFW")!.rules[0]!.counters).toEqual({ packets: 1n, bytes: 2n });
    const nat = parse(
      "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n-A POSTROUTING -o eth0 -j MASQUERADE\n",
    );
    expect(nat.errors).toEqual([]);
    expect([...nat.ruleset.tables.keys()]).toEqual(["nat"]);
    expect([...parse("-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n").ruleset.tables.keys()]).toEqual(["raw"]);
    expect([...parse("-A INPUT -j ACCEPT\n", { table: "security" }).ruleset.tables.keys()]).toEqual([
      "security",
    ]);
    expect(parse("-A NOPE -j ACCEPT\n").errors.map((e) => e.message)).toEqual([
      "unknown chain 'NOPE' in table filter",
    ]);
  });

  it("detects the address family", () => {
    expect(parse("# Generated by ip6tables-save v1.8.9\n*filter\nCOMMIT\n").ruleset.family).toBe(6);
    expect(parse("*filter\n-A INPUT -s 2001:db8::/32\nCOMMIT\n").ruleset.family).toBe(6);
    expect(parse("*filter\nCOMMIT\n", { file: "rules.v6" }).ruleset.family).toBe(6);
    expect(parse("*filter\n-A INPUT -s 10.0.0.0/8\nCOMMIT\n").ruleset.family).toBe(4);
  });
});

describe("tokenizer", () => {
  it("splits like iptables-restore", () => {
    const t = (s: string) => tokenize(s).tokens.map((x) => x.text);
    expect(t('-A X  -m comment --comment "a b" -j Y')).toEqual([
      "-A",
      "X",
      "-m",
      "comment",
      "--comment",
      "a b",
      "-j",
      "Y",
    ]);
    expect(t('"a\\"b" c\\d "e\\\\f"')).toEqual(['a"b', "c\\d", "e\\f"]);
    expect(t('ab"cd"ef')).toEqual(["abcd", "ef"]);
    expect(t('""')).toEqual([""]);
    expect(tokenize('-A "x').unterminatedQuoteCol).toBe(4);
    expect(tokenize("\t-A  INPUT").tokens.map((x) => x.col)).toEqual([2, 6]);
  });

  test.prop([fc.string({ unit: "binary" })])("quoteArg round-trips any string through the tokenizer", (s) => {
    const toks = tokenize(`x ${quoteArg(s)} y`).tokens.map((x) => x.text);
    expect(toks).toEqual(["x", s, "y"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

/** Tokens the parser treats specially, so random lines reach deep into it. */
const WORDS = [
  "-A",
  "-I",
  "-D",
  "-R",
  "-N",
  "-P",
  "-F",
  "-X",
  "-E",
  "-Z",
  "INPUT",
  "FORWARD",
  "OUTPUT",
  "U",
  "V",
  "ACCEPT",
  "DROP",
  "-s",
  "-d",
  "! ",
  "!",
  "-p",
  "tcp",
  "udp",
  "esp",
  "all",
  "-i",
  "-o",
  "eth+",
  "-f",
  "-j",
  "-g",
  "-m",
  "-c",
  "1",
  "22",
  "--dport",
  "--sport",
  "--syn",
  "--tcp-flags",
  "SYN,ACK",
  "multiport",
  "--dports",
  "1,2:3",
  "conntrack",
  "--ctstate",
  "NEW,ESTABLISHED",
  "policy",
  "--dir",
  "in",
  "--pol",
  "ipsec",
  "--strict",
  "--next",
  "--proto",
  "--mode",
  "tunnel",
  "--tunnel-src",
  "10.0.0.0/8",
  "1.2.3.4/33",
  "::1",
  "comment",
  "--comment",
  '"a b"',
  '"',
  "\\",
  "limit",
  "--limit",
  "3/min",
  "LOG",
  "--log-prefix",
  "REJECT",
  "--reject-with",
  "tcp-reset",
  "DNAT",
  "--to-destination",
  "1.2.3.4:80",
  "MARK",
  "--set-mark",
  "0x1/0xff",
  "[0:0]",
  "[1:x]",
  "*filter",
  "*nat",
  "COMMIT",
  ":U",
  "-",
  "--",
  "=",
  "--dpo",
  "geoip",
  "--src-cc",
  "TARPIT",
  "icmp",
  "--icmp-type",
  "any",
  "set",
  "--match-set",
  "src,dst",
];

const lineArb = fc.array(fc.constantFrom(...WORDS), { maxLength: 14 }).map((ws) => ws.join(" "));
const fileArb = fc
  .array(
    fc.oneof(lineArb, fc.constantFrom("*filter", "*nat", "*raw", "COMMIT", ":U - [0:0]", ":V - [0:0]", "")),
    {
      maxLength: 12,
    },
  )
  .map((ls) => ls.join("\n"));

function checkInvariants(text: string, r: ReturnType<typeof parse>): void {
  const nLines = text.split("\n").length;
  for (const d of [...r.errors, ...r.warnings]) {
    expect(d.line).toBeGreaterThanOrEqual(0);
    expect(d.line).toBeLessThanOrEqual(nLines);
    expect(d.col).toBeGreaterThanOrEqual(0);
    expect(typeof d.message).toBe("string");
    expect(formatDiagnostic(d).startsWith("t.rules")).toBe(true);
  }
  expect(r.errors.length).toBeLessThanOrEqual(51);
  for (const t of r.ruleset.tables.values()) {
    for (const c of t.chains.values()) {
      c.rules.forEach((x, i) => {
        expect(x.num).toBe(i + 1);
        expect(x.chain).toBe(c.name);
        expect(text.split("\n")[x.prov.line - 1]?.replace(/\r$/, "")).toBe(x.prov.text);
      });
    }
  }
}

describe("parser properties", () => {
  // Valid lines (accepted by iptables 1.8.9) combined at random: order, repetition and counters.
  const validFilter = GOLDEN4.filter(([t, input]) => t === "filter" && !input.includes("unterminated")).map(
    ([, i]) => i,
  );
  test.prop([
    fc.array(fc.tuple(fc.constantFrom(...validFilter), fc.option(fc.tuple(fc.nat(), fc.nat()))), {
      maxLength: 25,
    }),
  ])("valid rule sets round-trip through the formatter and keep their order", (picks) => {
    const body = picks.map(([l, c]) => (c ? `[${c[0]}:${c[1]}] ${l}` : l));
    const r = parse(`*filter\n:U - [0:0]\n:V - [0:0]\n${body.join("\n")}\nCOMMIT\n`);
    expect(r.errors.map(formatDiagnostic)).toEqual([]);
    for (const c of r.ruleset.tables.get("filter")!.chains.values()) {
      const lines = c.rules.map((x) => x.prov.line);
      expect(lines).toEqual([...lines].sort((a, b) => a - b));
    }
    const again = parse(formatRuleset(r.ruleset, { counters: true }), { family: 4 });
    expect(again.errors.map(formatDiagnostic)).toEqual([]);
    expect(shape(again.ruleset.tables)).toEqual(shape(r.ruleset.tables));
  });

  test.prop([fc.string()])("never throws on arbitrary text", (s) => {
    checkInvariants(s, parse(s));
    checkInvariants(`*filter\n${s}\nCOMMIT\n`, parse(`*filter\n${s}\nCOMMIT\n`));
  });

  test.prop([fileArb, fc.constantFrom<4 | 6>(4, 6)])(
    "never throws on iptables-like token soup",
    (s, family) => {
      checkInvariants(s, parse(s, { family }));
    },
  );

  test.prop([fc.array(lineArb, { maxLength: 8 })])(
    "a clean parse round-trips through the formatter",
    (lines) => {
      const text = `*filter\n:U - [0:0]\n:V - [0:0]\n${lines.join("\n")}\nCOMMIT\n`;
      const r = parse(text);
      // Not promised for rules that kept an option nobody owns (see the corpus test).
      const stray = allRules(r.ruleset).some((x) => x.matches.some((m) => m.kind === "unknown-option"));
      if (r.errors.length > 0 || stray) return;
      const again = parse(formatRuleset(r.ruleset), { family: 4 });
      expect(again.errors.map(formatDiagnostic)).toEqual([]);
      expect(shape(again.ruleset.tables)).toEqual(shape(r.ruleset.tables));
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Generated with iptables/ip6tables v1.8.9 (nf_tables): each input loaded with iptables-restore in
// a fresh network namespace, then listed with iptables-save. Do not edit by hand.
const GOLDEN4: ReadonlyArray<[table: string, input: string, saved: string[]]> = [
  [
    "filter",
    "-A INPUT -s 10.0.0.0/255.255.0.0 ! -d 1.2.3.4 -p udp --dport 500 -j ACCEPT",
    ["-A INPUT -s 10.0.0.0/16 ! -d 1.2.3.4/32 -p udp -m udp --dport 500 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p udp -m udp --sport 500 --dport 4500 -m policy --dir in --pol ipsec --strict --reqid 1 --spi 0x10 --proto esp --mode tunnel --tunnel-src 1.1.1.1 --tunnel-dst 2.2.2.0/24 --next --proto ah -j ACCEPT",
    [
      "-A INPUT -p udp -m udp --sport 500 --dport 4500 -m policy --dir in --pol ipsec --strict --reqid 1 --spi 0x10 --proto esp --mode tunnel --tunnel-dst 2.2.2.0/24 --tunnel-src 1.1.1.1 --next --proto ah -j ACCEPT",
    ],
  ],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol none -j DROP",
    ["-A INPUT -m policy --dir in --pol none -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -p udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT",
    ["-A INPUT -p udp -m udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT"],
  ],
  ["filter", "-A INPUT -m policy --dir in", ["-A INPUT -m policy --dir in --pol ipsec"]],
  [
    "filter",
    "-A INPUT -p tcp --syn -m multiport ! --dports 1,2:5 -m conntrack --ctstate NEW,ESTABLISHED --ctdir ORIGINAL --ctstatus ASSURED -j REJECT --reject-with tcp-reset",
    [
      "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m multiport ! --dports 1,2:5 -m conntrack --ctstate NEW,ESTABLISHED --ctstatus ASSURED --ctdir ORIGINAL -j REJECT --reject-with tcp-reset",
    ],
  ],
  [
    "filter",
    "-A INPUT -p tcp ! --syn -j DROP",
    ["-A INPUT -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -p tcp --tcp-flags SYN,ACK,FIN,RST,URG,PSH ALL -j DROP",
    ["-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG FIN,SYN,RST,PSH,ACK,URG -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -p tcp --tcp-flags ALL NONE -j DROP",
    ["-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -p tcp ! --tcp-flags SYN,RST SYN --tcp-option 5 -j DROP",
    ["-A INPUT -p tcp -m tcp --tcp-option 5 ! --tcp-flags SYN,RST SYN -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -p tcp --sport 1: --dport :100",
    ["-A INPUT -p tcp -m tcp --sport 1:65535 --dport 0:100"],
  ],
  ["filter", "-A INPUT -p tcp --dport ssh -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p 6 --dport 22 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p TCP --dport 22 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -p udp -m multiport --sports 500,4500 -j ACCEPT",
    ["-A INPUT -p udp -m multiport --sports 500,4500 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p udp -m multiport --ports 500,1000:2000 -j ACCEPT",
    ["-A INPUT -p udp -m multiport --ports 500,1000:2000 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p esp -j ACCEPT", ["-A INPUT -p esp -j ACCEPT"]],
  ["filter", "-A INPUT -p 50 -j ACCEPT", ["-A INPUT -p esp -j ACCEPT"]],
  ["filter", "-A INPUT -p ah -j ACCEPT", ["-A INPUT -p ah -j ACCEPT"]],
  ["filter", "-A INPUT -p 47 -j ACCEPT", ["-A INPUT -p gre -j ACCEPT"]],
  ["filter", "-A INPUT -p 200 -j ACCEPT", ["-A INPUT -p 200 -j ACCEPT"]],
  ["filter", "-A INPUT -p all -j ACCEPT", ["-A INPUT -j ACCEPT"]],
  ["filter", "-A INPUT ! -p udp -j ACCEPT", ["-A INPUT ! -p udp -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -p esp -m esp --espspi 5:7 -j ACCEPT",
    ["-A INPUT -p esp -m esp --espspi 5:7 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p esp --espspi 256 -j ACCEPT", ["-A INPUT -p esp -m esp --espspi 256 -j ACCEPT"]],
  ["filter", "-A INPUT -i eth+ -j ACCEPT", ["-A INPUT -i eth+ -j ACCEPT"]],
  ["filter", "-A INPUT ! -i lo -s 127.0.0.0/8 -j DROP", ["-A INPUT -s 127.0.0.0/8 ! -i lo -j DROP"]],
  ["filter", "-A INPUT -i + -j ACCEPT", ["-A INPUT -j ACCEPT"]],
  ["filter", "-A FORWARD -i ppp+ -o eth0 -j ACCEPT", ["-A FORWARD -i ppp+ -o eth0 -j ACCEPT"]],
  ["filter", "-A FORWARD ! -o eth0 -j DROP", ["-A FORWARD ! -o eth0 -j DROP"]],
  ["filter", "-A INPUT -f -j DROP", ["-A INPUT -f -j DROP"]],
  ["filter", "-A INPUT ! -f -j ACCEPT", ["-A INPUT ! -f -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT",
    ["-A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m addrtype ! --src-type LOCAL,BROADCAST ! --dst-type MULTICAST -j ACCEPT",
    ["-A INPUT -m addrtype ! --src-type LOCAL,BROADCAST ! --dst-type MULTICAST -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m iprange --src-range 1.1.1.1-1.1.1.5 ! --dst-range 2.2.2.2-2.2.2.9 -j ACCEPT",
    ["-A INPUT -m iprange --src-range 1.1.1.1-1.1.1.5 ! --dst-range 2.2.2.2-2.2.2.9 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m mark --mark 0x1/0xff -m connmark ! --mark 5 -j ACCEPT",
    ["-A INPUT -m mark --mark 0x1/0xff -m connmark ! --mark 0x5 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m mac --mac-source aa:bb:cc:dd:ee:ff -j ACCEPT",
    ["-A INPUT -m mac --mac-source aa:bb:cc:dd:ee:ff -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m mac ! --mac-source AA:BB:CC:DD:EE:0F -j DROP",
    ["-A INPUT -m mac ! --mac-source aa:bb:cc:dd:ee:0f -j DROP"],
  ],
  ["filter", "-A INPUT -m length --length 10:20 -j ACCEPT", ["-A INPUT -m length --length 10:20 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m length ! --length 1000 -j ACCEPT",
    ["-A INPUT -m length ! --length 1000 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -m ttl --ttl-gt 5 -j ACCEPT", ["-A INPUT -m ttl --ttl-gt 5 -j ACCEPT"]],
  ["filter", "-A INPUT -m ttl ! --ttl-eq 64 -j ACCEPT", ["-A INPUT -m ttl ! --ttl-eq 64 -j ACCEPT"]],
  ["filter", "-A INPUT -m ttl --ttl-lt 2 -j DROP", ["-A INPUT -m ttl --ttl-lt 2 -j DROP"]],
  [
    "filter",
    "-A INPUT -m state --state INVALID,UNTRACKED -j DROP",
    ["-A INPUT -m state --state INVALID,UNTRACKED -j DROP"],
  ],
  ["filter", "-A INPUT -m state ! --state NEW -j ACCEPT", ["-A INPUT -m state ! --state NEW -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT",
    ["-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED,NEW,INVALID,UNTRACKED,SNAT,DNAT -j ACCEPT",
    ["-A INPUT -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack ! --ctstate NEW --ctproto udp --ctorigsrc 10.0.0.0/8 ! --ctorigdst 1.2.3.4 --ctreplsrc 5.6.7.8/32 --ctrepldst 9.9.9.0/24 -j ACCEPT",
    [
      "-A INPUT -m conntrack ! --ctstate NEW --ctproto 17 --ctorigsrc 10.0.0.0/8 ! --ctorigdst 1.2.3.4 --ctreplsrc 5.6.7.8 --ctrepldst 9.9.9.0/24 -j ACCEPT",
    ],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigsrcport 500 --ctorigdstport 1000:2000 ! --ctreplsrcport 5 --ctrepldstport 6 -j ACCEPT",
    [
      "-A INPUT -m conntrack --ctorigsrcport 500 --ctorigdstport 1000:2000 ! --ctreplsrcport 5 --ctrepldstport 6 -j ACCEPT",
    ],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctstatus SEEN_REPLY,ASSURED --ctexpire 10:20 -j ACCEPT",
    ["-A INPUT -m conntrack --ctstatus SEEN_REPLY,ASSURED --ctexpire 10:20 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m physdev --physdev-in eth0 --physdev-is-bridged -j ACCEPT",
    ["-A INPUT -m physdev --physdev-in eth0 --physdev-is-bridged -j ACCEPT"],
  ],
  [
    "filter",
    "-A FORWARD -m physdev ! --physdev-out vnet+ ! --physdev-is-out --physdev-is-in -j ACCEPT",
    ["-A FORWARD -m physdev --physdev-is-in ! --physdev-is-out ! --physdev-out vnet+ -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmp --icmp-type echo-request -j ACCEPT",
    ["-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT",
    ["-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmp -m icmp ! --icmp-type any -j ACCEPT",
    ["-A INPUT -p icmp -m icmp ! --icmp-type any -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmp --icmp-type fragmentation-needed -j ACCEPT",
    ["-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmp --icmp-type destination-unreachable -j ACCEPT",
    ["-A INPUT -p icmp -m icmp --icmp-type 3 -j ACCEPT"],
  ],
  [
    "filter",
    '-A INPUT -m comment --comment "a \\"q\\" b" -j ACCEPT',
    ['-A INPUT -m comment --comment "a \\"q\\" b" -j ACCEPT'],
  ],
  [
    "filter",
    "-A INPUT -m comment --comment plain -j ACCEPT",
    ["-A INPUT -m comment --comment plain -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m comment --comment \"back\\\\slash 'single'\" -j ACCEPT",
    ["-A INPUT -m comment --comment \"back\\slash \\'single\\'\" -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m pkttype --pkt-type broadcast -j DROP",
    ["-A INPUT -m pkttype --pkt-type broadcast -j DROP"],
  ],
  ["filter", "-A INPUT -p sctp --dport 5 -j DROP", ["-A INPUT -p sctp -m sctp --dport 5 -j DROP"]],
  [
    "filter",
    "-A INPUT -p sctp -m sctp --sport 1:2 --dport 5 --chunk-types any INIT -j DROP",
    ["-A INPUT -p sctp -m sctp --sport 1:2 --dport 5 --chunk-types any INIT -j DROP"],
  ],
  [
    "filter",
    '-A INPUT -m limit --limit 3/min --limit-burst 7 -j LOG --log-prefix "hi there " --log-level 6',
    ['-A INPUT -m limit --limit 3/min --limit-burst 7 -j LOG --log-prefix "hi there " --log-level 6'],
  ],
  [
    "filter",
    '-A INPUT -j LOG --log-prefix "x" --log-level info --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid',
    [
      "-A INPUT -j LOG --log-prefix x --log-level 6 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid",
    ],
  ],
  ["filter", "-A INPUT -j LOG", ["-A INPUT -j LOG"]],
  [
    "filter",
    '-A INPUT -j NFLOG --nflog-group 3 --nflog-prefix "x y"',
    ['-A INPUT -j NFLOG --nflog-prefix "x y" --nflog-group 3'],
  ],
  ["filter", "-A INPUT -j MARK --set-mark 5", ["-A INPUT -j MARK --set-xmark 0x5/0xffffffff"]],
  ["filter", "-A INPUT -j MARK --set-mark 0x5/0xff", ["-A INPUT -j MARK --set-xmark 0x5/0xff"]],
  ["filter", "-A INPUT -j MARK --and-mark 0xf0", ["-A INPUT -j MARK --set-xmark 0x0/0xffffff0f"]],
  ["filter", "-A INPUT -j MARK --or-mark 0x3", ["-A INPUT -j MARK --set-xmark 0x3/0x3"]],
  ["filter", "-A INPUT -j MARK --xor-mark 0x3", ["-A INPUT -j MARK --set-xmark 0x3/0x0"]],
  ["filter", "-A INPUT -j MARK --set-xmark 0x4000/0x4000", ["-A INPUT -j MARK --set-xmark 0x4000/0x4000"]],
  [
    "filter",
    "-A INPUT -j CONNMARK --save-mark",
    ["-A INPUT -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff"],
  ],
  [
    "filter",
    "-A INPUT -j CONNMARK --restore-mark --mask 0xff",
    ["-A INPUT -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff"],
  ],
  ["filter", "-A INPUT -j CONNMARK --set-mark 7", ["-A INPUT -j CONNMARK --set-xmark 0x7/0xffffffff"]],
  [
    "filter",
    "-A INPUT -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xf0",
    ["-A INPUT -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xf0"],
  ],
  ["filter", "-A INPUT -j REJECT", ["-A INPUT -j REJECT --reject-with icmp-port-unreachable"]],
  [
    "filter",
    "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
    ["-A INPUT -j REJECT --reject-with icmp-host-prohibited"],
  ],
  [
    "filter",
    "-A INPUT -j REJECT --reject-with host-prohib",
    ["-A INPUT -j REJECT --reject-with icmp-host-prohibited"],
  ],
  [
    "filter",
    "-A INPUT -j REJECT --reject-with icmp-admin-prohibited",
    ["-A INPUT -j REJECT --reject-with icmp-admin-prohibited"],
  ],
  [
    "filter",
    "-A INPUT -m hashlimit --hashlimit-above 10/sec --hashlimit-burst 20 --hashlimit-mode srcip --hashlimit-name aflood --hashlimit-srcmask 8 -j DROP",
    [
      "-A INPUT -m hashlimit --hashlimit-above 10/sec --hashlimit-burst 20 --hashlimit-mode srcip --hashlimit-name aflood --hashlimit-srcmask 8 -j DROP",
    ],
  ],
  [
    "filter",
    "-A INPUT -m recent --rcheck --seconds 60 --name X --rsource -j DROP",
    ["-A INPUT -m recent --rcheck --seconds 60 --name X --mask 255.255.255.255 --rsource -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -m recent --set --name SSH -j ACCEPT",
    ["-A INPUT -m recent --set --name SSH --mask 255.255.255.255 --rsource -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m statistic --mode random --probability 0.5 -j DROP",
    ["-A INPUT -m statistic --mode random --probability 0.50000000000 -j DROP"],
  ],
  [
    "filter",
    "-A INPUT -m statistic --mode nth --every 3 --packet 1 -j DROP",
    ["-A INPUT -m statistic --mode nth --every 3 --packet 1 -j DROP"],
  ],
  [
    "filter",
    '-A INPUT -m string --string "a b" --algo bm -j DROP',
    ['-A INPUT -m string --string "a b" --algo bm -j DROP'],
  ],
  [
    "filter",
    '-A INPUT -m u32 --u32 "0>>22&0x3C@12>>26&0x3C@0=0x0" -j DROP',
    ['-A INPUT -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x0" -j DROP'],
  ],
  [
    "filter",
    "-A INPUT -m time --timestart 06:59 --timestop 23:59 --weekdays Mon,Tue -j DROP",
    [
      "-A INPUT -m time --timestart 06:59:00 --timestop 23:59:00 --weekdays Mon,Tue --datestop 2038-01-19T03:14:07 -j DROP",
    ],
  ],
  [
    "filter",
    "-A INPUT -m connlimit --connlimit-above 15 -j REJECT",
    [
      "-A INPUT -m connlimit --connlimit-above 15 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-port-unreachable",
    ],
  ],
  ["filter", "-A INPUT -m helper --helper ftp -j ACCEPT", ["-A INPUT -m helper --helper ftp -j ACCEPT"]],
  ["filter", "-A OUTPUT -m owner --uid-owner 0 -j ACCEPT", ["-A OUTPUT -m owner --uid-owner 0 -j ACCEPT"]],
  ["filter", "-A INPUT -s 1.2.3.4/255.0.255.0 -j DROP", ["-A INPUT -s 1.0.3.0/255.0.255.0 -j DROP"]],
  ["filter", "-A INPUT -s 10.1.2.3/8 -j DROP", ["-A INPUT -s 10.0.0.0/8 -j DROP"]],
  [
    "filter",
    "-A INPUT -s 1.2.3.4,5.6.7.0/24 -d 9.9.9.9,8.8.8.8 -j DROP",
    [
      "-A INPUT -s 1.2.3.4/32 -d 9.9.9.9/32 -j DROP",
      "-A INPUT -s 1.2.3.4/32 -d 8.8.8.8/32 -j DROP",
      "-A INPUT -s 5.6.7.0/24 -d 9.9.9.9/32 -j DROP",
      "-A INPUT -s 5.6.7.0/24 -d 8.8.8.8/32 -j DROP",
    ],
  ],
  ["filter", "-A INPUT -s 010.1.1.1 -j DROP", ["-A INPUT -s 8.1.1.1/32 -j DROP"]],
  ["filter", "-A INPUT -s 10.1 -j DROP", ["-A INPUT -s 10.1.0.0/32 -j DROP"]],
  [
    "filter",
    "-A INPUT --source 1.2.3.4 --protocol udp --destination-port 53 -j ACCEPT",
    ["-A INPUT -s 1.2.3.4/32 -p udp -m udp --dport 53 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p tcp --dport=22 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p tcp --dpo 22 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m mac --mac 00:11:22:33:44:55 -j ACCEPT",
    ["-A INPUT -m mac --mac-source 00:11:22:33:44:55 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -j RETURN", ["-A INPUT -j RETURN"]],
  ["filter", "-A INPUT -j TRACE", ["-A INPUT -j TRACE"]],
  ["filter", "-A INPUT -j NFQUEUE --queue-num 3", ["-A INPUT -j NFQUEUE --queue-num 3"]],
  [
    "filter",
    "-A INPUT -p udp -m udp --dport 60000:29 -j ACCEPT",
    ["-A INPUT -p udp -m udp --dport 60000:29 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -m dscp --dscp 10 -j ACCEPT", ["-A INPUT -m dscp --dscp 0x0a -j ACCEPT"]],
  [
    "nat",
    "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080",
    ["-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080"],
  ],
  [
    "nat",
    "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1-10.0.0.5:8080-8090",
    ["-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1-10.0.0.5:8080-8090"],
  ],
  [
    "nat",
    "-A PREROUTING -d 1.2.3.4 -j DNAT --to-destination 10.0.0.1",
    ["-A PREROUTING -d 1.2.3.4/32 -j DNAT --to-destination 10.0.0.1"],
  ],
  [
    "nat",
    "-A PREROUTING -p tcp -j REDIRECT --to-ports 3128",
    ["-A PREROUTING -p tcp -j REDIRECT --to-ports 3128"],
  ],
  ["nat", "-A POSTROUTING -o eth0 -j MASQUERADE", ["-A POSTROUTING -o eth0 -j MASQUERADE"]],
  [
    "nat",
    "-A POSTROUTING -p udp -o eth0 -j MASQUERADE --to-ports 1000-2000 --random",
    ["-A POSTROUTING -o eth0 -p udp -j MASQUERADE --to-ports 1000-2000 --random"],
  ],
  [
    "nat",
    "-A POSTROUTING -s 192.168.42.0/24 -o eth0 -m policy --dir out --pol none -j MASQUERADE",
    ["-A POSTROUTING -s 192.168.42.0/24 -o eth0 -m policy --dir out --pol none -j MASQUERADE"],
  ],
  ["nat", "-A POSTROUTING -j SNAT --to-source 1.2.3.4", ["-A POSTROUTING -j SNAT --to-source 1.2.3.4"]],
  [
    "nat",
    "-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4-1.2.3.9:1000-2000 --random-fully --persistent",
    ["-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4-1.2.3.9:1000-2000 --random-fully --persistent"],
  ],
  ["nat", "-A OUTPUT -p tcp -j REDIRECT --to-ports 8080", ["-A OUTPUT -p tcp -j REDIRECT --to-ports 8080"]],
  ["nat", "-A INPUT -j SNAT --to-source 1.2.3.4", ["-A INPUT -j SNAT --to-source 1.2.3.4"]],
  ["nat", "-A PREROUTING -j ACCEPT", ["-A PREROUTING -j ACCEPT"]],
  ["raw", "-A PREROUTING -p udp -j CT --notrack", ["-A PREROUTING -p udp -j CT --notrack"]],
  ["raw", "-A PREROUTING -j NOTRACK", ["-A PREROUTING -j NOTRACK"]],
  ["raw", "-A OUTPUT -j TRACE", ["-A OUTPUT -j TRACE"]],
  [
    "raw",
    "-A PREROUTING -p tcp --dport 21 -j CT --helper ftp",
    ["-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp"],
  ],
  ["mangle", "-A PREROUTING -j MARK --set-mark 5", ["-A PREROUTING -j MARK --set-xmark 0x5/0xffffffff"]],
  [
    "mangle",
    "-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    ["-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"],
  ],
  ["mangle", "-A POSTROUTING -j CHECKSUM --checksum-fill", ["-A POSTROUTING -j CHECKSUM --checksum-fill"]],
  ["mangle", "-A PREROUTING -j TTL --ttl-set 64", ["-A PREROUTING -j TTL --ttl-set 64"]],
  [
    "mangle",
    "-A PREROUTING -j CONNMARK --restore-mark",
    ["-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"],
  ],
  ["security", "-A INPUT -j ACCEPT", ["-A INPUT -j ACCEPT"]],
  // Port syntax per extension and /etc/services per protocol (issue 3 differential gaps).
  ["filter", "-A INPUT -p udp --dport ssh -j ACCEPT", ["-A INPUT -p udp -m udp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p udp --dport isakmp -j ACCEPT", ["-A INPUT -p udp -m udp --dport 500 -j ACCEPT"]],
  ["filter", "-A INPUT -p dccp --dport ssh -j ACCEPT", ["-A INPUT -p dccp -m dccp --dport 22 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -p udp -m multiport --dports isakmp,ipsec-nat-t -j ACCEPT",
    ["-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p udp -m multiport --dports 026,0x20 -j ACCEPT",
    ["-A INPUT -p udp -m multiport --dports 22,32 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p udp --dport 026 -j ACCEPT", ["-A INPUT -p udp -m udp --dport 26 -j ACCEPT"]],
  ["filter", "-A INPUT -p udp --dport 70000 -j ACCEPT", ["-A INPUT -p udp -m udp --dport 4464 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -p udp --sport 22:70000 -j ACCEPT",
    ["-A INPUT -p udp -m udp --sport 22:4464 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p dccp --dport 30:20 -j ACCEPT",
    ["-A INPUT -p dccp -m dccp --dport 30:20 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p dccp --dport 026 -j ACCEPT", ["-A INPUT -p dccp -m dccp --dport 26 -j ACCEPT"]],
  ["filter", "-A INPUT -p tcp --dport 026 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p tcp --dport +22 -j ACCEPT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]],
  ["filter", "-A INPUT -p sctp --dport 0x16 -j ACCEPT", ["-A INPUT -p sctp -m sctp --dport 22 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigdstport 026 -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigdstport 26 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigdstport l2tp -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigdstport 1701 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigdstport 65537 -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigdstport 1 -j ACCEPT"],
  ],
  [
    "nat",
    "-A PREROUTING -p udp -j DNAT --to-destination 192.0.2.1:026",
    ["-A PREROUTING -p udp -j DNAT --to-destination 192.0.2.1:22"],
  ],
  [
    "nat",
    "-A PREROUTING -p tcp -j DNAT --to-destination 192.0.2.1:isakmp",
    ["-A PREROUTING -p tcp -j DNAT --to-destination 192.0.2.1:500"],
  ],
  // XTTYPE_HOSTMASK: a non-contiguous mask loads as a host (conntrack, policy).
  [
    "filter",
    "-A INPUT -m conntrack --ctorigsrc 10.1.2.3/0.0.0.255 -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigsrc 10.1.2.3 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctreplsrc 0.0.0.1/0.0.0.255 -j ACCEPT",
    ["-A INPUT -m conntrack --ctreplsrc 0.0.0.1 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctrepldst 10.1.2.0/255.0.255.0 -j ACCEPT",
    ["-A INPUT -m conntrack --ctrepldst 10.1.2.0 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigdst 10.1.0.0/255.255.0.0 -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigdst 10.1.0.0/16 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol ipsec --mode tunnel --tunnel-src 10.1.2.3/0.0.0.255 -j ACCEPT",
    ["-A INPUT -m policy --dir in --pol ipsec --mode tunnel --tunnel-src 10.1.2.3 -j ACCEPT"],
  ],
  // Address lists on -s and -d: one rule per pair, source-major.
  [
    "filter",
    "-A INPUT -s 192.0.2.1,192.0.2.2 -d 192.0.2.9,192.0.2.10 -j ACCEPT",
    [
      "-A INPUT -s 192.0.2.1/32 -d 192.0.2.9/32 -j ACCEPT",
      "-A INPUT -s 192.0.2.1/32 -d 192.0.2.10/32 -j ACCEPT",
      "-A INPUT -s 192.0.2.2/32 -d 192.0.2.9/32 -j ACCEPT",
      "-A INPUT -s 192.0.2.2/32 -d 192.0.2.10/32 -j ACCEPT",
    ],
  ],
  // -j TTL (typed: the engine applies it).
  ["mangle", "-A PREROUTING -j TTL --ttl-set 200", ["-A PREROUTING -j TTL --ttl-set 200"]],
  ["mangle", "-A PREROUTING -j TTL --ttl-set 0x10", ["-A PREROUTING -j TTL --ttl-set 16"]],
  ["mangle", "-A PREROUTING -p udp -j TTL --ttl-dec 5", ["-A PREROUTING -p udp -j TTL --ttl-dec 5"]],
  ["mangle", "-A INPUT -j TTL --ttl-inc 255", ["-A INPUT -j TTL --ttl-inc 255"]],
];
const GOLDEN6: ReadonlyArray<[table: string, input: string, saved: string[]]> = [
  [
    "filter",
    "-A INPUT -s 2001:db8::/32 -p ipv6-icmp --icmpv6-type echo-request -j ACCEPT",
    ["-A INPUT -s 2001:db8::/32 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p icmpv6 --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT",
    ["-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT",
    ["-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p 58 -j ACCEPT", ["-A INPUT -p ipv6-icmp -j ACCEPT"]],
  ["filter", "-A INPUT -d ::ffff:127.0.0.1 -j DROP", ["-A INPUT -d ::ffff:127.0.0.1/128 -j DROP"]],
  ["filter", "-A INPUT -s ::1/128 -i lo -j ACCEPT", ["-A INPUT -s ::1/128 -i lo -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -s fe80::/10 -d ff02::1:ff00:0/104 -j ACCEPT",
    ["-A INPUT -s fe80::/10 -d ff02::1:ff00:0/104 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -s 2001:db8:0:0:8d3::/80 -j ACCEPT", ["-A INPUT -s 2001:db8:0:0:8d3::/80 -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -s 2001:db8::1/ffff:ffff:0:ffff:: -j ACCEPT",
    ["-A INPUT -s 2001:db8::/ffff:ffff:0:ffff:: -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -p udp -m udp --dport 500 -m policy --dir in --pol ipsec --strict --proto esp --mode tunnel --tunnel-src 2001:db8::1 --tunnel-dst 2001:db8::/64 -j ACCEPT",
    [
      "-A INPUT -p udp -m udp --dport 500 -m policy --dir in --pol ipsec --strict --proto esp --mode tunnel --tunnel-dst 2001:db8::/64 --tunnel-src 2001:db8::1 -j ACCEPT",
    ],
  ],
  [
    "filter",
    "-A INPUT -m frag --fragid 5:10 --fragmore -j DROP",
    ["-A INPUT -m frag --fragid 5:10 --fragmore -j DROP"],
  ],
  ["filter", "-A INPUT -m hl ! --hl-eq 64 -j DROP", ["-A INPUT -m hl ! --hl-eq 64 -j DROP"]],
  ["filter", "-A INPUT -j REJECT", ["-A INPUT -j REJECT --reject-with icmp6-port-unreachable"]],
  [
    "filter",
    "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited",
    ["-A INPUT -j REJECT --reject-with icmp6-adm-prohibited"],
  ],
  [
    "filter",
    "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
    ["-A INPUT -p tcp -j REJECT --reject-with tcp-reset"],
  ],
  [
    "filter",
    "-A INPUT -m iprange --src-range 2001:db8::1-2001:db8::ff -j ACCEPT",
    ["-A INPUT -m iprange --src-range 2001:db8::1-2001:db8::ff -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigsrc 2001:db8::/48 --ctstate NEW -j ACCEPT",
    ["-A INPUT -m conntrack --ctstate NEW --ctorigsrc 2001:db8::/48 -j ACCEPT"],
  ],
  ["filter", "-A INPUT -p esp -j ACCEPT", ["-A INPUT -p esp -j ACCEPT"]],
  [
    "filter",
    "-A INPUT -m ipv6header --header frag --soft -j DROP",
    ["-A INPUT -m ipv6header --header ipv6-frag --soft -j DROP"],
  ],
  [
    "nat",
    "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080",
    ["-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080"],
  ],
  [
    "nat",
    "-A POSTROUTING -j SNAT --to-source 2001:db8::1-2001:db8::5",
    ["-A POSTROUTING -j SNAT --to-source 2001:db8::1-2001:db8::5"],
  ],
  ["nat", "-A POSTROUTING -o eth0 -j MASQUERADE", ["-A POSTROUTING -o eth0 -j MASQUERADE"]],
  // XTTYPE_HOSTMASK: a non-contiguous mask loads as a host.
  [
    "filter",
    "-A INPUT -m conntrack --ctorigsrc 2001:db8::1/ffff::ff -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigsrc 2001:db8::1 -j ACCEPT"],
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctorigsrc 2001:db8::/ffff:ffff:: -j ACCEPT",
    ["-A INPUT -m conntrack --ctorigsrc 2001:db8::/32 -j ACCEPT"],
  ],
  // -j HL (typed: the engine applies it).
  ["mangle", "-A PREROUTING -j HL --hl-set 7", ["-A PREROUTING -j HL --hl-set 7"]],
  ["mangle", "-A FORWARD -j HL --hl-dec 1", ["-A FORWARD -j HL --hl-dec 1"]],
];
/** Lines iptables-restore 1.8.9 refuses, with its message. */
const REJECTED4: ReadonlyArray<[table: string, input: string, iptablesSays: string]> = [
  [
    "filter",
    "-A INPUT -s 1.2.3.4/33 -j DROP",
    "iptables-restore v1.8.9 (nf_tables): invalid mask `33' specified",
  ],
  [
    "filter",
    "-A INPUT -s 1.2.3.256 -j DROP",
    "iptables-restore v1.8.9 (nf_tables): host/network `1.2.3.256' not found",
  ],
  [
    "filter",
    "-A INPUT -s 1.2.3.4 -s 5.6.7.8 -j DROP",
    "iptables-restore v1.8.9 (nf_tables): multiple -s flags not allowed",
  ],
  [
    "filter",
    "-A INPUT -p tcp --dport 22 --dport 23",
    "iptables-restore v1.8.9 (nf_tables): Only one `--destination-port' allowed",
  ],
  [
    "filter",
    "-A INPUT -p tcp --sport 5:1",
    "iptables-restore v1.8.9 (nf_tables): invalid portrange (min > max)",
  ],
  [
    "filter",
    "-A INPUT -p tcp --dport 70000",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `70000' specified",
  ],
  [
    "filter",
    "-A INPUT -p tcp --dport nosuchservice",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `nosuchservice' specified",
  ],
  [
    "filter",
    "-A INPUT -p nosuchproto -j DROP",
    'iptables-restore v1.8.9 (nf_tables): unknown protocol "nosuchproto" specified',
  ],
  [
    "filter",
    "-A INPUT -p 256 -j DROP",
    'iptables-restore v1.8.9 (nf_tables): unknown protocol "256" specified',
  ],
  [
    "filter",
    "-A INPUT ! -p all -j DROP",
    "iptables-restore v1.8.9 (nf_tables): rule would never match protocol",
  ],
  [
    "filter",
    "-A INPUT -m tcp --dport 22",
    "iptables-restore v1.8.9 (nf_tables): TCP match requires '-p tcp'",
  ],
  [
    "filter",
    "-A INPUT -p udp -m tcp --dport 22",
    "iptables-restore v1.8.9 (nf_tables): TCP match requires '-p tcp'",
  ],
  [
    "filter",
    "-A INPUT -m multiport --dports 22",
    "iptables-restore v1.8.9 (nf_tables): multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
  ],
  [
    "filter",
    "-A INPUT ! -p tcp -m multiport --dports 22",
    "iptables-restore v1.8.9 (nf_tables): multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP",
  ],
  [
    "filter",
    "-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
    "iptables-restore v1.8.9 (nf_tables): too many ports specified",
  ],
  [
    "filter",
    "-A INPUT -p tcp -m multiport --dports 5:1",
    "iptables-restore v1.8.9 (nf_tables): invalid portrange specified",
  ],
  ["filter", "-A OUTPUT -m policy --dir in --pol none", "iptables-restore v1.8.9 (nf_tables): "],
  ["filter", "-A INPUT -m policy --dir out --pol none", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol none --strict",
    "iptables-restore v1.8.9 (nf_tables): policy match: policy none but --strict given",
  ],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol ipsec --proto esp --tunnel-dst 1.2.3.4",
    "iptables-restore v1.8.9 (nf_tables): policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode",
  ],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol ipsec --next --proto esp",
    'iptables-restore v1.8.9 (nf_tables): policy: option "--next" also requires "--strict".',
  ],
  [
    "filter",
    "-A INPUT -m policy --pol ipsec",
    "iptables-restore v1.8.9 (nf_tables): policy match: neither --dir in nor --dir out specified",
  ],
  [
    "filter",
    "-A INPUT -m policy --dir sideways --pol ipsec",
    'iptables-restore v1.8.9 (nf_tables): policy_match: invalid dir "sideways"',
  ],
  [
    "filter",
    "-A INPUT -m policy --dir in --pol ipsec --proto tcp",
    "iptables-restore v1.8.9 (nf_tables): policy match: protocol must be ah/esp/ipcomp",
  ],
  [
    "filter",
    "-A INPUT -p icmp --icmp-type 300",
    "iptables-restore v1.8.9 (nf_tables): Unknown ICMP type `300'",
  ],
  [
    "filter",
    "-A INPUT -p icmp --icmp-type bogus-type",
    "iptables-restore v1.8.9 (nf_tables): Unknown ICMP type `bogus-type'",
  ],
  ["filter", "-A INPUT -m esp --espspi 5", "iptables-restore v1.8.9 (nf_tables): "],
  ["filter", "-A INPUT -j REJECT --reject-with tcp-reset", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "filter",
    "-A INPUT -j REJECT --reject-with icmp6-no-route",
    'iptables-restore v1.8.9 (nf_tables): unknown reject type "icmp6-no-route"',
  ],
  ["filter", "-A INPUT -j CT --notrack", "iptables-restore v1.8.9 (nf_tables): "],
  ["filter", "-A INPUT -j DNAT --to-destination 1.2.3.4", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "filter",
    "-A INPUT -i aaaaaaaaaaaaaaaaaaa",
    "iptables-restore v1.8.9 (nf_tables): interface name `aaaaaaaaaaaaaaaaaaa' must be shorter than IFNAMSIZ (15)",
  ],
  ["filter", "-A INPUT -o eth0 -j DROP", "iptables-restore v1.8.9 (nf_tables): Can't use -o with INPUT"],
  ["filter", "-A OUTPUT -i eth0 -j DROP", "iptables-restore v1.8.9 (nf_tables): Can't use -i with OUTPUT"],
  ["filter", "-A INPUT -j INPUT", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "filter",
    "-A INPUT -j ACCEPT -j DROP",
    "iptables-restore v1.8.9 (nf_tables): multiple -j flags not allowed",
  ],
  [
    "filter",
    "-A INPUT -m comment",
    'iptables-restore v1.8.9 (nf_tables): comment: option "--comment" must be specified',
  ],
  [
    "filter",
    "-A INPUT -m mark --mark 0x100000000",
    'iptables-restore v1.8.9 (nf_tables): mark: bad integer value for option "--mark", or out of range.',
  ],
  [
    "filter",
    "-A INPUT -m mark --mark bogus",
    'iptables-restore v1.8.9 (nf_tables): mark: bad integer value for option "--mark", or out of range.',
  ],
  [
    "filter",
    "-A INPUT -m addrtype --src-type LOCAL --limit-iface-out",
    "iptables-restore v1.8.9 (nf_tables): ",
  ],
  [
    "filter",
    "-A INPUT -m addrtype --src-type BOGUS",
    'iptables-restore v1.8.9 (nf_tables): addrtype: bad type "BOGUS"',
  ],
  [
    "filter",
    "-A INPUT -m addrtype --src-type LOCAL --limit-iface-in --limit-iface-out",
    'iptables-restore v1.8.9 (nf_tables): addrtype: option "--limit-iface-in" cannot be used together with "--limit-iface-out".',
  ],
  [
    "filter",
    "-A INPUT -p tcp --tcp-flags SYN",
    "iptables-restore v1.8.9 (nf_tables): --tcp-flags requires two args.",
  ],
  [
    "filter",
    "-A INPUT -p tcp --tcp-flags SYN,BOGUS SYN",
    "iptables-restore v1.8.9 (nf_tables): Unknown TCP flag `BOGUS'",
  ],
  ["filter", "-A INPUT -m state --state NEW,BOGUS", 'iptables-restore v1.8.9 (nf_tables): Bad state "BOGUS"'],
  ["filter", "-A INPUT -m state --state SNAT", 'iptables-restore v1.8.9 (nf_tables): Bad state "SNAT"'],
  [
    "filter",
    "-A INPUT -m conntrack --ctstate BOGUS",
    'iptables-restore v1.8.9 (nf_tables): Bad ctstate "BOGUS"',
  ],
  [
    "filter",
    "-A INPUT -m conntrack --ctdir SIDEWAYS",
    'iptables-restore v1.8.9 (nf_tables): conntrack: Bad value for "--ctdir" option: "SIDEWAYS"',
  ],
  [
    "filter",
    "-A INPUT -m mac --mac-source 00:11:22:33:44",
    "iptables-restore v1.8.9 (nf_tables): Invalid MAC address specified.",
  ],
  ["filter", "-A OUTPUT -m mac --mac-source 00:11:22:33:44:55", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "filter",
    "-A INPUT -m length --length 70000",
    'iptables-restore v1.8.9 (nf_tables): length: bad value for option "--length" near "70000", or out of range (0-65535).',
  ],
  [
    "filter",
    "-A INPUT -m ttl --ttl-eq 300",
    'iptables-restore v1.8.9 (nf_tables): ttl: bad value for option "--ttl-eq", or out of range (0-255).',
  ],
  [
    "filter",
    "-A INPUT -m iprange --src-range 1.2.3.4-bogus",
    'iptables-restore v1.8.9 (nf_tables): iprange: Bad value for "--src-range" option: "bogus"',
  ],
  [
    "filter",
    "-A INPUT -m pkttype --pkt-type anycast",
    "iptables-restore v1.8.9 (nf_tables): Bad packet type 'anycast'",
  ],
  ["filter", "-A INPUT -j LOG --log-level 9", 'iptables-restore v1.8.9 (nf_tables): log level "9" unknown'],
  [
    "filter",
    "-A INPUT -j MARK",
    "iptables-restore v1.8.9 (nf_tables): MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required",
  ],
  [
    "filter",
    "-A INPUT -j MARK --set-mark bogus",
    'iptables-restore v1.8.9 (nf_tables): MARK: bad integer value for option "--set-mark", or out of range.',
  ],
  [
    "filter",
    "-A INPUT -j NOSUCHCHAIN",
    "iptables-restore v1.8.9 (nf_tables): Chain 'NOSUCHCHAIN' does not exist",
  ],
  ["filter", "-A INPUT -g ACCEPT", "iptables-restore v1.8.9 (nf_tables): Chain 'ACCEPT' does not exist"],
  ["filter", "-A INPUT -s 1.2.3.4 extra", "Bad argument `extra'"],
  [
    "filter",
    "-A INPUT ! ! -s 1.2.3.4",
    "iptables-restore v1.8.9 (nf_tables): multiple consecutive ! not allowed",
  ],
  ["filter", "-A INPUT -s", 'iptables-restore v1.8.9 (nf_tables): option "-s" requires an argument'],
  ["filter", "-A NOSUCH -j ACCEPT", "iptables-restore: line 2 failed: No chain/target/match by that name."],
  ["filter", "-P INPUT BOGUS", "iptables-restore: line 2 failed: Bad policy name."],
  ["filter", "-N LOG", "iptables-restore v1.8.9 (nf_tables): chain name may not clash with target name"],
  [
    "filter",
    "-N aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "iptables-restore v1.8.9 (nf_tables): chain name `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' too long (must be under 29 chars)",
  ],
  [
    "filter",
    "-A INPUT -m physdev --physdev-in aaaaaaaaaaaaaaaaaaa",
    "iptables-restore v1.8.9 (nf_tables): interface name `aaaaaaaaaaaaaaaaaaa' must be shorter than IFNAMSIZ (15)",
  ],
  [
    "filter",
    "-A INPUT -t nat -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): The -t option cannot be used in iptables-restore.",
  ],
  ["nat", "-A PREROUTING -j DROP", "iptables-restore v1.8.9 (nf_tables): "],
  ["nat", "-A POSTROUTING -j DNAT --to-destination 1.2.3.4", "iptables-restore v1.8.9 (nf_tables): "],
  ["nat", "-A PREROUTING -j MASQUERADE", "iptables-restore v1.8.9 (nf_tables): "],
  ["nat", "-A PREROUTING -j SNAT --to-source 1.2.3.4", "iptables-restore v1.8.9 (nf_tables): "],
  [
    "nat",
    "-A PREROUTING -j DNAT",
    'iptables-restore v1.8.9 (nf_tables): DNAT: option "--to-destination" must be specified',
  ],
  [
    "nat",
    "-A PREROUTING -j DNAT --to-destination bogus",
    'iptables-restore v1.8.9 (nf_tables): Bad IP address "bogus"',
  ],
  [
    "nat",
    "-A POSTROUTING -j MASQUERADE --to-ports 1000",
    "iptables-restore v1.8.9 (nf_tables): Need TCP, UDP, SCTP or DCCP with port specification",
  ],
  [
    "nat",
    "-A PREROUTING -p tcp -j REDIRECT --to-ports 2000-1000",
    "iptables-restore v1.8.9 (nf_tables): Port range `1000' funky",
  ],
  ["raw", "-A PREROUTING -j REJECT", "iptables-restore v1.8.9 (nf_tables): "],
  ["mangle", "-A INPUT -j REJECT", "iptables-restore v1.8.9 (nf_tables): "],
  // Port syntax per extension and /etc/services per protocol (issue 3 differential gaps).
  [
    "filter",
    "-A INPUT -p tcp --dport l2tp -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `l2tp' specified",
  ],
  [
    "filter",
    "-A INPUT -p tcp --sport isakmp -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `isakmp' specified",
  ],
  [
    "filter",
    "-A INPUT -p sctp --dport ssh -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `ssh' specified",
  ],
  [
    "filter",
    "-A INPUT -p tcp -m multiport --dports l2tp -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `l2tp' specified",
  ],
  [
    "filter",
    "-A INPUT -p udp -m multiport --dports ssh -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `ssh' specified",
  ],
  [
    "filter",
    "-A INPUT -p udp -m multiport --dports 500:500 -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid portrange specified",
  ],
  [
    "filter",
    "-A INPUT -p udp -m multiport --dports 500: -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `' specified",
  ],
  [
    "filter",
    "-A INPUT -p udp --dport 0x16 -j ACCEPT",
    'iptables-restore v1.8.9 (nf_tables): Port "0x16" does not resolve to anything.',
  ],
  [
    "filter",
    "-A INPUT -p tcp --dport 08 -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): invalid port/service `08' specified",
  ],
  [
    "filter",
    "-A INPUT -p udp --dport pptp -j ACCEPT",
    'iptables-restore v1.8.9 (nf_tables): Port "pptp" does not resolve to anything.',
  ],
  // `!` on -s/-d when either is a list (gap negation-with-other-list).
  [
    "filter",
    "-A INPUT ! -s 192.0.2.0/24 -d 192.0.2.1,192.0.2.2 -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): ! not allowed with multiple source or destination IP addresses",
  ],
  [
    "filter",
    "-A INPUT -d 192.0.2.1,192.0.2.2 ! -s 192.0.2.0/24 -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): ! not allowed with multiple source or destination IP addresses",
  ],
  [
    "filter",
    "-A INPUT -s 192.0.2.1,192.0.2.2 ! -d 192.0.2.9 -j ACCEPT",
    "iptables-restore v1.8.9 (nf_tables): ! not allowed with multiple source or destination IP addresses",
  ],
  // -j TTL options.
  [
    "mangle",
    "-A PREROUTING -j TTL --ttl-dec 0",
    'iptables-restore v1.8.9 (nf_tables): TTL: bad value for option "--ttl-dec", or out of range (1-255).',
  ],
  [
    "mangle",
    "-A PREROUTING -j TTL --ttl-set 256",
    'iptables-restore v1.8.9 (nf_tables): TTL: bad value for option "--ttl-set", or out of range (0-255).',
  ],
  [
    "mangle",
    "-A PREROUTING -j TTL --ttl-dec 5 --ttl-inc 2",
    'iptables-restore v1.8.9 (nf_tables): TTL: option "--ttl-dec" cannot be used together with "--ttl-inc".',
  ],
  ["mangle", "-A PREROUTING -j TTL", "iptables-restore v1.8.9 (nf_tables): TTL: You must specify an action"],
];

describe("reversed NAT address ranges", () => {
  const nat = (family: 4 | 6, rule: string) =>
    parseIptables(`*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n${rule}\nCOMMIT\n`, {
      file: "n.rules",
      family,
    });

  it("loads as iptables loads it, with a warning that the kernel wraps it around", () => {
    const r = nat(4, "-A POSTROUTING -o eth0 -j SNAT --to-source 10.0.0.9-10.0.0.2:1000-2000");
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => `${w.line}:${w.col}: ${w.message}`)).toEqual([
      "4:44: --to-source: the address range 10.0.0.9-10.0.0.2 is reversed: the kernel wraps it around the address space and may pick any address from 10.0.0.9 to 255.255.255.255 or from 0.0.0.0 to 10.0.0.2",
    ]);
    const t = r.ruleset.tables.get("nat")!.chains.get("POSTROUTING")!.rules[0]!.target;
    expect(t?.kind === "SNAT" && [t.ranges[0]!.addrLo, t.ranges[0]!.addrHi]).toEqual([
      0x0a000009n,
      0x0a000002n,
    ]);
    // Printed back as written, as iptables-save prints it.
    expect(formatRuleset(r.ruleset)).toContain("--to-source 10.0.0.9-10.0.0.2:1000-2000");
  });

  it("IPv6, in brackets too", () => {
    const r = nat(6, "-A PREROUTING -p udp -j DNAT --to-destination [2001:db8::9-2001:db8::2]:500");
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([
      "--to-destination: the address range 2001:db8::9-2001:db8::2 is reversed: the kernel wraps it around the address space and may pick any address from 2001:db8::9 to ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff or from :: to 2001:db8::2",
    ]);
  });

  it("an ordered range or one address gives no warning", () => {
    expect(nat(4, "-A PREROUTING -p udp -j DNAT --to-destination 10.0.0.1-10.0.0.9").warnings).toEqual([]);
    expect(nat(4, "-A PREROUTING -p udp -j DNAT --to-destination 10.0.0.1").warnings).toEqual([]);
  });
});
