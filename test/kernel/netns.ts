/**
 * Network-namespace harness for the kernel tests: throwaway namespaces joined by veth pairs, addresses from
 * the documentation ranges only, and pkt.py to send probes and report which ones were delivered.
 */
import { type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, it } from "vitest";

export const PKT = fileURLToPath(new URL("./pkt.py", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {}

/** Runs a command (no shell); rejects on a non-zero exit unless `check: false`. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; check?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { stdio: ["pipe", "pipe", "pipe"], timeout: opts.timeoutMs ?? 20_000 };
    const child = spawn(cmd, args, spawnOpts);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const r = { code: code ?? -1, stdout, stderr };
      if (opts.check !== false && r.code !== 0) {
        reject(
          new CommandError(`${cmd} ${args.join(" ")} exited ${r.code}: ${stderr.trim() || stdout.trim()}`),
        );
      } else resolve(r);
    });
    // A command that exits without reading stdin (e.g. on a usage error) must not crash the run with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

export const inNs = (
  ns: string,
  argv: string[],
  opts: { input?: string; check?: boolean; timeoutMs?: number } = {},
) => run("ip", ["netns", "exec", ns, ...argv], opts);

/** Why kernel tests cannot run here, or undefined when they can. Checked once, synchronously. */
function probeKernel(): string | undefined {
  if (process.env.TUNNELCHECK_NO_KERNEL) return "disabled by TUNNELCHECK_NO_KERNEL";
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not running as root";
  for (const tool of [
    ["ip", "-V"],
    ["python3", "--version"],
    ["iptables", "--version"],
    ["nft", "--version"],
  ]) {
    const r = spawnSync(tool[0]!, tool.slice(1));
    if (r.status !== 0) return `${tool[0]} is not available`;
  }
  const name = `tc-${process.pid}-probe`;
  const add = spawnSync("ip", ["netns", "add", name]);
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.toString().trim()}`;
  spawnSync("ip", ["netns", "del", name]);
  return undefined;
}

export const kernelUnavailable = probeKernel();

/**
 * describe() for tests that need root and network namespaces. Without them the suite is skipped locally,
 * but fails when CI is set: a CI job that silently skips the kernel tests would prove nothing.
 */
export function describeKernel(name: string, fn: () => void): void {
  if (!kernelUnavailable) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it("has root and ip netns (CI is set, so the kernel tests must not be skipped)", () => {
        throw new Error(`kernel tests cannot run: ${kernelUnavailable}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${kernelUnavailable})`, fn);
  }
}

// ---------------------------------------------------------------------------------------------
// Topologies

let counter = 0;
const uniqueBase = (): string => `tc-${process.pid}-${++counter}`;

export interface Topology {
  family: 4 | 6;
  /** The VPN gateway; its interface towards the client (or the NAT device) is `eth0`. */
  gw: string;
  /** The client / peer side, with a peer address and a non-peer address. */
  cl: string;
  /** The NAT device between them (only with `nat: true`); outside `eth0`, inside `lan0`. */
  nat?: string;
  /** The gateway's own address (scenario `local`). */
  gwAddr: string;
  /** The NAT device's outside address (scenario `publicAddress`). */
  publicAddr?: string;
  /** Where the client sends to reach the gateway: the public address behind NAT, else the gateway. */
  target: string;
  peerAddr: string;
  nonPeerAddr: string;
  /** The scenario's peer prefix: contains peerAddr, not nonPeerAddr. */
  peerPrefix: string;
  namespaces: string[];
  destroy(): Promise<void>;
}

interface Plan4or6 {
  gw: string;
  peer: string;
  nonPeer: string;
  peerPrefix: string;
  len: number;
  nat: { publicAddr: string; insideNat: string; peer: string; nonPeer: string; peerPrefix: string };
}

const ADDR: Record<4 | 6, Plan4or6> = {
  4: {
    gw: "192.0.2.1",
    peer: "192.0.2.10",
    nonPeer: "192.0.2.100",
    peerPrefix: "192.0.2.0/28",
    len: 24,
    nat: {
      publicAddr: "198.51.100.1",
      insideNat: "192.0.2.254",
      peer: "198.51.100.10",
      nonPeer: "198.51.100.100",
      peerPrefix: "198.51.100.0/28",
    },
  },
  6: {
    gw: "2001:db8:1::1",
    peer: "2001:db8:1::a",
    nonPeer: "2001:db8:1::1:a",
    peerPrefix: "2001:db8:1::/112",
    len: 64,
    nat: {
      publicAddr: "2001:db8:2::1",
      insideNat: "2001:db8:1::fe",
      peer: "2001:db8:2::a",
      nonPeer: "2001:db8:2::1:a",
      peerPrefix: "2001:db8:2::/112",
    },
  },
};

/** Creates fresh namespaces; on any failure the ones already created are deleted before rethrowing. */
export async function createTopology(opts: { family: 4 | 6; nat?: boolean }): Promise<Topology> {
  const base = uniqueBase();
  const f = opts.family;
  const a = ADDR[f];
  const gw = `${base}-gw`;
  const cl = `${base}-cl`;
  const nat = opts.nat ? `${base}-nat` : undefined;
  const namespaces = [gw, cl, ...(nat ? [nat] : [])];
  const created: string[] = [];
  const destroy = async () => {
    await Promise.all(created.map((ns) => run("ip", ["netns", "del", ns], { check: false })));
    created.length = 0;
  };
  const ip = (ns: string, ...args: string[]) => run("ip", ["-n", ns, ...args]);
  const addAddr = (ns: string, dev: string, addr: string) =>
    ip(ns, "addr", "add", `${addr}/${a.len}`, "dev", dev, ...(f === 6 ? ["nodad"] : []));
  const fam = f === 6 ? "-6" : "-4";
  try {
    for (const ns of namespaces) {
      await run("ip", ["netns", "add", ns]);
      created.push(ns);
      await ip(ns, "link", "set", "lo", "up");
      // No duplicate address detection on links created later: tentative link-local addresses would
      // delay neighbour discovery by a second or two and make IPv6 probes flaky.
      await inNs(ns, [
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.default.accept_dad=0",
        "net.ipv6.conf.all.accept_dad=0",
      ]);
    }
    const peerSide = nat ?? gw;
    // The peer-facing interface of the gateway (or of the NAT device) is eth0, like the scenario's --wan.
    await run("ip", [
      "link",
      "add",
      "eth0",
      "netns",
      peerSide,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      cl,
    ]);
    if (nat)
      await run("ip", [
        "link",
        "add",
        "lan0",
        "netns",
        nat,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        gw,
      ]);
    for (const ns of namespaces) await ip(ns, "link", "set", "eth0", "up");
    if (nat) await ip(nat, "link", "set", "lan0", "up");

    const peer = nat ? a.nat.peer : a.peer;
    const nonPeer = nat ? a.nat.nonPeer : a.nonPeer;
    await addAddr(gw, "eth0", a.gw);
    await addAddr(cl, "eth0", peer);
    await addAddr(cl, "eth0", nonPeer);
    if (nat) {
      await addAddr(nat, "eth0", a.nat.publicAddr);
      await addAddr(nat, "lan0", a.nat.insideNat);
      await ip(gw, fam, "route", "add", "default", "via", a.nat.insideNat, "dev", "eth0");
      const sysctl = f === 4 ? "net.ipv4.ip_forward=1" : "net.ipv6.conf.all.forwarding=1";
      await inNs(nat, ["sysctl", "-q", "-w", sysctl]);
    }
    return {
      family: f,
      gw,
      cl,
      ...(nat ? { nat } : {}),
      gwAddr: a.gw,
      ...(nat ? { publicAddr: a.nat.publicAddr } : {}),
      target: nat ? a.nat.publicAddr : a.gw,
      peerAddr: peer,
      nonPeerAddr: nonPeer,
      peerPrefix: nat ? a.nat.peerPrefix : a.peerPrefix,
      namespaces,
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

/** Creates a topology, runs fn, and always deletes the namespaces. */
export async function withTopology<T>(
  opts: { family: 4 | 6; nat?: boolean },
  fn: (t: Topology) => Promise<T>,
): Promise<T> {
  const t = await createTopology(opts);
  try {
    return await fn(t);
  } finally {
    await t.destroy();
  }
}

/**
 * One namespace for a describe block's `iptables-restore` runs, named so `sweepNamespaces` knows it:
 * `create()` makes it; it is deleted, with any stray namespace of this process, after the block.
 */
export function scratchNamespace(tag: string): { name: string; create: () => Promise<void> } {
  const name = `tc-${process.pid}-${tag}`;
  afterAll(async () => {
    await run("ip", ["netns", "del", name], { check: false });
    await sweepNamespaces();
  });
  return {
    name,
    create: async () => {
      await run("ip", ["netns", "add", name]);
    },
  };
}

/** Deletes every namespace this process created and failed to clean up (belt and braces for afterAll). */
export async function sweepNamespaces(): Promise<void> {
  const r = await run("ip", ["netns", "list"], { check: false });
  const mine = r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(`tc-${process.pid}-`));
  await Promise.all(mine.map((ns) => run("ip", ["netns", "del", ns], { check: false })));
}

// ---------------------------------------------------------------------------------------------
// Probes

export type ProbeProto = "udp" | "tcp" | "esp" | "ah";

export interface Probe {
  /** Unique within one run; carried in the payload. */
  id: string;
  proto: ProbeProto;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** Payload size; above the MTU the sender's kernel fragments the datagram. */
  size?: number;
}

export interface Delivery {
  proto: string;
  src: string;
  dport?: number;
  token: string | null;
  len: number;
}

/**
 * Starts a listener in `listenNs`, sends `probes` from `sendNs`, and returns what arrived, keyed by probe id.
 * The listener binds every UDP/TCP destination port used and raw sockets for ESP and AH.
 */
export async function sendProbes(
  listenNs: string,
  sendNs: string,
  family: 4 | 6,
  probes: Probe[],
): Promise<Map<string, Delivery>> {
  const udp = [...new Set(probes.filter((p) => p.proto === "udp").map((p) => p.dport))].join(",");
  const tcp = [...new Set(probes.filter((p) => p.proto === "tcp").map((p) => p.dport))].join(",");
  const args = ["netns", "exec", listenNs, "python3", "-S", PKT, "listen", "--family", String(family)];
  args.push("--udp", udp, "--tcp", tcp, "--raw", "50,51", "--timeout", "8");
  const listener = spawn("ip", args, { stdio: ["pipe", "pipe", "pipe"] });
  listener.stdin.on("error", () => {});
  // The sender starts at the same time (interpreter start-up overlaps) and waits for "go" on stdin.
  const wire = probes.map((p) => ({ ...p, token: p.id }));
  const sendArgs = [
    "netns",
    "exec",
    sendNs,
    "python3",
    "-S",
    PKT,
    "send",
    "--wait-stdin",
    "--probes",
    JSON.stringify(wire),
  ];
  const sender = spawn("ip", sendArgs, { stdio: ["pipe", "pipe", "pipe"] });
  sender.stdin.on("error", () => {});
  let out = "";
  let err = "";
  let sendErr = "";
  sender.stderr.on("data", (d: Buffer) => {
    sendErr += d.toString();
  });
  const sent = new Promise<number>((resolve) => sender.on("close", (code) => resolve(code ?? -1)));
  const ready = new Promise<void>((resolve, reject) => {
    listener.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"event": "ready"')) resolve();
    });
    listener.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    listener.on("close", (code) => reject(new Error(`listener exited ${code} before ready: ${err}`)));
  });
  const done = new Promise<number>((resolve) => listener.on("close", (code) => resolve(code ?? -1)));
  try {
    await ready;
    sender.stdin.end("go\n");
    const code = await sent;
    if (code !== 0) throw new Error(`sender exited ${code}: ${sendErr}`);
  } finally {
    sender.stdin.end();
    listener.stdin.end();
  }
  const code = await done;
  if (code !== 0) throw new Error(`listener exited ${code}: ${err}`);
  const got = new Map<string, Delivery>();
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    const d = JSON.parse(line) as Delivery & { event?: string };
    if (d.event || d.token === null) continue;
    got.set(d.token, d);
  }
  return got;
}
