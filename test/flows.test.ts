import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatPrefix, prefixContains } from "../src/model/address.js";
import { planFlows } from "../src/vpn/flows.js";
import { makeScenario, NAT_MODES, ScenarioError, VPN_TYPES } from "../src/vpn/scenario.js";

type Combo = {
  vpn: (typeof VPN_TYPES)[number];
  nat: (typeof NAT_MODES)[number];
  ah: boolean;
  ipv6: boolean;
  peers: string[];
  ike: "1" | "2" | undefined;
  encap: boolean;
  mobike: boolean;
};

function* combos(): Generator<Combo> {
  for (const vpn of VPN_TYPES)
    for (const nat of NAT_MODES)
      for (const ah of [false, true])
        for (const ipv6 of [false, true])
          for (const known of [false, true])
            for (const ike of vpn === "site-to-site" ? (["1", "2"] as const) : [undefined])
              for (const encap of [false, true])
                for (const mobike of [false, true]) {
                  const peers = known
                    ? ipv6
                      ? ["2001:db8:7::1", "2001:db8:8::/64"]
                      : ["203.0.113.7", "192.0.2.0/24"]
                    : [];
                  yield { vpn, nat, ah, ipv6, peers, ike, encap, mobike };
                }
}

const all = [...combos()];

describe("flow model over every scenario combination", () => {
  it.each(all.map((c) => [JSON.stringify(c), c] as const))("%s", (_name, c) => {
    const s = makeScenario({ ...c, local: c.ipv6 ? "2001:db8:1::1" : "198.51.100.1" });
    const plan = planFlows(s);
    const byId = new Map(plan.flows.map((f) => [f.id, f]));
    expect(byId.size).toBe(plan.flows.length); // ids unique
    const ike2 = s.ike === 2;
    const natOnPath = c.nat !== "none";
    const remoteAccess = c.vpn !== "site-to-site";

    const ike = byId.get("ike-in")!;
    expect(ike).toMatchObject({
      protocol: "udp",
      port: 500,
      requirement: "required",
      mustAcceptNew: true,
      direction: "inbound",
    });
    expect(ike.initiator).toBe(remoteAccess ? "peer" : "either");
    expect(ike.peers.length).toBe(c.peers.length);

    const natt = byId.get("natt-in")!;
    const floats = natOnPath || c.encap || (ike2 && c.mobike);
    expect(natt.requirement).toBe(floats ? "required" : "optional");
    expect(natt.mustAcceptNew).toBe(true);

    const esp = byId.get("esp-in")!;
    expect(esp.requirement).toBe(!natOnPath && !c.encap ? "required" : "not-needed");
    const ah = byId.get("ah-in")!;
    expect(ah.requirement).toBe(c.ah && !natOnPath && !c.encap ? "required" : "not-needed");
    if (c.ah && (natOnPath || c.encap)) expect(plan.notes.join(" ")).toMatch(/AH is incompatible/);

    const l2tp = byId.get("l2tp-in");
    const plain = byId.get("l2tp-plain-in");
    if (c.vpn === "l2tp-ipsec") {
      expect(l2tp).toMatchObject({
        port: 1701,
        condition: "ipsec",
        action: "accept",
        requirement: "required",
      });
      expect(plain).toMatchObject({ port: 1701, condition: "no-ipsec", action: "drop" });
      expect(plain!.peers).toEqual([]); // plain L2TP is dropped from everyone, peers included
    } else {
      expect(l2tp).toBeUndefined();
      expect(plain).toBeUndefined();
    }

    const nd = plan.flows.filter((f) => f.location === "nat-device");
    if (c.nat === "local" || c.nat === "both") {
      expect(nd.filter((f) => f.requirement === "required").map((f) => f.port)).toEqual([500, 4500]);
      if (c.vpn === "l2tp-ipsec") expect(byId.get("l2tp-forward")!.requirement).toBe("not-needed");
    } else {
      expect(nd).toEqual([]);
    }

    // Every outbound flow mirrors a needed inbound one; ESP out whenever ESP in is needed.
    for (const f of plan.flows.filter((x) => x.direction === "outbound")) {
      expect(byId.get(f.id.replace(/-out$/, "-in"))!.requirement).not.toBe("not-needed");
    }
    expect(byId.has("esp-out")).toBe(esp.requirement === "required");
    for (const f of plan.flows) {
      expect(f.reason.length).toBeGreaterThan(20);
      expect(f.rfcs.length).toBeGreaterThan(0);
    }
  });

  it("covers every combination", () => {
    // (2 remote-access types + site-to-site × 2 IKE versions) × 4 NAT modes × 2^5 toggles
    expect(all.length).toBe(4 * 4 * 2 ** 5);
  });
});

