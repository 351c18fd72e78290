import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../src/analysis/run-audit.js";
import { defaultLoaders } from "../src/loaders.js";
import { generateIptables } from "../src/platforms/iptables/generate.js";
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

/**
 * Applies fixes (iptables commands, or iptables-restore --noflush lines) one after another to an
 * iptables-save text, the way iptables would: the commands run in bash (their `-C … ||` guards and
 * `$(… -S … | awk …)` look-ups included), with `iptables` a shell function over an in-memory
 * ruleset: `-C` compares with the chain's current rules, `-I N` past the end fails ("Index of
 * insertion too big"), an unknown chain or jump target fails, `-P` only takes a table's own
 * built-in chains (not any all-uppercase name). `conntrack` is recorded, not run. Every iptables
 * error is returned: a fix that runs into one fails the test instead of a rule silently skipped.
 */
const EMULATOR = String.raw`
declare -A R P T; CH=(); TO=(); ERR=()
tc_builtin() { case "$1" in raw) echo "PREROUTING OUTPUT";; mangle) echo "PREROUTING INPUT FORWARD OUTPUT POSTROUTING";; nat) echo "PREROUTING INPUT OUTPUT POSTROUTING";; filter|security) echo "INPUT FORWARD OUTPUT";; *) return 1;; esac; }
tc_table() { local b c; [[ -n "\${T[$1]-}" ]] && return 0; b=$(tc_builtin "$1") || return 1; T[$1]=1; TO+=("$1"); for c in $b; do P["$1 $c"]=ACCEPT; R["$1 $c"]=""; CH+=("$1 $c"); done; }
tc_err() { echo "$*" >&2; ERR+=("$*"); echo "$*" >> "$TC_ERRS"; }
TARGETS=" ACCEPT DROP RETURN REJECT LOG MARK CONNMARK DNAT SNAT MASQUERADE REDIRECT CT NOTRACK TCPMSS "
tc_ipt() {
  local bin=$1; shift; local t=filter
  if [[ "$1" == -t ]]; then t=$2; shift 2; fi
  tc_table "$t" || { tc_err "$bin: can't initialize $bin table '$t'"; return 3; }
  local op=$1 c=$2; shift 2; local k="$t $c"
  case $op in
    -N) if [[ -v P[$k] ]]; then echo "$bin: Chain already exists." >&2; return 1; fi; P[$k]=-; R[$k]=""; CH+=("$k"); return 0;;
    -P) if [[ "\${P[$k]-}" != ACCEPT && "\${P[$k]-}" != DROP ]]; then tc_err "$bin: Bad built-in chain name."; return 1; fi
        if [[ "$1" != ACCEPT && "$1" != DROP ]]; then tc_err "$bin: Bad policy name."; return 1; fi; P[$k]=$1; return 0;;
  esac
  if [[ ! -v P[$k] ]]; then tc_err "$bin: No chain/target/match by that name ($t $c)."; return 1; fi
  local -a rules=(); readarray -t rules < <(printf '%s' "\${R[$k]}")
  if [[ $op == -S ]]; then
    if [[ "\${P[$k]}" == - ]]; then echo "-N $c"; else echo "-P $c \${P[$k]}"; fi
    local r; for r in "\${rules[@]}"; do echo "-A $c $r"; done; return 0
  fi
  local at=""; if [[ $op == -I && "$1" =~ ^-?[0-9]+$ ]]; then at=$1; shift; fi
  local spec="" a prev=""
  for a in "$@"; do
    if [[ $prev == -j || $prev == -g ]] && [[ $TARGETS != *" $a "* ]] && [[ ! -v P["$t $a"] ]]; then tc_err "$bin: Couldn't load target '$a'"; return 2; fi
    prev=$a; [[ "$a" == *" "* ]] && a="\"$a\""; spec+="\${spec:+ }$a"
  done
  case $op in
    -C) local r; for r in "\${rules[@]}"; do [[ "$r" == "$spec" ]] && return 0; done; echo "$bin: Bad rule (does a matching rule exist in that chain?)." >&2; return 1;;
    -A) rules+=("$spec");;
    -I) at=\${at:-1}
        if (( at < 1 )); then tc_err "$bin: Invalid rule number '$at'"; return 2; fi
        if (( at > \${#rules[@]} + 1 )); then tc_err "$bin: Index of insertion too big."; return 1; fi
        rules=("\${rules[@]:0:at-1}" "$spec" "\${rules[@]:at-1}");;
    *) tc_err "$bin: option $op not emulated"; return 2;;
  esac
  R[$k]=$(printf '%s\n' "\${rules[@]}")
}
iptables() { tc_ipt iptables "$@"; }
ip6tables() { tc_ipt ip6tables "$@"; }
conntrack() { echo "conntrack $*" >> "$TC_CT"; return 1; }
tc_load() {
  local l cur="" c pol
  while IFS= read -r l; do
    case "$l" in
      \**) cur=\${l#\*}; tc_table "$cur" || tc_err "no table $cur";;
      :*) c=\${l#:}; c=\${c%% *}; pol=\${l#:"$c" }; pol=\${pol%% *}
          if [[ -v P["$cur $c"] ]]; then P["$cur $c"]=$pol; else P["$cur $c"]=-; R["$cur $c"]=""; CH+=("$cur $c"); fi;;
      -A\ *) l=\${l#-A }; c=\${l%% *}; R["$cur $c"]+="\${R["$cur $c"]:+$'\n'}\${l#"$c" }";;
    esac
  done
}
tc_dump() {
  local t k
  for t in "\${TO[@]}"; do
    echo "*$t"
    for k in "\${CH[@]}"; do [[ "\${k%% *}" == "$t" ]] && echo ":\${k#* } \${P[$k]} [0:0]"; done
    for k in "\${CH[@]}"; do [[ "\${k%% *}" == "$t" && -n "\${R[$k]}" ]] && printf '%s\n' "\${R[$k]}" | sed "s/^/-A \${k#* } /"; done
    echo COMMIT
  done
}
`.replaceAll("\\${", "${");

