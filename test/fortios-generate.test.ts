import { describe, expect, it } from "vitest";
import { formatAddress, formatPrefix, hostMask } from "../src/model/address.js";
import { generateFortios } from "../src/platforms/fortios/generate.js";
import { type GenerateOptions, TargetError } from "../src/platforms/types.js";
import { activeFlows, planFlows } from "../src/vpn/flows.js";
import { makeScenario, type ScenarioInput } from "../src/vpn/scenario.js";
import { type Combo, generatorGrid, gridInput } from "./helpers/generator-grid.js";

const OPTS: GenerateOptions = { defaultDrop: false, requiredOnly: false, egress: false };

/** A `config` block: its path and its `edit` entries, each a map of `set` key → quoted-or-bare values. */
interface Block {
  path: string;
  edits: { name: string; sets: Map<string, string[]> }[];
  /** Set lines directly under the config (no edit), e.g. config vpn l2tp. */
  sets: Map<string, string[]>;
}

const words = (s: string): string[] => [...s.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);

/** Minimal structural reader for the generator's own output; fails on unbalanced config/edit. */
function readCli(text: string): Block[] {
  const blocks: Block[] = [];
  let block: Block | undefined;
  let edit: Block["edits"][number] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [verb, ...rest] = words(line);
    if (verb === "config") {
      if (block) throw new Error(`nested config: ${line}`);
      block = { path: rest.join(" "), edits: [], sets: new Map() };
    } else if (verb === "edit") {
      if (!block || edit) throw new Error(`edit outside config or inside edit: ${line}`);
      edit = { name: rest[0]!, sets: new Map() };
    } else if (verb === "set") {
      if (!block) throw new Error(`set outside config: ${line}`);
      (edit ? edit.sets : block.sets).set(rest[0]!, rest.slice(1));
    } else if (verb === "next") {
      if (!block || !edit) throw new Error("next without edit");
      block.edits.push(edit);
      edit = undefined;
    } else if (verb === "end") {
      if (!block || edit) throw new Error("end without config, or with an open edit");
      blocks.push(block);
      block = undefined;
    } else {
      throw new Error(`unexpected line: ${line}`);
    }
  }
  if (block || edit) throw new Error("unterminated block");
  return blocks;
}

