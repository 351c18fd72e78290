import { describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

describe("tunnelcheck plan", () => {
  it("prints stable JSON for machines", async () => {
    const r = await cli([
      "plan",
      "--vpn",
      "site-to-site",
      "--nat",
      "none",
      "--peer",
      "203.0.113.7",
      "--local",
      "198.51.100.1",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.scenario).toMatchObject({
      vpn: "site-to-site",
      ike: 2,
      nat: "none",
      family: "ipv4",
      peers: ["203.0.113.7/32"],
      local: "198.51.100.1",
    });
    const ike = j.flows.find((f: { id: string }) => f.id === "ike-in");
    expect(ike).toMatchObject({
      protocol: "udp",
      port: 500,
      direction: "inbound",
      initiator: "either",
      mustAcceptNew: true,
      requirement: "required",
    });
    expect(ike.rfcs).toContain("RFC 7296");
    expect(Object.keys(ike).sort()).toEqual(
      [
        "action",
        "condition",
        "direction",
        "id",
        "initiator",
        "location",
        "mustAcceptNew",
        "peers",
        "port",
        "protoNumber",
        "protocol",
        "reason",
        "requirement",
        "rfcs",
        "service",
      ].sort(),
    );
  });

  it("prints a readable table without colour when not on a TTY", async () => {
    const r = await cli([
      "plan",
      "--vpn",
      "l2tp-ipsec",
      "--nat",
      "local",
      "--local",
      "192.168.1.10",
      "--wan",
      "eth0",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.includes("\u001b[")).toBe(false);
    expect(r.stdout).toMatch(/At the VPN gateway/);
    expect(r.stdout).toMatch(/At the NAT device/);
    expect(r.stdout).toMatch(/l2tp-forward/);
    expect(r.stdout).toMatch(/Seed 000 §5.3 forwards UDP 1701/);
  });

  it("prints markdown", async () => {
    const r = await cli(["plan", "--vpn", "ikev2-remote-access", "--format", "md"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# VPN flow plan/);
    expect(r.stdout).toMatch(/\| `natt-in` \| UDP 4500 \|/);
  });

  it("exits 2 and lists allowed values for a bad --vpn", async () => {
    const r = await cli(["plan", "--vpn", "pptp"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/l2tp-ipsec, ikev2-remote-access, site-to-site/);
  });

  it("exits 2 and names a bad address", async () => {
    const r = await cli(["plan", "--vpn", "site-to-site", "--peer", "203.0.113.999"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid --peer '203.0.113.999'/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it("exits 2 for a missing --vpn and unknown flags", async () => {
    expect((await cli(["plan"])).code).toBe(2);
    expect((await cli(["plan", "--vpn", "site-to-site", "--bogus"])).code).toBe(2);
  });

  it("--help exits 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/plan/);
    expect(r.stdout).toMatch(/rules/);
  });
});

describe("tunnelcheck rules", () => {
  it("prints iptables-restore rules for the scenario", async () => {
    const r = await cli([
      "rules",
      "--vpn",
      "site-to-site",
      "--peer",
      "203.0.113.7",
      "--local",
      "198.51.100.1",
      "--wan",
      "eth0",
      "--target",
      "iptables-restore",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\*filter$/m);
    expect(r.stdout).toMatch(/-s 203\.0\.113\.7 .*--dport 500 .*-j ACCEPT/);
    expect(r.stdout).toMatch(/^COMMIT$/m);
  });
  it("refuses a target of the other address family, naming the right one", async () => {
    const r = await cli(["rules", "--vpn", "site-to-site", "--peer", "2001:db8::7", "--target", "iptables"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/use --target ip6tables/);
  });
  it("requires --target and lists the allowed ones", async () => {
    expect((await cli(["rules", "--vpn", "site-to-site"])).code).toBe(2);
    const r = await cli(["rules", "--vpn", "site-to-site", "--target", "pf"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /iptables, iptables-restore, ip6tables, ip6tables-restore, nftables, fortios, firewalld/,
    );
  });
});
