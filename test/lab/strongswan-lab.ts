/**
 * A real strongSwan lab: two charon daemons (strongSwan 5.9.8, kernel-libipsec) in two network namespaces
 * joined by a veth pair, iptables on site2 standing in for the FortiGate local-in policy of seed 001, short
 * timers, scripted actions, and a recorded timeline of both sides' state. It is the ground truth the
 * simulator's strongSwan profile is compared with. See docs/lab.md.
 *
 * Everything it creates (namespaces `tcl-<pid>-<n>-site1|2`, a private temp dir, two charon processes per
 * run) is removed when a run ends, fails or is aborted (`cleanupLabs`). Packets only flow between the two
 * namespaces it creates.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LabEventType, Site, TimelineEntry, TunnelState } from "./timeline.js";
import { ViciClient, type ViciSection } from "./vici.js";

export type { LabEventType, Site, TimelineEntry, TunnelState } from "./timeline.js";

export const CHARON = "/usr/lib/ipsec/charon";
const PLUGIN_DIR = "/usr/lib/ipsec/plugins";
const ICMP_PROBE = fileURLToPath(new URL("./icmp.py", import.meta.url));
/**
 * charon's plugins, all from packages .ci/run installs without recommends (libstrongswan,
 * strongswan-libcharon, strongswan-swanctl, libcharon-extra-plugins): no openssl (libstrongswan-standard-plugins).
 */
const PLUGINS = [
  "random",
  "nonce",
  "aes",
  "sha1",
  "sha2",
  "hmac",
  "gmp",
  "kdf",
  "kernel-libipsec",
  "kernel-netlink",
  "socket-default",
  "vici",
];

/** Where strongswan.test.ts writes the measured timelines (`LAB_ARTEFACT`) and the charon logs (`logs/`). */
export const LAB_OUT_DIR = fileURLToPath(new URL("./.out/", import.meta.url));
export const LAB_ARTEFACT = join(LAB_OUT_DIR, "strongswan-lab.json");

// ---------------------------------------------------------------------------------------------
// Configuration

/** site2's INPUT firewall: none; the trap of seed 001 (no NEW IKE accepted); the trap plus the fix. */
export type Firewall = "none" | "trap" | "fix";

export interface LabTimers {
  /** site2's `net.netfilter.nf_conntrack_udp_timeout` (one direction seen, or refreshed within 2 s of creation). */
  conntrackUdpTimeout: number;
  /** site2's `net.netfilter.nf_conntrack_udp_timeout_stream` (replied, refreshed later than 2 s after creation). */
  conntrackUdpStreamTimeout: number;
  /** `connections.<conn>.dpd_delay` per site, seconds. */
  dpdDelay: Record<Site, number>;
  /** `charon.retransmit_tries`, `retransmit_timeout` (s), `retransmit_base`. */
  retransmitTries: number;
  retransmitTimeout: number;
  retransmitBase: number;
  /** IKE_SA / CHILD_SA `rekey_time`, seconds: longer than any run. */
  ikeRekey: number;
  childRekey: number;
  /** Period of the vici `list-sas` (and site2 `conntrack -L`) polls, seconds. */
  pollInterval: number;
}

/**
 * The reference lab's timers, except site2's dpd_delay (60 s instead of 120 s): it only has to come after
 * site1's DPD failure (last inbound + 25 s + 16.25 s of retransmissions), which keeps the order of events
 * and halves the run.
 */
export const DEFAULT_TIMERS: LabTimers = {
  conntrackUdpTimeout: 10,
  conntrackUdpStreamTimeout: 15,
  dpdDelay: { site1: 25, site2: 60 },
  retransmitTries: 3,
  retransmitTimeout: 2.0,
  retransmitBase: 1.5,
  ikeRekey: 3600,
  childRekey: 1800,
  pollInterval: 1,
};

