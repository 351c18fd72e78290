import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "tc-ipt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** The command fails as a usage error (exit 2) saying `msg`. */
const refused = async (args: string[], msg: string) => {
  const r = await cli(args);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(msg);
};
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

// The Linux form of seed 001's trap: replies and ESP accepted, no NEW rule for IKE.
const trap = file(
  "trap.rules",
  `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i eth0 -p esp -j ACCEPT
COMMIT
`,
);
const scenario = [
  "--vpn",
  "site-to-site",
  "--ike",
  "1",
  "--peer",
  "203.0.113.7",
  "--local",
  "198.51.100.1",
  "--wan",
  "eth0",
];

describe("tunnelcheck audit --iptables", () => {
  it("finds ike-reply-only on the Linux trap, pointing at the ESTABLISHED rule, with an iptables fix", async () => {
    const r = await cli(["audit", "--iptables", trap, ...scenario, "--format", "json"]);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.findings.map((f: { id: string }) => f.id)).toEqual(["ike-reply-only"]);
    expect(j.findings[0].rules[0]).toMatchObject({ line: 6 });
    expect(j.findings[0].message).toMatch(/120 s/);
    expect(j.findings[0].fix.target).toBe("iptables");
    expect(j.findings[0].fix.text).toMatch(/--dport 500/);
  });

  it("is clean once the generated rules are added in front", async () => {
    const rules = await cli(["rules", ...scenario, "--target", "iptables-restore"]);
    // Merge: the trap's filter table plus the generated chain and jump.
    const merged = file(
      "merged.rules",
      rules.stdout.replace(
        /^\*filter\n/m,
        "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n",
      ),
    );
    const r = await cli(["audit", "--iptables", merged, ...scenario, "--format", "json"]);
    expect(JSON.parse(r.stdout).findings).toEqual([]);
    expect(r.code).toBe(0);
  });

  it("needs the scenario and reports parse errors with file:line:col", async () => {
    expect((await cli(["audit", "--iptables", trap])).code).toBe(2);
    const bad = file(
      "bad.rules",
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n",
    );
    const r = await cli(["audit", "--iptables", bad, ...scenario]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.rules:3:\d+: /);
  });

  it("quotes a binary file's first bytes escaped, never raw (a pcap given as a ruleset)", async () => {
    const p = join(dir, "capture.pcap");
    writeFileSync(p, Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]));
    const r = await cli(["audit", "--iptables", p, ...scenario]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("\\x1b[2J");
    expect([...r.stderr].filter((c) => c < " " && c !== "\n")).toEqual([]);
  });
});

