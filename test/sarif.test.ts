import { createRequire } from "node:module";
import type AjvDraft04Type from "ajv-draft-04";
import { describe, expect, it } from "vitest";
import type { Finding } from "../src/analysis/findings.js";
import { toSarif } from "../src/report/sarif.js";

// The official SARIF 2.1.0 schema (rtm.5, draft-04), as shipped by Microsoft's sarif-js-sdk.
const require = createRequire(import.meta.url);
const schema = require("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
const AjvDraft04: typeof AjvDraft04Type.default = require("ajv-draft-04").default;
const validate = new AjvDraft04({ allErrors: true, strict: false, unicodeRegExp: false }).compile(schema);

const finding: Finding = {
  id: "ike-reply-only",
  severity: "error",
  gateway: "site2",
  tunnel: "site1-site2",
  flow: "ike-in",
  message: "UDP 500 from 10.56.240.208 is accepted only as a reply.",
  rules: [{ file: "examples/seed001/site2.conf", line: 88, text: "edit 2" }],
  fix: { target: "fortios", text: "config firewall local-in-policy\n  edit 0\n  next\nend\n" },
};

describe("SARIF output", () => {
  it("validates against the official SARIF 2.1.0 schema", () => {
    const log = toSarif([finding, { ...finding, id: "ike-open-to-any", severity: "warning", rules: [] }], {
      version: "0.1.0",
    });
    const ok = validate(log);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });
  it("points at the config line and carries a stable fingerprint", () => {
    const log = toSarif([finding], { version: "0.1.0" });
    const r = log.runs[0]!.results[0]!;
    expect(r.locations[0]!.physicalLocation.region.startLine).toBe(88);
    expect(r.locations[0]!.physicalLocation.artifactLocation.uri).toBe("examples/seed001/site2.conf");
    expect(r.partialFingerprints.tunnelcheckFinding).toBe("ike-reply-only/site2/site1-site2/ike-in");
    expect(log.runs[0]!.tool.driver.rules[r.ruleIndex]!.id).toBe("ike-reply-only");
  });
  it("names the root of relative paths (SRCROOT), encodes URIs, and writes absolute paths as file:// URIs", () => {
    const spaced = { ...finding, rules: [{ file: "../configs/site 2.conf", line: 3, text: "edit 2" }] };
    const abs = { ...finding, rules: [{ file: "/etc/iptables/rules.v4", line: 7, text: "-A INPUT" }] };
    const log = toSarif([spaced, abs], { version: "0.1.0", srcRoot: "file:///work/repo/" });
    expect(validate(log)).toBe(true);
    const run = log.runs[0]!;
    expect(run.originalUriBaseIds).toEqual({ SRCROOT: { uri: "file:///work/repo/" } });
    expect(run.results[0]!.locations[0]!.physicalLocation.artifactLocation).toEqual({
      uri: "../configs/site%202.conf",
      uriBaseId: "SRCROOT",
    });
    expect(run.results[1]!.locations[0]!.physicalLocation.artifactLocation).toEqual({
      uri: "file:///etc/iptables/rules.v4",
    });
  });
  it("the schema check can fail", () => {
    const log = toSarif([finding], { version: "0.1.0" }) as unknown as {
      runs: Array<{ results: Array<{ level: string }> }>;
    };
    log.runs[0]!.results[0]!.level = "fatal";
    expect(validate(log)).toBe(false);
  });
});
