import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parsePrefix, prefixContains } from "../src/model/address.js";
import * as iptablesModule from "../src/platforms/iptables/generate.js";
import { generateIptables } from "../src/platforms/iptables/generate.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";
import { type IptablesTrace, traceIptables } from "../src/platforms/iptables/trace.js";
import { generateRules, TARGETS } from "../src/platforms/registry.js";
import { defaultGenerateOptions, type GenerateOptions } from "../src/platforms/types.js";
import { activeFlows, planFlows } from "../src/vpn/flows.js";
import { makeScenario, NAT_MODES, type ScenarioInput, VPN_TYPES } from "../src/vpn/scenario.js";
import { SEED_000, type SeedRuleset, seed, seedScript } from "./kernel/seed000.js";

// =============================================================================================
// A tiny iptables evaluator, written only for these tests. It knows exactly the matches that the
// seed and the generator use and throws on anything else, so it cannot silently ignore a match.

type Verdict = "ACCEPT" | "DROP";

interface Pkt {
  iface: string;
  src: string;
  dst: string;
  proto: "udp" | "tcp" | "esp" | "ah" | "ipv6-icmp";
  sport?: number;
  dport?: number;
  /** Decapsulated from an inbound IPsec SA (what xt_policy --pol ipsec sees). */
  ipsec: boolean;
  /** IP fragment: "first" carries the transport header, "later" does not. */
  frag?: "first" | "later";
  ct: "NEW" | "ESTABLISHED" | "RELATED" | "INVALID";
  ctDnat?: boolean;
  icmpType?: number;
  hopLimit?: number;
}

interface Rule {
  text: string;
  test: (p: Pkt) => boolean;
  target: string;
  toDestination?: string;
}

interface Table {
  policies: Map<string, Verdict>;
  chains: Map<string, Rule[]>;
}

class Ruleset {
  tables = new Map<string, Table>();

  table(name: string): Table {
    let t = this.tables.get(name);
    if (!t) {
      t = { policies: new Map(), chains: new Map() };
      for (const c of ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]) t.chains.set(c, []);
      this.tables.set(name, t);
    }
    return t;
  }

  /** `iptables-restore --noflush` semantics for the subset used here. */
  restore(text: string): this {
    let table: Table | undefined;
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      if (line.startsWith("*")) table = this.table(line.slice(1));
      else if (line === "COMMIT") table = undefined;
      else if (line.startsWith(":")) {
        const [name, policy] = line.slice(1).split(/\s+/);
        if (!table || !name) throw new Error(`bad line ${line}`);
        if (policy === "-") table.chains.set(name, []);
        else table.policies.set(name, policy as Verdict);
      } else {
        if (!table) throw new Error(`rule outside a table: ${line}`);
        this.apply(table, tokenize(line));
      }
    }
    return this;
  }

  /** Shell command lines as in the seed (`iptables [-t t] -A chain ...  # comment`). */
  commands(script: string): this {
    for (const raw of script.split("\n")) {
      const line = raw.replace(/\s#.*$/, "").trim();
      if (line === "") continue;
      const tokens = tokenize(line);
      if (tokens[0] !== "iptables" && tokens[0] !== "ip6tables")
        throw new Error(`not an iptables command: ${line}`);
      let name = "filter";
      const rest: string[] = [];
      for (let i = 1; i < tokens.length; i++) {
        if (tokens[i] === "-t") name = tokens[++i]!;
        else rest.push(tokens[i]!);
      }
      this.apply(this.table(name), rest);
    }
    return this;
  }

  private apply(table: Table, tokens: string[]): void {
    const [op, chain, ...rest] = tokens;
    if (!chain) throw new Error(`no chain in ${tokens.join(" ")}`);
    const rules = table.chains.get(chain);
    if (!rules) throw new Error(`unknown chain ${chain}`);
    if (op === "-A") rules.push(parseRule(rest));
    else if (op === "-I") {
      const pos = /^\d+$/.test(rest[0] ?? "") ? Number(rest.shift()) : 1;
      rules.splice(pos - 1, 0, parseRule(rest));
    } else throw new Error(`unsupported operation ${op}`);
  }

  /** Verdict of one built-in chain for a packet (policy when nothing decides). */
  run(tableName: string, chain: string, p: Pkt): Verdict {
    const t = this.table(tableName);
    return this.walk(t, chain, p, 0) ?? t.policies.get(chain) ?? "ACCEPT";
  }

  private walk(t: Table, chain: string, p: Pkt, depth: number): Verdict | undefined {
    if (depth > 10) throw new Error("jump loop");
    for (const r of t.chains.get(chain) ?? []) {
      if (!r.test(p)) continue;
      if (r.target === "ACCEPT" || r.target === "DROP") return r.target;
      if (r.target === "RETURN") return undefined;
      if (r.target === "DNAT") {
        p.dst = r.toDestination!.replace(/:\d+$/, "");
        p.ctDnat = true;
        return "ACCEPT";
      }
      if (!t.chains.has(r.target)) throw new Error(`unknown target ${r.target}`);
      const v = this.walk(t, r.target, p, depth + 1);
      if (v) return v;
    }
    return undefined;
  }
}

function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2]!);
  return out;
}

const PROTO: Record<string, Pkt["proto"]> = {
  udp: "udp",
  tcp: "tcp",
  esp: "esp",
  ah: "ah",
  "50": "esp",
  "51": "ah",
};
PROTO["ipv6-icmp"] = "ipv6-icmp";

const inPrefix = (addr: string, prefix: string) =>
  prefixContains(parsePrefix(prefix, { allowHostBits: true }), parsePrefix(addr));

