/**
 * Harness of the differential kernel test: a gateway namespace with two client namespaces in front of it,
 * long-lived packet agents (diff-pkt.py) in each, a ruleset loaded with `iptables-restore`, probes sent and
 * the kernel's verdict read off (delivered / rejected / dropped), the engine asked for the same packets,
 * and failing cases written out for replay.
 *
 *   client a (eth0, 02:00:00:00:0a:01)  ──  gw eth0  192.0.2.1, 192.0.2.2
 *     192.0.2.10 .77 .200, 203.0.113.10 .100
 *   client b (eth0, 02:00:00:00:0b:01)  ──  gw ppp0  198.51.100.1, 198.51.100.2
 *     198.51.100.10 .130 .250, 203.0.113.140 .200
 *                                            gw lo    203.0.113.1
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type EvalOptions, evaluateTable, type Packet } from "../../src/analysis/iptables-eval.js";
import { formatAddress, parsePrefix } from "../../src/model/address.js";
import { AddrSet } from "../../src/model/addrset.js";
import { formatDiagnostic } from "../../src/model/ruleset.js";
import { BUILTIN_CHAINS, type Rule, type Ruleset } from "../../src/platforms/iptables/model.js";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { type ClientId, GW_ADDRS, IPSETS, NET, type Probe, type WirePacket } from "./diff-gen.js";
import { inNs, run } from "./netns.js";

export const DIFF_PKT = fileURLToPath(new URL("./diff-pkt.py", import.meta.url));
export const FAILURE_DIR = fileURLToPath(new URL("../.failures/", import.meta.url));

export type Backend = "nft" | "legacy";
const RESTORE: Record<Backend, string> = { nft: "iptables-restore", legacy: "iptables-legacy-restore" };

// ---------------------------------------------------------------------------------------------
// Agents

/** A diff-pkt.py process in a namespace: one JSON request, one JSON answer, in order. */
class Agent {
  private buf = "";
  private queue: Array<{ resolve: (v: AgentReply) => void; reject: (e: Error) => void }> = [];
  private err = "";
  private dead: Error | null = null;
  private constructor(
    readonly ns: string,
    private child: ReturnType<typeof spawn>,
  ) {
    child.stdout!.on("data", (d: Buffer) => {
      this.buf += d.toString();
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const waiter = this.queue.shift();
        if (!waiter) continue;
        try {
          waiter.resolve(JSON.parse(line) as AgentReply);
        } catch (e) {
          waiter.reject(new Error(`agent in ${ns}: bad reply ${line}: ${String(e)}`));
        }
      }
    });
    child.stderr!.on("data", (d: Buffer) => {
      this.err += d.toString();
    });
    child.on("close", (code) => {
      this.dead = new Error(`agent in ${ns} exited ${code}: ${this.err.trim()}`);
      for (const w of this.queue.splice(0)) w.reject(this.dead);
    });
    child.stdin!.on("error", () => {});
  }

  static async start(ns: string, role: "gw" | "client"): Promise<Agent> {
    const child = spawn("ip", ["netns", "exec", ns, "python3", "-S", DIFF_PKT, role], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const a = new Agent(ns, child);
    const ready = await a.wait();
    if (!ready.ok) throw new Error(`agent in ${ns} failed to start: ${JSON.stringify(ready)}`);
    return a;
  }

  private wait(): Promise<AgentReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }

  async request(cmd: Record<string, unknown>): Promise<AgentReply> {
    const p = this.wait();
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const r = await p;
    if (!r.ok) throw new Error(`agent in ${this.ns}: ${JSON.stringify(cmd).slice(0, 200)} -> ${r.error}`);
    return r;
  }

  close(): void {
    this.child.stdin!.end();
  }
}

interface Captured {
  src: string;
  dst: string;
  proto: number;
  len: number;
  ttl: number;
  sport?: number;
  dport?: number;
  flags?: number;
  icmpType?: number;
  icmpCode?: number;
  token: string | null;
}

