import { loadFortios } from "../platforms/fortios/model.js";
import { formatDiagnostic } from "../platforms/fortios/parse.js";
import {
  FortiosTraceError,
  type FortiosTracePacket,
  renderTraceText,
  traceFortios,
} from "../platforms/fortios/trace.js";
import { readInput } from "./files.js";
import { EXIT, type Io, UsageError } from "./io.js";
import { packetFields, type TraceFlags } from "./trace-flags.js";

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
  if (o.fragment !== undefined || o.fragId !== undefined)
    throw new UsageError(
      "--fragment and --frag-id are for iptables traces; a FortiOS trace decides whole packets",
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
    ...packetFields(o),
    iif: o.iif,
    ...(o.state ? { state: o.state as "new" | "established" } : {}),
    ipsec: o.ipsec,
    ...(o.vdom !== undefined ? { vdom: o.vdom } : {}),
  };
  let t: ReturnType<typeof traceFortios>;
  try {
    t = traceFortios(model, packet);
  } catch (e) {
    if (e instanceof FortiosTraceError) throw new UsageError(e.message);
    throw e;
  }
  io.stdout.write(o.format === "json" ? `${JSON.stringify(t, null, 2)}\n` : renderTraceText(t));
  return EXIT.ok;
}