function parseRule(tokens: string[]): Rule {
  const tests: ((p: Pkt) => boolean)[] = [];
  const rule: Rule = { text: tokens.join(" "), test: () => true, target: "" };
  let proto: Pkt["proto"] | undefined;
  const portTest = (which: "sport" | "dport", v: string) => {
    const port = Number(v);
    // Port matches never match non-first fragments (no transport header).
    tests.push((p) => p.frag !== "later" && p[which] === port);
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const arg = () => {
      const v = tokens[++i];
      if (v === undefined) throw new Error(`${t} needs a value in ${rule.text}`);
      return v;
    };
    switch (t) {
      case "-i": {
        const v = arg();
        tests.push((p) => (v.endsWith("+") ? p.iface.startsWith(v.slice(0, -1)) : p.iface === v));
        break;
      }
      case "-s": {
        const v = arg();
        tests.push((p) => inPrefix(p.src, v));
        break;
      }
      case "-d": {
        const v = arg();
        tests.push((p) => inPrefix(p.dst, v));
        break;
      }
      case "-p": {
        const v = arg();
        proto = PROTO[v];
        if (!proto) throw new Error(`unknown protocol ${v}`);
        const want = proto;
        tests.push((p) => p.proto === want);
        break;
      }
      case "-f":
        tests.push((p) => p.frag === "later");
        break;
      case "--dport":
      case "--sport":
        if (proto !== "udp" && proto !== "tcp") throw new Error(`${t} without -p udp/tcp`);
        portTest(t === "--dport" ? "dport" : "sport", arg());
        break;
      case "-m": {
        const mod = arg();
        if (mod === "udp" || mod === "tcp" || mod === "comment") break;
        if (mod === "ah") tests.push((p) => p.proto === "ah");
        else if (mod === "frag") tests.push((p) => p.frag !== undefined);
        else if (!["policy", "conntrack", "multiport", "icmp6", "hl"].includes(mod))
          throw new Error(`unknown match ${mod}`);
        break;
      }
      case "--comment":
        arg();
        break;
      case "--dir":
        if (arg() !== "in") throw new Error("only --dir in");
        break;
      case "--pol": {
        const v = arg();
        tests.push((p) => (v === "ipsec" ? p.ipsec : !p.ipsec));
        break;
      }
      case "--ctstate": {
        const states = arg().split(",");
        tests.push((p) => states.includes(p.ct) || (states.includes("DNAT") && !!p.ctDnat));
        break;
      }
      case "--ports": {
        const ports = arg().split(",").map(Number);
        tests.push(
          (p) => p.frag !== "later" && (ports.includes(p.sport ?? -1) || ports.includes(p.dport ?? -1)),
        );
        break;
      }
      case "--fragfirst":
        tests.push((p) => p.frag === "first");
        break;
      case "--icmpv6-type": {
        const v = Number(arg());
        tests.push((p) => p.icmpType === v);
        break;
      }
      case "--hl-eq": {
        const v = Number(arg());
        tests.push((p) => p.hopLimit === v);
        break;
      }
      case "-j":
        rule.target = arg();
        break;
      case "--to-destination":
        rule.toDestination = arg();
        break;
      default:
        throw new Error(`unsupported token ${t} in ${rule.text}`);
    }
  }
  if (!rule.target) throw new Error(`no target in ${rule.text}`);
  rule.test = (p) => tests.every((f) => f(p));
  return rule;
}

const gatewayVerdict = (rs: Ruleset, p: Pkt): Verdict => rs.run("filter", "INPUT", { ...p });

/** NAT device: DNAT in PREROUTING, then FORWARD; a packet left addressed to the device is not forwarded. */
function forwarded(rs: Ruleset, p: Pkt, deviceAddr: string): boolean {
  const q = { ...p };
  rs.run("nat", "PREROUTING", q);
  if (q.dst === deviceAddr) return false;
  return rs.run("filter", "FORWARD", q) === "ACCEPT";
}

// =============================================================================================
// Helpers

const GW = "192.0.2.1";
const PEER = "198.51.100.10";
const NON_PEER = "203.0.113.50";
const PEER_NET = "198.51.100.0/28";

const gen = (
  input: ScenarioInput,
  opts: Partial<GenerateOptions> = {},
  format: "restore" | "commands" = "restore",
) => {
  const plan = planFlows(makeScenario(input));
  return { plan, text: generateIptables(plan, { ...defaultGenerateOptions, ...opts, format }) };
};

const ruleLines = (text: string) =>
  text.split("\n").filter((l) => l.startsWith("-A ") || l.startsWith("-I "));
const natDeviceText = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("#@nat-device "))
    .map((l) => l.slice("#@nat-device ".length))
    .join("\n");

/** A fresh ruleset with INPUT policy DROP (the existing firewall), plus the given restore text. */
const onDropPolicy = (text: string) => new Ruleset().restore(`*filter\n:INPUT DROP [0:0]\nCOMMIT\n${text}`);

const pkt = (over: Partial<Pkt>): Pkt => ({
  iface: "eth0",
  src: PEER,
  dst: GW,
  proto: "udp",
  ipsec: false,
  ct: "NEW",
  ...over,
});

/** Probes a VPN gateway must answer for: [name, packet]. */
function gatewayProbes(src: string, dst: string): [string, Pkt][] {
  const p = (o: Partial<Pkt>) => pkt({ src, dst, ...o });
  return [
    ["ike", p({ dport: 500, sport: 500 })],
    ["natt", p({ dport: 4500, sport: 4500 })],
    ["esp", p({ proto: "esp" })],
    ["ah", p({ proto: "ah" })],
    ["ike-tcp", p({ proto: "tcp", dport: 4500 })],
    ["l2tp-via-ipsec", p({ dport: 1701, ipsec: true })],
    ["l2tp-plain", p({ dport: 1701 })],
    ["ike-fragment-later", p({ frag: "later" })],
    ["ike-other-iface", p({ dport: 500, iface: "lan0" })],
    ["unrelated-udp", p({ dport: 53 })],
  ];
}