/** Restore lines (`*nat`, `-I OUTPUT 1 …`, `COMMIT`) as the commands iptables-restore --noflush runs. */
const asCommands = (fix: string): string => {
  let table = "filter";
  return fix
    .split("\n")
    .map((l) => {
      if (l.startsWith("*")) {
        table = l.slice(1);
        return "";
      }
      if (l === "COMMIT") return "";
      return /^-[AIPN] /.test(l) ? `iptables -t ${table} ${l}` : l;
    })
    .join("\n");
};

function applyFixes(text: string, fixes: string[]): { text: string; errors: string[]; conntrack: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "tc-fix-"));
  try {
    const errs = join(dir, "errs");
    const ct = join(dir, "ct");
    writeFileSync(errs, "");
    writeFileSync(ct, "");
    writeFileSync(join(dir, "rules"), text);
    const script = [
      EMULATOR,
      `tc_load < ${join(dir, "rules")}`,
      ...fixes.map((f) => `(exit 0)\n${asCommands(f)}`),
      "tc_dump",
    ].join("\n");
    const out = execFileSync("bash", ["-c", script], {
      encoding: "utf8",
      env: { ...process.env, TC_ERRS: errs, TC_CT: ct },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = (f: string) => readFileSync(f, "utf8").split("\n").filter(Boolean);
    return { text: out, errors: lines(errs), conntrack: lines(ct) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One fix applied; its errors fail the test. */
function applyFix(text: string, fix: string): string {
  const r = applyFixes(text, [fix]);
  expect(r.errors).toEqual([]);
  return r.text;
}

const table = (name: string, chains: string[], ...rules: string[]) => [
  `*${name}`,
  ...chains,
  ...rules,
  "COMMIT",
];

/** A mangle chain reached from PREROUTING and OUTPUT that drops UDP: no insert there can help. */
const sharedMangleDrop = table(
  "mangle",
  [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":X - [0:0]"],
  "-A PREROUTING -j X",
  "-A OUTPUT -j X",
  "-A X -p udp -j DROP",
);

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
      /iptables -t mangle -S OUTPUT \| awk -v k=2 .*iptables -t mangle -I OUTPUT "\$n" -s 198\.51\.100\.1 -d 203\.0\.113\.7 .*ike-out.*-j ACCEPT/,
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
    expect(esp.fix?.text).toMatch(/-t mangle -S POSTROUTING \| awk -v k=1 .*-I POSTROUTING "\$n" .*-p esp/);
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
    const text = [...sharedMangleDrop, ""].join("\n");
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
    expect(esp.fix?.text).toMatch(/-t nat -S OUTPUT \| awk -v k=1 .*-I OUTPUT "\$n" .*-p esp/);
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

describe("audit outbound fixes, applied the way iptables applies them", () => {
  const TWO: ScenarioInput = { ...S2S, peers: [PEER, "203.0.113.8"] };
  /** The reviewer's two.rules: two drops in raw OUTPUT, one per peer, a rule apart. */
  const two = [
    ...table(
      "raw",
      [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"],
      "-A OUTPUT -d 203.0.113.8 -p udp -j DROP",
      "-A OUTPUT -p tcp -j ACCEPT",
      "-A OUTPUT -d 203.0.113.7 -p udp -j DROP",
    ),
    "",
  ].join("\n");
  /** The reviewer's mark.rules: IKE dropped before a MARK, NAT-T after it; filter accepts the mark. */
  const mark = [
    ...table(
      "mangle",
      [":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"],
      "-A OUTPUT -p udp --dport 500 -j DROP",
      "-A OUTPUT -p udp -j MARK --set-xmark 0x10/0xffffffff",
      "-A OUTPUT -p udp --dport 4500 -j DROP",
    ),
    ...table(
      "filter",
      [":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]"],
      "-A OUTPUT -p esp -j ACCEPT",
      "-A OUTPUT -m mark --mark 0x10 -j ACCEPT",
      "-A OUTPUT -p udp --dport 500 -j ACCEPT",
    ),
    "",
  ].join("\n");
  const outFixes = (text: string, s: ScenarioInput) =>
    audit(text, s)
      .findings.filter((x) => x.flow?.endsWith("-out"))
      .map((f) => f.fix?.text ?? "");

  it("the emulated iptables: -I past the end, an unknown chain or target, -P on a user chain are errors; -C is checked", () => {
    const base = [
      ...table("filter", [":OUTPUT ACCEPT [0:0]", ":LOGDROP - [0:0]"], "-A OUTPUT -p tcp -j ACCEPT"),
      "",
    ].join("\n");
    expect(applyFixes(base, ["iptables -I OUTPUT 3 -p udp -j ACCEPT"]).errors).toEqual([
      "iptables: Index of insertion too big.",
    ]);
    expect(applyFixes(base, ["iptables -P LOGDROP DROP"]).errors).toEqual([
      "iptables: Bad built-in chain name.",
    ]);
    expect(applyFixes(base, ["iptables -A OUTPUT -j NOPE"]).errors).toHaveLength(1);
    expect(applyFixes(base, ["iptables -t mangle -A X -j ACCEPT"]).errors).toHaveLength(1);
    const guarded =
      "iptables -C OUTPUT -p tcp -j ACCEPT 2>/dev/null || iptables -I OUTPUT 1 -p udp -j ACCEPT";
    expect(applyFixes(base, [guarded]).text).not.toMatch(/-p udp/);
    expect(applyFixes(base, ["iptables -P OUTPUT DROP"]).text).toMatch(/^:OUTPUT DROP/m);
  });

  it("two stops in one chain (two.rules): every site's accept is inserted, not skipped by another site's -C; applied twice, nothing changes", () => {
    const fixes = outFixes(two, TWO);
    expect(fixes).toHaveLength(2);
    const once = applyFixes(two, fixes);
    expect(once.errors).toEqual([]);
    for (const flow of ["ike-out", "natt-out"])
      for (const n of [1, 3])
        expect(once.text).toMatch(new RegExp(`tunnelcheck: ${flow} before rule ${n} of raw OUTPUT`));
    expect(outFindings(audit(once.text, TWO))).toEqual([]);
    const twice = applyFixes(once.text, fixes);
    expect(twice.errors).toEqual([]);
    expect(twice.text).toBe(once.text);
  });

  it("several findings' fixes in one chain (mark.rules) compose applied one after another, in either order: each accept lands just before its stopping rule", () => {
    const fixes = outFixes(mark, S2S);
    expect(fixes).toHaveLength(2);
    for (const order of [fixes, [...fixes].reverse()]) {
      const r = applyFixes(mark, order);
      expect(r.errors).toEqual([]);
      expect(outFindings(audit(r.text, S2S))).toEqual([]);
      // NAT-T's accept is after the MARK the filter table needs, not before it.
      const rules = r.text.split("\n").filter((l) => l.startsWith("-A OUTPUT") && l.includes("udp"));
      expect(rules.findIndex((l) => l.includes("natt-out"))).toBeGreaterThan(
        rules.findIndex((l) => l.includes("MARK")),
      );
    }
  });

  it("restore lines: positions of the ruleset as audited, later ones first, and said so", () => {
    const plan = planFlows(makeScenario({ ...TWO, peers: [PEER] } as ScenarioInput));
    const flow = plan.flows.find((f) => f.id === "ike-out")!;
    const at = (n: number) => ({
      table: "raw",
      chain: "OUTPUT",
      at: n,
      nth: n,
      before: { file: "gw.rules", line: n + 3, text: "-A OUTPUT -p udp -j DROP" },
    });
    const text = generateIptables(
      { ...plan, flows: [flow], notes: [] },
      { ...defaultGenerateOptions, additive: true, format: "restore", outboundSites: [at(1), at(3)] },
    );
    expect(text.replace(/\n#\s+/g, " ")).toMatch(/positions are those of the ruleset as audited/);
    const lines = text.split("\n").filter((l) => l.startsWith("-I OUTPUT"));
    expect(lines.map((l) => l.split(" ")[2])).toEqual(["3", "1"]);
    const r = applyFixes(two, [text]);
    expect(r.errors).toEqual([]);
  });

  it("DNAT in nat OUTPUT: the fix accepts before it and deletes the conntrack entries it bound (IKE's never expire); said as a rewrite, not a stop", () => {
    const text = [
      ...table(
        "nat",
        [":OUTPUT ACCEPT [0:0]"],
        "-A OUTPUT -p udp --dport 500 -j DNAT --to-destination 192.0.2.9",
      ),
      "",
    ].join("\n");
    const r = audit(text);
    expect(outFindings(r)).toEqual(["ike-out-reply-only:ike-out"]);
    // A reply to the peer's own connection is not rewritten: IKE can answer, never initiate.
    expect(status(r, "ike-out")).toBe("reply-only");
    const fix = r.findings[0]!.fix!.text;
    const said = fix.replace(/\n#\s+/g, " ");
    expect(said).toMatch(/rewritten by gw\.rules:3 .* and sent to 192\.0\.2\.9:500 instead of the peer/);
    expect(said).not.toMatch(/where the filter table's accepts do not act/);
    expect(said).toMatch(/nat sees only a connection's first packet/);
    const applied = applyFixes(text, [fix]);
    expect(applied.errors).toEqual([]);
    expect(applied.conntrack).toEqual([
      "conntrack -D -p udp --orig-src 198.51.100.1 --orig-dst 203.0.113.7 --orig-port-dst 500",
    ]);
    expect(outFindings(audit(applied.text))).toEqual([]);
  });

  it("a DNAT to the peer's own address (and port) changes nothing: no finding; one changing only the port is a rewrite, said as such", () => {
    for (const to of [PEER, `${PEER}:500`]) {
      const text = [
        ...table(
          "nat",
          [":OUTPUT ACCEPT [0:0]"],
          `-A OUTPUT -p udp --dport 500 -j DNAT --to-destination ${to}`,
        ),
        "",
      ].join("\n");
      expect(outFindings(audit(text)), to).toEqual([]);
    }
    const port = [
      ...table(
        "nat",
        [":OUTPUT ACCEPT [0:0]"],
        `-A OUTPUT -p udp --dport 500 -j DNAT --to-destination ${PEER}:4501`,
      ),
      "",
    ].join("\n");
    const r = audit(port);
    expect(outFindings(r)).toEqual(["ike-out-reply-only:ike-out"]);
    expect(r.findings[0]!.message).toMatch(
      /sent to port 4501 of 203\.0\.113\.7 \(the same address; the port changed from 500\) instead/,
    );
  });

  it("REDIRECT in nat OUTPUT sends to the loopback address (the local output hook), not the host's --address", () => {
    const text = [...table("nat", [":OUTPUT ACCEPT [0:0]"], "-A OUTPUT -p esp -j REDIRECT"), ""].join("\n");
    const esp = audit(text).findings.find((f) => f.id === "esp-out-blocked")!;
    expect(esp.message).toMatch(/sent to 127\.0\.0\.1 \(the host itself/);
    expect(esp.message).not.toMatch(/sent to 198\.51\.100\.1/);
  });

  it("IPv6: ::1 without brackets when no port follows (ESP), [::1]:port when one does (IKE)", () => {
    const text = [
      "# Generated by ip6tables-save v1.8.9",
      ...table(
        "nat",
        [":OUTPUT ACCEPT [0:0]"],
        "-A OUTPUT -p esp -j REDIRECT",
        "-A OUTPUT -p udp -j REDIRECT",
      ),
      "",
    ].join("\n");
    const r = runAudit(
      {
        gateways: [{ name: "gw", platform: "iptables", file: "gw6.rules", text, addresses: ["2001:db8::1"] }],
        tunnels: [
          {
            kind: "scenario",
            gateway: "gw",
            scenario: {
              vpn: "site-to-site",
              peers: ["2001:db8:1::7"],
              local: "2001:db8::1",
              wan: "eth0",
              ipv6: true,
            },
          },
        ],
      },
      defaultLoaders,
    );
    const msg = (id: string) => r.findings.find((f) => f.id === id)?.message ?? "";
    expect(msg("esp-out-blocked")).toMatch(/sent to ::1 \(the host itself/);
    // Replies leave by the established entry: NEW is what the REDIRECT takes.
    expect(msg("ike-out-reply-only")).toMatch(/sent to \[::1\]:500 \(the host itself/);
  });

  it("a stop no inserted rule can help: later stops on the path are not evaluated, and the fix says further stops may follow", () => {
    const text = [...sharedMangleDrop, ...output("DROP").trimEnd().split("\n"), ""].join("\n");
    const ike = audit(text).findings.find((f) => f.id === "ike-out-blocked")!;
    expect(ike.fix?.text.replace(/\n#\s+/g, " ")).toMatch(/Further stops may follow on the path/);
  });

  const root = process.getuid?.() === 0;
  const tools = (() => {
    try {
      execFileSync("iptables-restore", ["--version"], { stdio: "ignore" });
      execFileSync("ip", ["-V"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  const why = !root ? "not root" : !tools ? "no iptables-restore / ip" : "";
  it.skipIf(why !== "")(
    `on a real kernel, in a network namespace of its own${why ? ` (skipped: ${why})` : ""}: two.rules and mark.rules, every fix applied in turn, iptables-save'd, audited again: clean`,
    () => {
      const ns = `tc-of-${process.pid}-${Date.now() % 100000}`;
      const inNs = (args: string[], input?: string) =>
        execFileSync("ip", ["netns", "exec", ns, ...args], {
          encoding: "utf8",
          ...(input !== undefined ? { input } : {}),
          stdio: ["pipe", "pipe", "pipe"],
        });
      execFileSync("ip", ["netns", "add", ns]);
      try {
        for (const [text, s] of [
          [two, TWO],
          [mark, S2S],
        ] as const) {
          inNs(["iptables-restore"], text);
          for (const fix of outFixes(text, s)) inNs(["bash", "-c", `conntrack() { :; }\n${fix}`]);
          const saved = inNs(["iptables-save"]);
          expect(outFindings(audit(saved, s))).toEqual([]);
          // Again: nothing is added twice.
          for (const fix of outFixes(text, s)) inNs(["bash", "-c", `conntrack() { :; }\n${fix}`]);
          expect(inNs(["iptables-save"]).replace(/^#.*\n/gm, "")).toBe(saved.replace(/^#.*\n/gm, ""));
        }
      } finally {
        execFileSync("ip", ["netns", "del", ns]);
      }
    },
  );
});
