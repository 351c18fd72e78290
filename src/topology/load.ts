import { isAbsolute, resolve } from "node:path";
import { isMap, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type Topology, TopologySchema } from "./schema.js";

export interface TopologyDiagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class TopologyError extends Error {
  constructor(readonly diagnostics: TopologyDiagnostic[]) {
    super(diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join("\n"));
  }
}

export interface LoadedTopology extends Topology {
  /** Directory the topology file is in; config paths are relative to it. */
  baseDir: string;
  file: string;
}

/** Parses and validates a topology YAML; every error carries file:line:col. */
export function parseTopology(text: string, file: string): LoadedTopology {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (doc.errors.length > 0) {
    throw new TopologyError(
      doc.errors.map((e) => ({ file, ...at(e.pos[0]), message: e.message.split("\n")[0]! })),
    );
  }
  const data = doc.toJS() ?? {};
  const result = TopologySchema.safeParse(data);
  if (!result.success) {
    throw new TopologyError(result.error.issues.map((i) => issueDiagnostic(i, doc, file, at)));
  }
  const topo = result.data;
  // Cross-references: tunnels must name defined gateways.
  const diags: TopologyDiagnostic[] = [];
  const names = new Set(Object.keys(topo.gateways));
  (topo.tunnels ?? []).forEach((t, i) => {
    const refs =
      t.type === "site-to-site"
        ? t.between.map((n, j) => [n, ["tunnels", i, "between", j]] as const)
        : [[t.server, ["tunnels", i, "server"]] as const];
    if (t.type === "site-to-site" && t.between[0] === t.between[1])
      diags.push({
        file,
        ...posOf(doc, ["tunnels", i, "between", 1], at),
        message: `a tunnel connects two different gateways; '${t.between[0]}' is named twice`,
      });
    for (const [n, path] of refs) {
      if (!names.has(n))
        diags.push({
          file,
          ...posOf(doc, [...path], at),
          message: `unknown gateway '${n}'; defined: ${[...names].join(", ") || "none"}`,
        });
    }
  });
  if (diags.length > 0) throw new TopologyError(diags);
  const baseDir = resolve(file, "..");
  return { ...topo, baseDir, file };
}

export const configPath = (t: LoadedTopology, p: string) => (isAbsolute(p) ? p : resolve(t.baseDir, p));

type Doc = ReturnType<typeof parseDocument>;

function posOf(doc: Doc, path: (string | number)[], at: (o: number) => { line: number; col: number }) {
  // Walk down as far as the path exists, so a missing key points at its parent.
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (node && typeof node === "object" && "range" in node && Array.isArray(node.range)) {
      return at(node.range[0] as number);
    }
  }
  return { line: 1, col: 1 };
}

function issueDiagnostic(
  issue: z.core.$ZodIssue,
  doc: Doc,
  file: string,
  at: (o: number) => { line: number; col: number },
): TopologyDiagnostic {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    // Point at the offending key itself.
    const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
    if (isMap(parent)) {
      const key = issue.keys[0];
      const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      const range = (pair?.key as { range?: number[] } | undefined)?.range;
      if (range) return { file, ...at(range[0]!), message: `unknown key '${key}'` };
    }
  }
  if (issue.code === "invalid_type" && issue.input === undefined)
    message = `missing ${String(path.at(-1))}: ${message}`;
  const where = path.length ? `${path.join(".")}: ` : "";
  return { file, ...posOf(doc, path, at), message: `${where}${message}` };
}
