/**
 * Vendor-neutral pieces shared by every rule-set parser: where a rule came from, and the
 * diagnostics a parse produces. Platform models (iptables, nftables, FortiOS) build on these.
 */

/** Where a rule, chain or table header came from: enough to point a user at the exact line. */
export interface Provenance {
  file: string;
  /** 1-based line number. */
  line: number;
  /** The line as written (without the trailing newline). */
  text: string;
}

export type Severity = "error" | "warning";

export interface Diagnostic {
  severity: Severity;
  file: string;
  /** 1-based; 0 when the problem concerns the whole input. */
  line: number;
  /** 1-based column of the offending token; 0 when not tied to a column. */
  col: number;
  message: string;
}

/** `file:line:col: message` (errors) or `file:line:col: warning: message` — the compiler convention editors understand. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${Math.max(d.col, 1)}` : d.file;
  return d.severity === "error" ? `${where}: ${d.message}` : `${where}: warning: ${d.message}`;
}

/**
 * Collects diagnostics up to a limit per severity. Parsers keep going after an error so the user
 * sees all of them at once, but stop reporting (and may stop parsing) once `full` is set.
 */
export class DiagnosticSink {
  readonly errors: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];
  /** Diagnostics not recorded because the limit was reached. */
  droppedErrors = 0;
  droppedWarnings = 0;

  constructor(
    readonly file: string,
    readonly limit = 50,
  ) {}

  error(line: number, col: number, message: string): void {
    if (this.errors.length >= this.limit) {
      this.droppedErrors++;
      return;
    }
    this.errors.push({ severity: "error", file: this.file, line, col, message });
  }

  warning(line: number, col: number, message: string): void {
    if (this.warnings.length >= this.limit) {
      this.droppedWarnings++;
      return;
    }
    this.warnings.push({ severity: "warning", file: this.file, line, col, message });
  }

  /** The error limit is reached: further errors would only be counted. */
  get full(): boolean {
    return this.errors.length >= this.limit;
  }
}

/** Thrown by the `…OrThrow` parser variants; carries every collected error for printing. */
export class RulesetParseError extends Error {
  constructor(
    readonly errors: readonly Diagnostic[],
    readonly warnings: readonly Diagnostic[] = [],
  ) {
    super(
      errors.length === 0
        ? "rule set could not be parsed"
        : `${errors.length} error(s) parsing ${errors[0]!.file}:\n${errors.map(formatDiagnostic).join("\n")}`,
    );
    this.name = "RulesetParseError";
  }
}
