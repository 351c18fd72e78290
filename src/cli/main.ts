import { Command, CommanderError, Option } from "commander";
import { TARGETS } from "../platforms/targets.js";
import { TargetError } from "../platforms/types.js";
import { ScenarioError } from "../vpn/scenario.js";
import type { AuditFlags } from "./audit.js";
import { EXIT, type Io, UsageError } from "./io.js";
import type { runPlan, runRules } from "./plan.js";
import { withScenarioOptions } from "./scenario-options.js";
import type { SimulateFlags } from "./simulate.js";
import type { TraceFlags } from "./trace-flags.js";
import { VERSION } from "./version.js";

// Commands load their implementation on use: a trace should not pay for zod, yaml or the simulator.

function build(io: Io, setExit: (c: number) => void): Command {
  const program = new Command()
    .name("tunnelcheck")
    .description(
      "What an IPsec / L2TP-over-IPsec VPN needs from your firewalls — and whether it will still work in an hour.",
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError("(run with --help for usage)");

  withScenarioOptions(
    program
      .command("plan")
      .description(
        "List the flows the VPN needs at the gateway (and at a NAT device in front of it), with reasons",
      )
      .exitOverride(),
  )
    .addOption(
      new Option("--format <format>", "output format").choices(["text", "json", "md"]).default("text"),
    )
    .action(async (o: Parameters<typeof runPlan>[0]) => setExit((await import("./plan.js")).runPlan(o, io)));

  withScenarioOptions(
    program
      .command("rules")
      .description("Print ready-to-apply, commented firewall rules for a platform")
      .exitOverride(),
  )
    .addOption(
      new Option("--target <target>", "rule syntax to produce").choices(TARGETS).makeOptionMandatory(),
    )
    .option(
      "--default-drop",
      "also set a default-drop input policy (loopback and established/related first)",
      false,
    )
    .option("--required-only", "leave out flows the plan marks optional", false)
    .option("--egress", "also emit rules for outbound flows (for a non-ACCEPT OUTPUT policy)", false)
    .action(async (o: Parameters<typeof runRules>[0]) =>
      setExit((await import("./plan.js")).runRules(o, io)),
    );
  withScenarioOptions(
    program
      .command("audit")
      .description("Check real firewall configs against what the VPN needs: now, and once sessions expire")
      .argument("[config]", "a FortiGate configuration backup (or an iptables-save file); - for stdin")
      .option("--iptables <file>", "an iptables-save / ip6tables-save file (give the scenario flags too)")
      .option("--fortios <file>", "a FortiOS configuration backup")
      .option("--topology <file>", "a YAML topology of several gateways and their tunnels")
      .option("--vdom <name>", "FortiOS VDOM to audit")
      .option("--ipset <file>", "`ipset save` output, so -m set matches are exact (iptables)")
      .option(
        "--address <addr>",
        "the host's own address (repeatable; iptables)",
        (v: string, p: string[]) => [...p, v],
        [] as string[],
      )
      .addOption(
        new Option("--format <format>", "output format")
          .choices(["text", "json", "sarif", "md"])
          .default("text"),
      )
      .addOption(
        new Option("--fail-on <severity>", "exit 1 when a finding has at least this severity")
          .choices(["error", "warning", "note", "none"])
          .default("error"),
      )
      .exitOverride(),
    { vpnRequired: false },
  ).action(async (config: string | undefined, o: AuditFlags, cmd: Command) => {
    // What the user typed (not defaults): flags that a topology file would silently override.
    const given = cmd.options
      .filter((opt) => cmd.getOptionValueSource(opt.attributeName()) === "cli")
      .map((opt) => opt.long ?? opt.flags);
    setExit(await (await import("./audit.js")).runAuditCommand(o, config, io, given));
  });

  program
    .command("trace")
    .description("Decide one packet (or a set of sources) the way the firewall does, rule by rule")
    .option("--fortios <file>", "a FortiOS configuration backup")
    .option("--iptables <file>", "an iptables-save file")
    .option("--src <addr>", "source address, prefix, or any (symbolic)", "any")
    .option(
      "--dst <addr>",
      "destination (default: the host's address; --src any: any of the host's addresses, or the --local ones)",
    )
    .option("--proto <proto>", "protocol name or number", "udp")
    .option("--sport <port>", "source port")
    .option("--dport <port>", "destination port")
    .option("--icmp-type <type[/code]>", "ICMP / ICMPv6 type and optional code (e.g. 135 or 3/4)")
    .option("--ttl <n>", "IPv4 TTL / IPv6 hop limit as the packet arrives (iptables: -m ttl, -m hl)")
    .option("--iif <iface>", "incoming interface")
    .option("--state <state>", "new | established | related | invalid | untracked (default new)")
    .option("--ipsec", "the packet arrived inside IPsec", false)
    .option(
      "--fragment <which>",
      "a fragment of a larger datagram: first | later | last (iptables; ports are the datagram's)",
    )
    .option("--frag-id <n>", "IPv6 Fragment header identification, with --fragment (-m frag --fragid)")
    .option("--vdom <name>", "FortiOS VDOM")
    .option(
      "--local <addr>",
      "the host's own address (repeatable; iptables)",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option("--packets <file>", "a JSONL file of packets to trace in one run (iptables, with --format jsonl)")
    .addOption(
      new Option("--format <format>", "output format").choices(["text", "json", "jsonl"]).default("text"),
    )
    .exitOverride()
    .action(async (o: TraceFlags) =>
      setExit(
        // An iptables trace goes straight to its module (the FortiOS parser is not loaded);
        // anything else, including the "exactly one of" error, through trace.ts.
        o.iptables !== undefined && o.fortios === undefined
          ? await (await import("./trace-iptables.js")).runIptablesTrace(o, io)
          : await (await import("./trace.js")).runTraceCommand(o, io),
      ),
    );
  program
    .command("simulate")
    .description("Run the tunnels through virtual hours and days: IKE SAs, DPD, rekeys, DELETE, sessions")
    .option(
      "--topology <file>",
      "gateways, tunnels and a simulate: section (duration, initiator, traffic, overrides)",
    )
    .option("--duration <d>", "virtual time to simulate, e.g. 2h, 7d (overrides the file)")
    .option("--initiator <gateway>", "who brings the tunnel up first (overrides the file)")
    .option("--seed <n>", "seed for rekey jitter (same seed, same run)")
    .addOption(
      new Option("--level <level>", "timeline detail").choices(["state", "info", "debug"]).default("info"),
    )
    .addOption(
      new Option("--format <format>", "output format").choices(["text", "json", "svg", "md"]).default("text"),
    )
    .addOption(
      new Option("--fail-on <what>", "exit 1 when the run shows an anomaly")
        .choices(["anomaly", "none"])
        .default("anomaly"),
    )
    .exitOverride()
    .action(async (o: SimulateFlags) =>
      setExit(await (await import("./simulate.js")).runSimulateCommand(o, io)),
    );
  return program;
}

/**
 * Control characters of a message as `\xNN`: an error about a binary file (a pcap given as a
 * ruleset) quotes its first bytes, and raw bytes can reconfigure the user's terminal.
 */
export function printable(message: string): string {
  let out = "";
  for (const ch of message) {
    const c = ch.codePointAt(0)!;
    const control = (c < 0x20 && c !== 0x0a && c !== 0x09) || (c >= 0x7f && c <= 0x9f);
    out += control ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
  }
  return out;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it in-process. */
export async function main(argv: string[], io: Io): Promise<number> {
  let code: number = EXIT.ok;
  const program = build(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0
        ? EXIT.ok
        : EXIT.usage;
    }
    if (e instanceof UsageError || e instanceof ScenarioError || e instanceof TargetError) {
      io.stderr.write(`tunnelcheck: ${printable(e.message)}\n`);
      return EXIT.usage;
    }
    // An unexpected failure is our bug: say so briefly, keep the stack out of users' terminals.
    io.stderr.write(`tunnelcheck: internal error: ${printable((e as Error).message)}\n`);
    if (process.env.TUNNELCHECK_DEBUG) io.stderr.write(`${(e as Error).stack}\n`);
    return 3;
  }
}
