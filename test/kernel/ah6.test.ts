/**
 * IPv6 AH against the kernel (iptables-nft). `-p` is nftables' `meta l4proto`, which stops at AH
 * (IP6_FH_F_AUTH), so `-p ah` matches AH packets and `-p udp` does not match UDP inside AH (legacy
 * ip6tables would do the opposite: it looks past AH); `-m ah` needs no `-p ah`; conntrack skips AH
 * (ipv6_skip_exthdr), so an AH packet's connection is that of the header after AH. Two AH packets
 * (SPI 0x100 carrying UDP, SPI 0x200 carrying IPv6) and a plain UDP datagram meet rules without a
 * target; each rule's counter is compared with the engine's answer for the three packets: exact
 * where the engine says yes or no, and where it says "maybe" (the header after AH is not part of a
 * packet here) the kernel must show that "no" would have been wrong.
 */
import { afterAll, expect, it } from "vitest";
import { evalRule, type Packet } from "../../src/analysis/iptables-eval.js";
import { parsePrefix } from "../../src/model/address.js";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { describeKernel, inNs, sweepNamespaces, withTopology } from "./netns.js";

const COUNTED = [
  "-p ah",
  "! -p ah",
  "-m ah",
  "-m ah --ahspi 0x100",
  "-m ah ! --ahspi 0x100",
  "-p 51 -m ah --ahspi 0x100",
  "-p udp",
  "-p udp -m udp --dport 5000",
  "-p ipv6",
  "-m conntrack --ctproto udp",
];

describeKernel("IPv6 AH against the kernel", () => {
  afterAll(sweepNamespaces);

  it("-p ah matches AH packets, -m ah needs no -p ah, conntrack looks past AH", async () => {
    await withTopology({ family: 6 }, async (t) => {
      const rules = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        // Neighbour discovery passes before the counted rules.
        "-A INPUT -p ipv6-icmp -j ACCEPT",
        ...COUNTED.map((m, i) => `-A INPUT ${m} -m comment --comment r${i}`),
        "COMMIT",
        "",
      ].join("\n");
      await inNs(t.gw, ["ip6tables-restore"], { input: rules });
      // AH: next header, length (in 4-byte units minus 2: 24 bytes with a 12-byte ICV), reserved,
      // SPI, sequence number, ICV; then what it carries.
      const send = `import socket, struct
def ah(nh, spi, inner):
    return struct.pack("!BBHII", nh, 4, 0, spi, 1) + b"\\0" * 12 + inner
udp = struct.pack("!HHHH", 40000, 5000, 12, 0) + b"tcah"
ip6 = struct.pack("!IHBB", 0x60000000, 0, 59, 64) + b"\\0" * 32
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 51)
r.bind(("${t.peerAddr}", 0))
r.sendto(ah(17, 0x100, udp), ("${t.gwAddr}", 0))
r.sendto(ah(41, 0x200, ip6), ("${t.gwAddr}", 0))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("${t.peerAddr}", 40000))
s.sendto(b"tcah", ("${t.gwAddr}", 5000))`;
      await inNs(t.cl, ["python3", "-c", send]);
      const kernel = new Map<string, number>();
      for (let i = 0; i < 30 && kernel.get("r2") !== 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const saved = (await inNs(t.gw, ["ip6tables-save", "-c", "-t", "filter"])).stdout;
        for (const line of saved.split("\n")) {
          const m = /^\[(\d+):\d+\] .*--comment "?(r\d+)"?/.exec(line);
          if (m) kernel.set(m[2]!, Number(m[1]));
        }
      }
      expect(kernel.get("r2"), "-m ah: the two AH packets").toBe(2);

      const { ruleset, errors, warnings } = parseIptables(rules, { file: "ah6.rules", family: 6 });
      expect(errors).toEqual([]);
      // ip6tables warns about -p ah ("never matched protocol": true of legacy ip6tables only).
      expect(warnings.map((w) => w.line)).toEqual([4, 9]);
      const base = {
        family: 6 as const,
        src: parsePrefix(t.peerAddr).addr,
        dst: parsePrefix(t.gwAddr).addr,
        iif: "eth0",
        state: "new" as const,
        ipsec: false,
      };
      const packets: Packet[] = [
        { ...base, proto: 51, spi: 0x100 },
        { ...base, proto: 51, spi: 0x200 },
        { ...base, proto: 17, sport: 40000, dport: 5000 },
      ];
      const chain = ruleset.tables.get("filter")!.chains.get("INPUT")!;
      chain.rules.slice(1).forEach((r, i) => {
        const answers = packets.map((p) => evalRule(r, p, "INPUT").value);
        const yes = answers.filter((a) => a === "yes").length;
        const maybe = answers.filter((a) => a === "maybe").length;
        const k = kernel.get(`r${i}`)!;
        if (maybe === 0) expect(k, `${COUNTED[i]}: ${answers.join(",")}`).toBe(yes);
        else expect(k, `${COUNTED[i]}: the kernel matched an AH packet here`).toBeGreaterThan(yes);
      });
      // The only undecided one looks past AH: conntrack.
      const undecided = chain.rules.filter((r) => evalRule(r, packets[0]!, "INPUT").value === "maybe");
      expect(undecided.map((r) => r.prov.line - 4)).toEqual([9]);
    });
  });
});
