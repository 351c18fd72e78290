import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../src/model/ruleset.js";
import { formatRule, formatRuleset } from "../src/platforms/iptables/format.js";
import type { Match, Rule, Ruleset } from "../src/platforms/iptables/model.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";

/**
 * Every iptables file of the shared corpus (real dumps from Iptables_Semantics and the strongSwan
 * test bed, see ../shared/corpus/MANIFEST.md). Outside this repository, so skipped when absent.
 */
const DIR = new URL("../../shared/corpus/iptables/", import.meta.url).pathname;
const FILES = existsSync(DIR) ? readdirSync(DIR).sort() : [];

function rules(rs: Ruleset): Rule[] {
  return [...rs.tables.values()].flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules));
}

function load(f: string) {
  const text = readFileSync(DIR + f, "utf8");
  return { text, ...parseIptables(text, { file: f, maxErrors: 1000 }) };
}

/** Number of rules the file creates: -A/-I lines (none of these files uses -D/-F or address lists). */
function ruleLines(text: string): number {
  return text.split("\n").filter((l) => /^(\[\d+:\d+\]\s*)?-[AI]\s/.test(l.trimStart())).length;
}

const SKIP = new Set(["col", "argCol", "prov", "num"]);
function shape(x: unknown): string {
  return JSON.stringify(x, (k, v) => {
    if (SKIP.has(k)) return undefined;
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Map) return [...v.entries()];
    if (k === "unknown" && Array.isArray(v)) return v.map((u: { what: string }) => u.what).sort();
    return v;
  });
}

/** `iptables -L` listings cannot be parsed (they lose the match options): one precise error each. */
const LISTINGS = new Set(FILES.filter((f) => /iptables-L/.test(f)));

/**
 * Warnings each file must produce (a substring of each distinct message kind), and no others:
 * anything the parser keeps but cannot evaluate exactly is announced.
 */
const EXPECTED_WARNINGS: Record<string, string[]> = {
  "diekmann_linux-gda-pl_2003.iptables-save": [
    "abbreviated option '--mac' taken as '--mac-source'",
    'string: iptables 1.8 requires "--algo"',
  ],
  "diekmann_parser-test.iptables-save": [
    "unknown option '--something-else' after -m multiport",
    "unsupported: match icmp6 is IPv6-only",
  ],
  "diekmann_ugent.iptables-save": ["'-d ! value' is deprecated"],
  "diekmann_tum-net_2013-10-20.iptables-save": ["is a placeholder (redacted dump?)"],
  "diekmann_tum-net_2014-07-25.iptables-save": [
    "is a placeholder (redacted dump?)",
    "--dport 60000:29: min > max",
  ],
  "diekmann_tum-net_2015-05-13_modified.iptables-save": [
    "is a placeholder (redacted dump?)",
    "--dport 60000:29: min > max",
  ],
  "diekmann_tum-net_2015-05-15.iptables-save": ["is a placeholder (redacted dump?)"],
  "diekmann_tum-net_2015-09-03.iptables-save": ["is a placeholder (redacted dump?)"],
};
for (const f of FILES) {
  if (f.startsWith("strongswan-testing_") && /PH_IP_/.test(readFileSync(DIR + f, "utf8"))) {
    EXPECTED_WARNINGS[f] = ["unsupported: host name 'PH_IP_"];
  }
}

describe.skipIf(FILES.length === 0)("corpus: every iptables file", () => {
  it("has the files the manifest lists", () => {
    expect(FILES.length).toBe(49);
  });

  for (const f of FILES) {
    it(f, () => {
      const r = load(f);
      if (LISTINGS.has(f)) {
        expect(r.errors.map(formatDiagnostic)).toEqual([
          `${f}:1:1: unsupported format: this is \`iptables -L\` output, which loses match details; give \`iptables-save\` or \`iptables -S\` output`,
        ]);
        return;
      }
      expect(r.errors.map(formatDiagnostic)).toEqual([]);
      expect(rules(r.ruleset)).toHaveLength(ruleLines(r.text));
      // Warnings: exactly the expected kinds.
      const want = EXPECTED_WARNINGS[f] ?? [];
      for (const w of r.warnings)
        expect(
          want.some((s) => w.message.includes(s)),
          w.message,
        ).toBe(true);
      for (const s of want)
        expect(
          r.warnings.some((w) => w.message.includes(s)),
          s,
        ).toBe(true);
      // Every rule that is not exact says why; provenance points at its line.
      const lines = r.text.split("\n");
      for (const x of rules(r.ruleset)) {
        expect(lines[x.prov.line - 1]).toBe(x.prov.text);
        const opaque = x.matches.some((m) => m.kind === "opaque" || m.kind === "unknown-option");
        if (opaque) expect(x.unknown.length).toBeGreaterThan(0);
      }
    });
  }

  for (const f of FILES.filter((x) => !LISTINGS.has(x))) {
    it(`${f}: round-trips through the formatter`, () => {
      const r = load(f);
      const again = parseIptables(formatRuleset(r.ruleset, { counters: true }), {
        file: `${f}.out`,
        family: r.ruleset.family,
      });
      expect(again.errors.map(formatDiagnostic)).toEqual([]);
      expect(shape(again.ruleset.tables)).toEqual(shape(r.ruleset.tables));
    });
  }
});

