import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  type ConfigNode,
  type ConfigTree,
  type EditNode,
  FortiosParseError,
  formatDiagnostic,
  type Node,
  type ParseResult,
  parseFortios,
  parseFortiosStrict,
  type SetNode,
  sectionEntries,
} from "../src/platforms/fortios/parse.js";
import { REDACTED } from "../src/platforms/fortios/redact.js";
import { collectScopes } from "../src/platforms/fortios/resolve.js";

const CORPUS = "/work/shared/corpus/fortios";

const lines = (...l: string[]) => `${l.join("\n")}\n`;
const cfg = (n: Node | undefined): ConfigNode => {
  if (n?.kind !== "config") throw new Error(`expected a config node, got ${n?.kind}`);
  return n;
};
const edit = (n: Node | undefined): EditNode => {
  if (n?.kind !== "edit") throw new Error(`expected an edit node, got ${n?.kind}`);
  return n;
};
const set = (n: Node | undefined): SetNode => {
  if (n?.kind !== "set") throw new Error(`expected a set node, got ${n?.kind}`);
  return n;
};
const messages = (r: ParseResult) => r.diagnostics.map(formatDiagnostic);

describe("structure", () => {
  const text = lines(
    "#config-version=FGT60F-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin",
    "#conf_file_ver=1234",
    "config system global",
    '    set hostname "fw-1"',
    "end",
    "config firewall local-in-policy",
    "    edit 1",
    '        set intf "port1"',
    '        set srcaddr "office1" "office2"',
    "        set action accept",
    "    next",
    "end",
  );
  const r = parseFortios(text, { file: "a.conf" });

  it("builds config / edit / set nodes with multi-valued sets", () => {
    expect(r.ok).toBe(true);
    expect(r.diagnostics).toEqual([]);
    const [g, lip] = r.tree.children.map(cfg);
    expect(g!.path).toEqual(["system", "global"]);
    expect(set(g!.children[0]).values).toEqual(["fw-1"]);
    expect(lip!.path).toEqual(["firewall", "local-in-policy"]);
    const e = edit(lip!.children[0]);
    expect(e.name).toBe("1");
    expect(e.children.map((c) => set(c).key)).toEqual(["intf", "srcaddr", "action"]);
    expect(set(e.children[1]).values).toEqual(["office1", "office2"]);
  });

  it("keeps provenance on every node: file, line, col and the original text", () => {
    const lip = cfg(r.tree.children[1]);
    const e = edit(lip.children[0]);
    expect(lip.loc).toEqual({ file: "a.conf", line: 6, col: 1, text: "config firewall local-in-policy" });
    expect(e.loc).toEqual({ file: "a.conf", line: 7, col: 5, text: "edit 1" });
    expect(set(e.children[1]).loc).toEqual({
      file: "a.conf",
      line: 9,
      col: 9,
      text: 'set srcaddr "office1" "office2"',
    });
    expect(e.close).toEqual({ line: 11, col: 5 });
    expect(lip.close).toEqual({ line: 12, col: 1 });
  });

  it("reads the backup header", () => {
    expect(r.tree.header.map((h) => [h.key, h.value])).toEqual([
      ["config-version", "FGT60F-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin"],
      ["conf_file_ver", "1234"],
    ]);
  });

  it("ignores comments anywhere and treats only the leading ones as header", () => {
    const t = parseFortios(lines("config a", "  # set x 1", "  #k=v", "  set y 2", "end", "#late=1"));
    expect(t.ok).toBe(true);
    expect(t.tree.header).toEqual([]);
    expect(cfg(t.tree.children[0]).children.map((c) => set(c).key)).toEqual(["y"]);
  });

  it("lets 'end' close an open edit together with its table, as the CLI does", () => {
    const t = parseFortios(
      lines("config system zone", "  edit z1", "    set interface p1", "  end", "config b", "end"),
    );
    expect(t.ok).toBe(true);
    expect(t.tree.children.map((c) => cfg(c).path.join(" "))).toEqual(["system zone", "b"]);
  });

  it("parses field verbs and table commands", () => {
    const t = parseFortios(
      lines(
        "config firewall addrgrp",
        "  edit g",
        "    set member a b",
        "    append member c",
        "    select member d",
        "    unselect member d",
        "    unset comment",
        "    clear member",
        "  next",
        '  rename g to "new"_g',
        "  move 5 before 1",
        "  clone 1 to 2",
        "  delete 2",
        "  purge",
        "end",
      ),
    );
    expect(t.ok).toBe(true);
    const c = cfg(t.tree.children[0]);
    expect(
      edit(c.children[0]).children.map((n) => `${set(n).verb} ${set(n).key} ${set(n).values.join(",")}`),
    ).toEqual([
      "set member a,b",
      "append member c",
      "select member d",
      "unselect member d",
      "unset comment ",
      "clear member ",
    ]);
    expect(
      c.children.slice(1).map((n) => (n.kind === "command" ? [n.verb, ...n.args].join(" ") : n.kind)),
    ).toEqual(["rename g to new_g", "move 5 before 1", "clone 1 to 2", "delete 2", "purge"]);
  });

  it("keeps sections it does not model in the tree", () => {
    const t = parseFortios(lines("config wireless-controller global", "  set name ''", "end"));
    expect(t.ok).toBe(true);
    expect(set(cfg(t.tree.children[0]).children[0]).values).toEqual([""]);
  });

  it("parses a multi-VDOM backup and splits it into scopes", () => {
    const t = parseFortios(
      lines(
        "#config-version=FGVM64-7.4.1-FW-build2463-230830:opmode=0:vdom=1:user=admin",
        "config vdom",
        "edit root",
        "next",
        "edit cust1",
        "next",
        "end",
        "config global",
        "config system interface",
        "edit port2",
        "set vdom cust1",
        "next",
        "end",
        "end",
        "config vdom",
        "edit cust1",
        "config firewall address",
        "edit a1",
        "set subnet 10.0.0.0 255.0.0.0",
        "next",
        "end",
        "end",
      ),
    );
    expect(t.ok).toBe(true);
    const s = collectScopes(t.tree);
    expect(s.multiVdom).toBe(true);
    expect([...s.vdoms.keys()]).toEqual(["root", "cust1"]);
    expect([...s.global.keys()]).toEqual(["system interface"]);
    expect([...s.vdoms.get("cust1")!.keys()]).toEqual(["firewall address"]);
    expect(s.vdoms.get("root")!.size).toBe(0);
  });
});