const parts = (text: string) => {
  const [gw, nat] = text.split(/^# === Part 2:.*$/m);
  return { gw: readCli(gw!), nat: nat === undefined ? undefined : readCli(nat) };
};
const edits = (blocks: Block[], path: string) =>
  blocks.filter((b) => b.path === path).flatMap((b) => b.edits);

const input = (vpn: string, nat: string, ah: boolean, v6: boolean, peersKnown: boolean): ScenarioInput =>
  gridInput(vpn, nat, ah, v6, peersKnown, "wan1");

const ALL = generatorGrid("wan1");

const natDevice = (c: Combo) => c.plan.scenario.nat === "local" || c.plan.scenario.nat === "both";

describe("generateFortios", () => {
  it("writes balanced CLI whose every referenced tc- object is defined in the same part", () => {
    for (const c of ALL) {
      if (c.plan.scenario.family === 6 && natDevice(c)) continue;
      const text = generateFortios(c.plan, c.opts);
      const { gw, nat } = parts(text);
      for (const blocks of [gw, ...(nat ? [nat] : [])]) {
        const defined = new Set(blocks.flatMap((b) => b.edits.map((e) => e.name)));
        for (const b of blocks)
          for (const e of b.edits)
            for (const key of ["srcaddr", "dstaddr", "service", "member"]) {
              for (const ref of e.sets.get(key) ?? []) {
                if (ref.startsWith("tc-")) expect(defined.has(ref), `${c.name}: ${key} ${ref}`).toBe(true);
              }
            }
      }
      expect(text, c.name).not.toMatch(/psksecret|password|\bENC\b/i);
    }
  });

  it("accepts IKE from exactly the peer objects on the WAN; denies everyone else only with --default-drop (else offers it commented out)", () => {
    for (const c of ALL) {
      if (c.plan.scenario.family === 6 && natDevice(c)) continue;
      const s = c.plan.scenario;
      const { gw } = parts(generateFortios(c.plan, c.opts));
      const policies = edits(gw, s.family === 6 ? "firewall local-in-policy6" : "firewall local-in-policy");
      const active = new Set(activeFlows(c.plan, c.opts).map((f) => f.id));
      const ikeService = active.has("natt-in") ? "IKE" : "tc-udp-500";
      const accept = policies.filter((p) => p.sets.get("action")?.[0] === "accept");
      const ike = accept.filter((p) => p.sets.get("service")?.includes(ikeService));
      expect(ike, c.name).toHaveLength(1);
      const pol = ike[0]!;
      expect(pol.name).toBe("0");
      expect(pol.sets.get("intf")).toEqual(["wan1"]);

      // Resolve srcaddr through the group to the prefixes the objects hold.
      const src = pol.sets.get("srcaddr")!;
      const groups = edits(gw, s.family === 6 ? "firewall addrgrp6" : "firewall addrgrp");
      const addrs = edits(gw, s.family === 6 ? "firewall address6" : "firewall address");
      const members = src.flatMap((n) => groups.find((g) => g.name === n)?.sets.get("member") ?? [n]);
      const held = members.map((m) =>
        m === "all"
          ? "all"
          : (addrs.find((a) => a.name === m)!.sets.get(s.family === 6 ? "ip6" : "subnet") ?? []).join(" "),
      );
      const want = s.peers.length
        ? s.peers.map((p) =>
            s.family === 6
              ? formatPrefix(p, { alwaysLen: true })
              : `${formatAddress(4, p.addr)} ${formatAddress(4, ~hostMask(4, p.len) & 0xffffffffn)}`,
          )
        : ["all"];
      expect(held.sort(), c.name).toEqual(want.sort());

      // Additive without --default-drop: no deny at all (one would also cut off every other tunnel on
      // this address); the per-service deny is shown commented out. With it, the deny of ALL closes.
      const deny = policies.filter((p) => p.sets.get("action")?.[0] === "deny");
      const dropAll = policies.filter((p) => p.sets.get("service")?.[0] === "ALL");
      expect(
        deny.filter((p) => !dropAll.includes(p)),
        c.name,
      ).toEqual([]);
      expect(dropAll.length, c.name).toBe(c.opts.defaultDrop ? 1 : 0);
      if (c.opts.defaultDrop) expect(policies.at(-1)).toBe(dropAll[0]);
      if (!c.opts.defaultDrop && s.peers.length > 0)
        expect(generateFortios(c.plan, c.opts), c.name).toMatch(/^ {4}# {4}set action deny$/m);
    }
  });

  it("defines ESP/AH services iff the plan needs them, never a WAN policy for L2TP, and enforces IPsec for L2TP", () => {
    for (const c of ALL) {
      if (c.plan.scenario.family === 6 && natDevice(c)) continue;
      const text = generateFortios(c.plan, c.opts);
      const { gw } = parts(text);
      const services = edits(gw, "firewall service custom");
      const active = new Set(activeFlows(c.plan, c.opts).map((f) => f.id));
      const esp = services.find((e) => e.name === "tc-esp");
      expect(Boolean(esp), c.name).toBe(active.has("esp-in"));
      if (esp) expect(esp.sets.get("protocol-number")).toEqual(["50"]);
      expect(Boolean(services.find((e) => e.name === "tc-ah")), c.name).toBe(active.has("ah-in"));
      expect(
        services.some((e) => (e.sets.get("udp-portrange") ?? []).includes("1701")),
        c.name,
      ).toBe(false);
      const l2tp = gw.find((b) => b.path === "vpn l2tp");
      expect(l2tp?.sets.get("enforce-ipsec"), c.name).toEqual(
        c.plan.scenario.vpn === "l2tp-ipsec" ? ["enable"] : undefined,
      );
      if (active.has("esp-in")) expect(text).toContain("detect-unknown-esp disable");
    }
  });

  it("comments optional flows and drops them with requiredOnly", () => {
    const plan = planFlows(
      makeScenario({ vpn: "site-to-site", peers: ["192.0.2.1"], wan: "port1", mobike: false }),
    );
    const natt = plan.flows.find((f) => f.id === "natt-in")!;
    expect(natt.requirement).toBe("optional");
    expect(generateFortios(plan, OPTS)).toContain(`# natt-in (optional): ${natt.reason}`);
    const strict = generateFortios(plan, { ...OPTS, requiredOnly: true });
    expect(strict).not.toContain("natt-in");
    expect(strict).not.toMatch(/set service "IKE"/);
    expect(strict).toContain('set service "tc-udp-500"');
  });

  it("forwards IKE and NAT-T through VIPs on the NAT device, with a policy accepting them", () => {
    const plan = planFlows(makeScenario(input("ikev2-remote-access", "local", false, false, true)));
    const { nat } = parts(generateFortios(plan, OPTS));
    expect(nat).toBeDefined();
    const vips = edits(nat!, "firewall vip");
    expect(vips.map((v) => v.name).sort()).toEqual(["tc-vip-ike-forward", "tc-vip-natt-forward"]);
    for (const v of vips) {
      expect(v.sets.get("extip")).toEqual(["203.0.113.1"]);
      expect(v.sets.get("mappedip")).toEqual(["10.0.0.10"]);
      expect(v.sets.get("portforward")).toEqual(["enable"]);
      expect(v.sets.get("protocol")).toEqual(["udp"]);
      expect(v.sets.get("extport")).toEqual(v.sets.get("mappedport"));
    }
    const pol = edits(nat!, "firewall policy");
    expect(pol).toHaveLength(1);
    expect(pol[0]!.sets.get("dstaddr")!.sort()).toEqual(["tc-vip-ike-forward", "tc-vip-natt-forward"]);
    expect(pol[0]!.sets.get("action")).toEqual(["accept"]);
    expect(pol[0]!.sets.get("service")).toEqual(["IKE"]);
    expect(pol[0]!.sets.get("srcaddr")).toEqual(["tc-peers"]);
  });

  it("refuses what it cannot express", () => {
    const p = (i: ScenarioInput) => planFlows(makeScenario(i));
    expect(() => generateFortios(p({ vpn: "site-to-site" }), OPTS)).toThrow(TargetError);
    expect(() => generateFortios(p({ vpn: "site-to-site", wan: "ppp+" }), OPTS)).toThrow(/wildcard/);
    expect(() => generateFortios(p(input("site-to-site", "local", false, true, true)), OPTS)).toThrow(
      TargetError,
    );
    expect(() =>
      generateFortios(p({ vpn: "site-to-site", nat: "both", wan: "wan1", local: "10.0.0.1" }), OPTS),
    ).toThrow(/--public/);
  });
});