describe("tunnelcheck trace --iptables", () => {
  it("prints the parser's warnings on stderr, keeping the JSON on stdout clean", async () => {
    const rules = file(
      "warn.rules",
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp -m comment --comment "open -j ACCEPT\nCOMMIT\n',
    );
    const r = await cli(["trace", "--iptables", rules, "--src", "192.0.2.1", "--dst", "198.51.100.1"]);
    expect(r.stderr).toMatch(/warn\.rules:3:\d+: .*unterminated quote/);
    const j = await cli([
      "trace",
      "--iptables",
      rules,
      "--src",
      "192.0.2.1",
      "--dst",
      "198.51.100.1",
      "--format",
      "json",
    ]);
    expect(JSON.parse(j.stdout).verdict).toBe("drop");
    expect(j.stderr).toContain("unterminated quote");
  });

  it("prints the JSON contract for one packet", async () => {
    const r = await cli([
      "trace",
      "--iptables",
      trap,
      "--src",
      "203.0.113.7",
      "--dst",
      "198.51.100.1",
      "--proto",
      "udp",
      "--sport",
      "500",
      "--dport",
      "500",
      "--iif",
      "eth0",
      "--state",
      "new",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: "drop", rule: null });
    const est = await cli([
      "trace",
      "--iptables",
      trap,
      "--src",
      "203.0.113.7",
      "--dst",
      "198.51.100.1",
      "--proto",
      "udp",
      "--dport",
      "500",
      "--iif",
      "eth0",
      "--state",
      "established",
      "--format",
      "json",
    ]);
    expect(JSON.parse(est.stdout)).toMatchObject({ verdict: "accept", rule: { line: 6 } });
  });

  it("traces a JSONL batch in order, one result per line, with per-line errors", async () => {
    const packets = file(
      "p.jsonl",
      [
        '{"src":"203.0.113.7","dst":"198.51.100.1","proto":"udp","sport":500,"dport":500,"iif":"eth0","state":"established"}',
        '{"src":"203.0.113.7","dst":"198.51.100.1","proto":50,"iif":"eth0","state":"new"}',
        '{"src":"nope","proto":"udp"}',
      ].join("\n"),
    );
    const r = await cli(["trace", "--iptables", trap, "--packets", packets, "--format", "jsonl"]);
    // Every line answered in order; a line that is not a packet makes it an input error (exit 2).
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/1 of 3 lines of .*p\.jsonl could not be traced/);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.verdict ?? "error")).toEqual(["accept", "accept", "error"]);
    expect(lines[2].line).toBe(3);
    const good = file("good.jsonl", '{"src":"203.0.113.7","dst":"198.51.100.1","proto":50,"iif":"eth0"}\n');
    expect((await cli(["trace", "--iptables", trap, "--packets", good, "--format", "jsonl"])).code).toBe(0);
  });

  it("answers symbolically for --src any", async () => {
    const r = await cli([
      "trace",
      "--iptables",
      trap,
      "--proto",
      "udp",
      "--dport",
      "500",
      "--state",
      "new",
      "--src",
      "any",
      "--iif",
      "eth0",
      "--local",
      "198.51.100.1",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.parts).toHaveLength(1);
    expect(j.parts[0]).toMatchObject({ verdict: "drop" });
  });
});

describe("tunnelcheck trace --iptables: ICMP type and TTL / hop limit", () => {
  const nd = file(
    "nd.rules",
    [
      "*filter",
      ":INPUT DROP [0:0]",
      "-A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT",
      "COMMIT",
      "",
    ].join("\n"),
  );
  const trace = (...extra: string[]) =>
    cli([
      "trace",
      "--iptables",
      nd,
      ..."--local 2001:db8::1 --iif eth0 --proto icmpv6 --format json".split(" "),
      ...extra,
    ]);

  it("decides neighbour discovery exactly once the type and hop limit are given (unknown without them)", async () => {
    expect(JSON.parse((await trace("--src", "fe80::1")).stdout).verdict).toBe("unknown");
    expect(
      JSON.parse((await trace("--src", "fe80::1", "--icmp-type", "135", "--ttl", "255")).stdout),
    ).toMatchObject({
      verdict: "accept",
      rule: { line: 3 },
    });
    const sym = JSON.parse((await trace("--src", "any", "--icmp-type", "135", "--ttl", "64")).stdout);
    expect(sym.parts.map((p: { verdict: string }) => p.verdict)).toEqual(["drop"]);
  });

  it("refuses an ICMP type for another protocol and bad values (exit 2)", async () => {
    await refused(
      [
        "trace",
        "--iptables",
        nd,
        ..."--local 2001:db8::1 --proto udp --dport 500 --icmp-type 135".split(" "),
      ],
      "an ICMP type is for icmpv6 (58) only",
    );
    expect((await trace("--src", "fe80::1", "--icmp-type", "300")).code).toBe(2);
    expect((await trace("--src", "fe80::1", "--ttl", "x")).code).toBe(2);
  });
});

