/**
 * `-m frag` (IPv6 Fragment header) against the kernel: a 3,000-byte UDP datagram leaves the client as
 * three fragments (first, middle, last), a 100-byte one whole. The gateway counts them with rules that
 * have no target, so every packet meets every rule; each rule's counter must equal the number of those
 * four packets the engine's path (evaluatePath) says it matches. Without a conntrack rule
 * nf_defrag_ipv6 stays off in the gateway's namespace and the fragments meet the filter one by one;
 * with one, every fragment (the first too) is held and the rules see the datagram, without its
 * Fragment header.
 */
import { afterAll, expect, it } from "vitest";
import type { Packet } from "../../src/analysis/iptables-eval.js";
import { evaluatePath } from "../../src/analysis/iptables-path.js";
import { parsePrefix } from "../../src/model/address.js";
import { AddrSet } from "../../src/model/addrset.js";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { describeKernel, inNs, sweepNamespaces, withTopology } from "./netns.js";

const COUNTED = [
  "-m frag",
  "-m frag --fragfirst",
  "-m frag --fragmore",
  "-m frag --fraglast",
  "-m frag --fragfirst --fragmore",
  "-m frag --fragfirst --fraglast",
  "-m frag --fragres",
  // The kernel stores --fraglen but never compares it.
  "-m frag --fraglen 99",
  "-m frag ! --fraglen 8",
  "-m frag --fragid 0:4294967295",
  "-m frag ! --fragid 0:4294967295",
  "-p udp -m udp --dport 5000",
  "-p udp -m frag --fraglast",
  "-s 2001:db8:1::a -m frag --fragmore",
];

describeKernel("-m frag against the kernel", () => {
  afterAll(sweepNamespaces);

  // The 3,000-byte datagram's fragments (ports only in the first) and a small whole datagram.
  const packets = (src: bigint, dst: bigint): Packet[] => {
    const base = {
      family: 6 as const,
      src,
      dst,
      proto: 17,
      iif: "eth0",
      state: "new" as const,
      ipsec: false,
    };
    return [
      { ...base, sport: 40000, dport: 5000, fragFirst: true, fragMore: true },
      { ...base, fragment: true, fragMore: true },
      { ...base, fragment: true, fragMore: false },
      { ...base, sport: 40000, dport: 5000 },
    ];
  };

  for (const conntrack of [false, true]) {
    it(`counts the fragments of a datagram per rule exactly as the engine matches them (${conntrack ? "conntrack loaded: nf_defrag_ipv6 reassembles first" : "no conntrack: fragments meet the rules one by one"})`, async () => {
      await withTopology({ family: 6 }, async (t) => {
        const rules = [
          "*filter",
          ":INPUT ACCEPT [0:0]",
          // Any conntrack match makes the namespace load nf_defrag_ipv6.
          ...(conntrack ? ["-A INPUT -m conntrack --ctstate INVALID -m comment --comment ct"] : []),
          ...COUNTED.map((m, i) => `-A INPUT ${m} -m comment --comment r${i}`),
          "COMMIT",
          "",
        ].join("\n");
        await inNs(t.gw, ["ip6tables-restore"], { input: rules });
        const send = `import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("${t.peerAddr}", 0))
s.sendto(b"x" * 3000, ("${t.gwAddr}", 5000))
s.sendto(b"y" * 100, ("${t.gwAddr}", 5000))`;
        await inNs(t.cl, ["python3", "-c", send]);
        // Counters by comment, from ip6tables-save -c ([packets:bytes] -A INPUT … --comment rN); the
        // fragments may take a moment to arrive (the UDP rule counts 2 either way).
        const kernel = new Map<string, number>();
        for (let i = 0; i < 30 && kernel.get("r11") !== 2; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const saved = (await inNs(t.gw, ["ip6tables-save", "-c", "-t", "filter"])).stdout;
          for (const line of saved.split("\n")) {
            const m = /^\[(\d+):\d+\] .*--comment "?(r\d+|ct)"?/.exec(line);
            if (m) kernel.set(m[2]!, Number(m[1]));
          }
        }
        expect(kernel.get("r0"), "-m frag: the three fragments, or none once reassembled").toBe(
          conntrack ? 0 : 3,
        );
        expect(kernel.get("r11"), "--dport: the first fragment (or the datagram) and the small one").toBe(2);

        const { ruleset, errors } = parseIptables(rules, { file: "frag.rules", family: 6 });
        expect(errors).toEqual([]);
        const gw = parsePrefix(t.gwAddr).addr;
        const local = AddrSet.fromRanges(6, [[gw, gw]]);
        const engine = new Map<string, number>([...kernel.keys()].map((k) => [k, 0]));
        for (const p of packets(parsePrefix(t.peerAddr).addr, gw)) {
          const r = evaluatePath(ruleset, p, { local });
          expect(r.outcomes, JSON.stringify({ ...p, src: undefined, dst: undefined })).toHaveLength(1);
          for (const step of r.outcomes[0]!.trace) {
            const c =
              step.type === "rule" ? /--comment (r\d+|ct)/.exec(step.rule!.prov.text)?.[1] : undefined;
            if (c) engine.set(c, engine.get(c)! + 1);
          }
        }
        expect(engine).toEqual(kernel);
      });
    });
  }
});