describe("lexical rules", () => {
  const values = (text: string): string[] => {
    const r = parseFortios(`config x\n set k ${text}\nend\n`);
    expect(messages(r)).toEqual([]);
    return set(cfg(r.tree.children[0]).children[0]).values;
  };

  it("joins adjacent quoted and unquoted pieces into one word", () => {
    expect(values(`"new"_group1 a"b c"d 'x y'z`)).toEqual(["new_group1", "ab cd", "x yz"]);
  });

  it("reads escapes in double quotes, none in single quotes, and escapes any character unquoted", () => {
    expect(values(String.raw`"a\"b" "c\\d" "e\'f" "g\nh"`)).toEqual(['a"b', "c\\d", "e'f", "g\\nh"]);
    expect(values(String.raw`'a\"b' 'c\\d'`)).toEqual(['a\\"b', "c\\\\d"]);
    expect(values(String.raw`a\ b \"q\" x\y`)).toEqual(["a b", '"q"', "xy"]);
    expect(values(`"" ''`)).toEqual(["", ""]);
  });

  it("continues a line after a backslash-newline, inside and between words", () => {
    expect(values("one \\\n two\\\nthree")).toEqual(["one", "twothree"]);
  });

  it("reads multi-line quoted values and keeps counting lines after them", () => {
    const r = parseFortios(
      lines("config a", '  set buffer "line1', "line2", '  line3"', "  set next-field 1", "end"),
    );
    expect(r.ok).toBe(true);
    const c = cfg(r.tree.children[0]);
    expect(set(c.children[0]).values).toEqual(["line1\nline2\n  line3"]);
    expect(set(c.children[0]).loc.text).toBe('set buffer "line1 …');
    expect(set(c.children[1]).loc.line).toBe(5);
    expect(c.close).toEqual({ line: 6, col: 1 });
  });

  it("reproduces Batfish's replacemsg quoting case from the corpus exactly", () => {
    const text = readFileSync(join(CORPUS, "batfish_testconfig_fortios_replacemsg.conf"), "utf8");
    const r = parseFortios(text);
    expect(r.ok).toBe(true);
    const buffer = set(cfg(r.tree.children[1]).children[0]);
    // The file's own comment: `"npre"''\\nabc\\\" "` NEWLINE `lastline`.
    expect(buffer.values).toEqual([`"npre"''\\\\nabc\\\\\\" "\nlastline`]);
  });

  it("gives the same tree for CRLF and LF files, including multi-line values", () => {
    const lf = lines(
      "#config-version=X-7.0.0-FW-build1-1:opmode=0",
      "config a",
      '  edit "e 1"',
      '    set v "multi',
      'line" x',
      "    set w y \\",
      "      z",
      "  next",
      "end",
    );
    const a = parseFortios(lf, { file: "f" });
    const b = parseFortios(lf.replace(/\n/g, "\r\n"), { file: "f" });
    expect(a.ok).toBe(true);
    expect(b.diagnostics).toEqual([]);
    expect(JSON.stringify(b.tree)).toBe(JSON.stringify(a.tree));
  });

  it("accepts a byte-order mark, tabs and a last line without newline", () => {
    const r = parseFortios("\ufeffconfig a\n\tset b c\nend");
    expect(r.ok).toBe(true);
    expect(cfg(r.tree.children[0]).loc.col).toBe(1);
  });
});

