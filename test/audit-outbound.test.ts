import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runAudit } from "../src/analysis/run-audit.js";
import { defaultLoaders } from "../src/loaders.js";
import { generateRules } from "../src/platforms/registry.js";
import { defaultGenerateOptions } from "../src/platforms/types.js";
import { auditText } from "../src/report/audit.js";
import { planFlows } from "../src/vpn/flows.js";
import { makeScenario, type ScenarioInput } from "../src/vpn/scenario.js";

const PEER = "203.0.113.7";
const GW = "198.51.100.1";
const S2S: ScenarioInput = { vpn: "site-to-site", peers: [PEER], local: GW, wan: "eth0" };
const L2TP: ScenarioInput = { vpn: "l2tp-ipsec", peers: [], local: GW, wan: "eth0", nat: "peer" };

function audit(text: string, scenario: ScenarioInput = S2S) {
  return runAudit(
    {
      gateways: [{ name: "gw", platform: "iptables", file: "gw.rules", text, addresses: [GW] }],
      tunnels: [{ kind: "scenario", gateway: "gw", scenario }],
    },
    defaultLoaders,
  );
}
const outFindings = (r: ReturnType<typeof audit>) =>
  r.findings.filter((f) => f.flow?.endsWith("-out")).map((f) => `${f.id}:${f.flow}`);
const status = (r: ReturnType<typeof audit>, flow: string) => r.verdicts.find((v) => v.flow === flow)?.status;

/** INPUT open (the inbound side is not under test), OUTPUT as given. */
const output = (policy: string, ...rules: string[]) =>
  [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    `:OUTPUT ${policy} [0:0]`,
    ...rules,
    "COMMIT",
    "",
  ].join("\n");