interface AgentReply {
  ok: boolean;
  error?: string;
  packets?: Captured[];
  errors?: Array<{ token: string; error: string }>;
}

// ---------------------------------------------------------------------------------------------
// The network

export interface DiffNet {
  gw: string;
  clients: Record<ClientId, string>;
  backend: Backend;
  ipset: boolean;
  /** Replaces the gateway's whole iptables ruleset (every table) and empties its conntrack table. */
  load(text: string): Promise<void>;
  /**
   * Sends the probes (set-up packets first) and reads off the kernel's verdicts after `linger` seconds
   * (default 0.05: veth delivers within the sender's system call, replies included, unless softirq work is
   * deferred on a loaded machine; the test retries a ruleset that disagrees with a long linger).
   */
  probe(probes: readonly Probe[], linger?: number): Promise<Map<string, KernelResult>>;
  destroy(): Promise<void>;
}

let counter = 0;

const TABLES = ["raw", "mangle", "nat", "filter", "security"] as const;
/** Every table empty, every built-in chain ACCEPT: what "no ruleset" is for iptables-legacy. */
const BLANK = TABLES.map(
  (t) => `*${t}\n${BUILTIN_CHAINS[t].map((c) => `:${c} ACCEPT [0:0]`).join("\n")}\nCOMMIT\n`,
).join("");

const nft = (ns: string, text: string) => inNs(ns, ["nft", "-f", "-"], { input: text });