describe("scenario peers", () => {
  it("a peer inside another one (or given twice) is dropped: no duplicate rules", () => {
    const s = makeScenario({
      vpn: "ikev2-remote-access",
      peers: [
        "203.0.113.9",
        "203.0.113.0/24",
        "198.51.100.7",
        "198.51.100.7",
        "198.51.100.0/29",
        "192.0.2.1",
      ],
    });
    expect(s.peers.map((p) => formatPrefix(p))).toEqual(["203.0.113.0/24", "198.51.100.0/29", "192.0.2.1"]);
  });

  it("keeps exactly the peers no other peer contains (the first of equal ones), in the given order", () => {
    // A small address space, so that prefixes nest and repeat often.
    const prefix = fc
      .tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 26, max: 32 }))
      .map(([host, len]) => {
        const a = (host >> (32 - len)) << (32 - len);
        const text = `198.51.100.${a}`;
        return len === 32 ? text : `${text}/${len}`;
      });
    fc.assert(
      fc.property(fc.array(prefix, { maxLength: 30 }), (peers) => {
        const given = makeScenario({ vpn: "site-to-site", peers: ["198.51.100.0/32", ...peers] }).peers;
        const all = ["198.51.100.0/32", ...peers].map(
          (t) => makeScenario({ vpn: "site-to-site", peers: [t] }).peers[0]!,
        );
        const expected = all.filter(
          (p, i) => !all.some((q, j) => j !== i && prefixContains(q, p) && (q.len < p.len || j < i)),
        );
        expect(given.map((p) => formatPrefix(p))).toEqual(expected.map((p) => formatPrefix(p)));
      }),
    );
  });
});

describe("seed 000 scenarios", () => {
  const needed = (args: Parameters<typeof makeScenario>[0]) =>
    planFlows(makeScenario(args))
      .flows.filter((f) => f.location === "gateway" && f.direction === "inbound" && f.action === "accept")
      .filter(
        (f) => f.requirement !== "not-needed" && f.service !== "ip-fragments" && f.service !== "ike-tcp",
      )
      .map((f) => `${f.id}:${f.requirement}`);

  it("§6.1 L2TP/IPsec without NAT: 500, 4500 (optional), ESP, AH, 1701 via IPsec", () => {
    expect(needed({ vpn: "l2tp-ipsec", nat: "none", ah: true })).toEqual([
      "ike-in:required",
      "natt-in:optional",
      "esp-in:required",
      "ah-in:required",
      "l2tp-in:required",
    ]);
  });
  it("§6.2 L2TP/IPsec behind NAT: 500, 4500, 1701 via IPsec; no ESP/AH", () => {
    expect(needed({ vpn: "l2tp-ipsec", nat: "local", local: "10.0.0.2" })).toEqual([
      "ike-in:required",
      "natt-in:required",
      "l2tp-in:required",
    ]);
  });
  it("§7.5 site-to-site IKEv1 without NAT: 500, ESP, AH; with NAT: 500, 4500", () => {
    expect(needed({ vpn: "site-to-site", ike: 1, ah: true, peers: ["203.0.113.7"] })).toEqual([
      "ike-in:required",
      "natt-in:optional",
      "esp-in:required",
      "ah-in:required",
    ]);
    expect(needed({ vpn: "site-to-site", ike: 1, nat: "peer", peers: ["203.0.113.7"] })).toEqual([
      "ike-in:required",
      "natt-in:required",
    ]);
  });
  it("IKEv2 MOBIKE needs 4500 even without NAT; --no-mobike does not", () => {
    expect(needed({ vpn: "site-to-site", peers: ["203.0.113.7"] })).toContain("natt-in:required");
    expect(needed({ vpn: "site-to-site", peers: ["203.0.113.7"], mobike: false })).toContain(
      "natt-in:optional",
    );
  });
  it("forced encapsulation removes ESP", () => {
    expect(needed({ vpn: "ikev2-remote-access", encap: true })).toEqual([
      "ike-in:required",
      "natt-in:required",
    ]);
  });
});

describe("scenario validation", () => {
  it("lists the allowed values", () => {
    expect(() => makeScenario({ vpn: "pptp" })).toThrow(
      /allowed: l2tp-ipsec, ikev2-remote-access, site-to-site/,
    );
    expect(() => makeScenario({ vpn: "site-to-site", nat: "yes" })).toThrow(
      /allowed: none, local, peer, both/,
    );
  });
  it("names a bad address", () => {
    expect(() => makeScenario({ vpn: "site-to-site", peers: ["203.0.113.300"] })).toThrow(
      /--peer '203.0.113.300'/,
    );
    expect(() => makeScenario({ vpn: "site-to-site", peers: ["10.0.0.1/24"] })).toThrow(
      /host bits set; did you mean 10.0.0.0\/24/,
    );
    expect(() => makeScenario({ vpn: "site-to-site", local: "10.0.0.0/8" })).toThrow(ScenarioError);
  });
  it("infers or checks the address family", () => {
    expect(makeScenario({ vpn: "site-to-site", peers: ["2001:db8::1"] }).family).toBe(6);
    expect(() => makeScenario({ vpn: "site-to-site", peers: ["2001:db8::1", "192.0.2.1"] })).toThrow(
      /mix IPv4 and IPv6/,
    );
    expect(() => makeScenario({ vpn: "site-to-site", ipv6: true, peers: ["192.0.2.1"] })).toThrow(
      /is IPv4 but the scenario is IPv6/,
    );
  });
  it("accepts dotted netmasks", () => {
    expect(makeScenario({ vpn: "l2tp-ipsec", peers: ["192.0.2.0/255.255.255.0"] }).peers[0]!.len).toBe(24);
  });
});