describe("tunnelcheck trace --iptables: fragments", () => {
  // A stateless IPv6 filter: IKE by port only. Without conntrack nothing reassembles before INPUT
  // (test/kernel/frag.test.ts), so a later fragment of an IKE_AUTH has no port to match.
  const rules = [
    "# Generated by ip6tables-save v1.8.9",
    "*filter",
    ":INPUT DROP [0:0]",
    "-A INPUT -m frag --fragid 7 --fragmore -j DROP",
    "-A INPUT -p udp -m udp --dport 500 -j ACCEPT",
    "COMMIT",
    "",
  ];
  const stateless = file("frag6.rules", rules.join("\n"));
  const withConntrack = file(
    "frag6-ct.rules",
    [...rules.slice(0, 3), "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT", ...rules.slice(3)].join(
      "\n",
    ),
  );
  const trace = (f: string, ...extra: string[]) =>
    cli([
      "trace",
      "--iptables",
      f,
      ..."--src 2001:db8::7 --dst 2001:db8:1::1 --proto udp --sport 500 --dport 500 --format json".split(" "),
      ...extra,
    ]);
  const verdict = async (f: string, ...extra: string[]) => JSON.parse((await trace(f, ...extra)).stdout);

  it("a later fragment has no port to match unless conntrack reassembles it first", async () => {
    expect(await verdict(stateless, "--fragment", "first", "--frag-id", "8")).toMatchObject({
      verdict: "accept",
      rule: { line: 5 },
      packet: { fragment: "first", fragId: 8 },
    });
    expect(await verdict(stateless, "--fragment", "last", "--frag-id", "8")).toMatchObject({
      verdict: "drop",
      rule: null,
    });
    const ct = await verdict(withConntrack, "--fragment", "last", "--frag-id", "8");
    expect(ct).toMatchObject({ verdict: "accept", rule: { line: 6 } });
    expect(ct.notes.join("\n")).toMatch(/reassembled by nf_defrag/);
  });

  it("-m frag decides by the identification and the M flag; unknown without the identification", async () => {
    expect(await verdict(stateless, "--fragment", "first", "--frag-id", "7")).toMatchObject({
      verdict: "drop",
      rule: { line: 4 },
    });
    expect(await verdict(stateless, "--fragment", "last", "--frag-id", "7")).toMatchObject({
      verdict: "drop",
      rule: null,
    });
    const first = await verdict(stateless, "--fragment", "first");
    expect(first.verdict).toBe("unknown");
    expect(first.reason).toMatch(/identification is not known/);
  });

  it("symbolically and in a batch", async () => {
    const sym = JSON.parse(
      (
        await cli([
          "trace",
          "--iptables",
          stateless,
          ..."--src any --local 2001:db8:1::1 --proto udp --dport 500 --fragment later --format json".split(
            " ",
          ),
        ])
      ).stdout,
    );
    expect(sym.query).toMatch(/a later fragment/);
    expect(sym.parts.map((p: { verdict: string }) => p.verdict)).toEqual(["drop"]);
    const jsonl = file(
      "frag.jsonl",
      [{ fragment: "first", fragId: 7 }, { fragment: "last", fragId: 9 }, { fragment: "middle" }]
        .map((f) =>
          JSON.stringify({ src: "2001:db8::7", dst: "2001:db8:1::1", proto: "udp", dport: 500, ...f }),
        )
        .join("\n"),
    );
    const b = await cli(["trace", "--iptables", withConntrack, "--packets", jsonl, "--format", "jsonl"]);
    const out = b.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    // With conntrack every fragment is reassembled first: -m frag no longer sees a Fragment header.
    expect(out.map((o) => o.verdict ?? o.error)).toEqual([
      "accept",
      "accept",
      'fragment "middle" is not one of first, later, last',
    ]);
    expect(b.code).toBe(2);
  });

  it("refuses what does not describe a fragment (exit 2)", async () => {
    for (const [extra, msg] of [
      [["--frag-id", "7"], "--frag-id goes with --fragment"],
      [["--fragment", "middle"], "invalid --fragment 'middle'"],
      [["--fragment", "last", "--frag-id", "4294967296"], "invalid --frag-id"],
    ] as const) {
      const r = await trace(stateless, ...extra);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(msg);
    }
    const v4 = "--src 203.0.113.7 --dst 198.51.100.1 --proto udp --dport 500 --fragment later --frag-id 1";
    await refused(["trace", "--iptables", trap, ...v4.split(" ")], "IPv6 only");
    // Without the datagram's port, reassembly would leave the answer to a guess.
    const noPort = "--src 2001:db8::7 --dst 2001:db8:1::1 --proto udp --fragment later";
    await refused(
      ["trace", "--iptables", stateless, ...noPort.split(" ")],
      "a fragment needs its datagram's dport",
    );
  });
});
