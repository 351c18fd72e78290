/**
 * A reversed NAT address range (`--to-destination 10.0.0.9-10.0.0.1`) against the kernel. iptables
 * 1.8.9 loads it as written; nf_nat computes the range's size as max - min + 1 in unsigned
 * arithmetic, so the range wraps around the address space: the address it picks (by a hash of the
 * connection's addresses) lies from 10.0.0.9 up to 255.255.255.255 or from 0.0.0.0 up to 10.0.0.1,
 * not between them. The parser takes the rule with a warning and the engine calls the verdict
 * unknown.
 */
import { expect, it } from "vitest";
import { evaluatePath } from "../../src/analysis/iptables-path.js";
import { parsePrefix } from "../../src/model/address.js";
import { AddrSet } from "../../src/model/addrset.js";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { describeKernel, inNs, run, scratchNamespace } from "./netns.js";

const LO = "10.0.0.9";
const HI = "10.0.0.1";
const RULES = [
  "*nat",
  ":PREROUTING ACCEPT [0:0]",
  ":INPUT ACCEPT [0:0]",
  ":OUTPUT ACCEPT [0:0]",
  ":POSTROUTING ACCEPT [0:0]",
  `-A OUTPUT -p udp -m udp --dport 500 -j DNAT --to-destination ${LO}-${HI}`,
  "COMMIT",
  "",
].join("\n");

const v4 = (s: string): bigint => parsePrefix(`${s}/32`).addr;

/** Sends one datagram from each source address and reads the destinations conntrack chose. */
const SEND = `
import socket, sys
for src in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 20000))
    s.sendto(b"x", ("192.0.2.1", 500))
    s.close()
`;

describeKernel("a reversed NAT address range against the kernel", () => {
  const scratch = scratchNamespace("natrange");
  const ns = scratch.name;

  it("the kernel wraps it around the address space; the parser warns, the engine says unknown", async () => {
    await scratch.create();
    const ip = (...args: string[]) => run("ip", ["-n", ns, ...args]);
    await ip("link", "set", "lo", "up");
    await ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
    await ip("link", "set", "v0", "up");
    await ip("link", "set", "v1", "up");
    const sources = Array.from({ length: 12 }, (_, i) => `198.51.100.${i + 1}`);
    for (const s of sources) await ip("addr", "add", `${s}/24`, "dev", "v0");
    await ip("route", "add", "default", "dev", "v0");
    await inNs(ns, ["iptables-restore"], { input: RULES });
    await inNs(ns, ["python3", "-c", SEND, ...sources]);
    const table = (await inNs(ns, ["conntrack", "-L", "-p", "udp"], { check: false })).stdout;
    // Reply direction: src=<the DNAT address> dst=<the sender>.
    const chosen = [...table.matchAll(/dport=500 (?:\[UNREPLIED\] )?src=(\S+)/g)].map((m) => m[1]!);
    expect(chosen).toHaveLength(sources.length);
    for (const a of chosen) {
      const n = v4(a);
      // In the wrapped range, never strictly between its ends (the unwrapped reading).
      expect(n >= v4(LO) || n <= v4(HI), a).toBe(true);
    }
    // Not merely the two ends: the kernel picks addresses far outside 10.0.0.1..10.0.0.9.
    expect(chosen.some((a) => v4(a) > v4(LO))).toBe(true);

    const parsed = parseIptables(RULES, { file: "nat.rules" });
    expect(parsed.errors).toEqual([]);
    expect(parsed.warnings.map((w) => `${w.line}:${w.col}: ${w.message}`)).toEqual([
      `6:62: --to-destination: the address range ${LO}-${HI} is reversed: the kernel wraps it around the address space and may pick any address from ${LO} to 255.255.255.255 or from 0.0.0.0 to ${HI}`,
    ]);
    const r = evaluatePath(
      parsed.ruleset,
      {
        family: 4,
        src: v4(sources[0]!),
        dst: v4("192.0.2.1"),
        proto: 17,
        sport: 20000,
        dport: 500,
        state: "new",
        ipsec: false,
      },
      { origin: "local", local: AddrSet.fromPrefix(parsePrefix(`${sources[0]!}/32`)) },
    );
    expect(r.verdict).toBe("unknown");
    expect(r.reason).toMatch(/reversed address range: the kernel wraps it around/);
  }, 60_000);
});