function verdicts(rs: Ruleset, probes: [string, Pkt][]): Record<string, Verdict> {
  return Object.fromEntries(probes.map(([n, p]) => [n, gatewayVerdict(rs, p)]));
}

// =============================================================================================

describe("generateIptables: module contract", () => {
  it("exports exactly generateIptables", () => {
    expect(Object.keys(iptablesModule)).toEqual(["generateIptables"]);
  });

  it("tags every rule with tunnelcheck: <flow id>, using only ids of active flows (or base/jump rules)", () => {
    for (const opts of [{}, { defaultDrop: true, egress: true }, { requiredOnly: true }]) {
      const { plan, text } = gen(
        {
          vpn: "l2tp-ipsec",
          nat: "local",
          peers: [PEER_NET],
          local: GW,
          publicAddress: "198.51.100.1",
          wan: "eth0",
        },
        opts,
      );
      const ids = new Set(activeFlows(plan, opts).map((f) => f.id));
      for (const line of [...ruleLines(text), ...ruleLines(natDeviceText(text))]) {
        const m = /-m comment --comment "tunnelcheck: ([a-z0-9-]+)"/.exec(line);
        expect(m, line).not.toBeNull();
        const id = m![1]!;
        expect(ids.has(id) || id === "jump" || id.startsWith("base-"), `${id} in ${line}`).toBe(true);
      }
    }
  });
});

