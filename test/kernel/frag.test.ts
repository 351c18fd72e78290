/**
 * `-m frag` (IPv6 Fragment header) against the kernel: a 3,000-byte UDP datagram leaves the client as
 * three fragments (first, middle, last), a 100-byte one whole. The gateway counts them with rules that
 * have no target, so every packet meets every rule; each rule's counter must equal the number of those
 * four packets the engine says it matches. No conntrack rule is loaded, so nf_defrag_ipv6 stays off
 * in the gateway's namespace and the fragments meet the filter one by one.
 */
import { afterAll, expect, it } from "vitest";
import { evalRule, type Packet } from "../../src/analysis/iptables-eval.js";
import { parsePrefix } from "../../src/model/address.js";
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

  it("counts every fragment of a datagram exactly as the engine matches it", async () => {
    await withTopology({ family: 6 }, async (t) => {
      const rules = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
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
      // fragments may take a moment to arrive.
      const kernel = new Map<string, number>();
      for (let i = 0; i < 30 && !(kernel.get("r0") === 3 && kernel.get("r11") === 2); i++) {
        await new Promise((r) => setTimeout(r, 100));
        const saved = (await inNs(t.gw, ["ip6tables-save", "-c", "-t", "filter"])).stdout;
        for (const line of saved.split("\n")) {
          const m = /^\[(\d+):\d+\] .*--comment "?(r\d+)"?/.exec(line);
          if (m) kernel.set(m[2]!, Number(m[1]));
        }
      }
      expect(kernel.get("r0"), "three fragments").toBe(3);
      expect(kernel.get("r11"), "the first fragment and the whole datagram").toBe(2);

      const { ruleset, errors } = parseIptables(rules, { file: "frag.rules", family: 6 });
      expect(errors).toEqual([]);
      const src = parsePrefix(t.peerAddr).addr;
      const dst = parsePrefix(t.gwAddr).addr;
      const base = {
        family: 6 as const,
        src,
        dst,
        proto: 17,
        iif: "eth0",
        state: "untracked" as const,
        ipsec: false,
      };
      const packets: Packet[] = [
        { ...base, sport: 40000, dport: 5000, fragFirst: true, fragMore: true },
        { ...base, fragment: true, fragMore: true },
        { ...base, fragment: true, fragMore: false },
        { ...base, sport: 40000, dport: 5000 },
      ];
      const input = ruleset.tables.get("filter")!.chains.get("INPUT")!.rules;
      const engine = new Map<string, number>();
      for (const [i, r] of input.entries()) {
        let n = 0;
        for (const p of packets) {
          const v = evalRule(r, p, "INPUT").value;
          expect(v, `${COUNTED[i]} on ${JSON.stringify({ ...p, src: undefined, dst: undefined })}`).not.toBe(
            "maybe",
          );
          if (v === "yes") n++;
        }
        engine.set(`r${i}`, n);
      }
      expect(engine).toEqual(kernel);
    });
  });
});