describe("errors", () => {
  it("reports file:line:col 'expected …' errors, collects all of them and keeps parsing", () => {
    const r = parseFortios(
      lines(
        "Content-Type: text/plain", // 1
        "config firewall address", // 2
        "  edit a", // 3
        "    set subnet 10.0.0.0 255.0.0.0", // 4
        "  edit b", // 5: missing next
        "    set", // 6
        "    unset comment extra", // 7
        "  next", // 8
        "  next", // 9
        "  rename b c", // 10
        "end", // 11
        "edit x", // 12
        "set y z", // 13
        "config", // 14
        "config firewall policy", // 15
      ),
      { file: "bad.conf" },
    );
    expect(r.ok).toBe(false);
    expect(messages(r)).toEqual([
      "bad.conf:1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found 'Content-Type:'",
      "bad.conf:5:3: expected 'next' before 'edit': entry 'edit a' opened at 3:3 is still open",
      "bad.conf:6:5: expected a field name after 'set'",
      "bad.conf:7:19: expected end of line after 'unset comment'",
      "bad.conf:9:3: expected 'end' to close 'config firewall address', found 'next'",
      "bad.conf:10:12: expected 'rename NAME to NEW-NAME'",
      "bad.conf:12:1: expected 'config' before 'edit': 'edit' is only valid inside a 'config' block",
      "bad.conf:13:1: expected 'config' before 'set': 'set' is only valid inside a 'config' block",
      "bad.conf:14:1: expected a section name after 'config'",
      "bad.conf:16:1: expected 'end' to close 'config firewall policy' opened at 15:1, found end of file",
    ]);
    expect(r.errorCount).toBe(10);
    // Recovery: both entries exist and the first kept its field.
    const addr = cfg(r.tree.children[0]);
    expect(addr.children.map((c) => (c.kind === "edit" ? c.name : c.kind))).toEqual(["a", "b"]);
    expect(set(edit(addr.children[0]).children[0]).values).toEqual(["10.0.0.0", "255.0.0.0"]);
  });

  it("points an unterminated quote at the opening quote", () => {
    const r = parseFortios(lines("config a", "  set b ok", '  set c "never closed', "end"), { file: "q" });
    expect(messages(r)).toEqual([
      'q:3:9: unterminated double-quoted string: expected a closing " before end of file',
      "q:5:1: expected 'end' to close 'config a' opened at 1:1, found end of file",
    ]);
    expect(set(cfg(r.tree.children[0]).children[0]).values).toEqual(["ok"]);
  });

  it("warns on a stray 'end' without failing the parse", () => {
    const r = parseFortios(lines("config a", "end", "end"), { file: "w" });
    expect(r.ok).toBe(true);
    expect(messages(r)).toEqual(["w:3:1: warning: 'end' without an open 'config' (ignored)"]);
  });

  it("stops after maxErrors and says so", () => {
    const r = parseFortios("x\n".repeat(50), { file: "m", maxErrors: 5 });
    expect(r.truncated).toBe(true);
    expect(r.errorCount).toBe(6);
    expect(messages(r).at(-1)).toBe("m:5:1: too many errors (5); stopped parsing here");
  });

  it("never quotes a stray word (it could be key material), only a near miss of a command", () => {
    const r = parseFortios("MIIBtDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQIZybEZhcEafICAggA\n");
    expect(messages(r)).toEqual([
      "<input>:1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found a word of 64 characters (not shown: it may be part of a secret wrapped onto its own line)",
    ]);
    // A PSK or an ENC blob wrapped onto its own line (mail clients, tickets, terminals): plain words too.
    for (const wrapped of [
      "Tr0ub4dor3",
      "YM9id0fQbibVq5Gl0WQP52JAjrRmUvx",
      "LeakFour-4:",
      "hunter",
      "password",
    ]) {
      const w = parseFortios(
        lines(
          "config vpn ipsec phase1-interface",
          '  edit "p1"',
          "    set psksecret ENC",
          wrapped,
          "  next",
          "end",
        ),
      );
      expect(JSON.stringify(w)).not.toContain(wrapped);
      expect(messages(w)[0]).toContain("the line above sets a secret");
    }
    // Wrapped over two lines, and a plaintext PSK whose value went to the next line.
    const two = parseFortios(
      lines(
        "config system admin",
        '  edit "a"',
        "    set password ENC SH2abc",
        "nexty1",
        "sett2",
        "  next",
        "end",
      ),
    );
    expect(JSON.stringify(two)).not.toMatch(/nexty1|sett2/);
    expect(messages(parseFortios("sett a b\n"))[0]).toContain("found 'sett' (did you mean 'set'?)");
    expect(messages(parseFortios("edti a\n"))[0]).not.toContain("edti");
  });

  it("warns when a quoted value swallows lines that read like commands (an unbalanced quote), without showing it", () => {
    const r = parseFortios(
      lines(
        "config vpn ipsec phase1-interface",
        '  edit "p1"',
        '    set psksecret abc"',
        "  next",
        "end",
        "config firewall local-in-policy",
        "  edit 1",
        '    set comments "x',
        "  next",
        "end",
      ),
      { file: "q.conf" },
    );
    const w = messages(r).filter((m) => m.includes("warning"));
    expect(w[0]).toMatch(
      /^q\.conf:3:22: warning: a quoted value runs from here to line 8 across lines that read like commands/,
    );
    expect(JSON.stringify(r.diagnostics)).not.toContain("abc");
    // A PEM block or an HTML replacement message spans lines too, without command-like lines: no warning.
    const pem = parseFortios(
      lines(
        "config vpn certificate local",
        '  edit "c"',
        '    set private-key "-----BEGIN PRIVATE KEY-----',
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        '-----END PRIVATE KEY-----"',
        "  next",
        "end",
      ),
    );
    expect(messages(pem)).toEqual([]);
  });

  it("throws one typed error with every diagnostic from the strict variant", () => {
    expect(() => parseFortiosStrict("config a\n", { file: "s" })).toThrow(FortiosParseError);
    try {
      parseFortiosStrict("oops\nconfig a\n", { file: "s" });
    } catch (err) {
      expect(err).toBeInstanceOf(FortiosParseError);
      const e = err as FortiosParseError;
      expect(e.diagnostics).toHaveLength(2);
      expect(e.message.split("\n")[0]).toMatch(/^s:1:1: expected a command/);
    }
    expect(parseFortiosStrict("config a\nend\n").children).toHaveLength(1);
  });
});

