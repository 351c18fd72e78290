import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFortios, modelToJSON } from "../src/platforms/fortios/model.js";
import { formatDiagnostic } from "../src/platforms/fortios/parse.js";

const CORPUS = "/work/shared/corpus/fortios";
const EXAMPLES = new URL("../examples/seed001/", import.meta.url).pathname;

const corpus = readdirSync(CORPUS)
  .sort()
  .map((f) => ({ name: f, path: join(CORPUS, f) }));
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith(".conf"))
  .sort()
  .map((f) => ({ name: `examples/seed001/${f}`, path: join(EXAMPLES, f) }));

/**
 * The only corpus files that are not FortiOS configuration as a FortiGate would load it: AWS/IBM
 * user-data in MIME multipart form around a config (terraform templates). They are rejected
 * precisely at their first non-FortiOS line, and the embedded config is still parsed.
 */
const REJECTED: Record<string, string> = {
  "fortigate-terraform-deploy_aws_7.4_gwlb-crossaz_fgtvm.conf":
    "1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found 'Content-Type:'",
  "fortigate-terraform-deploy_aws_7.4_gwlb-multitenant_fgtvm.conf":
    "1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found 'Content-Type:'",
  "fortigate-terraform-deploy_aws_7.4_transitgwyconnect_fgtvm.conf":
    "1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found 'Content-Type:'",
  "fortigate-terraform-deploy_ibm_8.0_ha-cross_config.conf":
    "1:1: expected a command (config, edit, set, unset, append, select, unselect, next, end), found 'Content-Type:'",
};

/** Files with warnings only: the Aviatrix templates close `edit TRANSIT` with `end` and then `end` again. */
const WARNINGS: Record<string, string[]> = {
  "aviatrix-sdwan_headend-ha.conf.tpl": ["95:1: warning: 'end' without an open 'config' (ignored)"],
  "aviatrix-sdwan_headend-single.conf.tpl": ["55:1: warning: 'end' without an open 'config' (ignored)"],
};

describe("every FortiOS file of the corpus", () => {
  it("has the 65 files the manifest lists", () => {
    expect(corpus).toHaveLength(65);
  });

  it.each(corpus)("$name parses, or is rejected precisely", ({ name, path }) => {
    const text = readFileSync(path, "utf8");
    const { parse, model } = loadFortios(text, { file: name });
    const shown = parse.diagnostics.map(formatDiagnostic);
    const rejected = REJECTED[name];
    if (rejected) {
      expect(parse.ok).toBe(false);
      expect(shown[0]).toBe(`${name}:${rejected}`);
      // The config inside the MIME wrapper is still read.
      expect(parse.tree.children.filter((c) => c.kind === "config").length).toBeGreaterThan(3);
    } else {
      expect(shown).toEqual((WARNINGS[name] ?? []).map((w) => `${name}:${w}`));
    }
    // The model is built for every file and serializes.
    expect(model.vdoms.size).toBeGreaterThan(0);
    expect(() => modelToJSON(model)).not.toThrow();
    for (const d of model.diagnostics) expect(d.file).toBe(name);
  });

  it("covers the IPsec and multi-VDOM files with real content", () => {
    const load = (f: string) => loadFortios(readFileSync(join(CORPUS, f), "utf8"), { file: f }).model;
    const a = load("40net_ipsec-test_fgt-a.conf").vdoms.get("root")!;
    expect(a.phase1.size).toBe(16);
    expect(a.phase2.size).toBe(16);
    const multi = load("fortigate-terraform-deploy_aws_7.4_gwlb-crossaz_fgtvm.conf");
    expect(multi.multiVdom).toBe(true);
    expect([...multi.vdoms.keys()]).toEqual(["root", "FG-traffic"]);
    expect(multi.interfaces.get("port2")?.vdom).toBe("FG-traffic");
    expect(multi.vdoms.get("FG-traffic")!.policies.map((p) => p.name)).toEqual(["test"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Redaction over every file, checked by an extractor that shares no code with the parser.

const SECRET_KEY =
  /(^|-)([a-z0-9]*(password|passwd|passphrase|pwd|secret)|key|keys|psk|token|privkey)\d*(-|$)/;

interface Found {
  secrets: Set<string>;
  /** Lines that carry no secret, to tell coincidences (a secret equal to an ordinary word) apart. */
  plain: string;
}

function extractSecrets(text: string): Found {
  const secrets = new Set<string>();
  const plain: string[] = [];
  const ls = text.split(/\r?\n/);
  let inPem = false;
  let inSnmpCommunity = false;
  for (const line of ls) {
    if (inPem) {
      if (/-----END /.test(line)) inPem = false;
      else if (line.trim().length >= 16) secrets.add(line.trim());
      continue;
    }
    if (/^\s*config system snmp community\b/.test(line)) inSnmpCommunity = true;
    else if (/^\s*config system snmp\b/.test(line) || /^config /.test(line)) inSnmpCommunity = false;
    const m = /^\s*(set|append|select)\s+(\S+)\s+(.*)$/.exec(line);
    let secretLine = false;
    if (m) {
      const key = m[2]!;
      const rest = m[3]!;
      if (/-----BEGIN /.test(rest)) {
        secretLine = true;
        if (!/-----END /.test(rest)) inPem = true;
      }
      const enc = /\bENC\s+(\S+)/.exec(rest);
      if (enc) {
        secrets.add(enc[1]!);
        secretLine = true;
      } else if (SECRET_KEY.test(key) || (inSnmpCommunity && key === "name")) {
        for (const v of rest.match(/"[^"]*"|'[^']*'|\S+/g) ?? []) secrets.add(v.replace(/^["']|["']$/g, ""));
        secretLine = true;
      }
    }
    if (!secretLine) plain.push(line);
  }
  for (const s of [...secrets]) if (s.length < 4) secrets.delete(s);
  return { secrets, plain: plain.join("\n") };
}

describe("no secret survives parsing", () => {
  let total = 0;
  let checked = 0;

  it.each([...corpus, ...examples])("$name", ({ name, path }) => {
    const text = readFileSync(path, "utf8");
    const { secrets, plain } = extractSecrets(text);
    const { parse, model } = loadFortios(text, { file: name });
    const outputs = [
      JSON.stringify(parse.tree),
      parse.diagnostics.map(formatDiagnostic).join("\n"),
      modelToJSON(model),
      model.diagnostics.map(formatDiagnostic).join("\n"),
    ].join("\n");
    total += secrets.size;
    for (const s of secrets) {
      if (plain.includes(s)) continue; // also written elsewhere as a non-secret; cannot be told apart
      checked++;
      expect(outputs.includes(s), `secret '${s.slice(0, 6)}…' of ${name} leaked`).toBe(false);
    }
  });

  it("actually had secrets to look for", () => {
    // 40net (psksecret fortinet), the IBM template (password, api-key), the Batfish api-user
    // (ENC), the Aviatrix templates (psksecret, password) and the examples (ENC, PEM, SNMP).
    expect(total).toBeGreaterThanOrEqual(20);
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it("the examples' private key, PSKs and community are among them", () => {
    const text = readFileSync(join(EXAMPLES, "site2.conf"), "utf8");
    const { secrets } = extractSecrets(text);
    expect([...secrets].some((s) => s.startsWith("SGHK/0gg"))).toBe(true);
    expect([...secrets].some((s) => s.startsWith("vNKl4+SL"))).toBe(true);
    expect(secrets.has("site2-ro-c0mmunity")).toBe(true);
    expect(text).toContain("site2-ro-c0mmunity");
  });
});
