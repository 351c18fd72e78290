import type { PacketState } from "../analysis/iptables-eval.js";
import { formatDiagnostic } from "../model/ruleset.js";
import { parseIptables } from "../platforms/iptables/parse.js";
import {
  FRAGMENT_KINDS,
  type FragmentKind,
  IptablesTraceError,
  PACKET_STATES,
  renderBatchJsonl,
  renderTraceText,
  traceIptables,
  traceIptablesBatch,
} from "../platforms/iptables/trace.js";
import { readInput } from "./files.js";
import { EXIT, type Io, UsageError } from "./io.js";
import { packetFields, type TraceFlags, ttlOf } from "./trace-flags.js";

/** `tunnelcheck trace --iptables FILE`: one packet, a symbolic source set, or a JSONL batch. */
export async function runIptablesTrace(o: TraceFlags, io: Io): Promise<number> {
  const { file, text, bytes } = await readInput(o.iptables!, io);
  const { ruleset, errors, warnings } = parseIptables(text, bytes ? { file, bytes } : { file });
  if (errors.length > 0) throw new UsageError(errors.map(formatDiagnostic).join("\n"));
  // Warnings can change the answer (an unterminated quote, an unknown target): on stderr, so
  // JSON output stays clean.
  for (const d of warnings) io.stderr.write(`tunnelcheck: ${formatDiagnostic(d)}\n`);
  const opts = o.local && o.local.length > 0 ? { hostAddresses: o.local } : {};
  try {
    if (o.packets !== undefined) {
      if (o.format !== "jsonl" && o.format !== "json")
        throw new UsageError("--packets prints JSON lines: add --format jsonl");
      const batch = await readInput(o.packets, io);
      const results = traceIptablesBatch(ruleset, batch.text, opts);
      io.stdout.write(renderBatchJsonl(results));
      // Every line is answered in order; lines that are not packets make the run an input error.
      const bad = results.filter((r) => "error" in r).length;
      if (bad === 0) return EXIT.ok;
      io.stderr.write(
        `tunnelcheck: ${bad} of ${results.length} lines of ${batch.file} could not be traced (their output lines carry "error")\n`,
      );
      return EXIT.usage;
    }
    if (o.format === "jsonl") throw new UsageError("--format jsonl goes with --packets FILE.jsonl");
    const state = o.state ?? "new";
    if (!(PACKET_STATES as readonly string[]).includes(state)) {
      throw new UsageError(`invalid --state '${state}'; allowed: ${PACKET_STATES.join(", ")}`);
    }
    const t = traceIptables(
      ruleset,
      {
        ...packetFields(o),
        ...(o.ttl !== undefined ? { ttl: ttlOf(o.ttl) } : {}),
        ...(o.iif !== undefined ? { iif: o.iif } : {}),
        state: state as PacketState,
        ipsec: o.ipsec,
        ...fragmentOf(o),
      },
      opts,
    );
    io.stdout.write(o.format === "json" ? `${JSON.stringify(t, null, 2)}\n` : renderTraceText(t));
    return EXIT.ok;
  } catch (e) {
    if (e instanceof IptablesTraceError) throw new UsageError(e.message);
    throw e;
  }
}

/** `--fragment first|later|last` and `--frag-id N` (IPv6 Fragment header identification). */
export function fragmentOf(o: TraceFlags): { fragment?: FragmentKind; fragId?: number } {
  if (o.fragment === undefined) {
    if (o.fragId !== undefined) throw new UsageError("--frag-id goes with --fragment first|later|last");
    return {};
  }
  if (!(FRAGMENT_KINDS as readonly string[]).includes(o.fragment))
    throw new UsageError(`invalid --fragment '${o.fragment}'; allowed: ${FRAGMENT_KINDS.join(", ")}`);
  if (o.fragId !== undefined && (!/^\d{1,10}$/.test(o.fragId) || Number(o.fragId) > 0xffffffff))
    throw new UsageError(`invalid --frag-id '${o.fragId}': expected 0-4294967295`);
  return {
    fragment: o.fragment as FragmentKind,
    ...(o.fragId !== undefined ? { fragId: Number(o.fragId) } : {}),
  };
}
