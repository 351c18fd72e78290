import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { BUILTIN_CHAINS, type Rule, type TableName } from "../src/platforms/iptables/model.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";
import {
  CONNTRACK_FLAG,
  enablesConntrack,
  IPSET_FLAG,
  NAT_PORTS_FLAG,
  rewritesPorts,
  ruleFlags,
  someRule,
} from "../src/platforms/iptables/rule-store.js";
import { packedColumns, plainRuleset } from "./helpers/rulesets.js";

/**
 * The parser's fast paths (the direct rule builder and fastOptions) give exactly what the general
 * path (tokenizer, option binding, module builders) gives: the same rule set, errors and warnings.
 */
function same(text: string, file = "t.rules"): void {
  const slow = parseIptables(text, { file, maxErrors: 1000, noFastPath: true });
  const fast = parseIptables(text, { file, maxErrors: 1000 });
  // someRule reads packed rules' flags and builds only the rules they name: it answers as the built rules do.
  const built = [...slow.ruleset.tables.values()].flatMap((t) =>
    [...t.chains.values()].flatMap((c) => c.rules),
  );
  const hasSet = (r: Rule) => r.matches.some((m) => m.kind === "set");
  expect(
    someRule(parseIptables(text, { file, maxErrors: 1000 }).ruleset, CONNTRACK_FLAG, enablesConntrack),
  ).toBe(built.some(enablesConntrack));
  expect(someRule(parseIptables(text, { file, maxErrors: 1000 }).ruleset, IPSET_FLAG, hasSet)).toBe(
    built.some(hasSet),
  );
  expect(fast.errors).toEqual(slow.errors);
  expect(fast.warnings).toEqual(slow.warnings);
  const want = plainRuleset(slow.ruleset);
  // The columns of packed rules (packed lane or direct path) say what the rules built from their lines say.
  const cols = packedColumns(fast.ruleset);
  expect(cols.kept).toEqual(cols.built);
  expect(plainRuleset(fast.ruleset)).toEqual(want);
  // Packed rules built last to first, and every rule kept as an object: the same rules.
  expect(plainRuleset(parseIptables(text, { file, maxErrors: 1000 }).ruleset, true)).toEqual(want);
  // The flags packed rules keep say what the predicates say of the built rule.
  for (const t of slow.ruleset.tables.values())
    for (const c of t.chains.values())
      for (const r of c.rules) {
        const f = ruleFlags(r);
        expect([(f & CONNTRACK_FLAG) !== 0, (f & IPSET_FLAG) !== 0, (f & NAT_PORTS_FLAG) !== 0]).toEqual([
          enablesConntrack(r),
          r.matches.some((m) => m.kind === "set"),
          rewritesPorts(r),
        ]);
      }
  const kept = parseIptables(text, { file, maxErrors: 1000, keepRules: true });
  expect(kept.errors).toEqual(slow.errors);
  expect(plainRuleset(kept.ruleset)).toEqual(want);
  // The tokens read from the input's bytes (the CLI's way for ASCII files) are the same too.
  const bytes = Buffer.from(text, "latin1");
  if (bytes.toString("latin1") !== text) return; // a character above U+00FF: no byte view
  const fromBytes = parseIptables(text, { file, maxErrors: 1000, bytes });
  expect(fromBytes.errors).toEqual(slow.errors);
  expect(fromBytes.warnings).toEqual(slow.warnings);
  expect(plainRuleset(fromBytes.ruleset)).toEqual(want);
}

const FRAGMENTS = [
  "-s 10.0.0.0/8",
  "! -s 10.1.2.3",
  "-s 10.0.0.1/24",
  "-s 10.0.0.1,10.0.0.2",
  "-s host.example",
  "-s 010.0.0.1",
  "-d 192.0.2.1",
  "-d 192.0.2.0/255.255.255.0",
  "--source 10.9.0.0/16",
  "-p tcp",
  "-p udp",
  "! -p tcp",
  "-p all",
  "-p 6",
  "-p TCP",
  "-p sctp",
  "-i eth0",
  "-i eth+",
  "-i +",
  "! -o ppp0",
  "-o eth0",
  "-f",
  "-m tcp",
  "-m udp",
  "-m sctp",
  "--dport 22",
  "--dport 0",
  "--dport 080",
  "! --dport 500",
  "--sport 1024:65535",
  "--sport 65536",
  "--dport ssh",
  '--dport "22"',
  "--destination-port 23",
  "--syn",
  "--tcp-flags SYN,ACK SYN",
  "-m comment",
  '--comment "a b"',
  "--comment x",
  "--comment !",
  "-m multiport",
  "--dports 22,80",
  "-m conntrack",
  "--ctstate NEW,ESTABLISHED",
  "--ctstate FOO",
  "-m state",
  "--state NEW",
  "-m limit",
  "--limit 5/s",
  "-m mark",
  "--mark 0x1",
  "-m policy",
  "--dir in",
  "--pol ipsec",
  "-m icmp",
  "--icmp-type 8",
  "-m nosuchmodule",
  "--nosuchoption",
  "--dp 22",
  "-j ACCEPT",
  "-j DROP",
  "-j RETURN",
  "-j QUEUE",
  "-j REJECT",
  "--reject-with tcp-reset",
  "--reject-with icmp-port-unreachable",
  "-j MARK",
  "--set-xmark 0x4000/0x4000",
  "-j DNAT",
  "--to-destination 10.0.0.1:80",
  "-j LOG",
  "--log-prefix x",
  "-j C1",
  "-g C1",
  "-j LATER",
  "-j INPUT",
  "-j TCPMSS",
  "--clamp-mss-to-pmtu",
  "-j NOSUCHTARGET",
  "-j",
  "!",
  "-4",
  "-c 1 2",
  "--jump=ACCEPT",
];