/** Builds the three namespaces and starts the agents; everything is torn down on failure. */
export async function createDiffNet(opts: { backend?: Backend } = {}): Promise<DiffNet> {
  const backend = opts.backend ?? "nft";
  // The "tc-<pid>-" prefix lets netns.ts's sweepNamespaces() clean up after a crash.
  const base = `tc-${process.pid}-d${++counter}`;
  const gw = `${base}-gw`;
  const clients: Record<ClientId, string> = { a: `${base}-ca`, b: `${base}-cb` };
  const all = [gw, clients.a, clients.b];
  const created: string[] = [];
  const agents: Agent[] = [];
  const destroy = async () => {
    for (const a of agents.splice(0)) a.close();
    await Promise.all(created.splice(0).map((ns) => run("ip", ["netns", "del", ns], { check: false })));
  };
  const ip = (ns: string, ...args: string[]) => run("ip", ["-n", ns, ...args]);
  const sysctl = (ns: string, ...kv: string[]) => inNs(ns, ["sysctl", "-q", "-w", ...kv]);
  try {
    for (const ns of all) {
      await run("ip", ["netns", "add", ns]);
      created.push(ns);
      await ip(ns, "link", "set", "lo", "up");
    }
    for (const id of ["a", "b"] as const) {
      const c = NET.clients[id];
      const cl = clients[id];
      await run("ip", [
        "link",
        "add",
        c.gwIface,
        "netns",
        gw,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        cl,
      ]);
      await ip(cl, "link", "set", "eth0", "address", c.mac);
      await ip(cl, "link", "set", "eth0", "up");
      await ip(gw, "link", "set", c.gwIface, "up");
      for (const a of c.gwAddrs) await ip(gw, "addr", "add", `${a}/24`, "dev", c.gwIface);
      for (const a of c.addrs)
        await ip(cl, "addr", "add", `${a}/${a.startsWith("203.") ? 32 : 24}`, "dev", "eth0");
      await ip(cl, "route", "add", "default", "via", c.gwAddrs[0]!);
      // The gateway reaches the client's 203.0.113.x addresses through the client's first address.
      await ip(gw, "route", "add", id === "a" ? "203.0.113.0/25" : "203.0.113.128/25", "via", c.addrs[0]!);
    }
    for (const a of NET.gwExtra) await ip(gw, "addr", "add", `${a}/32`, "dev", "lo");
    // No reverse-path filter (sources come from any link), and no ICMP rate limit: REJECT must always answer.
    const rp = ["all", "default", "lo", ...Object.values(NET.clients).map((c) => c.gwIface)];
    await sysctl(gw, ...rp.map((d) => `net.ipv4.conf.${d}.rp_filter=0`));
    for (const ns of all)
      await sysctl(
        ns,
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv4.icmp_ratemask=0",
        "net.ipv4.icmp_msgs_per_sec=100000",
      );
    // Conntrack always on in the gateway (a ct rule in a table of its own that never decides anything), so
    // the gateway's set-up packets leave connections behind whatever the ruleset under test contains.
    await nft(
      gw,
      "table inet tcdiff_keep {\n chain pre {\n  type filter hook prerouting priority 300; policy accept;\n  ct state invalid counter\n }\n}\n",
    );
    // Conntrack does not judge checksums: a packet's state depends on its protocol exchange only (the engine
    // is told the state). This kernel checks UDP-Lite checksums with UDP's pseudo-header protocol (17, not
    // 136), so with checking on a correct UDP-Lite datagram would be INVALID. (Set after the table above:
    // where nf_conntrack is a module, its sysctls exist only once something uses it.)
    await sysctl(gw, "net.netfilter.nf_conntrack_checksum=0");
    // The clients drop what the gateway's set-up packets would otherwise make them answer (port
    // unreachables, resets), which would disturb the gateway's connections.
    for (const id of ["a", "b"] as const) {
      await nft(
        clients[id],
        "table inet tcdiff_client {\n chain in {\n  type filter hook input priority 0; policy accept;\n" +
          "  meta l4proto udp drop\n  tcp flags & (syn|ack|rst|fin) == syn drop\n  meta l4proto { esp, ah } drop\n }\n}\n",
      );
    }
    let ipset = false;
    const ipsetOk = await run("ipset", ["--version"], { check: false }).catch(() => ({ code: 1 }));
    if (ipsetOk.code === 0) {
      const lines = IPSETS.flatMap((s) => [
        `create ${s.name} ${s.type}`,
        ...s.members.map((m) => `add ${s.name} ${m}`),
      ]);
      await inNs(gw, ["ipset", "restore"], { input: `${lines.join("\n")}\n` });
      ipset = true;
    }
    const gwAgent = await Agent.start(gw, "gw");
    agents.push(gwAgent);
    const cl: Record<ClientId, Agent> = {
      a: await Agent.start(clients.a, "client"),
      b: await Agent.start(clients.b, "client"),
    };
    agents.push(cl.a, cl.b);
    const restore = RESTORE[backend];
    return {
      gw,
      clients,
      backend,
      ipset,
      async load(text) {
        // iptables-restore replaces only the tables its input names: clear all of them first, so nothing of
        // the previous ruleset survives (iptables-nft: delete the tables; legacy tables cannot be removed
        // from a namespace, so they are emptied with ACCEPT policies, which filters nothing).
        const script =
          backend === "nft"
            ? `nft -f - <<'EOF'\n${TABLES.map((t) => `table ip ${t} {}\ndelete table ip ${t}`).join("\n")}\nEOF\n${restore}`
            : `${restore}`;
        const input = backend === "nft" ? text : `${BLANK}${text}`;
        const r = await inNs(gw, ["sh", "-c", `${script} && { conntrack -F >/dev/null 2>&1 || true; }`], {
          input,
          check: false,
        });
        if (r.code !== 0)
          throw new Error(`${restore} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      },
      async probe(probes, linger = 0.05) {
        await Promise.all([
          gwAgent.request({ cmd: "reset" }),
          cl.a.request({ cmd: "reset" }),
          cl.b.request({ cmd: "reset" }),
        ]);
        const setups = probes.flatMap((p) => (p.setup ? [p.setup] : []));
        const sent = await gwAgent.request({ cmd: "send", packets: setups });
        if (sent.errors?.length)
          throw new Error(`gateway set-up packets failed: ${JSON.stringify(sent.errors)}`);
        const wires = (id: ClientId): WirePacket[] =>
          probes.flatMap((p) => (p.client === id && p.wire ? [p.wire] : []));
        const sends = await Promise.all([
          cl.a.request({ cmd: "send", packets: wires("a") }),
          cl.b.request({ cmd: "send", packets: wires("b") }),
        ]);
        for (const s of sends)
          if (s.errors?.length) throw new Error(`client probes failed: ${JSON.stringify(s.errors)}`);
        const [g, a, b] = await Promise.all([
          gwAgent.request({ cmd: "collect", linger }),
          cl.a.request({ cmd: "collect", linger }),
          cl.b.request({ cmd: "collect", linger }),
        ]);
        return readVerdicts(probes, g.packets ?? [], [...(a.packets ?? []), ...(b.packets ?? [])]);
      },
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts

export type Verdict = "accept" | "drop" | "reject";

export interface KernelResult {
  verdict: Verdict;
  /** How the rejection showed: `icmp 3/13` or `tcp-reset`. */
  reject?: string;
  /** What the gateway's raw socket saw of a delivered probe: must match the probe's facts. */
  seen?: { len: number; ttl: number; src: string; dst: string };
}

const rstKey = (src: string, sport: number | undefined, dst: string, dport: number | undefined) =>
  `${src}:${sport}>${dst}:${dport}`;

/** Delivered if the gateway saw it; else rejected if the client got an ICMP error or a reset for it; else dropped. */
function readVerdicts(probes: readonly Probe[], gw: Captured[], cl: Captured[]): Map<string, KernelResult> {
  const seen = new Map(gw.flatMap((c) => (c.token ? [[c.token, c] as const] : [])));
  const icmp = new Map(cl.flatMap((c) => (c.proto === 1 && c.token ? [[c.token, c] as const] : [])));
  const rst = new Set(cl.filter((c) => c.proto === 6).map((c) => rstKey(c.dst, c.dport, c.src, c.sport)));
  const out = new Map<string, KernelResult>();
  for (const p of probes) {
    const s = seen.get(p.id);
    if (s) {
      out.set(p.id, { verdict: "accept", seen: { len: s.len, ttl: s.ttl, src: s.src, dst: s.dst } });
      continue;
    }
    const e = icmp.get(p.id);
    if (e) out.set(p.id, { verdict: "reject", reject: `icmp ${e.icmpType}/${e.icmpCode}` });
    else if (p.proto === "tcp" && rst.has(rstKey(p.src, p.sport, p.dst, p.dport)))
      out.set(p.id, { verdict: "reject", reject: "tcp-reset" });
    else out.set(p.id, { verdict: "drop" });
  }
  return out;
}

/** What each `--reject-with` looks like at the sender. */
export const REJECT_SHOWS: Readonly<Record<string, string>> = {
  "icmp-net-unreachable": "icmp 3/0",
  "icmp-host-unreachable": "icmp 3/1",
  "icmp-proto-unreachable": "icmp 3/2",
  "icmp-port-unreachable": "icmp 3/3",
  "icmp-net-prohibited": "icmp 3/9",
  "icmp-host-prohibited": "icmp 3/10",
  "icmp-admin-prohibited": "icmp 3/13",
  "tcp-reset": "tcp-reset",
};

// ---------------------------------------------------------------------------------------------
// The engine

const A = (s: string) => parsePrefix(s).addr;
const PROTO_NUM = { icmp: 1, tcp: 6, udp: 17, dccp: 33, esp: 50, ah: 51, sctp: 132, udplite: 136 } as const;

/** The host's addresses as `-m addrtype LOCAL` sees them. */
export const ENGINE_OPTS: EvalOptions = {
  local: AddrSet.fromPrefixes(4, [
    ...GW_ADDRS.map((a) => parsePrefix(`${a}/32`)),
    parsePrefix("127.0.0.0/8"),
  ]),
  ipsets: new Map(
    IPSETS.map((s) => [
      s.name,
      AddrSet.fromPrefixes(
        4,
        s.members.map((m) => parsePrefix(m.includes("/") ? m : `${m}/32`)),
      ),
    ]),
  ),
};

/**
 * The whole path also needs the subnets' directed broadcasts (the gateway's addresses are /24s): the
 * kernel delivers 192.0.2.255 locally through its local table's `broadcast` route.
 */
const PATH_OPTS = {
  ...ENGINE_OPTS,
  origin: "incoming" as const,
  broadcast: AddrSet.fromPrefixes(
    4,
    Object.values(NET.clients).map((c) => parsePrefix(`${c.broadcast}/32`)),
  ),
};

/** The probe as the engine sees it at the gateway's INPUT hook: every fact the kernel knows is given. */
export function enginePacket(p: Probe): Packet {
  const side = NET.clients[p.client];
  return {
    family: 4,
    src: A(p.src),
    dst: A(p.dst),
    proto: PROTO_NUM[p.proto],
    ...(p.sport !== undefined ? { sport: p.sport } : {}),
    ...(p.dport !== undefined ? { dport: p.dport } : {}),
    ...(p.icmpType !== undefined ? { icmpType: p.icmpType, icmpCode: p.icmpCode ?? 0 } : {}),
    ...(p.tcpFlags !== undefined ? { tcpFlags: p.tcpFlags } : {}),
    ...(p.spi !== undefined ? { spi: p.spi } : {}),
    iif: side.gwIface,
    oif: "",
    state: p.state,
    ...(p.state === "new" ? { ctDir: "ORIGINAL" as const } : {}),
    ...(p.state === "established" || p.state === "related" ? { ctDir: "REPLY" as const } : {}),
    // The connection the gateway opened (for a RELATED ICMP error, its master): the kernel knows it.
    ...(p.setup && (p.state === "established" || p.state === "related")
      ? {
          ctTuple: {
            proto: PROTO_NUM[p.setup.proto],
            src: A(p.setup.src),
            dst: A(p.setup.dst),
            ...(p.setup.sport !== undefined ? { sport: p.setup.sport } : {}),
            ...(p.setup.dport !== undefined ? { dport: p.setup.dport } : {}),
          },
        }
      : {}),
    ipsec: false,
    ipsecSas: [],
    mark: 0,
    ctmark: 0,
    length: p.length,
    ttl: p.ttl,
    mac: side.mac,
    fragment: false,
    pktType: p.broadcast ? "broadcast" : "unicast",
  };
}

export interface EngineResult {
  verdict: Verdict | "unknown";
  /** The deciding rule (line and text), null for a chain policy. */
  rule: { line: number; text: string } | null;
  /** `--reject-with` of the deciding rule. */
  rejectWith?: string;
  /** Why the engine was unsure, when unknown. */
  why?: string;
  /** Not compared, and why (a known gap). */
  skipped?: string;
  /** The packet as the engine's whole path leaves it (several tables only), to compare with what arrived. */
  final?: { src: string; dst: string; ttl: number; len: number };
  /** The whole-path evaluator's answer, when it exists and disagrees with the filter INPUT one. */
  path?: { verdict: string; rule: { line: number; text: string } | null; why?: string };
}

export function parseRuleset(text: string, file = "diff.rules"): Ruleset {
  const r = parseIptables(text, { file, family: 4 });
  if (r.errors.length > 0)
    throw new Error(`engine parse errors:\n${r.errors.map(formatDiagnostic).join("\n")}`);
  return r.ruleset;
}

/**
 * The whole-path evaluator (src/analysis/iptables-path.ts), typed by the part used here. It is loaded at run
 * time so this test works with or without it: with it, every probe is also walked along its whole path
 * (raw…nat PREROUTING, routing, mangle…nat INPUT; only filter is populated here) and must agree with
 * filter INPUT alone and with the kernel.
 */
type EvaluatePath = (
  rs: Ruleset,
  pkt: Packet,
  opts: { local?: AddrSet; ipsets?: ReadonlyMap<string, AddrSet>; origin?: "incoming" },
) => {
  verdict: string;
  decision: { rule: Rule | null } | null;
  reason?: string;
  outcomes: Array<{ reason?: string; packet: Packet; assumed: Array<{ rule: Rule | null; why: string }> }>;
};

let evaluatePath: EvaluatePath | null = null;

/** Loads the whole-path evaluator if the source tree has one; returns whether it did. */
export async function loadPathEvaluator(): Promise<boolean> {
  const spec = "../../src/analysis/iptables-path.js";
  try {
    const m = (await import(spec)) as { evaluatePath?: EvaluatePath };
    evaluatePath = m.evaluatePath ?? null;
  } catch {
    evaluatePath = null;
  }
  return evaluatePath !== null;
}

const ruleRef = (rule: Rule | null | undefined) =>
  rule ? { line: rule.prov.line, text: rule.prov.text } : null;

const unknownWhy = (
  outcomes: Array<{ reason?: string; assumed: Array<{ rule: Rule | null; why: string }> }>,
) =>
  [
    ...new Set(
      outcomes.flatMap((o) => [
        ...(o.reason ? [o.reason] : []),
        ...o.assumed.map((a) => (a.rule ? `line ${a.rule.prov.line}: ${a.why}` : a.why)),
      ]),
    ),
  ].join("; ");

/** Whether the ruleset has tables other than filter (then only the whole-path evaluator can judge it). */
export const multiTable = (rs: Ruleset): boolean => [...rs.tables.keys()].some((t) => t !== "filter");

const show = (a: bigint) => formatAddress(4, a);

export function engineVerdict(rs: Ruleset, p: Probe): EngineResult {
  const pkt = enginePacket(p);
  const multi = multiTable(rs);
  if (multi && !evaluatePath) throw new Error("a ruleset with several tables needs the whole-path evaluator");
  const w = evaluatePath ? evaluatePath(rs, pkt, PATH_OPTS) : null;
  if (multi) {
    // Only the whole path is meaningful: filter INPUT alone would miss raw, mangle, nat and security.
    if (!w) return { verdict: "unknown", rule: null, skipped: "no whole-path evaluator" };
    const rule = w.decision?.rule ?? null;
    const final = w.outcomes[0]?.packet;
    return {
      verdict: w.verdict as EngineResult["verdict"],
      rule: ruleRef(rule),
      ...(rule?.target?.kind === "REJECT" ? { rejectWith: rule.target.with } : {}),
      ...(w.verdict === "unknown" ? { why: unknownWhy(w.outcomes) } : {}),
      ...(final
        ? {
            final: {
              src: show(final.src),
              dst: show(final.dst),
              ttl: final.ttl ?? -1,
              len: final.length ?? -1,
            },
          }
        : {}),
    };
  }
  const r = evaluateTable(rs, "filter", "INPUT", pkt, ENGINE_OPTS);
  const rule = r.rule as Rule | null;
  const out: EngineResult = { verdict: r.verdict, rule: ruleRef(rule) };
  if (rule?.target?.kind === "REJECT") out.rejectWith = rule.target.with;
  if (r.verdict === "unknown") out.why = unknownWhy(r.outcomes);
  if (w) {
    const wr = ruleRef(w.decision?.rule);
    if (w.verdict !== r.verdict || (r.verdict !== "accept" && wr?.line !== out.rule?.line)) {
      out.path = {
        verdict: w.verdict,
        rule: wr,
        ...(w.verdict === "unknown" ? { why: unknownWhy(w.outcomes) } : {}),
      };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparison and failure files

export interface CaseResult {
  probe: Probe;
  engine: EngineResult;
  kernel: KernelResult;
  /** Why the two disagree; undefined when they agree. */
  mismatch?: string;
}

/** The kernel's observation the engine's answer predicts, and whether the kernel's matches it. */
export function compare(p: Probe, e: EngineResult, k: KernelResult): string | undefined {
  if (e.skipped) return undefined;
  if (e.verdict === "unknown") return `engine answered unknown (${e.why ?? "no reason"}): generator bug`;
  if (e.path)
    return `the whole-path evaluator says ${e.path.verdict}${e.path.why ? ` (${e.path.why})` : ""} (rule ${
      e.path.rule ? `line ${e.path.rule.line}` : "none"
    }), filter INPUT alone ${e.verdict} (kernel ${k.verdict})`;
  if (k.verdict === "accept" && k.seen) {
    // The packet the gateway saw must be the packet the engine was told about, as the engine's path left it
    // (DNAT, TTL); a difference without tables other than filter is a harness bug.
    const s = k.seen;
    const f = e.final ?? { src: p.src, dst: p.dst, ttl: p.ttl, len: p.length };
    if (s.len !== f.len || s.ttl !== f.ttl || s.src !== f.src || s.dst !== f.dst)
      return `${e.final ? "the engine's packet after the path differs" : "harness bug"}: gateway saw len ${s.len} ttl ${s.ttl} ${s.src} -> ${s.dst}, engine has len ${f.len} ttl ${f.ttl} ${f.src} -> ${f.dst}`;
  }
  // REJECT cannot answer some packets (they look dropped); for DCCP it depends on the kernel (this one
  // sends nothing for it), so either is right there.
  if (e.verdict === "reject" && p.proto === "dccp" && k.verdict === "drop") return undefined;
  const expected: Verdict = e.verdict === "reject" && p.silentReject ? "drop" : e.verdict;
  if (expected !== k.verdict)
    return `kernel ${k.verdict}${k.reject ? ` (${k.reject})` : ""}, engine ${e.verdict}`;
  if (k.verdict === "reject") {
    const want = REJECT_SHOWS[e.rejectWith ?? ""];
    if (want !== k.reject) return `kernel rejected with ${k.reject}, engine's rule says ${e.rejectWith}`;
  }
  return undefined;
}

export function evaluateCases(
  rs: Ruleset,
  probes: readonly Probe[],
  kernel: Map<string, KernelResult>,
): CaseResult[] {
  return probes.map((p) => {
    const engine = engineVerdict(rs, p);
    const k = kernel.get(p.id)!;
    const mismatch = compare(p, engine, k);
    return { probe: p, engine, kernel: k, ...(mismatch ? { mismatch } : {}) };
  });
}

export interface FailureFile {
  /** How to get this case back: the run's seed and the ruleset's index and own seed. */
  seed: number;
  index: number;
  rulesetSeed: number;
  backend: Backend;
  ipset: boolean;
  ruleset: string;
  probes: Probe[];
  /** Every probe of the ruleset with both verdicts; mismatches first. */
  results: Array<{
    id: string;
    kind: string;
    packet: string;
    engine: EngineResult;
    kernel: KernelResult;
    mismatch?: string;
  }>;
  /** A smaller ruleset that still shows the first mismatch, when minimisation ran. */
  minimized?: { ruleset: string; probe: string; mismatch: string };
}

/** One line describing a probe, for reports. */
export function describeProbe(p: Probe): string {
  const ports = p.sport !== undefined ? ` ${p.sport}->${p.dport}` : "";
  const icmp = p.icmpType !== undefined ? ` type ${p.icmpType}/${p.icmpCode}` : "";
  const flags = p.tcpFlags !== undefined ? ` flags 0x${p.tcpFlags.toString(16)}` : "";
  const spi = p.spi !== undefined ? ` spi 0x${p.spi.toString(16)}` : "";
  return (
    `${p.kind} ${p.proto} ${p.src} -> ${p.dst}${ports}${icmp}${flags}${spi} state ${p.state} ` +
    `iif ${NET.clients[p.client].gwIface} len ${p.length} ttl ${p.ttl}${p.broadcast ? " broadcast" : ""} [${p.id}]`
  );
}

export function writeFailure(f: FailureFile, name = `diff-${f.seed}-${f.index}`): string {
  mkdirSync(FAILURE_DIR, { recursive: true });
  const path = join(FAILURE_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(f, null, 2)}\n`);
  writeFileSync(path.replace(/\.json$/, ".rules"), f.ruleset);
  return path;
}
