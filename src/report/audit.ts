import type { FlowVerdict } from "../analysis/audit.js";
import { type Finding, type Severity, severityAtLeast } from "../analysis/findings.js";
import { type Colors, noColors } from "./style.js";

export interface AuditReport {
  findings: Finding[];
  verdicts: FlowVerdict[];
  /** Gateways and tunnels audited, for the summary. */
  audited: Array<{ gateway: string; platform: string; tunnel?: string; config: string }>;
  /** Input problems that did not stop the audit (unsupported constructs, unresolved names, unknowns). */
  warnings: string[];
  /** How each VPN was understood (which phase1, which scenario). */
  notes: string[];
}

const ORDER: Severity[] = ["error", "warning", "note"];

export const auditJson = (r: AuditReport) => ({
  findings: r.findings.map((f) => ({
    id: f.id,
    severity: f.severity,
    gateway: f.gateway,
    tunnel: f.tunnel ?? null,
    flow: f.flow ?? null,
    message: f.message,
    rules: f.rules.map((x) => ({ file: x.file, line: x.line, text: x.text })),
    fix: f.fix ?? null,
  })),
  verdicts: r.verdicts,
  audited: r.audited,
  warnings: r.warnings,
  notes: r.notes,
  summary: Object.fromEntries(ORDER.map((s) => [s, r.findings.filter((f) => f.severity === s).length])),
});

const sevColor = (c: Colors, s: Severity) => (s === "error" ? c.red : s === "warning" ? c.yellow : c.cyan);

const STATUS_TEXT: Record<FlowVerdict["status"], string> = {
  "accepted-new": "accepted as new",
  "accepted-reply": "accepted as a reply (only answers)",
  "reply-only": "reply only",
  blocked: "blocked",
  unknown: "unknown",
  mixed: "mixed",
  open: "OPEN",
  closed: "blocked",
};

const groupKey = (x: { gateway: string; tunnel?: string | undefined }) =>
  `${x.gateway}\u0000${x.tunnel ?? ""}`;

export function auditText(r: AuditReport, c: Colors = noColors): string {
  const out: string[] = [];
  const groups = new Map<string, { gateway: string; tunnel?: string; platform?: string }>();
  for (const a of r.audited) groups.set(groupKey(a), a);
  // A NAT device's port-forward verdicts come under its own name, not an audited gateway's.
  for (const v of r.verdicts) if (!groups.has(groupKey(v))) groups.set(groupKey(v), v);
  for (const f of r.findings) if (!groups.has(groupKey(f))) groups.set(groupKey(f), f);
  for (const [key, g] of groups) {
    const title = `${g.gateway}${g.tunnel ? ` — tunnel ${g.tunnel}` : ""}`;
    out.push(c.bold(title));
    const vs = r.verdicts.filter((v) => groupKey(v) === key && v.requirement !== "not-needed");
    for (const v of vs) {
      const ok = v.status === "accepted-new" || v.status === "accepted-reply" || v.status === "closed";
      const mark = ok ? c.green("✓") : v.requirement === "optional" ? c.dim("·") : c.red("✗");
      out.push(
        `  ${mark} ${v.flow.padEnd(18)} ${STATUS_TEXT[v.status]}${v.requirement === "optional" ? c.dim(" (optional)") : ""}`,
      );
    }
    const fs = r.findings.filter((f) => groupKey(f) === key);
    for (const f of fs) {
      out.push(
        "",
        `  ${sevColor(c, f.severity)(f.severity.toUpperCase())} ${c.bold(f.id)}${f.flow ? c.dim(` [${f.flow}]`) : ""}`,
      );
      for (const line of f.message.split("\n")) out.push(`    ${line}`);
      for (const x of f.rules) out.push(c.dim(`    at ${x.file}:${x.line}: ${x.text}`));
      if (f.fix) {
        out.push(`    fix (${f.fix.target}):`);
        for (const line of f.fix.text.trimEnd().split("\n")) out.push(`      ${line}`);
      }
    }
    out.push("");
  }
  for (const n of r.notes) out.push(c.dim(`note: ${n}`));
  for (const w of r.warnings) out.push(c.yellow(`warning: ${w}`));
  const count = (s: Severity) => r.findings.filter((f) => f.severity === s).length;
  // The `warning:` lines are about the input (what a config cannot say), not findings: said apart,
  // so "0 warning(s)" under three of them does not read as a contradiction.
  const input = r.warnings.length > 0 ? `; ${r.warnings.length} input warning(s) above` : "";
  out.push(
    r.findings.length === 0
      ? c.green(`No findings: every required flow is accepted as new traffic from its peers${input}.`)
      : `Findings: ${count("error")} error(s), ${count("warning")} warning(s), ${count("note")} note(s)${input}`,
  );
  return `${out.join("\n")}\n`;
}

const md = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, "<br>");

export function auditMarkdown(r: AuditReport): string {
  const out = ["# tunnelcheck audit", ""];
  if (r.findings.length === 0)
    out.push("No findings: every required flow is accepted as new traffic from its peers.", "");
  else {
    out.push("| severity | id | gateway | tunnel | message | where |", "|---|---|---|---|---|---|");
    for (const f of r.findings) {
      out.push(
        `| ${f.severity} | \`${f.id}\` | ${md(f.gateway)} | ${md(f.tunnel ?? "")} | ${md(f.message)} | ${f.rules.map((x) => `\`${x.file}:${x.line}\``).join("<br>")} |`,
      );
    }
    out.push("");
    for (const f of r.findings.filter((x) => x.fix)) {
      out.push(`### Fix for \`${f.id}\` on ${f.gateway}`, "", "```", f.fix!.text.trimEnd(), "```", "");
    }
  }
  out.push("## Flows evaluated", "", "| gateway | tunnel | flow | need | verdict |", "|---|---|---|---|---|");
  for (const v of r.verdicts)
    out.push(
      `| ${md(v.gateway)} | ${md(v.tunnel ?? "")} | \`${v.flow}\` | ${v.requirement} | ${STATUS_TEXT[v.status]} |`,
    );
  return `${out.join("\n")}\n`;
}

export const failsOn = (r: AuditReport, min: Severity | "none"): boolean =>
  min !== "none" && r.findings.some((f) => severityAtLeast(f.severity, min));