describe("audit: the gateway's outbound flows (local-output path)", () => {
  it("OUTPUT policy DROP and nothing else: IKE, NAT-T and ESP out are blocked, pointing at the policy line", () => {
    const r = audit(output("DROP"));
    expect(outFindings(r)).toEqual([
      "ike-out-blocked:ike-out",
      "natt-out-blocked:natt-out",
      "esp-out-blocked:esp-out",
    ]);
    const ike = r.findings.find((f) => f.id === "ike-out-blocked")!;
    expect(ike.severity).toBe("error");
    expect(ike.message).toMatch(
      /UDP 500 from gw to 203\.0\.113\.7 is dropped by policy DROP of filter OUTPUT \(gw\.rules:4\), new or as a reply/,
    );
    expect(ike.rules).toEqual([{ file: "gw.rules", line: 4, text: ":OUTPUT DROP [0:0]" }]);
    // The fix is the rule generator's outbound accept for that flow.
    expect(ike.fix?.text).toMatch(
      /-A TC-IPSEC-OUT -s 198\.51\.100\.1 -d 203\.0\.113\.7 -o eth0 -p udp .*ike-out/,
    );
    expect(status(r, "ike-out")).toBe("blocked");
  });

  it("OUTPUT DROP with only ESTABLISHED accepted on an initiating site-to-site gateway: it can answer, never initiate", () => {
    const r = audit(output("DROP", "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"));
    expect(outFindings(r)).toEqual([
      "ike-out-reply-only:ike-out",
      "natt-out-reply-only:natt-out",
      "esp-out-blocked:esp-out",
    ]);
    const ike = r.findings.find((f) => f.id === "ike-out-reply-only")!;
    expect(ike.severity).toBe("error");
    expect(ike.message).toMatch(/only as a reply .*when new; replies leave by gw\.rules:5/);
    expect(ike.message).toMatch(/can answer the peer, but never initiate/);
    expect(ike.rules.map((x) => x.line)).toEqual([4, 5]);
    expect(status(r, "ike-out")).toBe("reply-only");
  });

  it("a remote-access server only answers: ESTABLISHED out is enough for IKE and L2TP (via IPsec)", () => {
    const r = audit(output("DROP", "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"), L2TP);
    expect(outFindings(r)).toEqual([]);
    // L2TP out must leave through the IPsec policy: an accept for plain 1701 only does not do.
    const plain = audit(output("DROP", "-A OUTPUT -p udp -m policy --dir out --pol none -j ACCEPT"), L2TP);
    expect(outFindings(plain)).toEqual(["l2tp-out-blocked:l2tp-out"]);
  });

  it("a rule whose result is unknown deciding IKE out → verdict-unknown naming the rule", () => {
    const r = audit(
      output("DROP", "-A OUTPUT -p udp -m limit --limit 5/sec -j ACCEPT", "-A OUTPUT -p esp -j ACCEPT"),
    );
    const u = r.findings.filter((f) => f.id === "verdict-unknown" && f.flow === "ike-out");
    expect(u).toHaveLength(1);
    expect(u[0]!.rules.map((x) => x.line)).toEqual([5]);
    expect(status(r, "ike-out")).toBe("unknown");
  });

  it("only the output path's rules cut the peers into classes: 300 INPUT networks leave remote access decided", () => {
    const input = Array.from(
      { length: 300 },
      (_, i) => `-A INPUT -s 10.${i >> 8}.${i & 255}.0/24 -d 10.${i >> 8}.${i & 255}.0/24 -j DROP`,
    );
    const text = output(
      "DROP",
      "-A OUTPUT -s 198.51.100.1 -p udp -m multiport --sports 500,4500 -j ACCEPT",
      "-A OUTPUT -d 10.0.0.0/8 -j DROP",
    ).replace(":OUTPUT DROP [0:0]", `:OUTPUT DROP [0:0]\n${input.join("\n")}`);
    const r = audit(text, { ...L2TP, vpn: "ikev2-remote-access" });
    expect(outFindings(r)).toEqual([]);
    expect(status(r, "ike-out")).toBe("accepted-new");
    expect(r.verdicts.find((v) => v.flow === "ike-out")!.parts).toHaveLength(1);
  });

  describe("the gateway's own address when --local is not given", () => {
    const auditHost = (text: string, addresses: string[]) =>
      runAudit(
        {
          gateways: [{ name: "gw", platform: "iptables", file: "gw.rules", text, addresses }],
          tunnels: [
            {
              kind: "scenario",
              gateway: "gw",
              scenario: { vpn: "site-to-site", peers: [PEER], wan: "eth0" },
            },
          ],
        },
        defaultLoaders,
      );
    it("no rule on the output path looks at the source: evaluated all the same (OUTPUT ACCEPT → clean)", () => {
      for (const addrs of [[], [GW], [GW, "192.0.2.1"]]) {
        const r = auditHost(output("ACCEPT"), addrs);
        expect(outFindings(r), addrs.join()).toEqual([]);
        expect(status(r, "ike-out")).toBe("accepted-new");
      }
      // Rules on the destination and ports only: still no source needed.
      const r = auditHost(output("DROP", `-A OUTPUT -d ${PEER} -j ACCEPT`), []);
      expect(outFindings(r)).toEqual([]);
    });
    it("a rule on the source and no host address → unknown, saying why", () => {
      const r = auditHost(output("DROP", `-A OUTPUT -s ${GW} -j ACCEPT`), []);
      expect(outFindings(r)).toEqual([
        "verdict-unknown:ike-out",
        "verdict-unknown:natt-out",
        "verdict-unknown:esp-out",
      ]);
      expect(r.findings[0]!.message).toMatch(/own address is not given.*look at the source/);
    });
    it("several host addresses: each is evaluated; the same answer is kept, different ones are unknown", () => {
      const same = auditHost(
        output("DROP", `-A OUTPUT -s ${GW} -j ACCEPT`, "-A OUTPUT -s 192.0.2.1 -j ACCEPT"),
        [GW, "192.0.2.1"],
      );
      expect(outFindings(same)).toEqual([]);
      const differ = auditHost(output("DROP", `-A OUTPUT -s ${GW} -j ACCEPT`), [GW, "192.0.2.1"]);
      expect(outFindings(differ)).toEqual([
        "verdict-unknown:ike-out",
        "verdict-unknown:natt-out",
        "verdict-unknown:esp-out",
      ]);
      expect(differ.findings[0]!.message).toMatch(
        /depends on which of the host's addresses the route picks.*--local/,
      );
      // Not silently the lowest address (192.0.2.1, which is dropped) either.
      expect(differ.findings.map((f) => f.id)).not.toContain("ike-out-blocked");
    });
  });

  for (const s of [
    S2S,
    L2TP,
    { ...S2S, vpn: "ikev2-remote-access", peers: [], nat: "peer" } as ScenarioInput,
  ]) {
    it(`the rules tunnelcheck generates (--egress) for ${s.vpn}, under OUTPUT DROP: no outbound finding`, () => {
      const text = generateRules(planFlows(makeScenario(s)), "iptables-restore", {
        ...defaultGenerateOptions,
        egress: true,
        defaultDrop: true,
      }).replace(":INPUT DROP [0:0]", ":INPUT DROP [0:0]\n:OUTPUT DROP [0:0]");
      expect(text).toMatch(/:OUTPUT DROP/);
      const r = audit(text, s);
      expect(r.findings.map((f) => f.id)).toEqual([]);
      const outs = r.verdicts.filter((v) => v.flow.endsWith("-out") && v.requirement === "required");
      expect(outs.length).toBeGreaterThan(1);
      for (const v of outs) expect(v.status, v.flow).toBe("accepted-new");
      // Without the generated OUTPUT accepts the same policy blocks them.
      expect(outFindings(audit(text.replace(/^-I OUTPUT .*$/m, ""), s)).length).toBeGreaterThan(0);
    });
  }

  it("IKE over TCP out as NEW is a connection to the peer's port 4500 from any port (RFC 8229), a reply leaves from 4500", () => {
    const s: ScenarioInput = { ...S2S, ikeTcp: true };
    const rest = ["-A OUTPUT -p udp -j ACCEPT", "-A OUTPUT -p esp -j ACCEPT"];
    const right = audit(
      output(
        "DROP",
        ...rest,
        "-A OUTPUT -p tcp --dport 4500 -j ACCEPT",
        "-A OUTPUT -p tcp --sport 4500 -m conntrack --ctstate ESTABLISHED -j ACCEPT",
      ),
      s,
    );
    expect(outFindings(right)).toEqual([]);
    expect(status(right, "ike-tcp-out")).toBe("accepted-new");
    // Replies from 4500 only: the gateway can answer, but not open a connection to the peer.
    const wrong = audit(
      output("DROP", ...rest, "-A OUTPUT -p tcp --sport 4500 -m conntrack --ctstate ESTABLISHED -j ACCEPT"),
      s,
    );
    expect(outFindings(wrong)).toEqual(["ike-tcp-out-blocked:ike-tcp-out"]);
    // Which ephemeral port the gateway opens from is not known: a rule on it is not guessed.
    const eph = audit(output("DROP", ...rest, "-A OUTPUT -p tcp --sport 4500 -j ACCEPT"), s);
    expect(outFindings(eph)).toEqual(["verdict-unknown:ike-tcp-out"]);
  });

  it("without --wan, a packet to the peer never leaves by lo: -o lo / ! -o lo are decided, other -o stay unknown", () => {
    const s: ScenarioInput = { vpn: "site-to-site", peers: [PEER], local: GW };
    const lo = audit(output("DROP", "-A OUTPUT -o lo -j ACCEPT"), s);
    expect(outFindings(lo)).toEqual([
      "ike-out-blocked:ike-out",
      "natt-out-blocked:natt-out",
      "esp-out-blocked:esp-out",
    ]);
    expect(lo.findings[0]!.message).toMatch(/policy DROP of filter OUTPUT/);
    const notLo = audit(output("DROP", "-A OUTPUT -o lo -j ACCEPT", "-A OUTPUT ! -o lo -j ACCEPT"), s);
    expect(outFindings(notLo)).toEqual([]);
    expect(status(notLo, "ike-out")).toBe("accepted-new");
    // Which other interface it is stays unknown.
    const eth = audit(output("DROP", "-A OUTPUT -o eth0 -j ACCEPT"), s);
    expect(outFindings(eth)).toContain("verdict-unknown:ike-out");
  });

  it("a responder's flow let out as a reply is all it needs: accepted-reply with ✓, not reply-only / unknown with ✗", () => {
    const est = "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";
    for (const text of [
      output("DROP", est),
      // New undecidable, replies accepted: no finding, so no unknown status either.
      output("DROP", est, "-A OUTPUT -p udp -m limit --limit 5/sec -j ACCEPT"),
    ]) {
      const r = audit(text, L2TP);
      expect(outFindings(r)).toEqual([]);
      for (const f of ["ike-out", "l2tp-out"]) expect(status(r, f), f).toBe("accepted-reply");
      const summary = auditText(r);
      expect(summary).not.toMatch(/✗ (ike|l2tp)-out/);
      expect(summary).toMatch(/✓ ike-out +accepted as a reply/);
    }
    // An initiator still needs new: the same rules are reply-only there.
    expect(status(audit(output("DROP", est)), "ike-out")).toBe("reply-only");
  });

  it("a hub with a rule per peer (the generated --egress rules, 300 peers) stays decided, not >256 classes", () => {
    const peers = Array.from({ length: 300 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
    const s: ScenarioInput = { ...S2S, peers };
    const text = generateRules(planFlows(makeScenario(s)), "iptables-restore", {
      ...defaultGenerateOptions,
      egress: true,
      defaultDrop: true,
    }).replace(":INPUT DROP [0:0]", ":INPUT DROP [0:0]\n:OUTPUT DROP [0:0]");
    const r = audit(text, s);
    expect(outFindings(r)).toEqual([]);
    for (const f of ["ike-out", "natt-out", "esp-out"]) expect(status(r, f), f).toBe("accepted-new");
  });

  it("FortiOS: outbound flows are local-out traffic, not filtered by any policy table — a note, no verdict", () => {
    const dir = "examples/seed001";
    const r = runAudit(
      {
        gateways: ["site1", "site2"].map((n) => ({
          name: n,
          platform: "fortios" as const,
          file: `${dir}/${n}.conf`,
          text: readFileSync(`${dir}/${n}.conf`, "utf8"),
        })),
        tunnels: [{ kind: "site-to-site", between: ["site1", "site2"] }],
      },
      defaultLoaders,
    );
    expect(r.verdicts.filter((v) => v.flow.endsWith("-out"))).toEqual([]);
    expect(r.notes.filter((n) => /local-out traffic/.test(n))).toHaveLength(2);
    // The seed's result is unchanged.
    expect(r.findings.map((f) => `${f.gateway}:${f.id}`).sort()).toEqual([
      "site1:ike-open-to-any",
      "site2:ike-reply-only",
    ]);
  });
});

/** Applies a fix's commands (or restore lines) to an iptables-save text, the way iptables would. */
function applyFix(text: string, fix: string): string {
  const tables = new Map<string, { decl: string[]; rules: Map<string, string[]> }>();
  let cur: { decl: string[]; rules: Map<string, string[]> } | undefined;
  const table = (t: string) => {
    let x = tables.get(t);
    if (!x) {
      x = { decl: [], rules: new Map() };
      tables.set(t, x);
    }
    return x;
  };
  const chain = (x: { decl: string[]; rules: Map<string, string[]> }, c: string) => {
    if (!x.rules.has(c)) {
      x.rules.set(c, []);
      if (!x.decl.some((d) => d.startsWith(`:${c} `)))
        x.decl.push(/^[A-Z]+$/.test(c) ? `:${c} ACCEPT [0:0]` : `:${c} - [0:0]`);
    }
    return x.rules.get(c)!;
  };
  for (const l of text.split("\n")) {
    if (l.startsWith("*")) cur = table(l.slice(1));
    else if (l.startsWith(":") && cur) {
      cur.decl.push(l);
      chain(cur, l.slice(1).split(" ")[0]!);
    } else if (l.startsWith("-A ") && cur) {
      const [, c, ...spec] = l.split(" ");
      chain(cur, c!).push(spec.join(" "));
    }
  }
  for (const raw of fix.split("\n")) {
    const l = raw.includes("|| ") ? raw.slice(raw.lastIndexOf("|| ") + 3) : raw;
    const tok = l.split(" ");
    if (!/^ip6?tables$/.test(tok[0]!)) continue;
    let i = 1;
    let t = "filter";
    if (tok[i] === "-t") {
      t = tok[i + 1]!;
      i += 2;
    }
    const op = tok[i]!;
    const c = tok[i + 1]!;
    const x = table(t);
    if (op === "-N") chain(x, c);
    else if (op === "-A") chain(x, c).push(tok.slice(i + 2).join(" "));
    else if (op === "-I") {
      const at = /^\d+$/.test(tok[i + 2]!) ? Number(tok[i + 2]) : 1;
      const spec = tok.slice(/^\d+$/.test(tok[i + 2]!) ? i + 3 : i + 2).join(" ");
      chain(x, c).splice(at - 1, 0, spec);
    }
  }
  const out: string[] = [];
  for (const [t, x] of tables) {
    out.push(`*${t}`, ...x.decl);
    for (const [c, rules] of x.rules) for (const r of rules) out.push(`-A ${c} ${r}`);
    out.push("COMMIT");
  }
  return `${out.join("\n")}\n`;
}

const table = (name: string, chains: string[], ...rules: string[]) => [
  `*${name}`,
  ...chains,
  ...rules,
  "COMMIT",
];

describe("audit outbound: the fix acts where the packet is stopped", () => {
  /** Every outbound finding's fix applied, then audited again. */
  const fixed = (text: string, s: ScenarioInput = S2S) => {
    let t = text;
    for (const f of audit(text, s).findings.filter((x) => x.flow?.endsWith("-out")))
      t = applyFix(t, f.fix?.text ?? "");
    return audit(t, s);
  };

  it("a drop in mangle OUTPUT: an ACCEPT inserted before it in mangle OUTPUT, not filter rules; applied, the findings are gone", () => {
    const text = [
      ...table(
        "mangle",
        [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"],
        "-A OUTPUT -p udp -j MARK --set-mark 1",
        "-A OUTPUT -p udp -j DROP",
      ),
      "",
    ].join("\n");
    const r = audit(text);
    expect(outFindings(r)).toEqual(["ike-out-blocked:ike-out", "natt-out-blocked:natt-out"]);
    const ike = r.findings.find((f) => f.id === "ike-out-blocked")!;
    expect(ike.message).toMatch(/dropped by gw\.rules:5 in mangle OUTPUT/);
    expect(ike.fix?.text).toMatch(
      /iptables -t mangle -I OUTPUT 2 -s 198\.51\.100\.1 -d 203\.0\.113\.7 .*ike-out.*-j ACCEPT/,
    );
    expect(ike.fix?.text).not.toMatch(/TC-IPSEC-OUT|TC-IPSEC-IN|^iptables -[ACI] OUTPUT/m);
    expect(outFindings(fixed(text))).toEqual([]);
  });

  it("raw OUTPUT policy DROP, nat OUTPUT and mangle POSTROUTING drops, then filter OUTPUT DROP: every stop gets its accept", () => {
    const text = [
      ...table("raw", [":PREROUTING ACCEPT [0:0]", ":OUTPUT DROP [0:0]"], "-A OUTPUT -p tcp -j ACCEPT"),
      ...table("nat", [":OUTPUT DROP [0:0]", ":POSTROUTING ACCEPT [0:0]"]),
      ...table(
        "mangle",
        [":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"],
        "-A POSTROUTING -p esp -j DROP",
      ),
      ...output("DROP").trimEnd().split("\n"),
      "",
    ].join("\n");
    const r = audit(text);
    expect(outFindings(r)).toEqual([
      "ike-out-blocked:ike-out",
      "natt-out-blocked:natt-out",
      "esp-out-blocked:esp-out",
    ]);
    const esp = r.findings.find((f) => f.id === "esp-out-blocked")!;
    expect(esp.fix?.text).toMatch(
      /-t raw -C OUTPUT .* \|\| iptables -t raw -A OUTPUT -s 198\.51\.100\.1 -d 203\.0\.113\.7 -o eth0 -p esp/,
    );
    expect(esp.fix?.text).toMatch(/-t nat -A OUTPUT .*-p esp/);
    expect(esp.fix?.text).toMatch(/-t mangle -I POSTROUTING 1 .*-p esp/);
    expect(esp.fix?.text).toMatch(/-A TC-IPSEC-OUT .*-p esp/);
    expect(esp.fix?.text).not.toMatch(/TC-IPSEC-IN/);
    expect(outFindings(fixed(text))).toEqual([]);
  });

  it("a goto'd chain falling off its end before mangle OUTPUT's DROP policy: the accept goes at that chain's end", () => {
    const text = [
      ...table(
        "mangle",
        [":OUTPUT DROP [0:0]", ":X - [0:0]"],
        "-A OUTPUT -p udp -g X",
        "-A OUTPUT -j ACCEPT",
        "-A X -p tcp -j DROP",
      ),
      "",
    ].join("\n");
    const r = audit(text);
    const ike = r.findings.find((f) => f.id === "ike-out-blocked")!;
    expect(ike.fix?.text).toMatch(/iptables -t mangle -A X .*ike-out.*-j ACCEPT/);
    expect(outFindings(fixed(text))).toEqual([]);
  });

  it("a drop in a mangle chain also reached from PREROUTING: no rule inserted there, the fix names the rule to narrow", () => {
    const text = [
      ...table(
        "mangle",
        [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":X - [0:0]"],
        "-A PREROUTING -j X",
        "-A OUTPUT -j X",
        "-A X -p udp -j DROP",
      ),
      "",
    ].join("\n");
    const ike = audit(text).findings.find((f) => f.id === "ike-out-blocked")!;
    const said = ike.fix?.text.replace(/\n#\s+/g, " ");
    expect(said).toMatch(/no inserted rule can help: chain X is also reached from mangle PREROUTING/);
    expect(said).toMatch(/Remove or narrow that rule/);
    expect(said).toMatch(/gw\.rules:7 \(-A X -p udp -j DROP\)/);
    expect(ike.fix?.text).not.toMatch(/^ip6?tables /m);
  });

  it("DNAT in nat OUTPUT sends the packet elsewhere: the message names the rule and the new destination; the fix undoes it there", () => {
    const text = [
      ...table("nat", [":OUTPUT ACCEPT [0:0]"], "-A OUTPUT -p esp -j DNAT --to-destination 192.0.2.9"),
      "",
    ].join("\n");
    const r = audit(text);
    expect(outFindings(r)).toEqual(["esp-out-blocked:esp-out"]);
    const esp = r.findings[0]!;
    expect(esp.message).toMatch(
      /ESP from gw to 203\.0\.113\.7 is rewritten by gw\.rules:3 \(nat OUTPUT\) and sent to 192\.0\.2\.9 instead/,
    );
    expect(esp.rules.map((x) => x.line)).toEqual([3]);
    expect(status(r, "esp-out")).toBe("blocked");
    expect(esp.fix?.text).toMatch(/-t nat -I OUTPUT 1 .*-p esp/);
    expect(outFindings(fixed(text))).toEqual([]);
  });

  it("an outbound fix in the filter table holds only the outbound chain: no TC-IPSEC-IN, no INPUT jump", () => {
    const ike = audit(output("DROP")).findings.find((f) => f.id === "ike-out-blocked")!;
    expect(ike.fix?.text).toMatch(/TC-IPSEC-OUT/);
    expect(ike.fix?.text).not.toMatch(/TC-IPSEC-IN|INPUT/);
    expect(outFindings(fixed(output("DROP")))).toEqual([]);
  });

  it("-m policy --mode tunnel on the L2TP rule out never matches its transport-mode SA (RFC 3193): decided, not unknown", () => {
    const ike = ["-A OUTPUT -p udp -m multiport --sports 500,4500 -j ACCEPT"];
    const tunnel = audit(
      output(
        "DROP",
        ...ike,
        "-A OUTPUT -p udp --sport 1701 -m policy --dir out --pol ipsec --mode tunnel -j ACCEPT",
      ),
      L2TP,
    );
    expect(outFindings(tunnel)).toEqual(["l2tp-out-blocked:l2tp-out"]);
    const transport = audit(
      output(
        "DROP",
        ...ike,
        "-A OUTPUT -p udp --sport 1701 -m policy --dir out --pol ipsec --mode transport -j ACCEPT",
      ),
      L2TP,
    );
    expect(outFindings(transport)).toEqual([]);
  });
});
