import { LocalInQueryError, pickVdom, vdomOfInterface } from "../platforms/fortios/localin.js";
import { type FortiosModel, loadFortios } from "../platforms/fortios/model.js";
import { formatDiagnostic } from "../platforms/fortios/parse.js";
import {
  type FortiosSymbolicTrace,
  type FortiosTrace,
  FortiosTraceError,
  type FortiosTracePacket,
  renderTraceText,
  type TraceVisit,
  traceFortios,
} from "../platforms/fortios/trace.js";
import { readInput } from "./files.js";
import { EXIT, type Io, UsageError } from "./io.js";
import { icmpOf, port, type TraceFlags } from "./trace-flags.js";

export async function runTraceCommand(o: TraceFlags, io: Io): Promise<number> {
  if ((o.fortios === undefined) === (o.iptables === undefined))
    throw new UsageError("give exactly one of --fortios FILE or --iptables FILE");
  if (o.iptables !== undefined) {
    return (await import("./trace-iptables.js")).runIptablesTrace(o, io);
  }
  if (o.format === "jsonl") throw new UsageError("--format jsonl goes with --iptables --packets");
  if (o.ttl !== undefined)
    throw new UsageError(
      "--ttl is for iptables traces (-m ttl / -m hl); FortiOS local-in policies do not match it",
    );
  const { file, text } = await readInput(o.fortios!, io);
  const { parse, model } = loadFortios(text, { file });
  // Errors only come from the parser (the model reports warnings and info); reading
  // `model.diagnostics` would also build the forward policy table, which a trace never needs.
  const errors = parse.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) throw new UsageError(errors.map(formatDiagnostic).join("\n"));
  // Parser warnings can change the answer (an unbalanced quote hiding policies): on stderr, so
  // --format json stays clean.
  for (const d of parse.diagnostics)
    if (d.severity === "warning") io.stderr.write(`tunnelcheck: ${formatDiagnostic(d)}\n`);
  if (o.iif === undefined)
    throw new UsageError(
      "--iif is required for a FortiOS trace (local-in policies match the incoming interface)",
    );
  if (o.state !== undefined && o.state !== "new" && o.state !== "established") {
    throw new UsageError(`invalid --state '${o.state}' for FortiOS; allowed: new, established`);
  }
  const packet: FortiosTracePacket = {
    src: o.src ?? "any",
    ...(o.dst !== undefined ? { dst: o.dst } : {}),
    proto: o.proto ?? "udp",
    ...(o.sport !== undefined ? { sport: port(o.sport, "sport")! } : {}),
    ...(o.dport !== undefined ? { dport: port(o.dport, "dport")! } : {}),
    ...icmpOf(o.icmpType),
    iif: o.iif,
    ...(o.state ? { state: o.state as "new" | "established" } : {}),
    ipsec: o.ipsec,
    ...(o.vdom !== undefined ? { vdom: o.vdom } : {}),
  };
  const trace = (p: FortiosTracePacket): FortiosTrace | FortiosSymbolicTrace => {
    try {
      return traceFortios(model, p);
    } catch (e) {
      if (e instanceof FortiosTraceError) throw new UsageError(e.message);
      throw e;
    }
  };
  const t = trace(packet);
  const ingress = ingressOf(model, t, packet, trace);
  const out = { ...t, ingress };
  io.stdout.write(
    o.format === "json" ? `${JSON.stringify(out, null, 2)}\n` : withIngress(renderTraceText(t), ingress),
  );
  return EXIT.ok;
}

/** One tunnel's local-in walk, when the tunnel a decapsulated packet came through is not known. */
export interface TunnelWalk {
  interface: string;
  verdict: FortiosTrace["verdict"];
  explanation: string;
  visited: TraceVisit[];
  notes: string[];
}

/**
 * Which interface the local-in policies were matched against. FortiOS hands a decapsulated packet
 * to local-in as entering on the tunnel interface of its phase1-interface (named like the
 * phase1), not on the physical interface (--iif) the ESP arrived on.
 */
export interface TraceIngress {
  /** --iif as given. */
  given: string;
  ipsec: boolean;
  /** The interface the policies were evaluated on; null when it cannot be determined. */
  evaluatedOn: string | null;
  /** The phase1-interface whose tunnel that is (ipsec only). */
  phase1: string | null;
  /** ipsec: the phase1-interfaces the packet may have come through (bound to --iif, or --iif itself). */
  candidates: string[];
  /** In words, as the text output says it. */
  reason: string;
  /** Several candidates (single source only): each tunnel's walk; `visited` is then empty. */
  walks?: TunnelWalk[];
}

