import { FINDINGS, type Finding, type Severity } from "../analysis/findings.js";

const LEVEL: Record<Severity, "error" | "warning" | "note"> = {
  error: "error",
  warning: "warning",
  note: "note",
};

/** Stable across runs so code-scanning UIs track a finding instead of reopening it. */
const fingerprint = (f: Finding) => [f.id, f.gateway, f.tunnel ?? "", f.flow ?? ""].join("/");

/**
 * SARIF 2.1.0 for CI code scanning. Locations point at the config lines responsible, so GitHub
 * and friends annotate the firewall config itself. `uriBase` makes paths relative to the repo.
 */
export function toSarif(
  findings: Finding[],
  opts: {
    version: string;
    relativize?: (file: string) => string;
    /**
     * `file://` URI of the directory relative paths start from (the working directory): given,
     * relative locations name it as `uriBaseId` SRCROOT, so viewers need not guess the root.
     */
    srcRoot?: string;
  },
) {
  const rel = opts.relativize ?? ((f: string) => f);
  const isAbsolute = (f: string) => f.startsWith("/") || /^[A-Za-z]:[\\/]/.test(f);
  // SARIF locations are URIs: percent-encoded, forward slashes; absolute paths as file:// URIs.
  const location = (file: string) => {
    const f = rel(file).replace(/\\/g, "/");
    if (isAbsolute(f)) return { uri: `file://${f.startsWith("/") ? "" : "/"}${encodeURI(f)}` };
    return { uri: encodeURI(f), ...(opts.srcRoot ? { uriBaseId: "SRCROOT" } : {}) };
  };
  const ids = [...new Set(findings.map((f) => f.id))].sort();
  return {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0" as const,
    runs: [
      {
        ...(opts.srcRoot ? { originalUriBaseIds: { SRCROOT: { uri: opts.srcRoot } } } : {}),
        tool: {
          driver: {
            name: "tunnelcheck",
            version: opts.version,
            informationUri: "https://www.npmjs.com/package/tunnelcheck",
            rules: ids.map((id) => ({
              id,
              name: id.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase()),
              shortDescription: { text: FINDINGS[id].title },
              fullDescription: { text: FINDINGS[id].help },
              defaultConfiguration: { level: LEVEL[FINDINGS[id].severity] },
            })),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.id,
          ruleIndex: ids.indexOf(f.id),
          level: LEVEL[f.severity],
          message: { text: f.fix ? `${f.message}\n\nFix (${f.fix.target}):\n${f.fix.text}` : f.message },
          locations: f.rules.map((r) => ({
            physicalLocation: {
              artifactLocation: location(r.file),
              region: { startLine: r.line, startColumn: r.col ?? 1, snippet: { text: r.text } },
            },
          })),
          partialFingerprints: { tunnelcheckFinding: fingerprint(f) },
          properties: {
            gateway: f.gateway,
            ...(f.tunnel ? { tunnel: f.tunnel } : {}),
            ...(f.flow ? { flow: f.flow } : {}),
          },
        })),
      },
    ],
  };
}