function file(filter: string[], nat: string[]): string {
  return [
    "*filter",
    ":INPUT DROP [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":C1 - [0:0]",
    ...filter,
    ":LATER - [0:0]",
    "COMMIT",
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ":C1 - [0:0]",
    ...nat,
    "COMMIT",
    "",
  ].join("\n");
}

const CHAINS = ["INPUT", "OUTPUT", "FORWARD", "C1", "NOPE"];
const NAT_CHAINS = ["PREROUTING", "POSTROUTING", "OUTPUT", "C1"];

const line = (chains: string[]) =>
  fc
    .tuple(fc.constantFrom(...chains), fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 7 }))
    .map(([c, fs]) => `-A ${c} ${fs.join(" ")}`.trimEnd());

/** Lines of the usual shape (mostly valid), so the direct path takes most of them. */
const opt = (xs: string[]) => fc.option(fc.constantFrom(...xs), { nil: "" });
const usual = (chains: string[]) =>
  fc
    .tuple(
      fc.constantFrom(...chains),
      opt(["-s 10.0.0.0/8", "! -s 192.0.2.7", "-s 10.0.0.1/24", "-s 198.51.100.0/24"]),
      opt(["-d 10.96.0.1/32", "! -d 192.0.2.0/24"]),
      opt(["-i eth0", "! -i lo", "-o eth1", "-i +"]),
      opt(["-p tcp", "-p udp", "! -p udp", "-p esp", "-p icmp"]),
      fc.array(
        fc.constantFrom(
          "-m tcp --dport 22",
          "-m tcp ! --dport 443",
          "-m tcp --dport 443",
          "-m udp --dport 4500",
          "-m tcp --sport 1024 --dport 80",
          "-m tcp",
          "-m udp --dport 500",
          "-m udp --sport 500 ! --dport 4500",
          '-m comment --comment "ns/svc:http -> pod"',
          "-m comment --comment x",
          "-m multiport --dports 500,4500",
          "-m conntrack --ctstate RELATED,ESTABLISHED",
          "-m state --state NEW",
          "-m policy --dir in --pol ipsec",
          "-m mark --mark 0x1/0xff",
          "-m icmp --icmp-type 8",
          "-m limit --limit 5/s",
        ),
        { maxLength: 3 },
      ),
      opt([
        "-j ACCEPT",
        "-j DROP",
        "-j RETURN",
        "-j REJECT --reject-with icmp-port-unreachable",
        "-j REJECT --reject-with tcp-reset",
        "-j MARK --set-xmark 0x4000/0x4000",
        "-j DNAT --to-destination 10.0.0.1:80",
        "-j LOG --log-prefix x",
        "-j C1",
        "-g C1",
      ]),
    )
    .map(([c, ...rest]) =>
      `-A ${c} ${rest
        .flat()
        .filter((x) => x !== "")
        .join(" ")}`.trimEnd(),
    );

/** Words and quotings the tokenizer must split exactly as the general tokenizer: blanks, quotes, escapes. */
const WORDS = [
  "-s",
  "10.1.2.3",
  "-p",
  "udp",
  "--dport",
  "500",
  "-m",
  "comment",
  "--comment",
  '"a b"',
  '"a\\"b"',
  '""',
  'x"y',
  '"a"b',
  '"unterminated',
  "-j",
  "ACCEPT",
  "C1",
];
const BLANKS = [" ", "  ", "\t", " \t ", "\r"];
/** Spaces only (what iptables-save writes: the indexOf path) or any blanks (the character loop). */
const blanks = (n: number) =>
  fc.oneof(
    fc.array(fc.constantFrom(" ", "  ", "   "), { minLength: n, maxLength: n }),
    fc.array(fc.constantFrom(...BLANKS), { minLength: n, maxLength: n }),
  );