function ingressOf(
  model: FortiosModel,
  t: FortiosTrace | FortiosSymbolicTrace,
  packet: FortiosTracePacket,
  trace: (p: FortiosTracePacket) => FortiosTrace | FortiosSymbolicTrace,
): TraceIngress {
  const given = packet.iif;
  if (!packet.ipsec)
    return {
      given,
      ipsec: false,
      evaluatedOn: given,
      phase1: null,
      candidates: [],
      reason: "as given (--iif)",
    };
  let phase1: Map<string, { name: string; interface?: string }>;
  try {
    const vdom = t.kind === "packet" ? t.packet.vdom : (packet.vdom ?? vdomOfInterface(model, given));
    phase1 = pickVdom(model, vdom).phase1;
  } catch (e) {
    if (e instanceof LocalInQueryError) throw new UsageError(e.message);
    throw e;
  }
  const own = phase1.get(given);
  if (own) {
    return {
      given,
      ipsec: true,
      evaluatedOn: given,
      phase1: given,
      candidates: [given],
      reason: `arrived via IPsec: evaluated as entering on tunnel interface ${given} (phase1 ${given}${own.interface ? `, bound to ${own.interface}` : ""}), as given`,
    };
  }
  const candidates = [...phase1.values()].filter((p) => p.interface === given).map((p) => p.name);
  if (candidates.length === 1) {
    const tunnel = candidates[0]!;
    return {
      given,
      ipsec: true,
      evaluatedOn: tunnel,
      phase1: tunnel,
      candidates,
      reason: `arrived via IPsec: evaluated as entering on tunnel interface ${tunnel} (phase1 ${tunnel}), not ${given}`,
    };
  }
  if (candidates.length === 0) {
    return {
      given,
      ipsec: true,
      evaluatedOn: null,
      phase1: null,
      candidates,
      reason: `arrived via IPsec: no tunnel interface to evaluate it on — no phase1-interface in VDOM ${t.kind === "packet" ? t.packet.vdom : "of the trace"} is bound to ${given}`,
    };
  }
  const ingress: TraceIngress = {
    given,
    ipsec: true,
    evaluatedOn: null,
    phase1: null,
    candidates,
    reason: `arrived via IPsec: the tunnel interface cannot be determined — phase1-interfaces ${candidates.join(", ")} are all bound to ${given}; the verdict is for each of them (unknown where they differ)${t.kind === "packet" && t.visited.length > 0 ? ", and each one's local-in walk follows" : ""}`,
  };
  if (t.kind === "packet" && t.visited.length > 0 && t.packet.dst !== "?") {
    // The walk traceFortios shows is the first tunnel's: replace it by every candidate's.
    const walks: TunnelWalk[] = [];
    for (const tunnel of candidates) {
      let w: FortiosTrace | FortiosSymbolicTrace;
      try {
        w = trace({ ...packet, iif: tunnel, dst: t.packet.dst, vdom: t.packet.vdom });
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        walks.push({ interface: tunnel, verdict: "unknown", explanation: e.message, visited: [], notes: [] });
        continue;
      }
      if (w.kind !== "packet") continue;
      walks.push({
        interface: tunnel,
        verdict: w.verdict,
        explanation: w.explanation,
        visited: w.visited,
        notes: w.notes,
      });
    }
    const first = walks[0]?.notes ?? [];
    const tail = t.notes.slice(t.notes.length - first.length);
    if (first.length > 0 && tail.every((n, i) => n === first[i]))
      t.notes.splice(t.notes.length - first.length);
    t.visited = [];
    ingress.walks = walks;
  }
  return ingress;
}

/** The trace's text with the ingress said after its first line (and each tunnel's walk). */
function withIngress(text: string, ingress: TraceIngress): string {
  if (!ingress.ipsec) return text;
  const lines = text.split("\n");
  const add = [`${ingress.reason}.`];
  for (const w of ingress.walks ?? []) {
    add.push(`  on tunnel interface ${w.interface}:`);
    for (const v of w.visited)
      add.push(`    local-in policy ${v.policy} (${v.file}:${v.line}): ${v.result}: ${v.why}`);
    add.push(`    ${w.explanation}`);
    for (const n of w.notes) add.push(`    note: ${n}`);
  }
  lines.splice(1, 0, ...add);
  return lines.join("\n");
}