describe("generateIptables: gateway rules", () => {
  it("restricts sources to each peer prefix, with -i wan and -d local", () => {
    const { text } = gen({
      vpn: "site-to-site",
      peers: ["198.51.100.7", "203.0.113.0/24"],
      local: GW,
      wan: "ppp+",
    });
    const ike = ruleLines(text).filter((l) => l.includes('"tunnelcheck: ike-in"'));
    expect(ike).toEqual([
      '-A TC-IPSEC-IN -s 198.51.100.7 -d 192.0.2.1 -i ppp+ -p udp -m udp --dport 500 -m comment --comment "tunnelcheck: ike-in" -j ACCEPT',
      '-A TC-IPSEC-IN -s 203.0.113.0/24 -d 192.0.2.1 -i ppp+ -p udp -m udp --dport 500 -m comment --comment "tunnelcheck: ike-in" -j ACCEPT',
    ]);
  });

  it("has no source, destination or interface match when the scenario gives none", () => {
    const { text } = gen({ vpn: "ikev2-remote-access" });
    for (const l of ruleLines(text)) expect(l).not.toMatch(/ -[sdi] /);
  });

  it("accepts NEW packets: no inbound accept is limited to ESTABLISHED (seed 001)", () => {
    for (const vpn of VPN_TYPES) {
      const { text } = gen({ vpn, peers: [PEER_NET] }, { defaultDrop: true });
      for (const l of ruleLines(text).filter((x) => x.startsWith("-A TC-IPSEC-IN"))) {
        expect(l).not.toMatch(/ctstate|--state/);
      }
      const rs = onDropPolicy(text);
      expect(gatewayVerdict(rs, pkt({ dport: 500, ct: "NEW" }))).toBe("ACCEPT");
    }
  });

  it("jumps to TC-IPSEC-IN from the top of INPUT, so an existing catch-all DROP cannot shadow it", () => {
    const { text } = gen({ vpn: "site-to-site", peers: [PEER_NET] });
    expect(text).toContain('-I INPUT 1 -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-IN');
    const existing = new Ruleset().restore("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n");
    existing.restore(text);
    expect(gatewayVerdict(existing, pkt({ dport: 500 }))).toBe("ACCEPT");
    // Unmatched traffic returns to INPUT and meets the existing rules.
    expect(gatewayVerdict(existing, pkt({ dport: 22, proto: "tcp" }))).toBe("DROP");
  });

  it("is purely additive without --default-drop: no policy is changed", () => {
    const { text } = gen({ vpn: "l2tp-ipsec", peers: [PEER_NET] });
    expect(text).not.toMatch(/^:(INPUT|FORWARD|OUTPUT) /m);
    expect(gen({ vpn: "l2tp-ipsec" }, {}, "commands").text).not.toMatch(/ -P /);
  });

  it("accepts L2TP only via IPsec and drops plain L2TP from anyone", () => {
    const { text } = gen({ vpn: "l2tp-ipsec", peers: [PEER_NET], wan: "eth0" });
    const l2tp = ruleLines(text).filter((l) => l.includes("1701"));
    expect(l2tp).toEqual([
      '-A TC-IPSEC-IN -i eth0 -p udp -m policy --dir in --pol none -m udp --dport 1701 -m comment --comment "tunnelcheck: l2tp-plain-in" -j DROP',
      '-A TC-IPSEC-IN -s 198.51.100.0/28 -i eth0 -p udp -m policy --dir in --pol ipsec -m udp --dport 1701 -m comment --comment "tunnelcheck: l2tp-in" -j ACCEPT',
    ]);
    // Even on a host whose INPUT policy is ACCEPT, plain L2TP is dropped.
    const open = new Ruleset().restore(text);
    expect(gatewayVerdict(open, pkt({ dport: 1701 }))).toBe("DROP");
    expect(gatewayVerdict(open, pkt({ dport: 1701, ipsec: true }))).toBe("ACCEPT");
  });

  it("--default-drop: plain L2TP is dropped even as ESTABLISHED (conntrack carries no IPsec state)", () => {
    const { text } = gen({ vpn: "l2tp-ipsec", peers: [PEER_NET], wan: "eth0" }, { defaultDrop: true });
    const rs = new Ruleset().restore(text);
    expect(gatewayVerdict(rs, pkt({ dport: 1701, ct: "ESTABLISHED" }))).toBe("DROP");
    expect(gatewayVerdict(rs, pkt({ dport: 1701, ct: "ESTABLISHED", ipsec: true }))).toBe("ACCEPT");
    expect(gatewayVerdict(rs, pkt({ dport: 1701, ipsec: true }))).toBe("ACCEPT");
    // The same judged by the engine (checked against the kernel by the differential test).
    const parsed = parseIptables(text, { file: "gen.rules" });
    expect(parsed.errors).toEqual([]);
    const trace = (ipsec: boolean) =>
      (traceIptables as (...a: Parameters<typeof traceIptables>) => IptablesTrace)(parsed.ruleset, {
        src: PEER,
        dst: GW,
        proto: "udp",
        sport: 1701,
        dport: 1701,
        iif: "eth0",
        state: "established",
        ipsec,
      });
    expect(trace(false).verdict).toBe("drop");
    expect(trace(true).verdict).toBe("accept");
    // The drop is not repeated in TC-IPSEC-IN.
    expect(ruleLines(text).filter((l) => l.includes("l2tp-plain-in"))).toHaveLength(1);
  });

  it("IPv4 fragments: -f from the peer", () => {
    const { text } = gen(
      { vpn: "site-to-site", peers: [PEER_NET], ikeFragmentation: false },
      { requiredOnly: true },
    );
    expect(ruleLines(text).filter((l) => l.includes("ike-fragments-in"))).toEqual([
      '-A TC-IPSEC-IN -s 198.51.100.0/28 -f -m comment --comment "tunnelcheck: ike-fragments-in" -j ACCEPT',
    ]);
    expect(text).toMatch(/reassembles IPv4 before INPUT/);
  });

  it("IPv6 fragments: first fragments go back to INPUT, later ones from the peer are accepted", () => {
    const { text } = gen({ vpn: "site-to-site", peers: ["2001:db8:a::/48"], ikeFragmentation: false });
    const frag = ruleLines(text).filter((l) => l.includes("ike-fragments-in"));
    expect(frag).toEqual([
      '-A TC-IPSEC-IN -m frag --fragfirst -m comment --comment "tunnelcheck: ike-fragments-in" -j RETURN',
      '-A TC-IPSEC-IN -s 2001:db8:a::/48 -m frag -m comment --comment "tunnelcheck: ike-fragments-in" -j ACCEPT',
    ]);
    const rs = onDropPolicy(text);
    const p6 = (o: Partial<Pkt>) => pkt({ src: "2001:db8:a::1", dst: "2001:db8:1::1", ...o });
    expect(gatewayVerdict(rs, p6({ frag: "later" }))).toBe("ACCEPT");
    expect(gatewayVerdict(rs, p6({ frag: "first", dport: 500 }))).toBe("ACCEPT"); // by ike-in
    expect(gatewayVerdict(rs, p6({ frag: "first", dport: 22, proto: "tcp" }))).toBe("DROP");
    // The fragment rules come last: the RETURN must not hide any other flow's rule.
    expect(ruleLines(text).slice(-3, -1)).toEqual(frag);
  });

  it("IPv6 AH uses -m ah (ip6tables -p ah never matches the extension header with the legacy backend)", () => {
    const { text } = gen({ vpn: "site-to-site", ah: true, peers: ["2001:db8:a::/48"] });
    const ah = ruleLines(text).filter((l) => l.includes("ah-in"));
    expect(ah).toEqual([
      '-A TC-IPSEC-IN -s 2001:db8:a::/48 -m ah -m comment --comment "tunnelcheck: ah-in" -j ACCEPT',
    ]);
    expect(ruleLines(gen({ vpn: "site-to-site", ah: true }).text).some((l) => l.includes("-p ah"))).toBe(
      true,
    );
  });

  it("comments each flow with requirement, reason and RFCs; optional flows say so and why", () => {
    const { plan, text } = gen({ vpn: "l2tp-ipsec", nat: "none" });
    for (const f of activeFlows(plan).filter((x) => x.direction === "inbound")) {
      expect(text).toContain(`[${f.requirement}] ${f.id}:`);
      for (const rfc of f.rfcs) expect(text).toContain(rfc);
    }
    expect(text).toMatch(/\[optional\] natt-in: No NAT/);
    expect(text).toMatch(/Optional \(why: see above\): included by default; --required-only leaves it out\./);
    const required = gen({ vpn: "l2tp-ipsec", nat: "none" }, { requiredOnly: true }).text;
    expect(ruleLines(required).some((l) => l.includes("natt-in"))).toBe(false);
    expect(required).toMatch(/Left out \(optional, --required-only\): natt-in/);
    // Plan notes (seed deviations) reach the output.
    for (const n of plan.notes) expect(required.replace(/\n#\s+/g, " ")).toContain(n.slice(0, 40));
  });

  it("names the flows it leaves closed and why", () => {
    const { text } = gen({ vpn: "ikev2-remote-access", nat: "peer" });
    expect(text).toMatch(/# Not opened: esp-in\. ESP is encapsulated in UDP 4500/);
  });
});

describe("generateIptables: --default-drop", () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: policy DROP with loopback, established, ND (v6) and invalid handled before the VPN rules`, () => {
      const v6 = family === 6;
      const { text } = gen(
        { vpn: "ikev2-remote-access", ipv6: v6, peers: [v6 ? "2001:db8:a::/48" : PEER_NET] },
        { defaultDrop: true },
      );
      expect(text).toMatch(/^:INPUT DROP \[0:0\]$/m);
      const jumps = ruleLines(text).filter((l) => l.startsWith("-I INPUT"));
      // -I 1 in reverse: TC-BASE-IN ends up first.
      expect(jumps.map((l) => l.split(" -j ")[1])).toEqual(["TC-IPSEC-IN", "TC-BASE-IN"]);
      const rs = new Ruleset().restore(text);
      const p = (o: Partial<Pkt>) =>
        pkt({ src: v6 ? "2001:db8:a::1" : PEER, dst: v6 ? "2001:db8:1::1" : GW, ...o });
      expect(gatewayVerdict(rs, p({ iface: "lo", dport: 9999 }))).toBe("ACCEPT");
      expect(gatewayVerdict(rs, p({ dport: 22, proto: "tcp", ct: "ESTABLISHED" }))).toBe("ACCEPT");
      expect(gatewayVerdict(rs, p({ dport: 500, ct: "INVALID" }))).toBe("DROP");
      expect(gatewayVerdict(rs, p({ dport: 22, proto: "tcp" }))).toBe("DROP");
      expect(gatewayVerdict(rs, p({ dport: 500 }))).toBe("ACCEPT");
      // Neighbour solicitations are INVALID to conntrack: they must be accepted before that drop.
      const ns = p({ proto: "ipv6-icmp", icmpType: 135, hopLimit: 255, ct: "INVALID" });
      expect(gatewayVerdict(rs, ns)).toBe(v6 ? "ACCEPT" : "DROP");
      expect(gatewayVerdict(rs, { ...ns, hopLimit: 64 })).toBe("DROP");
      // MLD from a link-local router (RFC 4890 §4.4.1), not from elsewhere.
      const mld = p({
        src: v6 ? "fe80::1" : PEER,
        proto: "ipv6-icmp",
        icmpType: 130,
        hopLimit: 1,
        ct: "INVALID",
      });
      expect(gatewayVerdict(rs, mld)).toBe(v6 ? "ACCEPT" : "DROP");
      if (v6) expect(gatewayVerdict(rs, { ...mld, src: "2001:db8:a::1" })).toBe("DROP");
    });
  }

  it("commands format sets the policy last, after the accepts are in place", () => {
    const lines = gen({ vpn: "site-to-site" }, { defaultDrop: true }, "commands").text.trim().split("\n");
    const policy = lines.indexOf("iptables -P INPUT DROP");
    expect(policy).toBeGreaterThan(0);
    expect(lines.slice(policy + 1).filter((l) => l.startsWith("iptables"))).toEqual([]);
  });
});

describe("generateIptables: --egress", () => {
  it("accepts outbound VPN traffic in TC-IPSEC-OUT, matching the gateway's port on either side", () => {
    const { text } = gen(
      { vpn: "ikev2-remote-access", nat: "peer", peers: [PEER_NET], local: GW, wan: "eth0" },
      { egress: true },
    );
    expect(text).toContain('-I OUTPUT 1 -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-OUT');
    expect(ruleLines(text).filter((l) => l.startsWith("-A TC-IPSEC-OUT"))).toEqual([
      '-A TC-IPSEC-OUT -s 192.0.2.1 -d 198.51.100.0/28 -o eth0 -p udp -m multiport --ports 500 -m comment --comment "tunnelcheck: ike-out" -j ACCEPT',
      '-A TC-IPSEC-OUT -s 192.0.2.1 -d 198.51.100.0/28 -o eth0 -p udp -m multiport --ports 4500 -m comment --comment "tunnelcheck: natt-out" -j ACCEPT',
    ]);
    expect(text).toContain("# Only to: 198.51.100.0/28.");
    expect(gen({ vpn: "ikev2-remote-access" }).text).not.toContain("TC-IPSEC-OUT");
  });

  it("an L2TP server's own L2TP (replies, hellos) leaves through OUTPUT, only when IPsec will protect it", () => {
    const { text } = gen({ vpn: "l2tp-ipsec", peers: [PEER_NET], local: GW, wan: "eth0" }, { egress: true });
    expect(ruleLines(text).filter((l) => l.includes("tunnelcheck: l2tp-out"))).toEqual([
      '-A TC-IPSEC-OUT -s 192.0.2.1 -d 198.51.100.0/28 -o eth0 -p udp -m policy --dir out --pol ipsec -m multiport --ports 1701 -m comment --comment "tunnelcheck: l2tp-out" -j ACCEPT',
    ]);
  });
});

describe("generateIptables: NAT device part", () => {
  const input: ScenarioInput = {
    vpn: "l2tp-ipsec",
    nat: "local",
    peers: [PEER_NET],
    local: GW,
    publicAddress: "198.51.100.1",
    wan: "eth0",
  };

  it("is a separate, commented-out part: loading the file on the gateway cannot apply it", () => {
    const { text } = gen(input);
    expect(text).toMatch(/PART 2: run on the NAT device in front of the gateway, NOT on the gateway/);
    const gatewayOnly = new Ruleset().restore(text);
    expect(gatewayOnly.table("nat").chains.get("PREROUTING")).toEqual([]);
    expect(text).toContain("sed -n 's/^#@nat-device //p' THIS_FILE | iptables-restore --noflush");
  });

  it("DNATs UDP 500/4500 from the peers to the gateway and lets exactly those through FORWARD", () => {
    const nd = natDeviceText(gen(input).text);
    expect(ruleLines(nd)).toEqual([
      '-A TC-IPSEC-DNAT -s 198.51.100.0/28 -d 198.51.100.1 -i eth0 -p udp -m udp --dport 500 -m comment --comment "tunnelcheck: ike-forward" -j DNAT --to-destination 192.0.2.1',
      '-A TC-IPSEC-DNAT -s 198.51.100.0/28 -d 198.51.100.1 -i eth0 -p udp -m udp --dport 4500 -m comment --comment "tunnelcheck: natt-forward" -j DNAT --to-destination 192.0.2.1',
      '-I PREROUTING 1 -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-DNAT',
      '-A TC-IPSEC-FWD -s 198.51.100.0/28 -d 192.0.2.1 -i eth0 -p udp -m udp --dport 500 -m conntrack --ctstate DNAT -m comment --comment "tunnelcheck: ike-forward" -j ACCEPT',
      '-A TC-IPSEC-FWD -s 198.51.100.0/28 -d 192.0.2.1 -i eth0 -p udp -m udp --dport 4500 -m conntrack --ctstate DNAT -m comment --comment "tunnelcheck: natt-forward" -j ACCEPT',
      '-I FORWARD 1 -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-FWD',
    ]);
    const rs = new Ruleset().restore(`*filter\n:FORWARD DROP [0:0]\nCOMMIT\n${nd}`);
    const p = (o: Partial<Pkt>) => pkt({ dst: "198.51.100.1", ...o });
    expect(forwarded(rs, p({ dport: 500 }), "198.51.100.1")).toBe(true);
    expect(forwarded(rs, p({ dport: 4500 }), "198.51.100.1")).toBe(true);
    expect(forwarded(rs, p({ dport: 1701 }), "198.51.100.1")).toBe(false);
    expect(forwarded(rs, p({ proto: "esp" }), "198.51.100.1")).toBe(false);
    expect(forwarded(rs, p({ dport: 500, src: NON_PEER }), "198.51.100.1")).toBe(false);
    // A packet routed through to someone else (not DNATed) gets no accept from this chain.
    expect(forwarded(rs, p({ dport: 500, dst: "203.0.113.9" }), "198.51.100.1")).toBe(false);
  });

  it("without --local: a placeholder comment, no broken rules", () => {
    const { text } = gen({ vpn: "site-to-site", nat: "both", peers: [PEER_NET] });
    expect(text).toMatch(/Cannot write the port forwards: the scenario has no --local/);
    expect(text).not.toContain("#@nat-device");
    expect(text).not.toMatch(/DNAT/);
    expect(() => new Ruleset().restore(text)).not.toThrow();
  });

  it("warns when neither --public nor --wan narrows the DNAT", () => {
    const { text } = gen({ vpn: "site-to-site", nat: "local", local: GW });
    expect(text.replace(/\n#\s+/g, " ")).toMatch(
      /also catch UDP 500, UDP 4500 that hosts behind the NAT device send out/,
    );
    expect(gen({ vpn: "site-to-site", nat: "local", local: GW, wan: "eth0" }).text).not.toMatch(
      /Neither --public/,
    );
  });

  it("IPv6: DNAT to the gateway's IPv6 address, ip6tables-restore", () => {
    const { text } = gen({
      vpn: "ikev2-remote-access",
      nat: "both",
      local: "2001:db8:1::1",
      publicAddress: "2001:db8:2::1",
    });
    expect(text).toContain("ip6tables-restore --noflush");
    expect(natDeviceText(text)).toContain("-j DNAT --to-destination 2001:db8:1::1");
  });
});

describe("generateIptables: commands format", () => {
  it("is a shell script of iptables commands, safe to re-run", () => {
    const { text } = gen(
      { vpn: "l2tp-ipsec", nat: "local", peers: [PEER_NET], local: GW, publicAddress: "198.51.100.1" },
      { defaultDrop: true, egress: true },
      "commands",
    );
    for (const l of text.split("\n"))
      expect(l === "" || l.startsWith("#") || l.startsWith("iptables ")).toBe(true);
    expect(text).toContain("iptables -N TC-IPSEC-IN 2>/dev/null || iptables -F TC-IPSEC-IN");
    expect(text).toContain(
      'iptables -C INPUT -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-IN 2>/dev/null || iptables -I INPUT 1 -m comment --comment "tunnelcheck: jump" -j TC-IPSEC-IN',
    );
    expect(natDeviceText(text)).toContain(
      "iptables -t nat -N TC-IPSEC-DNAT 2>/dev/null || iptables -t nat -F TC-IPSEC-DNAT",
    );
    expect(text).toContain("sed -n 's/^#@nat-device //p' THIS_FILE | sh");
  });

  it("uses ip6tables for IPv6 scenarios", () => {
    const { text } = gen({ vpn: "site-to-site", ipv6: true }, {}, "commands");
    expect(text).toMatch(/^ip6tables -A TC-IPSEC-IN /m);
    expect(text).not.toMatch(/^iptables /m);
  });
});

// =============================================================================================
// Semantics over every combination: the evaluator's verdicts on the generated rules must equal what
// the plan says, including L2TP via IPsec, which the kernel tests cannot produce (no ESP in the kernel).

describe("generateIptables: verdicts match the plan for every combination", () => {
  const combos: [string, ScenarioInput, Partial<GenerateOptions>][] = [];
  for (const vpn of VPN_TYPES)
    for (const nat of NAT_MODES)
      for (const ah of [false, true])
        for (const known of [false, true])
          for (const o of [0, 1, 2, 3]) {
            const opts = { defaultDrop: !!(o & 1), requiredOnly: !!(o & 2) };
            const input: ScenarioInput = {
              vpn,
              nat,
              ah,
              peers: known ? [PEER_NET] : [],
              local: GW,
              wan: "eth0",
            };
            combos.push([JSON.stringify({ input, opts }), input, opts]);
          }

  it.each(combos)("%s", (_n, input, opts) => {
    const { plan, text } = gen(input, opts);
    const rs = opts.defaultDrop ? new Ruleset().restore(text) : onDropPolicy(text);
    const active = new Set(activeFlows(plan, opts).map((f) => f.id));
    const known = plan.scenario.peers.length > 0;
    const want: Record<string, Verdict> = {
      ike: "ACCEPT",
      natt: active.has("natt-in") ? "ACCEPT" : "DROP",
      esp: active.has("esp-in") ? "ACCEPT" : "DROP",
      ah: active.has("ah-in") ? "ACCEPT" : "DROP",
      "ike-tcp": active.has("ike-tcp-in") ? "ACCEPT" : "DROP",
      "l2tp-via-ipsec": active.has("l2tp-in") ? "ACCEPT" : "DROP",
      "l2tp-plain": "DROP",
      "ike-fragment-later": active.has("ike-fragments-in") ? "ACCEPT" : "DROP",
      "ike-other-iface": "DROP",
      "unrelated-udp": "DROP",
    };
    expect(verdicts(rs, gatewayProbes(PEER, GW))).toEqual(want);
    const fromStranger = verdicts(rs, gatewayProbes(NON_PEER, GW));
    if (known) {
      for (const [k, v] of Object.entries(fromStranger)) expect(v, `${k} from a non-peer`).toBe("DROP");
    } else expect(fromStranger).toEqual(want);
    // Addressed to another of the gateway's addresses: not ours to accept (-d local).
    expect(gatewayVerdict(rs, pkt({ dport: 500, dst: "192.0.2.99" }))).toBe("DROP");
  });
});

// =============================================================================================
// Seed equivalence: same meaning as the seed's rulesets, except where tunnelcheck deliberately differs.

const seedRules = (s: SeedRuleset, vpnServerIp?: string) => seedScript(s, vpnServerIp);
const asGateway = (s: SeedRuleset, policy: Verdict = "DROP") =>
  new Ruleset().restore(`*filter\n:INPUT ${policy} [0:0]\nCOMMIT\n`).commands(seedRules(s));

function differences(a: Record<string, Verdict>, b: Record<string, Verdict>): string[] {
  return Object.keys(a)
    .filter((k) => a[k] !== b[k])
    .sort();
}

describe("seed 000 equivalence (evaluator)", () => {
  const seedFile = (() => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), "../../shared/seeds");
    if (!existsSync(dir)) return undefined;
    const f = readdirSync(dir).find((n) => n.startsWith("000_"));
    return f ? readFileSync(join(dir, f), "utf8") : undefined;
  })();

  it.skipIf(!seedFile)("transcribes the seed's rules verbatim", () => {
    for (const s of SEED_000)
      for (const l of [...s.lines, ...(s.plus ?? [])]) expect(seedFile).toContain(`$ ${l}`);
  });

  const probes = gatewayProbes(PEER, GW);

  it("§6.1 (L2TP, no NAT, --ah, IKEv1): same verdicts; plain L2TP is dropped even where INPUT accepts", () => {
    const s = seed("6.1");
    const ours = onDropPolicy(gen(s.scenario).text);
    const diff = differences(verdicts(asGateway(s), probes), verdicts(ours, probes));
    // Deliberate: IP fragments from the peer are accepted (IKE_AUTH without IKE fragmentation); the seed
    // has no rule for them. (On Linux INPUT, IPv4 is reassembled first, so this never shows for IPv4.)
    expect(diff).toEqual(["ike-fragment-later"]);
    // Deliberate: the seed relies on the INPUT policy to drop plain L2TP; tunnelcheck drops it explicitly.
    const seedOpen = verdicts(asGateway(s, "ACCEPT"), probes);
    const oursOpen = verdicts(new Ruleset().restore(gen(s.scenario).text), probes);
    expect(seedOpen["l2tp-plain"]).toBe("ACCEPT");
    expect(oursOpen["l2tp-plain"]).toBe("DROP");
  });

  it("§6.1 with --required-only: UDP 4500 is left out (optional without NAT); the seed opens it", () => {
    const s = seed("6.1");
    const ours = onDropPolicy(gen(s.scenario, { requiredOnly: true }).text);
    // Deliberate: NAT-T is optional without NAT (plan note); --required-only drops it, and IKE fragments
    // are optional with IKE fragmentation on.
    expect(differences(verdicts(asGateway(s), probes), verdicts(ours, probes))).toEqual(["natt"]);
  });

  it("§6.1 without --ah: AH stays closed; the seed opens protocol 51 unconditionally", () => {
    const s = seed("6.1");
    const ours = onDropPolicy(gen({ ...s.scenario, ah: false }).text);
    // Deliberate: AH only with --ah.
    expect(differences(verdicts(asGateway(s), probes), verdicts(ours, probes))).toEqual([
      "ah",
      "ike-fragment-later",
    ]);
  });

  it("§6.2 (L2TP behind NAT, the gateway's own rules): same verdicts", () => {
    const s = seed("6.2");
    const ours = onDropPolicy(gen({ ...s.scenario, local: GW }).text);
    expect(differences(verdicts(asGateway(s), probes), verdicts(ours, probes))).toEqual([
      "ike-fragment-later",
    ]);
  });

  it("§7.3 and §7.5 without NAT (site-to-site, IKEv1, --ah): same verdicts", () => {
    for (const sec of ["7.3", "7.5a"]) {
      const s = seed(sec);
      const ours = onDropPolicy(gen(s.scenario, { requiredOnly: true }).text);
      // --required-only: UDP 4500 is optional without NAT and IKEv1 (no MOBIKE); the seed leaves it closed.
      expect(differences(verdicts(asGateway(s), probes), verdicts(ours, probes)), sec).toEqual([]);
      const withOptional = onDropPolicy(gen(s.scenario).text);
      expect(differences(verdicts(asGateway(s), probes), verdicts(withOptional, probes)), sec).toEqual([
        "ike-fragment-later",
        "natt",
      ]);
    }
  });

  it("§7.5 with NAT (site-to-site, IKEv1, --ah requested): same verdicts, AH stays closed as in the seed", () => {
    const s = seed("7.5b");
    for (const nat of ["peer", "local", "both"] as const) {
      const ours = onDropPolicy(gen({ ...s.scenario, nat, local: GW }, { requiredOnly: true }).text);
      expect(differences(verdicts(asGateway(s), probes), verdicts(ours, probes)), nat).toEqual([]);
    }
  });

  it("every seed ruleset: restricting to known peers is the only change for non-peers", () => {
    for (const s of SEED_000.filter((x) => x.where === "gateway")) {
      const input = { ...s.scenario, peers: [PEER_NET], local: GW };
      const ours = onDropPolicy(gen(input, { requiredOnly: true }).text);
      const seedV = verdicts(asGateway(s), gatewayProbes(NON_PEER, GW));
      const oursV = verdicts(ours, gatewayProbes(NON_PEER, GW));
      // Deliberate: non-peers get nothing (the seed accepts them wherever it accepts the peer). Plain L2TP
      // is dropped for everyone.
      for (const [k, v] of Object.entries(oursV)) expect(v, `${s.section} ${k}`).toBe("DROP");
      expect(Object.values(seedV)).toContain("ACCEPT");
    }
  });

  it("§5.3 (port forwards on the NAT device): same forwards, except UDP 1701", () => {
    const s = seed("5.3");
    const pub = "198.51.100.1";
    // The seed has no FORWARD rules: it assumes FORWARD accepts. tunnelcheck works under FORWARD DROP too.
    const seedRs = new Ruleset().commands(seedRules(s, GW));
    const ours = natDeviceText(gen({ ...s.scenario, local: GW, publicAddress: pub }).text);
    const oursRs = new Ruleset().restore(`*filter\n:FORWARD DROP [0:0]\nCOMMIT\n${ours}`);
    const p = (o: Partial<Pkt>) => pkt({ dst: pub, ...o });
    const fw = (rs: Ruleset) => ({
      ike: forwarded(rs, p({ dport: 500 }), pub),
      natt: forwarded(rs, p({ dport: 4500 }), pub),
      l2tp: forwarded(rs, p({ dport: 1701 }), pub),
      esp: forwarded(rs, p({ proto: "esp" }), pub),
      ah: forwarded(rs, p({ proto: "ah" }), pub),
    });
    expect(fw(seedRs)).toEqual({ ike: true, natt: true, l2tp: true, esp: false, ah: false });
    // Deliberate: no UDP 1701 forward — under NAT-T, L2TP rides inside ESP-in-UDP 4500 (flows.ts note).
    expect(fw(oursRs)).toEqual({ ike: true, natt: true, l2tp: false, esp: false, ah: false });
    // And the seed's forwards depend on an ACCEPT FORWARD policy.
    const seedUnderDrop = new Ruleset()
      .restore("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
      .commands(seedRules(s, GW));
    expect(fw(seedUnderDrop).ike).toBe(false);
  });
});

describe("the evaluator itself", () => {
  it("rejects matches it does not understand instead of ignoring them", () => {
    expect(() => new Ruleset().commands("iptables -A INPUT -m recent --update -j DROP")).toThrow(
      /unknown match/,
    );
    expect(() => new Ruleset().commands("iptables -A INPUT ! -s 192.0.2.1 -j DROP")).toThrow(
      /unsupported token/,
    );
  });

  it("follows -I positions, user chains and RETURN", () => {
    const rs = new Ruleset().restore(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":X - [0:0]",
        "-A X -p udp --dport 53 -j RETURN",
        "-A X -p udp -j ACCEPT",
        "-A INPUT -j X",
        "-I INPUT 1 -p udp --dport 53 -j DROP",
        "COMMIT",
      ].join("\n"),
    );
    expect(gatewayVerdict(rs, pkt({ dport: 53 }))).toBe("DROP");
    expect(gatewayVerdict(rs, pkt({ dport: 54 }))).toBe("ACCEPT");
    expect(gatewayVerdict(rs, pkt({ proto: "tcp", dport: 54 }))).toBe("DROP");
  });
});

describe("generateIptables: a plan of outbound flows only (an outbound finding's fix)", () => {
  it("holds only TC-IPSEC-OUT and its OUTPUT jump: no empty TC-IPSEC-IN, no INPUT jump", () => {
    const plan = planFlows(
      makeScenario({ vpn: "site-to-site", peers: ["203.0.113.7"], local: "198.51.100.1" }),
    );
    const flow = plan.flows.find((f) => f.id === "ike-out")!;
    for (const format of ["commands", "restore"] as const) {
      const text = generateIptables(
        { ...plan, flows: [flow], notes: [] },
        { ...defaultGenerateOptions, additive: true, egress: true, format },
      );
      expect(text, format).toMatch(/TC-IPSEC-OUT/);
      expect(text, format).not.toMatch(/TC-IPSEC-IN|INPUT/);
    }
  });
});

describe("a hub's peer list in the generated comments", () => {
  const peers = Array.from({ length: 12 }, (_, i) => `198.51.100.${i + 10}`);
  const plan = planFlows(
    makeScenario({ vpn: "site-to-site", nat: "none", peers, local: "192.0.2.1", wan: "eth0" }),
  );

  it("names ten peers in full, more as the first eight and a count; the rules still list every peer", () => {
    for (const target of TARGETS.filter((t) => !t.startsWith("ip6"))) {
      const text = generateRules(plan, target, defaultGenerateOptions);
      const comments = text.split("\n").filter((l) => /^\s*#/.test(l));
      expect(comments.join("\n"), target).toContain("… (4 more)");
      expect(comments.join("\n"), target).not.toContain("198.51.100.21");
      expect(text.replaceAll(/^\s*#.*$/gm, ""), target).toContain("198.51.100.21");
    }
    const ten = planFlows(makeScenario({ vpn: "site-to-site", nat: "none", peers: peers.slice(0, 10) }));
    const head = generateRules(ten, "iptables", defaultGenerateOptions).split("\n").slice(0, 3).join("\n");
    expect(head).toContain("198.51.100.19; local:");
    expect(head).not.toContain("more)");
  });
});