describe("secret redaction at parse time", () => {
  const text = lines(
    "config vpn ipsec phase1-interface",
    '  edit "p1"',
    "    set psksecret S3cretPSK!",
    "    set psksecret-remote ENC QmxvYkJsb2JCbG9i",
    "    set keylife 28800",
    "    set keepalive 10",
    "    set ppk-secret 'ppk value'",
    "  next",
    "end",
    "config system admin",
    '  edit "admin"',
    "    set password ENC SH2abcdefghijklmnop",
    "  next",
    "end",
    "config vpn certificate local",
    '  edit "c"',
    '    set comments "not a secret"',
    '    set certificate "-----BEGIN CERTIFICATE-----',
    "MIICXDCCAgagAwIBAgIIBGk6LJLbQNwwDQYJKoZIhvcNAQELBQAwgakxCzAJBgNV",
    '-----END CERTIFICATE-----"',
    "    set range global",
    "  next",
    "end",
    "config system snmp community",
    "  edit 1",
    '    set name "c0mmun1ty"',
    "  next",
    "end",
    "config router route-map",
    '  edit "rm"',
    "    config rule",
    "      edit 1",
    '        set set-community "65000:100"',
    "      next",
    "    end",
    "  next",
    "end",
    "config user radius",
    '  edit "r"',
    "    set secret radsecret1 extra2",
    "    set auth-pwd authpwd99",
    "    set api-key akey12345",
    "  next",
    "end",
  );
  const r = parseFortios(text, { file: "s.conf" });
  const json = JSON.stringify(r);
  const field = (key: string): SetNode => {
    const found: SetNode[] = [];
    const walk = (ns: Node[]) => {
      for (const n of ns) {
        if (n.kind === "set" && n.key === key) found.push(n);
        if (n.kind === "config" || n.kind === "edit") walk(n.children);
      }
    };
    walk(r.tree.children);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it("parses cleanly", () => {
    expect(r.diagnostics).toEqual([]);
  });

  it.each([
    "S3cretPSK!",
    "QmxvYkJsb2JCbG9i",
    "ppk value",
    "SH2abcdefghijklmnop",
    "MIICXDCCAgagAwIBAgIIBGk6LJLbQNwwDQYJKoZIhvcNAQELBQAwgakxCzAJBgNV",
    "c0mmun1ty",
    "radsecret1",
    "extra2",
    "authpwd99",
    "akey12345",
  ])("removes %s from the tree, provenance text included", (secret) => {
    expect(json).not.toContain(secret);
  });

  it("keeps the ENC marker and the fact that something was redacted", () => {
    expect(field("psksecret").values).toEqual([REDACTED]);
    expect(field("psksecret").redacted).toBe(true);
    expect(field("psksecret-remote").values).toEqual(["ENC", REDACTED]);
    const bare = parseFortios("config a\n set psksecret ENC\nend\n");
    expect(set(cfg(bare.tree.children[0]).children[0]).values).toEqual(["ENC"]);
    expect(field("password").loc.text).toBe(`set password ENC ${REDACTED}`);
    expect(field("certificate").values).toEqual([REDACTED]);
    expect(field("certificate").loc.text).toBe(`set certificate ${REDACTED}`);
    expect(field("secret").values).toEqual([REDACTED]);
    expect(field("name").values).toEqual([REDACTED]);
  });

  it("keeps what only looks like a secret", () => {
    expect(field("keylife").values).toEqual(["28800"]);
    expect(field("keepalive").values).toEqual(["10"]);
    expect(field("set-community").values).toEqual(["65000:100"]);
    expect(field("comments").values).toEqual(["not a secret"]);
    expect(field("range").loc.line).toBe(21);
  });

  it("scrubs secrets from diagnostics too", () => {
    const bad = parseFortios(lines("config a", "  set passwd hunter22", "end", "hunter22", "  next"));
    expect(JSON.stringify(bad)).not.toContain("hunter22");
    expect(messages(bad)[0]).toContain("found a word of 8 characters (not shown");
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

function assertSane(text: string, r: ParseResult): void {
  const lineCount = text.split("\n").length;
  expect(r.ok).toBe(r.errorCount === 0);
  expect(r.errorCount).toBe(r.diagnostics.filter((d) => d.severity === "error").length);
  for (const d of r.diagnostics) {
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.line).toBeLessThanOrEqual(lineCount + 1);
    expect(d.col).toBeGreaterThanOrEqual(1);
    expect(formatDiagnostic(d)).toMatch(/^[^:]+:\d+:\d+: /);
  }
  JSON.stringify(r);
}

const TOKENS = [
  "config",
  "edit",
  "next",
  "end",
  "set",
  "unset",
  "append",
  "rename",
  "move",
  "clone",
  "delete",
  "purge",
  " ",
  "\t",
  "\n",
  "\r\n",
  '"',
  "'",
  "\\",
  "#",
  "ENC",
  "-----BEGIN X-----",
  "a",
  "1",
  "to",
  "before",
  "\ufeff",
  "\u0000",
];

const corpusTexts = readdirSync(CORPUS)
  .sort()
  .map((f) => readFileSync(join(CORPUS, f), "utf8"));

describe("the parser never throws", () => {
  test.prop([fc.string({ unit: "binary", maxLength: 400 })], { numRuns: 300 })(
    "on arbitrary text",
    (text) => {
      assertSane(text, parseFortios(text, { file: "p" }));
    },
  );

  test.prop([fc.array(fc.constantFrom(...TOKENS), { maxLength: 120 })], { numRuns: 400 })(
    "on sequences of FortiOS tokens",
    (toks) => {
      const text = toks.join("");
      assertSane(text, parseFortios(text, { file: "p", maxErrors: 1 + (toks.length % 7) }));
    },
  );

  const mutation = fc.record({
    file: fc.nat({ max: corpusTexts.length - 1 }),
    edits: fc.array(
      fc.record({
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        del: fc.nat({ max: 8 }),
        ins: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  });

  test.prop([mutation], { numRuns: 200 })("on mutated corpus files", ({ file, edits }) => {
    let text = corpusTexts[file]!;
    for (const e of edits) {
      const i = Math.floor(e.at * text.length);
      text = text.slice(0, i) + e.ins + text.slice(i + e.del);
    }
    assertSane(text, parseFortios(text, { file: "mutated" }));
  });
});

// Round trip: a generated tree, printed with random quoting, indentation and line endings, parses
// back to the same structure. This is what makes the lexer rules above hold for all values.

interface GenSet {
  key: string;
  values: string[];
}
interface GenEdit {
  name: string;
  sets: GenSet[];
}
interface GenConfig {
  path: string[];
  sets: GenSet[];
  edits: GenEdit[];
}

const ident = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
// Keys that are never secrets, so redaction does not change them.
const key = fc.constantFrom(
  "intf",
  "srcaddr",
  "service",
  "comments",
  "subnet",
  "member",
  "schedule",
  "alias",
);
const valueChars = fc.constantFrom("a", "Z", "0", " ", '"', "'", "\\", "\n", "#", "-", ":", "/", "é", "\t");
const value = fc.oneof(
  ident,
  fc.array(valueChars, { maxLength: 10 }).map((a) => a.join("")),
);
const genSet = fc.record({ key, values: fc.array(value, { minLength: 1, maxLength: 4 }) });
const genConfig = fc.record({
  path: fc.array(ident, { minLength: 1, maxLength: 3 }),
  sets: fc.array(genSet, { maxLength: 3 }),
  edits: fc.array(fc.record({ name: value, sets: fc.array(genSet, { maxLength: 4 }) }), { maxLength: 4 }),
});

function quote(v: string, style: number): string {
  if (style === 0 && /^[A-Za-z0-9:/.-]+$/.test(v)) return v;
  if (style === 1 && !v.includes("'")) return `'${v}'`;
  return `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function print(configs: GenConfig[], style: { eol: string; indent: string; q: number }): string {
  const out: string[] = [];
  const setLine = (s: GenSet, depth: number, i: number) =>
    `${style.indent.repeat(depth)}set ${s.key} ${s.values.map((v, j) => quote(v, (style.q + i + j) % 3)).join(" ")}`;
  for (const c of configs) {
    out.push(`config ${c.path.join(" ")}`);
    c.sets.forEach((s, i) => {
      out.push(setLine(s, 1, i));
    });
    for (const e of c.edits) {
      out.push(`${style.indent}edit ${quote(e.name, 2)}`);
      e.sets.forEach((s, i) => {
        out.push(setLine(s, 2, i));
      });
      out.push(`${style.indent}next`);
    }
    out.push("end");
  }
  return out.join(style.eol) + style.eol;
}

function shape(tree: ConfigTree): GenConfig[] {
  return tree.children.map((n) => {
    const c = cfg(n);
    return {
      path: c.path,
      sets: c.children
        .filter((x) => x.kind === "set")
        .map((x) => ({ key: set(x).key, values: set(x).values })),
      edits: c.children
        .filter((x) => x.kind === "edit")
        .map((x) => ({
          name: edit(x).name,
          sets: edit(x).children.map((y) => ({ key: set(y).key, values: set(y).values })),
        })),
    };
  });
}

describe("round trip", () => {
  test.prop(
    [
      fc.array(genConfig, { maxLength: 4 }),
      fc.record({
        eol: fc.constantFrom("\n", "\r\n"),
        indent: fc.constantFrom("", "    ", "\t"),
        q: fc.nat(2),
      }),
    ],
    { numRuns: 300 },
  )("printed trees parse back to themselves", (configs, style) => {
    const text = print(configs, style);
    const r = parseFortios(text);
    expect(messages(r)).toEqual([]);
    // CRLF inside a quoted value reads as LF; values never contain CR here, so shapes are equal.
    expect(shape(r.tree)).toEqual(configs);
  });
});

// Sections are built when first read (parse.ts `lazySection`): the tree, the diagnostics and the
// redaction must be exactly those of building everything at once, whatever the input and however
// parsing ended (closed sections, unclosed ones at end of file, the error limit mid-section).

/** Reads every section's children, top-level sections in a scrambled order; then the whole result. */
function materialized(r: ParseResult, order: number): string {
  const walk = (n: Node): void => {
    if (n.kind === "config" || n.kind === "edit") for (const c of n.children) walk(c);
  };
  const top = r.tree.children;
  for (let k = 0; k < top.length; k++) walk(top[(k * (order + 1) + order) % top.length]!);
  return JSON.stringify(r);
}

/** The sections read on demand (top level, inside `config global`, inside a VDOM's `edit`), lazy and eager side by side. */
function sectionPairs(lazy: ConfigTree, eager: ConfigTree): [ConfigNode, ConfigNode][] {
  const out: [ConfigNode, ConfigNode][] = [];
  const top = (l: Node[], e: Node[], inside: boolean): void => {
    l.forEach((n, k) => {
      const m = e[k]!;
      if (n.kind !== "config" || m.kind !== "config") return;
      const key = n.path.join(" ");
      if (!inside && key === "global") top(n.children, m.children, true);
      else if (!inside && key === "vdom") {
        n.children.forEach((x, j) => {
          const y = m.children[j]!;
          if (x.kind === "edit" && y.kind === "edit") top(x.children, y.children, true);
        });
      } else out.push([n, m]);
    });
  };
  top(lazy.children, eager.children, false);
  return out;
}

/**
 * `sectionEntries`, where given, lists exactly the section's children — all `edit`s — and builds
 * each as the eager tree holds it; read before anything else touches the section. Returns how
 * many sections had entries.
 */
function entriesMatch(text: string, maxErrors: number, order: number): number {
  const eager = parseFortios(text, { file: "e", maxErrors, lazy: false });
  const lazy = parseFortios(text, { file: "e", maxErrors });
  let withEntries = 0;
  for (const [l, e] of sectionPairs(lazy.tree, eager.tree)) {
    const se = sectionEntries(l);
    expect(sectionEntries(e)).toBeUndefined();
    if (se === undefined) continue;
    withEntries++;
    const n = se.names.length;
    for (let k = 0; k < n; k++) {
      const i = (k * (order + 1) + order) % n;
      expect(JSON.stringify(se.edit(i))).toBe(JSON.stringify(e.children[i]));
    }
    expect(e.children.map((c) => (c.kind === "edit" ? c.name : `<${c.kind}>`))).toEqual(se.names);
  }
  expect(JSON.stringify(lazy)).toBe(JSON.stringify(eager));
  return withEntries;
}

const VDOM_WRAP = [
  (t: string) => t,
  (t: string) => `config global\n${t}\nend\n`,
  (t: string) => `config vdom\nedit root\n${t}\nnext\nedit v2\n${t}\nend\n`,
];

describe("sections built on demand", () => {
  test.prop([fc.array(fc.constantFrom(...TOKENS), { maxLength: 150 }), fc.nat(2), fc.nat(7)], {
    numRuns: 400,
  })("equal the tree built at once (token sequences)", (toks, wrap, order) => {
    const text = VDOM_WRAP[wrap]!(toks.join(""));
    const maxErrors = 1 + (toks.length % 9);
    const eager = parseFortios(text, { file: "p", maxErrors, lazy: false });
    const lazy = parseFortios(text, { file: "p", maxErrors });
    expect(materialized(lazy, order)).toBe(JSON.stringify(eager));
  });

  const corpusMutation = fc.record({
    file: fc.nat({ max: corpusTexts.length - 1 }),
    wrap: fc.nat(2),
    maxErrors: fc.integer({ min: 1, max: 12 }),
    order: fc.nat(7),
    edits: fc.array(
      fc.record({
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        del: fc.nat({ max: 8 }),
        ins: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })),
      }),
      { maxLength: 6 },
    ),
  });

  test.prop([corpusMutation], { numRuns: 150 })(
    "equal the tree built at once (mutated corpus files)",
    ({ file, wrap, maxErrors, order, edits }) => {
      let text = corpusTexts[file]!;
      for (const e of edits) {
        const i = Math.floor(e.at * text.length);
        text = text.slice(0, i) + e.ins + text.slice(i + e.del);
      }
      text = VDOM_WRAP[wrap]!(text);
      const eager = parseFortios(text, { file: "m", maxErrors, lazy: false });
      const lazy = parseFortios(text, { file: "m", maxErrors });
      expect(materialized(lazy, order)).toBe(JSON.stringify(eager));
    },
  );

  test.prop([fc.array(fc.constantFrom(...TOKENS), { maxLength: 150 }), fc.nat(2), fc.nat(7)], {
    numRuns: 300,
  })("entries read one by one equal the section's children (token sequences)", (toks, wrap, order) => {
    entriesMatch(VDOM_WRAP[wrap]!(toks.join("")), 1 + (toks.length % 9), order);
  });

  test.prop([corpusMutation], { numRuns: 150 })(
    "entries read one by one equal the section's children (mutated corpus files)",
    ({ file, wrap, maxErrors, order, edits }) => {
      let text = corpusTexts[file]!;
      for (const e of edits) {
        const i = Math.floor(e.at * text.length);
        text = text.slice(0, i) + e.ins + text.slice(i + e.del);
      }
      entriesMatch(VDOM_WRAP[wrap]!(text), maxErrors, order);
    },
  );

  // Sections checked without building skip plain `set` lines in one step (parse.ts `PLAIN_SET`):
  // whatever the line, the diagnostics (scrubbed of every secret seen) must be those of the
  // eager parse. Secret values reappear later as bare words, which a diagnostic quotes unless
  // the secret was collected.
  const SECRET_WORDS = ["abc123", "Zq9secret"];
  const piece = fc.constantFrom(
    "set",
    "append",
    "unset",
    "psksecret",
    "password",
    "passwd",
    "keylife",
    "name",
    "comments",
    "member",
    "subnet",
    "Key",
    "ENC",
    "-----BEGIN X-----",
    ...SECRET_WORDS,
    ...SECRET_WORDS.map((w) => `"${w}"`),
    `"a b"`,
    `'c d'`,
    `"x\\"y"`,
    `"new"_g`,
    '"',
    "'",
    "\\",
    "\\\n",
    "\t",
    "\u00a0",
    "\r",
    "1.2.3.4",
  );
  const key = fc.constantFrom("psksecret", "password", "keylife", "name", "comments", "member", "Key");
  const value = fc.oneof(piece, fc.constantFrom("ENC", "-----BEGIN X-----", ...SECRET_WORDS));
  const plainLine = fc.oneof(
    fc
      .array(piece, { minLength: 1, maxLength: 5 })
      .map((w) => `${w[0] === "set" ? "" : "set "}${w.join(" ")}`),
    fc
      .tuple(fc.constantFrom("set", "append"), key, fc.array(value, { minLength: 1, maxLength: 4 }))
      .map(([v, k, w]) => `${v} ${k} ${w.join(" ")}`),
  );
  const line = fc.oneof(
    { weight: 6, arbitrary: plainLine },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "edit 1",
        'edit "e"',
        "next",
        "end",
        "config system snmp community",
        "config sub",
        ...SECRET_WORDS,
      ),
    },
  );
  test.prop([fc.array(line, { maxLength: 30 }), fc.nat(2), fc.constantFrom("\n", "\r\n"), fc.nat(7)], {
    numRuns: 500,
  })(
    "plain set lines skipped while checking leave every diagnostic and secret as the eager parse",
    (ls, wrap, eol, order) => {
      const body = ["config firewall policy", "edit 1", ...ls, "next", "end", ...SECRET_WORDS].join(eol);
      const text = VDOM_WRAP[wrap]!(body + eol);
      const eager = parseFortios(text, { file: "s", maxErrors: 1000, lazy: false });
      const lazy = parseFortios(text, { file: "s", maxErrors: 1000 });
      expect(materialized(lazy, order)).toBe(JSON.stringify(eager));
    },
  );

  it("gives entries for error-free sections of edits only, in every corpus file", () => {
    let total = 0;
    for (const text of corpusTexts) for (const w of VDOM_WRAP) total += entriesMatch(w(text), 100, 3);
    expect(total).toBeGreaterThan(500);
    const r = parseFortios(
      lines(
        "config firewall address",
        '  edit "a"',
        "    set subnet 10.0.0.0 255.0.0.0",
        "    config tagging",
        "      edit t",
        "      next",
        "    end",
        "  next",
        "  edit b",
        "end",
        "config firewall addrgrp",
        "  set x 1",
        "  edit g",
        "  next",
        "end",
        "config firewall address6",
        "  edit a",
        "  next",
        "  rename a to b",
        "end",
        "config firewall policy",
        "  edit 1",
        "    set srcaddr a",
        "  next",
        "  bogus",
        "end",
      ),
    );
    const [addr, grp, addr6, pol] = r.tree.children as ConfigNode[];
    expect(sectionEntries(addr!)?.names).toEqual(["a", "b"]);
    expect(sectionEntries(grp!)).toBeUndefined(); // a field set on the section itself
    expect(sectionEntries(addr6!)).toBeUndefined(); // a table command
    expect(sectionEntries(pol!)).toBeUndefined(); // an error inside
    addr!.children = [];
    expect(sectionEntries(addr!)).toBeUndefined(); // replaced children: entries no longer describe them
  });

  it("leaves sections nobody reads unbuilt, and builds each once", () => {
    const text =
      "config system global\n  set hostname a\nend\nconfig firewall policy\n  edit 1\n  next\nend\n";
    const r = parseFortios(text);
    const [g, pol] = r.tree.children as ConfigNode[];
    expect(g!.children).toBe(g!.children);
    expect(pol!.children.map((c) => c.kind)).toEqual(["edit"]);
    expect(JSON.stringify(r)).toBe(JSON.stringify(parseFortios(text, { lazy: false })));
  });
});
