import { loadFortios } from "../platforms/fortios/model.js";
import { formatDiagnostic } from "../platforms/fortios/parse.js";
import { FortiosTraceError, renderTraceText, traceFortios } from "../platforms/fortios/trace.js";
import { readInput } from "./files.js";
import { EXIT, type Io, UsageError } from "./io.js";

export interface TraceFlags {
  packets?: string;
  local?: string[];
  fortios?: string;
  iptables?: string;
  src?: string;
  dst?: string;
  proto?: string;
  sport?: string;
  dport?: string;
  icmpType?: string;
  ttl?: string;
  iif?: string;
  state?: string;
  ipsec: boolean;
  vdom?: string;
  format: "text" | "json" | "jsonl";
}

/** `--icmp-type 135` or `3/4`: the type and the optional code, 0-255 each. */
export function icmpOf(v: string | undefined): { icmpType?: number; icmpCode?: number } {
  if (v === undefined) return {};
  const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(v);
  if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255))
    throw new UsageError(
      `invalid --icmp-type '${v}': expected TYPE or TYPE/CODE, 0-255 each (e.g. 135 or 3/4)`,
    );
  return { icmpType: Number(m[1]), ...(m[2] !== undefined ? { icmpCode: Number(m[2]) } : {}) };
}

export const port = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535)
    throw new UsageError(`invalid --${what} '${v}': expected a port 0-65535`);
  return Number(v);
};

/** `--ttl N`: IPv4 TTL / IPv6 hop limit, 0-255. */
export const ttlOf = (v: string): number => {
  if (!/^\d{1,3}$/.test(v) || Number(v) > 255) throw new UsageError(`invalid --ttl '${v}': expected 0-255`);
  return Number(v);
};

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
  let t: ReturnType<typeof traceFortios>;
  try {
    t = traceFortios(model, {
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
    });
  } catch (e) {
    if (e instanceof FortiosTraceError) throw new UsageError(e.message);
    throw e;
  }
  io.stdout.write(o.format === "json" ? `${JSON.stringify(t, null, 2)}\n` : renderTraceText(t));
  return EXIT.ok;
}