export type LabAction =
  | { t: number; site: Site; do: "initiate" }
  /** `swanctl --terminate --ike`: a DELETE exchange (retransmitted, then given up if unanswered). */
  | { t: number; site: Site; do: "terminate" }
  /** `swanctl --rekey --child`: a CREATE_CHILD_SA exchange initiated by this side. */
  | { t: number; site: Site; do: "rekey-child" }
  /** 3 ICMP echoes from this site's inner address to the other's (`ping -c 3 -W 1 -I`). */
  | { t: number; site: Site; do: "ping"; expect?: "pass" | "fail" };

export interface LabVariant {
  name: string;
  description: string;
  firewall: Firewall;
  /** Seconds from t=0 to the end of the recording. */
  duration: number;
  actions: LabAction[];
}

const stableScript: LabAction[] = [
  { t: 0, site: "site2", do: "initiate" },
  { t: 6, site: "site1", do: "ping", expect: "pass" },
  { t: 8, site: "site1", do: "rekey-child" },
  // site1's DPD goes out at ~33 s (8 s + 25 s), after site2's conntrack entry expired (~23 s).
  { t: 38, site: "site1", do: "ping", expect: "pass" },
  { t: 46, site: "site1", do: "terminate" },
  { t: 50, site: "site1", do: "initiate" },
  { t: 55, site: "site1", do: "ping", expect: "pass" },
  { t: 57, site: "site2", do: "ping", expect: "pass" },
];

/** The variants of the reference lab the project reproduces (same names). */
export const VARIANTS: Record<string, LabVariant> = {
  V0: {
    name: "V0",
    description: "no firewall: stable",
    firewall: "none",
    duration: 62,
    actions: stableScript,
  },
  V1: {
    name: "V1",
    description:
      "trap, site2 initiates: site1 declares site2 dead, site1 down while site2 up until site2's own DPD",
    firewall: "trap",
    duration: 100,
    actions: [
      { t: 0, site: "site2", do: "initiate" },
      { t: 6, site: "site1", do: "ping", expect: "pass" },
      { t: 8, site: "site1", do: "rekey-child" },
      // Asymmetric window: site1 dead at ~49 s, site2's DPD at ~68 s and its give-up at ~84 s (all later
      // when the machine is loaded and the probes above start late: the pings sit well inside the window).
      { t: 62, site: "site1", do: "ping", expect: "fail" },
      { t: 68, site: "site2", do: "ping", expect: "fail" },
      // After site2's re-initiation the pinholes are fresh again.
      { t: 95, site: "site1", do: "ping", expect: "pass" },
    ],
  },
  V1D: {
    name: "V1D",
    description: "trap, site2 initiates, site1 terminates after the pinhole expired: the DELETE is dropped",
    firewall: "trap",
    duration: 56,
    actions: [
      { t: 0, site: "site2", do: "initiate" },
      { t: 22, site: "site1", do: "terminate" },
      { t: 44, site: "site1", do: "initiate" },
      { t: 48, site: "site2", do: "ping", expect: "fail" },
    ],
  },
  V2: {
    name: "V2",
    description: "trap, site1 initiates: never comes up",
    firewall: "trap",
    duration: 38,
    actions: [
      { t: 0, site: "site1", do: "initiate" },
      { t: 30, site: "site1", do: "ping", expect: "fail" },
    ],
  },
  V3: {
    name: "V3",
    description: "fix (site2 accepts NEW udp 500/4500 from site1): stable",
    firewall: "fix",
    duration: 62,
    actions: stableScript,
  },
};

export interface LabOptions {
  /** Overrides of `DEFAULT_TIMERS` (dpdDelay per site). */
  timers?: Omit<Partial<LabTimers>, "dpdDelay"> & { dpdDelay?: Partial<Record<Site, number>> };
  /** Replaces the variant's firewall (used to check that the assertions can fail). */
  firewall?: Firewall;
  duration?: number;
  /** Where to copy both charon logs and the firewall (no secrets): `<logDir>/<variant>-site{1,2}.log`. */
  logDir?: string;
}

// ---------------------------------------------------------------------------------------------
// Result