describe.skipIf(FILES.length === 0)("corpus: what the rules mean", () => {
  const find = (rs: Ruleset, line: number) => rules(rs).filter((x) => x.prov.line === line);
  const kinds = (m: Match[]) => m.map((x) => x.kind);

  it("TUM: IKE and NAT-T opened for NEW with multiport, L2TP without an IPsec policy", () => {
    const r = load("diekmann_tum-net_2015-09-03.iptables-save");
    const lines = r.text.split("\n");
    const ike = lines.findIndex((l) =>
      l.includes("-d 131.159.20.68/32 -p udp -m state --state NEW -m multiport --dports 500,4500"),
    );
    expect(ike).toBeGreaterThan(0);
    const [x] = find(r.ruleset, ike + 1);
    expect(x!.dst?.spec).toMatchObject({ kind: "net", addr: 0x839f1444n, len: 32 });
    expect(x!.proto).toEqual({ num: 17, invert: false });
    expect(kinds(x!.matches)).toEqual(["state", "multiport"]);
    expect(x!.matches[1]).toMatchObject({
      dir: "dst",
      ranges: [
        { lo: 500, hi: 500 },
        { lo: 4500, hi: 4500 },
      ],
    });
    expect(x!.target?.kind).toBe("ACCEPT");
    const esp = rules(r.ruleset).filter((y) => y.proto?.num === 50);
    expect(esp.length).toBeGreaterThanOrEqual(5);
    const l2tp = rules(r.ruleset).filter((y) =>
      y.matches.some((m) => m.kind === "multiport" && m.ranges.some((p) => p.lo === 1701)),
    );
    expect(l2tp.length).toBeGreaterThan(0);
    for (const y of l2tp) expect(kinds(y.matches)).not.toContain("policy");
  });

  it("strongSwan: -m policy rules are typed, including options given before --dir", () => {
    const r = load("strongswan-testing_ha_active-passive_moon.iptables-restore");
    const pol = rules(r.ruleset).filter((x) => x.matches.some((m) => m.kind === "policy"));
    expect(pol.map((x) => formatRule(x, 4))).toEqual([
      "-A FORWARD -s PH_IP_CAROL -i eth0 -m policy --dir in --pol ipsec --proto esp -j ACCEPT",
      "-A FORWARD -s PH_IP_DAVE -i eth0 -m policy --dir in --pol ipsec --proto esp -j ACCEPT",
      "-A FORWARD -o eth0 -m policy --dir out --pol ipsec --proto esp -j ACCEPT",
    ]);
    const cluster = rules(r.ruleset).filter((x) => x.target?.kind === "opaque");
    expect(cluster.map((x) => x.target)).toMatchObject([
      { name: "CLUSTERIP", effect: "unknown" },
      { name: "CLUSTERIP", effect: "unknown" },
    ]);
    expect(r.ruleset.tables.get("filter")!.chains.get("INPUT")!.policy).toBe("DROP");
  });

  it("ip6tables files are IPv6, with ICMPv6 names resolved", () => {
    const r = load("diekmann_synology-ds414_2016-07.ip6tables-save");
    expect(r.ruleset.family).toBe(6);
    const icmp = rules(r.ruleset).flatMap((x) => x.matches.filter((m) => m.kind === "icmp6"));
    expect(icmp.length).toBeGreaterThan(0);
    const p = load("diekmann_parser-test.ip6tables-save");
    expect(rules(p.ruleset)[1]!.dst?.spec).toMatchObject({ addr: 0xffff7f000001n, len: 128 });
  });

  it("docker: nat table with DNAT/MASQUERADE, filter with conntrack", () => {
    const r = load("diekmann_docker-topos1.iptables-save");
    const nat = rules(r.ruleset).filter((x) => x.table === "nat");
    expect(nat.some((x) => x.target?.kind === "MASQUERADE")).toBe(true);
    expect(rules(r.ruleset).some((x) => x.matches.some((m) => m.kind === "conntrack"))).toBe(true);
  });
});

