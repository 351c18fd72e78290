import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * The installed command (package.json "bin", bundled by scripts/bundle-cli.mjs) against tsc's
 * unbundled dist/cli/bin.js of the same build: same output, same exit code, for every command.
 * A bundler that reorders module evaluation, drops a lazily imported command or breaks a
 * dependency's require() would show here.
 */
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { bin: { tunnelcheck: string } };
const BUNDLED = pkg.bin.tunnelcheck;
const UNBUNDLED = "dist/cli/bin.js";

const run = (bin: string, args: string[], input?: string) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", input, timeout: 60_000 });

const RULES = [
  "*filter",
  ":INPUT DROP [0:0]",
  ":FORWARD DROP [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
  "-A INPUT -s 203.0.113.7/32 -p esp -j ACCEPT",
  "COMMIT",
  "",
].join("\n");

const CASES: Array<{ name: string; args: string[]; stdin?: string }> = [
  { name: "--version", args: ["--version"] },
  { name: "--help", args: ["--help"] },
  {
    name: "plan",
    args: ["plan", "--vpn", "site-to-site", "--peer", "203.0.113.7", "--local", "198.51.100.1"],
  },
  {
    name: "rules",
    args: ["rules", "--vpn", "l2tp-ipsec", "--wan", "eth0", "--target", "nftables"],
  },
  {
    name: "trace --iptables (stdin, symbolic)",
    args: ["trace", "--iptables", "-", "--proto", "udp", "--dport", "500", "--state", "new", "--src", "any"],
    stdin: RULES,
  },
  {
    name: "audit --iptables (reply-only IKE: exit 1)",
    args: [
      "audit",
      "--iptables",
      "-",
      "--vpn",
      "site-to-site",
      "--peer",
      "203.0.113.7",
      "--local",
      "198.51.100.1",
    ],
    stdin: RULES,
  },
  {
    name: "audit --topology (YAML, FortiOS)",
    args: ["audit", "--topology", "examples/seed001/topology.yaml", "--format", "sarif"],
  },
  {
    name: "trace --fortios",
    args: [
      "trace",
      "--fortios",
      "examples/seed001/site2.conf",
      "--proto",
      "udp",
      "--dport",
      "500",
      "--iif",
      "port1",
    ],
  },
  {
    name: "simulate",
    args: ["simulate", "--topology", "examples/seed001/topology.yaml", "--duration", "2h"],
  },
  { name: "usage error (exit 2)", args: ["trace", "--iptables"] },
];

describe.skipIf(!existsSync(BUNDLED) || !existsSync(UNBUNDLED))("the bundled tunnelcheck command", () => {
  it.each(CASES)("$name: same output and exit code as the unbundled build", ({ args, stdin }) => {
    const b = run(BUNDLED, args, stdin);
    const u = run(UNBUNDLED, args, stdin);
    expect(b.error).toBeUndefined();
    expect({ status: b.status, stdout: b.stdout, stderr: b.stderr }).toEqual({
      status: u.status,
      stdout: u.stdout,
      stderr: u.stderr,
    });
    expect(b.stdout.length + b.stderr.length).toBeGreaterThan(0);
  });

  it("is executable on its own (#! line), as npm links it", () => {
    const r = spawnSync(BUNDLED, ["--version"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
  });
});
