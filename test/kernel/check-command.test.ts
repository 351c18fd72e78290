/**
 * `-C` / `--check` lines in a restore file against iptables-restore 1.8.9: it runs them as
 * `iptables -C` does, so the file loads only when every checked rule is in its chain at that
 * point. The parser answers the same way, with -D's rule matching, and -C changes nothing.
 */
import { expect, it } from "vitest";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { describeKernel, inNs, scratchNamespace } from "./netns.js";

const file = (line: string) =>
  [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":IKE - [0:0]",
    "-A INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j IKE",
    "-A IKE -j ACCEPT",
    line,
    "-A INPUT -j DROP",
    "COMMIT",
    "",
  ].join("\n");

const CASES = [
  "-C INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j IKE",
  "-C INPUT -s 10.0.0.1 -p udp --dport 500 -j IKE",
  "--check INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j IKE",
  "--che INPUT -s 10.0.0.1/32 -p udp -m udp --dport 500 -j IKE",
  "-C IKE -j ACCEPT",
  "-C INPUT -s 10.0.0.1/32 -p udp -m udp --dport 4500 -j IKE",
  "-C INPUT -s 10.0.0.1/32,10.0.0.2/32 -p udp -m udp --dport 500 -j IKE",
  "-C INPUT -j DROP", // appended after this line
  "-C NOPE -j ACCEPT",
  "-C INPUT 1",
  "-C IKE -j ACCEPT -j ACCEPT",
];

describeKernel("-C lines against iptables-restore", () => {
  const scratch = scratchNamespace("check");
  const ns = scratch.name;

  it("a file loads exactly when the parser finds every checked rule, and -C changes nothing", async () => {
    await scratch.create();
    const found: string[] = [];
    let loaded = 0;
    for (const line of CASES) {
      const kernel = await inNs(ns, ["iptables-restore"], { input: file(line), check: false });
      const ours = parseIptables(file(line), { file: "t.rules" });
      if ((kernel.code === 0) !== (ours.errors.length === 0))
        found.push(
          `${line}: iptables ${kernel.code === 0 ? "loads" : "refuses"}, parser ${ours.errors.map((e) => e.message).join("; ") || "ok"}`,
        );
      if (kernel.code !== 0) continue;
      loaded++;
      const rules = (t: string) =>
        parseIptables(t, { file: "t.rules" })
          .ruleset.tables.get("filter")!
          .chains.get("INPUT")!
          .rules.map((r) => r.prov.text);
      expect(rules(file(line))).toEqual(rules(file("")));
    }
    expect(found).toEqual([]);
    expect(loaded).toBe(5);
  }, 60_000);
});