describe.skipIf(FILES.length === 0)("corpus: mutated lines never crash the parser", () => {
  const corpusLines = FILES.filter((f) => !LISTINGS.has(f)).flatMap((f) =>
    readFileSync(DIR + f, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("-A") || l.startsWith("["))
      .slice(0, 200),
  );
  const mutation = fc.oneof(
    fc.record({ op: fc.constant("drop" as const), at: fc.nat() }),
    fc.record({ op: fc.constant("dup" as const), at: fc.nat() }),
    fc.record({ op: fc.constant("swap" as const), at: fc.nat(), to: fc.nat() }),
    fc.record({
      op: fc.constant("insert" as const),
      at: fc.nat(),
      word: fc.constantFrom("!", "-j", "-m", '"', "--dport", "-s", "x", "", "-"),
    }),
    fc.record({ op: fc.constant("chars" as const), at: fc.nat(), s: fc.string({ maxLength: 3 }) }),
    fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  );

  type Mut =
    | { op: "drop" | "dup" | "cut"; at: number }
    | { op: "swap"; at: number; to: number }
    | { op: "insert"; at: number; word: string }
    | { op: "chars"; at: number; s: string };

  function mutate(line: string, ms: Mut[]): string {
    let words = line.split(" ");
    for (const m of ms) {
      const i = words.length === 0 ? 0 : m.at % words.length;
      if (m.op === "drop") words.splice(i, 1);
      else if (m.op === "dup") words.splice(i, 0, words[i] ?? "");
      else if (m.op === "swap") {
        const j = words.length === 0 ? 0 : m.to % words.length;
        [words[i], words[j]] = [words[j] ?? "", words[i] ?? ""];
      } else if (m.op === "insert") words.splice(i, 0, m.word);
      else if (m.op === "cut") words = words.slice(0, i);
      else if (m.op === "chars") {
        const s = words.join(" ");
        const k = s.length === 0 ? 0 : m.at % s.length;
        words = (s.slice(0, k) + m.s + s.slice(k)).split(" ");
      }
    }
    return words.join(" ");
  }

  test.prop([
    fc.array(fc.tuple(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 })), {
      minLength: 1,
      maxLength: 6,
    }),
  ])("parse is total and diagnostics are well-formed", (picks) => {
    const chains = new Set<string>();
    const body = picks.map(([n, ms]) => {
      const line = corpusLines[n % corpusLines.length]!;
      chains.add(line.replace(/^\[\d+:\d+\]\s*/, "").split(" ")[1] ?? "X");
      return mutate(line, ms);
    });
    const decl = [...chains].filter(
      (c) => !["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"].includes(c),
    );
    const text = ["*filter", ...decl.map((c) => `:${c} - [0:0]`), ...body, "COMMIT", ""].join("\n");
    const r = parseIptables(text, { file: "m.rules" });
    const n = text.split("\n").length;
    for (const d of [...r.errors, ...r.warnings]) {
      expect(d.line >= 0 && d.line <= n).toBe(true);
      expect(d.col).toBeGreaterThanOrEqual(0);
      expect(formatDiagnostic(d)).toMatch(/^m\.rules(:\d+:\d+)?: /);
    }
    // What parsed cleanly formats and re-parses to the same thing. Not promised for rules that
    // kept an option nobody owns: where it stood relative to -p decided its meaning.
    const stray = rules(r.ruleset).some((x) => x.matches.some((m) => m.kind === "unknown-option"));
    if (r.errors.length === 0 && !stray) {
      const again = parseIptables(formatRuleset(r.ruleset), { family: r.ruleset.family });
      expect(again.errors.map(formatDiagnostic)).toEqual([]);
      expect(shape(again.ruleset.tables)).toEqual(shape(r.ruleset.tables));
    }
  });
});