export interface PingResult {
  /** Seconds since t=0 when the first echo request went out (the script's time plus start-up delay). */
  t: number;
  /** The script's time for the probe. */
  scheduled: number;
  /** When the last echo reply arrived, null when none did. */
  lastReply: number | null;
  from: Site;
  to: Site;
  sent: number;
  received: number;
  expect?: "pass" | "fail";
}

export interface ActionResult {
  t: number;
  site: Site;
  do: LabAction["do"];
  exitCode: number;
}

export interface SaSample {
  t: number;
  site: Site;
  state: TunnelState;
  /** States of every IKE_SA (e.g. ["ESTABLISHED", "CONNECTING"]) and of every CHILD_SA. */
  ikeSas: string[];
  childSas: string[];
}

export interface ConntrackEntry {
  /** Original direction, e.g. "192.0.2.2:4500>192.0.2.1:4500". */
  orig: string;
  /** Seconds left before the entry expires. */
  ttl: number;
  assured: boolean;
  unreplied: boolean;
}

export interface ConntrackSample {
  t: number;
  entries: ConntrackEntry[];
}

export interface LabResult {
  variant: string;
  description: string;
  firewall: Firewall;
  timers: LabTimers;
  duration: number;
  /** Wall-clock time of t=0. */
  startedAt: string;
  /** State samples of both sites plus charon log events, sorted by t. */
  timeline: TimelineEntry[];
  samples: SaSample[];
  pings: PingResult[];
  actions: ActionResult[];
  /** site2's UDP conntrack table at each poll (empty without a firewall: nothing is tracked then). */
  conntrack: ConntrackSample[];
  /** Packet counters of site2's INPUT rules, by rule comment (e.g. drop_ike500). */
  counters: Record<string, number>;
  /** Wall-clock seconds the whole run took, setup and teardown included. */
  wallSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; check?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 20_000,
      ...(opts.env ? { env: opts.env } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.on("error", () => {});
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const r = { code: code ?? (signal ? 128 : -1), stdout, stderr };
      if (opts.check !== false && r.code !== 0) {
        reject(
          new Error(
            `${cmd} ${args.join(" ")} exited ${r.code}${signal ? ` (${signal})` : ""}: ${stderr.trim()}`,
          ),
        );
      } else resolve(r);
    });
    child.stdin.end(opts.input ?? "");
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------------
// Prerequisites

/** Why the lab cannot run here, or null when it can. */
export function labUnavailable(): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root (network namespaces)";
  const need = [CHARON, ...PLUGINS.map((p) => `${PLUGIN_DIR}/libstrongswan-${p}.so`)];
  for (const f of need)
    if (!existsSync(f)) return `${f} missing (strongswan-charon, libcharon-extra-plugins)`;
  for (const tool of [
    "swanctl",
    "ip",
    "iptables-restore",
    "iptables-save",
    "conntrack",
    "python3",
    "sysctl",
  ]) {
    if (!onPath(tool)) return `${tool} not found`;
  }
  return null;
}

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Lab instances and cleanup

const ADDR: Record<Site, { wan: string; inner: string; net: string; id: string }> = {
  site1: { wan: "192.0.2.1", inner: "10.1.0.1", net: "10.1.0.0/24", id: "site1.lab.test" },
  site2: { wan: "192.0.2.2", inner: "10.2.0.1", net: "10.2.0.0/24", id: "site2.lab.test" },
};
const other = (s: Site): Site => (s === "site1" ? "site2" : "site1");
const NS_PREFIX = `tcl-${process.pid}-`;

interface Instance {
  ns: Record<Site, string>;
  dir: string;
  charons: ChildProcess[];
  vici: ViciClient[];
}

const live = new Set<Instance>();
let counter = 0;

