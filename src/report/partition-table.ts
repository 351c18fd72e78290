/** A symbolic trace's rows: which sources get which verdict, decided by what. */
export interface PartitionRow {
  sources: string;
  verdict: string;
  rule: { file: string; line: number; text: string } | null;
  unknown?: { reason: string; rule?: { file: string; line: number } };
  defaultName?: string;
}

/** Source pieces shown per row in text; `--format json` keeps every one. */
const MAX_PIECES = 40;

/** At most MAX_PIECES of a comma-separated source list (a non-contiguous mask makes 65,536 ranges). */
function brief(sources: string): string {
  const pieces = sources.split(", ");
  if (pieces.length <= MAX_PIECES) return sources;
  return `${pieces.slice(0, MAX_PIECES).join(", ")}, … and ${pieces.length - MAX_PIECES} more (all of them in --format json)`;
}

/** The SOURCES / VERDICT / DECIDED BY table both platforms' `trace --src any` print. */
export function renderPartitionTable(query: string, parts: readonly PartitionRow[]): string {
  const rows = parts.map((p) => [
    brief(p.sources),
    p.verdict,
    p.rule
      ? `${p.rule.file}:${p.rule.line} ${p.rule.text}`
      : p.unknown
        ? `${p.unknown.reason}${p.unknown.rule ? ` (${p.unknown.rule.file}:${p.unknown.rule.line})` : ""}`
        : (p.defaultName ?? ""),
  ]);
  const head = ["SOURCES", "VERDICT", "DECIDED BY"];
  const w0 = Math.min(48, Math.max(head[0]!.length, ...rows.map((r) => r[0]!.length)));
  const w1 = Math.max(head[1]!.length, ...rows.map((r) => r[1]!.length));
  const fmt = (r: string[]): string[] => {
    // Long source lists wrap at commas inside the first column.
    const chunks: string[] = [];
    let cur = "";
    for (const piece of r[0]!.split(", ")) {
      const next = cur ? `${cur}, ${piece}` : piece;
      if (next.length > w0 && cur) {
        chunks.push(`${cur},`);
        cur = piece;
      } else cur = next;
    }
    chunks.push(cur);
    return chunks.map((c, i) =>
      i === 0 ? `${c.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd() : c.trimEnd(),
    );
  };
  return `${[query, ...fmt(head), ...rows.flatMap(fmt)].join("\n")}\n`;
}
