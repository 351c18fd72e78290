/**
 * `tunnelcheck trace --fortios FILE --ipsec`: a decapsulated packet is looked up on the tunnel
 * interface of its phase1-interface, not on --iif; the output says which one, and says so when it
 * cannot be determined (no or several phase1-interfaces on --iif).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const site2 = resolve("examples/seed001/site2.conf");
const dir = mkdtempSync(join(tmpdir(), "tc-trace-ipsec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Site 2 with a second phase1-interface on port1 (site3) and HTTPS accepted on site2, denied on site3. */
const twoTunnels = (() => {
  const text = readFileSync(site2, "utf8")
    .replace(
      "config vpn ipsec phase1-interface\n",
      'config vpn ipsec phase1-interface\n    edit "site3"\n        set interface "port1"\n        set remote-gw 203.0.113.9\n    next\n',
    )
    .replace(
      "config firewall local-in-policy\n",
      [
        "config firewall local-in-policy",
        "    edit 7",
        '        set intf "site2"',
        '        set srcaddr "all"',
        '        set dstaddr "all"',
        "        set action accept",
        '        set service "HTTPS"',
        '        set schedule "always"',
        "    next",
        "    edit 8",
        '        set intf "site3"',
        '        set srcaddr "all"',
        '        set dstaddr "all"',
        "        set action deny",
        '        set service "HTTPS"',
        '        set schedule "always"',
        "    next",
        "",
      ].join("\n"),
    );
  const f = join(dir, "two-tunnels.conf");
  writeFileSync(f, text);
  return f;
})();

const https = (file: string, ...extra: string[]) =>
  cli(["trace", "--fortios", file, ..."--proto tcp --dport 443".split(" "), ...extra]);
const json = async (file: string, ...extra: string[]) => {
  const r = await https(file, ...extra, "--format", "json");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

describe("trace --fortios --ipsec: the interface the packet is evaluated on", () => {
  it("one phase1-interface on --iif: evaluated on its tunnel interface, and the output says so", async () => {
    const r = await https(site2, "--src", "10.1.2.3", "--iif", "port1", "--ipsec");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/from port1 \(decapsulated from IPsec\)/);
    expect(lines[1]).toBe(
      "arrived via IPsec: evaluated as entering on tunnel interface site2 (phase1 site2), not port1.",
    );
    const j = await json(site2, "--src", "10.1.2.3", "--iif", "port1", "--ipsec");
    expect(j.ingress).toEqual({
      given: "port1",
      ipsec: true,
      evaluatedOn: "site2",
      phase1: "site2",
      candidates: ["site2"],
      reason: "arrived via IPsec: evaluated as entering on tunnel interface site2 (phase1 site2), not port1",
    });
    // The existing fields are unchanged: packet.iif is still what was given.
    expect(j.packet).toMatchObject({ iif: "port1", ipsec: true });
    expect(j.visited.map((v: { why: string }) => v.why)).toEqual([
      'intf "port1" does not include site2',
      'intf "port1" does not include site2',
    ]);
  });

  it("--iif naming the tunnel interface itself: evaluated there, as given", async () => {
    const j = await json(site2, "--src", "10.1.2.3", "--iif", "site2", "--ipsec");
    expect(j.ingress).toMatchObject({ given: "site2", evaluatedOn: "site2", phase1: "site2" });
    expect(j.ingress.reason).toMatch(/tunnel interface site2 \(phase1 site2, bound to port1\), as given$/);
  });

  it("no phase1-interface on --iif: says there is no tunnel interface instead of guessing", async () => {
    const r = await https(site2, "--src", "10.1.2.3", "--iif", "port2", "--ipsec");
    expect(r.stdout.split("\n")[1]).toBe(
      "arrived via IPsec: no tunnel interface to evaluate it on — no phase1-interface in VDOM root is bound to port2.",
    );
    const j = await json(site2, "--src", "10.1.2.3", "--iif", "port2", "--ipsec");
    expect(j.verdict).toBe("drop");
    expect(j.ingress).toMatchObject({ given: "port2", evaluatedOn: null, phase1: null, candidates: [] });
  });

  it("several phase1-interfaces on --iif: undetermined, each tunnel's walk instead of the first one's", async () => {
    const r = await https(twoTunnels, "--src", "10.1.2.3", "--iif", "port1", "--ipsec");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^arrived via IPsec: the tunnel interface cannot be determined — phase1-interfaces site3, site2 are all bound to port1;/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}on tunnel interface site3:\n {4}local-in policy 7 .*: no match: .*\n {4}local-in policy 8 .*: match: /m,
    );
    expect(r.stdout).toMatch(/^ {2}on tunnel interface site2:\n {4}local-in policy 7 .*: match: /m);
    // No walk is shown as if it were the packet's.
    expect(r.stdout).not.toMatch(/^ {2}local-in policy/m);

    const j = await json(twoTunnels, "--src", "10.1.2.3", "--iif", "port1", "--ipsec");
    expect(j.verdict).toBe("unknown");
    expect(j.visited).toEqual([]);
    expect(j.ingress).toMatchObject({
      given: "port1",
      evaluatedOn: null,
      phase1: null,
      candidates: ["site3", "site2"],
    });
    expect(
      j.ingress.walks.map((w: { interface: string; verdict: string }) => [w.interface, w.verdict]),
    ).toEqual([
      ["site3", "drop"],
      ["site2", "accept"],
    ]);
  });

  it("symbolic sources: the ingress is said too", async () => {
    const r = await https(site2, "--iif", "port1", "--ipsec");
    expect(r.stdout.split("\n")[1]).toBe(
      "arrived via IPsec: evaluated as entering on tunnel interface site2 (phase1 site2), not port1.",
    );
    const j = await json(site2, "--iif", "port1", "--ipsec");
    expect(j.kind).toBe("symbolic");
    expect(j.ingress).toMatchObject({ evaluatedOn: "site2", candidates: ["site2"] });
  });

  it("without --ipsec: evaluated on --iif, nothing added to the text", async () => {
    const r = await https(site2, "--src", "10.1.2.3", "--iif", "port1");
    expect(r.stdout).not.toMatch(/arrived via IPsec/);
    const j = await json(site2, "--src", "10.1.2.3", "--iif", "port1");
    expect(j.ingress).toEqual({
      given: "port1",
      ipsec: false,
      evaluatedOn: "port1",
      phase1: null,
      candidates: [],
      reason: "as given (--iif)",
    });
  });
});