async function stopCharon(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

async function destroy(inst: Instance): Promise<void> {
  for (const v of inst.vici.splice(0)) v.close();
  await Promise.all(inst.charons.map(stopCharon));
  await Promise.all(Object.values(inst.ns).map((ns) => run("ip", ["netns", "del", ns], { check: false })));
  await rm(inst.dir, { recursive: true, force: true });
  live.delete(inst);
}

/** Stops every charon and deletes every namespace and temp dir this process's lab runs left (afterAll). */
export async function cleanupLabs(): Promise<void> {
  await Promise.all([...live].map(destroy));
  const r = await run("ip", ["netns", "list"], { check: false });
  const mine = r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(NS_PREFIX));
  for (const ns of mine) {
    // Only processes inside a namespace this process created: charons of an aborted run.
    const pids = await run("ip", ["netns", "pids", ns], { check: false });
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {}
    }
    await run("ip", ["netns", "del", ns], { check: false });
  }
}

// ---------------------------------------------------------------------------------------------
// Setup

const inNs = (ns: string, args: string[], opts: Parameters<typeof run>[2] = {}) =>
  run("ip", ["netns", "exec", ns, ...args], opts);

async function createNetwork(inst: Instance): Promise<void> {
  const { site1, site2 } = inst.ns;
  for (const ns of [site1, site2]) {
    await run("ip", ["netns", "add", ns]);
    // IPv4 only: no IPv6 link-local addresses, no DAD, no address events in the logs.
    await inNs(ns, [
      "sysctl",
      "-q",
      "-w",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }
  await run("ip", [
    "link",
    "add",
    "wan",
    "netns",
    site1,
    "type",
    "veth",
    "peer",
    "name",
    "wan",
    "netns",
    site2,
  ]);
  for (const site of ["site1", "site2"] as const) {
    const ns = inst.ns[site];
    const a = ADDR[site];
    await run("ip", ["-n", ns, "addr", "add", `${a.wan}/24`, "dev", "wan"]);
    await run("ip", ["-n", ns, "link", "set", "wan", "up"]);
    // The protected subnet on an in-namespace veth pair (this kernel has no dummy driver).
    await run("ip", ["-n", ns, "link", "add", "inner0", "type", "veth", "peer", "name", "inner0p"]);
    await run("ip", ["-n", ns, "addr", "add", `${a.inner}/24`, "dev", "inner0"]);
    await run("ip", ["-n", ns, "link", "set", "inner0", "up"]);
    await run("ip", ["-n", ns, "link", "set", "inner0p", "up"]);
  }
}

/** site2's INPUT chain for a variant (iptables-restore), or null for no firewall. Site1 accepts everything. */
export function site2Firewall(fw: Firewall, peer = ADDR.site1.wan): string | null {
  if (fw === "none") return null;
  const c = (name: string) => `-m comment --comment ${name}`;
  const lines = [
    "*filter",
    ":INPUT DROP [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    `-A INPUT -i lo ${c("lo")} -j ACCEPT`,
    // Decrypted tunnel payload (kernel-libipsec's TUN device); on a FortiGate firewall policies govern it.
    `-A INPUT -i ipsec0 ${c("tun")} -j ACCEPT`,
    `-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED ${c("established")} -j ACCEPT`,
    `-A INPUT -p tcp --dport 22 ${c("ssh")} -j ACCEPT`,
  ];
  if (fw === "fix") {
    lines.push(
      `-A INPUT -s ${peer}/32 -p udp -m multiport --dports 500,4500 -m conntrack --ctstate NEW ${c("fix_new_ike")} -j ACCEPT`,
    );
  }
  lines.push(
    `-A INPUT -p udp --dport 500 ${c("drop_ike500")} -j DROP`,
    `-A INPUT -p udp --dport 4500 ${c("drop_ike4500")} -j DROP`,
    `-A INPUT -p esp ${c("drop_esp50")} -j DROP`,
    `-A INPUT ${c("drop_other")} -j DROP`,
    "COMMIT",
    "",
  );
  return lines.join("\n");
}

function strongswanConf(site: Site, dir: string, t: LabTimers): string {
  return `# tunnelcheck lab, ${site}
charon {
  load_modular = no
  # ESP in userspace over a TUN device (this kernel has no ESP); kernel-netlink for addresses and routes.
  load = ${PLUGINS.join(" ")}
  retransmit_tries = ${t.retransmitTries}
  retransmit_timeout = ${t.retransmitTimeout}
  retransmit_base = ${t.retransmitBase}
  retransmit_jitter = 0
  keep_alive = 0
  plugins {
    vici {
      socket = unix://${dir}/charon.vici
    }
  }
  filelog {
    lab {
      path = ${dir}/charon.log
      time_format = %s
      time_add_ms = yes
      append = no
      flush_line = yes
      ike_name = yes
      default = 1
      cfg = 1
      knl = 0
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
swanctl {
  load = random
}
`;
}

function swanctlConf(site: Site, t: LabTimers, psk: string): string {
  const me = ADDR[site];
  const peer = ADDR[other(site)];
  return `connections {
  lab {
    version = 2
    local_addrs = ${me.wan}
    remote_addrs = ${peer.wan}
    proposals = aes128-sha256-modp2048
    mobike = no
    dpd_delay = ${t.dpdDelay[site]}s
    keyingtries = 0
    rekey_time = ${t.ikeRekey}s
    local {
      auth = psk
      id = ${me.id}
    }
    remote {
      auth = psk
      id = ${peer.id}
    }
    children {
      net {
        local_ts = ${me.net}
        remote_ts = ${peer.net}
        esp_proposals = aes128-sha256
        dpd_action = restart
        rekey_time = ${t.childRekey}s
      }
    }
  }
}
secrets {
  ike-lab {
    id-1 = ${ADDR.site1.id}
    id-2 = ${ADDR.site2.id}
    secret = "${psk}"
  }
}
`;
}

const siteDir = (inst: Instance, site: Site) => join(inst.dir, site);
const swanctlEnv = (inst: Instance, site: Site): NodeJS.ProcessEnv => ({
  ...process.env,
  STRONGSWAN_CONF: join(siteDir(inst, site), "strongswan.conf"),
});
const uri = (inst: Instance, site: Site) => `unix://${join(siteDir(inst, site), "charon.vici")}`;

function swanctl(inst: Instance, site: Site, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return run("swanctl", [...args, "--uri", uri(inst, site)], {
    env: swanctlEnv(inst, site),
    check: false,
    timeoutMs,
  });
}

async function startCharon(inst: Instance, site: Site): Promise<void> {
  const dir = siteDir(inst, site);
  // `ip netns exec` gives a private mount namespace; the tmpfs on /run separates /run/charon.pid.
  const p = spawn(
    "ip",
    ["netns", "exec", inst.ns[site], "sh", "-c", `mount -t tmpfs tmpfs /run && exec ${CHARON}`],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, STRONGSWAN_CONF: join(dir, "strongswan.conf") },
    },
  );
  let stderr = "";
  p.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  inst.charons.push(p);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`charon (${site}) exited: ${stderr}`);
    if (existsSync(join(dir, "charon.vici"))) {
      const r = await swanctl(inst, site, ["--load-all", "--file", join(dir, "swanctl.conf")]);
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`swanctl --load-all (${site}) failed: ${r.stderr}${r.stdout}`);
    } else if (Date.now() > deadline)
      throw new Error(`charon (${site}) did not open its vici socket: ${stderr}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Observation

/** IKE_SA and CHILD_SA states from vici `list-sa` events; "up" = an ESTABLISHED IKE_SA with an INSTALLED CHILD_SA. */
export function saStates(events: ViciSection[]): {
  state: TunnelState;
  ikeSas: string[];
  childSas: string[];
} {
  const ikeSas: string[] = [];
  const childSas: string[] = [];
  let up = false;
  const sections = (x: ViciSection[string] | undefined): ViciSection[] =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.values(x).filter((v): v is ViciSection => typeof v === "object" && !Array.isArray(v))
      : [];
  // Each event is {<connection name>: {state, ..., child-sas: {<name-id>: {state, ...}}}}.
  for (const ike of events.flatMap((e) => sections(e))) {
    const ikeState = String(ike.state ?? "?");
    ikeSas.push(ikeState);
    let installed = false;
    for (const c of sections(ike["child-sas"])) {
      childSas.push(String(c.state ?? "?"));
      if (c.state === "INSTALLED") installed = true;
    }
    if (ikeState === "ESTABLISHED" && installed) up = true;
  }
  return { state: up ? "up" : "down", ikeSas, childSas };
}

/** `conntrack -L -p udp` lines to entries. */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split("\n")) {
    const m = /^udp\s+17\s+(\d+)\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (!m) continue;
    out.push({
      orig: `${m[2]}:${m[4]}>${m[3]}:${m[5]}`,
      ttl: Number(m[1]),
      assured: line.includes("[ASSURED]"),
      unreplied: line.includes("[UNREPLIED]"),
    });
  }
  return out;
}

const LOG_RULES: [RegExp, LabEventType][] = [
  [/^initiating IKE_SA /, "initiate"],
  [/^IKE_SA \S+ established between /, "ike-established"],
  [/^CHILD_SA \S+ established with SPIs /, "child-established"],
  [/^generating CREATE_CHILD_SA request \d+ \[ N\(REKEY_SA\)/, "child-rekey"],
  [/^sending DPD request/, "dpd-sent"],
  [/^retransmit \d+ of request with message ID \d+/, "retransmit"],
  [/^giving up after \d+ retransmits/, "give-up"],
  [/^peer not responding, trying again/, "retry"],
  [/^proper IKE_SA delete failed, peer not responding/, "delete-failed"],
  [/not responding/, "peer-dead"],
  [/^restarting CHILD_SA /, "restart"],
  [/^sending DELETE for IKE_SA /, "delete-sent"],
  [/^received DELETE for IKE_SA /, "delete-received"],
  [/^(deleting IKE_SA |IKE_SA deleted)/, "ike-deleted"],
  [/^(ignoring|discarding|unable to process|no IKE_SA found)/, "ignored"],
  [/^generating \S+ (request|response) \d+ \[/, "msg-tx"],
  [/^parsed \S+ (request|response) \d+ \[/, "msg-rx"],
  [/^sending packet: /, "pkt-tx"],
  [/^received packet: /, "pkt-rx"],
];

/** A charon log message (after the thread, group and IKE_SA prefix) to an event type, or null. */
export function classifyLogLine(message: string): LabEventType | null {
  for (const [re, type] of LOG_RULES) if (re.test(message)) return type;
  return null;
}

/** Events of one charon log (`time_format = %s`, `time_add_ms = yes`), t relative to t0 (epoch ms). */
export function parseCharonLog(text: string, site: Site, t0: number): Omit<TimelineEntry, "state">[] {
  const out: Omit<TimelineEntry, "state">[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+)\.(\d{3}) \d+\[\w+\] (?:<[^>]*> )?(.*)$/.exec(line);
    if (!m) continue;
    const message = (m[3] as string).trim();
    const event = classifyLogLine(message);
    if (!event) continue;
    const t = (Number(m[1]) * 1000 + Number(m[2]) - t0) / 1000;
    out.push({ site, t: Math.round(t * 1000) / 1000, event, detail: message });
  }
  return out;
}

async function readCounters(ns: string): Promise<Record<string, number>> {
  const r = await inNs(ns, ["iptables-save", "-c", "-t", "filter"], { check: false });
  const counters: Record<string, number> = {};
  for (const line of r.stdout.split("\n")) {
    const m = /^\[(\d+):\d+\] -A INPUT .*--comment "?([\w-]+)"?/.exec(line);
    if (m) counters[m[2] as string] = (counters[m[2] as string] ?? 0) + Number(m[1]);
  }
  return counters;
}

interface ProbeOutput {
  sent: number;
  received: number;
  first_tx: number | null;
  last_rx: number | null;
}

/** 3 echoes, 1 s wait, 0.5 s apart, starting at `startAt` (epoch ms) if the probe is up by then. */
async function ping(inst: Instance, from: Site, startAt: number): Promise<ProbeOutput> {
  const to = ADDR[other(from)].inner;
  const args = ["python3", "-S", ICMP_PROBE, ADDR[from].inner, to, "3", "1", "0.5", String(startAt / 1000)];
  const r = await inNs(inst.ns[from], args, { check: false });
  try {
    return JSON.parse(r.stdout.trim()) as ProbeOutput;
  } catch {
    throw new Error(`icmp probe failed (${r.code}): ${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Run

const round3 = (x: number) => Math.round(x * 1000) / 1000;
/** How long before its time an ICMP probe process is started. */
const PROBE_LEAD_MS = 4000;

/**
 * Runs one variant (a name from `VARIANTS` or a variant of your own) against real charons and returns its
 * timeline. Takes `duration` + about 2 s; several variants can run at the same time (each has its own
 * namespaces). Throws when the lab cannot run here (`labUnavailable`); always cleans up.
 */
export async function runLabVariant(which: string | LabVariant, opts: LabOptions = {}): Promise<LabResult> {
  const variant = typeof which === "string" ? VARIANTS[which] : which;
  if (!variant)
    throw new Error(`unknown lab variant ${String(which)} (known: ${Object.keys(VARIANTS).join(", ")})`);
  const name = variant.name;
  const why = labUnavailable();
  if (why) throw new Error(`strongSwan lab unavailable: ${why}`);
  const timers: LabTimers = {
    ...DEFAULT_TIMERS,
    ...opts.timers,
    dpdDelay: { ...DEFAULT_TIMERS.dpdDelay, ...opts.timers?.dpdDelay },
  };
  const firewall = opts.firewall ?? variant.firewall;
  const duration = opts.duration ?? variant.duration;
  const wallStart = Date.now();
  const n = ++counter;
  const inst: Instance = {
    ns: { site1: `${NS_PREFIX}${n}-site1`, site2: `${NS_PREFIX}${n}-site2` },
    dir: await mkdtemp(join(tmpdir(), `tcl-${process.pid}-${n}-`)),
    charons: [],
    vici: [],
  };
  live.add(inst);
  try {
    await createNetwork(inst);
    const s2 = inst.ns.site2;
    await inNs(s2, [
      "sysctl",
      "-q",
      "-w",
      `net.netfilter.nf_conntrack_udp_timeout=${timers.conntrackUdpTimeout}`,
      `net.netfilter.nf_conntrack_udp_timeout_stream=${timers.conntrackUdpStreamTimeout}`,
    ]);
    const rules = site2Firewall(firewall);
    if (rules) await inNs(s2, ["iptables-restore"], { input: rules });

    // A test-only secret, generated per run; it stays in the 0700 temp dir and is never returned.
    const psk = randomBytes(24).toString("base64url");
    for (const site of ["site1", "site2"] as const) {
      const dir = siteDir(inst, site);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(join(dir, "strongswan.conf"), strongswanConf(site, dir, timers));
      await writeFile(join(dir, "swanctl.conf"), swanctlConf(site, timers, psk), { mode: 0o600 });
    }
    await Promise.all([startCharon(inst, "site1"), startCharon(inst, "site2")]);
    // One vici connection per site for the once-a-second polls (no process per poll).
    const vici: Record<Site, ViciClient> = {
      site1: await ViciClient.connect(join(siteDir(inst, "site1"), "charon.vici")),
      site2: await ViciClient.connect(join(siteDir(inst, "site2"), "charon.vici")),
    };
    inst.vici.push(vici.site1, vici.site2);

    const t0 = Date.now();
    const since = () => round3((Date.now() - t0) / 1000);
    const samples: SaSample[] = [];
    const conntrack: ConntrackSample[] = [];
    const pings: PingResult[] = [];
    const actions: ActionResult[] = [];

    let failed = false;
    const doAction = async (a: LabAction): Promise<void> => {
      const at = t0 + a.t * 1000;
      if (a.do === "ping") {
        // The probe is started early and waits for its time: `ip netns exec python3` can take seconds to
        // start on a loaded machine, and a late probe would shift what the tunnel has seen (DPD timing).
        await sleep(at - PROBE_LEAD_MS - Date.now());
        if (failed) return;
        const t = since();
        const r = await ping(inst, a.site, at);
        const rel = (epoch: number) => round3(epoch - t0 / 1000);
        pings.push({
          t: r.first_tx === null ? t : rel(r.first_tx),
          scheduled: a.t,
          lastReply: r.last_rx === null ? null : rel(r.last_rx),
          from: a.site,
          to: other(a.site),
          sent: r.sent,
          received: r.received,
          ...(a.expect ? { expect: a.expect } : {}),
        });
        return;
      }
      await sleep(at - Date.now());
      if (failed) return;
      const t = since();
      // --timeout 1: swanctl detaches after a second; the daemon carries on (retransmits, keyingtries).
      const args =
        a.do === "initiate"
          ? ["--initiate", "--child", "net", "--timeout", "1"]
          : a.do === "terminate"
            ? ["--terminate", "--ike", "lab", "--timeout", "1"]
            : ["--rekey", "--child", "net"];
      const r = await swanctl(inst, a.site, args);
      actions.push({ t, site: a.site, do: a.do, exitCode: r.code });
    };

    const poll = async (): Promise<void> => {
      const end = t0 + duration * 1000;
      for (let k = 0; ; k++) {
        const at = t0 + k * timers.pollInterval * 1000;
        if (at > end) break;
        await sleep(at - Date.now());
        if (failed) return;
        const t = since();
        const [e1, e2, ct] = await Promise.all([
          vici.site1.streamed("list-sas", "list-sa"),
          vici.site2.streamed("list-sas", "list-sa"),
          firewall === "none"
            ? Promise.resolve(null)
            : inNs(s2, ["conntrack", "-L", "-p", "udp"], { check: false, timeoutMs: 5000 }),
        ]);
        samples.push({ t, site: "site1", ...saStates(e1) }, { t, site: "site2", ...saStates(e2) });
        if (ct) conntrack.push({ t, entries: parseConntrack(ct.stdout) });
      }
    };

    const guard = (p: Promise<void>) =>
      p.catch((e: unknown) => {
        failed = true;
        throw e;
      });
    const scripted = variant.actions.filter((a) => a.t <= duration);
    await Promise.all([guard(poll()), ...scripted.map((a) => guard(doAction(a)))]);

    const counters = rules ? await readCounters(s2) : {};
    const logs: Record<Site, string> = {
      site1: await readFile(join(siteDir(inst, "site1"), "charon.log"), "utf8"),
      site2: await readFile(join(siteDir(inst, "site2"), "charon.log"), "utf8"),
    };
    if (opts.logDir) {
      await mkdir(opts.logDir, { recursive: true });
      for (const site of ["site1", "site2"] as const) {
        await copyFile(join(siteDir(inst, site), "charon.log"), join(opts.logDir, `${name}-${site}.log`));
      }
      if (rules) await writeFile(join(opts.logDir, `${name}-site2.rules`), rules);
    }

    const events = [
      ...parseCharonLog(logs.site1, "site1", t0),
      ...parseCharonLog(logs.site2, "site2", t0),
    ].filter((e) => e.t >= -5 && e.t <= duration + 0.5);
    const stateAtSample = (site: Site, t: number): TunnelState => {
      let s: TunnelState = "down";
      for (const x of samples) if (x.site === site && x.t <= t) s = x.state;
      return s;
    };
    const timeline: TimelineEntry[] = [
      ...samples.map((s): TimelineEntry => ({ site: s.site, t: s.t, state: s.state })),
      ...events.map((e) => ({ ...e, state: stateAtSample(e.site, e.t) })),
    ].sort((a, b) => a.t - b.t || (a.event === undefined ? -1 : 1));

    return {
      variant: name,
      description: variant.description,
      firewall,
      timers,
      duration,
      startedAt: new Date(t0).toISOString(),
      timeline,
      samples,
      pings: pings.sort((a, b) => a.t - b.t),
      actions: actions.sort((a, b) => a.t - b.t),
      conntrack,
      counters,
      wallSeconds: round3((Date.now() - wallStart) / 1000),
    };
  } finally {
    await destroy(inst);
  }
}