const ARGS = ['"a b"', '"a\\"b"', '""', 'x"y', '"a"b', '"x', "plain", 'a\\"b', '"-j"'];
/** A usual rule shape with any blanks between the words and any quoting in the argument slots. */
const skeleton = (chains: string[]) =>
  fc
    .tuple(
      fc.constantFrom(...chains),
      blanks(9),
      fc.constantFrom(...ARGS),
      fc.constantFrom("ACCEPT", '"ACCEPT"', "C1"),
    )
    .map(
      ([c, b, arg, target]) =>
        `-A${b[0]}${c}${b[1]}-p${b[2]}udp${b[3]}-m${b[4]}comment${b[5]}--comment${b[6]}${arg}${b[7]}-j${b[8]}${target}`,
    );
const spaced = (chains: string[]) =>
  fc
    .tuple(
      fc.constantFrom(...chains),
      fc.array(fc.constantFrom(...WORDS), { maxLength: 9 }),
      blanks(10),
      fc.constantFrom("", " ", "\t", "\r", "  "),
    )
    .map(([c, ws, b, tail]) => `-A ${c}${ws.map((w, k) => b[k] + w).join("")}${tail}`);

describe("fast paths = general path", () => {
  test.prop([fc.array(spaced(CHAINS), { maxLength: 10 })], { numRuns: 400 })(
    "lines with any blanks and quotings tokenize alike",
    (filter) => {
      same(file(filter, []));
    },
  );
  test.prop([fc.array(skeleton(CHAINS), { maxLength: 10 })], { numRuns: 300 })(
    "arguments with any quoting between any blanks tokenize alike",
    (filter) => {
      same(file(filter, []));
    },
  );

  test.prop([fc.array(usual(CHAINS), { maxLength: 12 }), fc.array(usual(NAT_CHAINS), { maxLength: 8 })], {
    numRuns: 400,
  })("usual -A lines in filter and nat", (filter, nat) => {
    same(file(filter, nat));
  });

  test.prop([fc.array(line(CHAINS), { maxLength: 12 }), fc.array(line(NAT_CHAINS), { maxLength: 8 })], {
    numRuns: 400,
  })("random -A lines in filter and nat", (filter, nat) => {
    same(file(filter, nat));
  });

  // The packed lane reads a repeated target part once per table, chain hook and protocol (TargetMemo).
  const repeated = (chains: string[]) =>
    fc
      .tuple(
        fc.constantFrom(...chains),
        fc.constantFrom("", "-p tcp", "-p udp", "! -p tcp", "-p tcp -m tcp --dport 80"),
        fc.constantFrom(
          "-j REJECT --reject-with tcp-reset",
          "-j REJECT --reject-with icmp-port-unreachable",
          "-j DNAT --to-destination 10.0.0.1:80",
          "-j DNAT --to-destination 10.0.0.1",
          "-j SNAT --to-source 10.0.0.2",
          "-j MASQUERADE --to-ports 1024-2048",
          "-j MARK --set-xmark 0x4000/0x4000",
          "-j LOG --log-prefix x",
        ),
      )
      .map((parts) => `-A ${parts.filter((x) => x !== "").join(" ")}`);
  test.prop(
    [fc.array(repeated(CHAINS), { maxLength: 14 }), fc.array(repeated(NAT_CHAINS), { maxLength: 14 })],
    {
      numRuns: 300,
    },
  )("target parts repeated in other chains and with other protocols", (filter, nat) => {
    same(file(filter, [...nat, "-A PREROUTING -j C1", "-A POSTROUTING -j C1"]));
  });

  it("the kube-proxy-like shapes of the benchmark", () => {
    same(
      [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-SVC-1 - [0:0]",
        ":KUBE-SEP-1 - [0:0]",
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "ns/svc0:http cluster IP" -m tcp --dport 443 -j KUBE-SVC-1',
        '-A KUBE-SVC-1 -m comment --comment "ns/svc0:http -> pod" -j KUBE-SEP-1',
        '-A KUBE-SEP-1 -s 10.244.0.0/32 -m comment --comment "ns/svc0:http" -j MARK --set-xmark 0x4000/0x4000',
        '-A KUBE-SEP-1 -p tcp -m comment --comment "ns/svc0:http" -m tcp -j DNAT --to-destination 10.244.0.0:443',
        "COMMIT",
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":HOSTFW - [0:0]",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -j HOSTFW",
        "-A HOSTFW -s 1.2.3.0/24 -p udp -m udp --dport 500 -j ACCEPT",
        "-A HOSTFW -s 1.2.4.0/24 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable",
        "-A HOSTFW -s 1.2.5.0/24 -p tcp -m tcp --dport 22 -j DROP",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  // Rules appended by the direct path are packed (RuleStore) until a command edits the table: then
  // they are built from their lines, and the edit must see what it would have seen.
  test.prop(
    [
      fc.array(
        fc.constantFrom(
          "-A INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j ACCEPT",
          "-A INPUT -s 10.0.0.0/8 -d 192.0.2.1 -p tcp -m tcp --dport 22 -j DROP",
          '-A C1 -p tcp -m comment --comment "ssh in" -m tcp --dport 22 -j DROP',
          "-A C1 -m conntrack --ctstate NEW -j LOG --log-prefix x",
          "-A INPUT -j C1",
          "-A C1 -j C2",
          "-A C2 -j C1",
          "-A INPUT -g C2",
          "-A C2 -m policy --dir out --pol ipsec -j ACCEPT",
          "-I INPUT -p esp -j ACCEPT",
          "-I C1 2 -j RETURN",
          "-D INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j ACCEPT",
          "-D C1 1",
          "-R INPUT 1 -j DROP",
          "-C INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j ACCEPT",
          "-C C1 -j C2",
          "-E C2 C3",
          "-A C3 -j ACCEPT",
          "-X C2",
          "-F C1",
          "-F",
          "-N C4",
          "-A C4 -j C1",
          "-Z",
          ":C1 - [0:0]",
          "-A INPUT -s 10.0.0.2,10.0.0.3 -j C1",
        ),
        { maxLength: 14 },
      ),
    ],
    { numRuns: 400 },
  )("edits after packed appends", (lines) => {
    same(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":C1 - [0:0]",
        ":C2 - [0:0]",
      ]
        .concat(lines, ["COMMIT", ""])
        .join("\n"),
    );
  });

  // The shared corpus of real dumps (../shared/corpus), when present.
  const DIR = new URL("../../shared/corpus/iptables/", import.meta.url).pathname;
  const FILES = existsSync(DIR) ? readdirSync(DIR).sort() : [];
  it.skipIf(FILES.length === 0)("every file of the shared corpus", () => {
    for (const f of FILES) same(readFileSync(DIR + f, "utf8"), f);
  });
});

/**
 * The end-of-table check of append-only tables (jumps collected while parsing, hook-restricted
 * rules checked by mask, only the failing ones sorted) reports what the full pass over every
 * rule reports. An empty chain flushed at the end of each table forces the full pass.
 */
describe("end-of-table checks: append-only = full pass", () => {
  // Each table: its built-in chains (policy ACCEPT), user chains, the rules, then the flush.
  const table = (name: TableName, user: string[], rules: string[], full: boolean): string[] => [
    `*${name}`,
    ...BUILTIN_CHAINS[name].map((c) => `:${c} ACCEPT [0:0]`),
    ...[...user, "ZZ"].map((c) => `:${c} - [0:0]`),
    ...rules,
    full ? "-F ZZ" : "# (same line numbers)",
    "COMMIT",
  ];
  const hookFile = (filter: string[], nat: string[], full: boolean): string =>
    [...table("filter", ["C1", "C2"], filter, full), ...table("nat", ["N1", "N2"], nat, full), ""].join("\n");
  const rule = (chains: string[], targets: string[]) =>
    fc
      .tuple(
        fc.constantFrom(...chains),
        opt([
          "-m policy --dir in --pol ipsec",
          "-m policy --dir out --pol ipsec",
          "-m addrtype --dst-type LOCAL --limit-iface-in",
          "-m addrtype --src-type LOCAL --limit-iface-out",
          "-m mac --mac-source 00:11:22:33:44:55",
        ]),
        opt(targets),
      )
      .map(([c, m, t]) => `-A ${c} ${m} ${t}`.replace(/ +/g, " ").trimEnd());
  test.prop(
    [
      fc.array(rule(["INPUT", "OUTPUT", "FORWARD", "C1", "C2"], ["-j ACCEPT", "-j C1", "-j C2", "-g C2"]), {
        maxLength: 10,
      }),
      fc.array(
        rule(
          ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING", "N1", "N2"],
          [
            "-j N1",
            "-j N2",
            "-j DNAT --to-destination 10.0.0.1",
            "-j SNAT --to-source 10.0.0.2",
            "-j MASQUERADE",
          ],
        ),
        { maxLength: 10 },
      ),
    ],
    { numRuns: 500 },
  )("the same errors, in the same order", (filter, nat) => {
    const fast = parseIptables(hookFile(filter, nat, false), { file: "t.rules", maxErrors: 1000 });
    const full = parseIptables(hookFile(filter, nat, true), { file: "t.rules", maxErrors: 1000 });
    expect(fast.errors.map((e) => `${e.line}:${e.col}: ${e.message}`)).toEqual(
      full.errors.map((e) => `${e.line}:${e.col}: ${e.message}`),
    );
  });
});
