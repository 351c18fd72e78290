/**
 * Firewall backends under kernel test: how to render a plan, split the gateway part from the NAT-device
 * part, lay a baseline ruleset and load the generated rules into a namespace. Adding a generator is one
 * more Backend object.
 */
import { generateIptables } from "../../src/platforms/iptables/generate.js";
import { generateNftables, NFT_NAT_BEGIN, NFT_NAT_END } from "../../src/platforms/nftables/generate.js";
import type { GenerateOptions } from "../../src/platforms/types.js";
import type { Plan } from "../../src/vpn/flows.js";
import { inNs } from "./netns.js";

export interface Rendered {
  /** Text to load on the gateway. */
  gateway: string;
  /** Text to load on the NAT device, when the plan has NAT-device flows and a destination for them. */
  natDevice?: string;
}

export interface Backend {
  name: string;
  /**
   * Options the backend must be tested with. nftables: an accept in one table cannot override a drop in
   * another, so its rules only filter when they carry the drop policy themselves (defaultDrop).
   */
  adjust(opts: GenerateOptions): GenerateOptions;
  render(plan: Plan, opts: GenerateOptions): Rendered;
  /** Lays the pre-existing ruleset the generated rules must work on top of, then loads them. */
  loadGateway(ns: string, family: 4 | 6, text: string, opts: GenerateOptions): Promise<void>;
  loadNatDevice(ns: string, family: 4 | 6, text: string): Promise<void>;
  /** Syntax check only (no kernel state changes); throws with the tool's message. */
  check(ns: string, family: 4 | 6, text: string): Promise<void>;
  /** Whether egress rules can be tested on top of an OUTPUT-drop baseline. */
  egress: boolean;
}

/** The NAT-device lines of the iptables output are commented out with this prefix (see generate.ts). */
export const IPT_NAT_PREFIX = "#@nat-device ";

export const extractIptablesNatDevice = (text: string): string | undefined => {
  const lines = text
    .split("\n")
    .filter((l) => l.startsWith(IPT_NAT_PREFIX))
    .map((l) => l.slice(IPT_NAT_PREFIX.length));
  return lines.length > 0 ? `${lines.join("\n")}\n` : undefined;
};

const ipt = (family: 4 | 6) => (family === 6 ? "ip6tables" : "iptables");

/**
 * An existing firewall: INPUT policy DROP and a final catch-all DROP rule (as ufw and hand-written rulesets
 * have), so rules appended after it would never be reached. IPv6 keeps neighbour discovery, as any working
 * IPv6 ruleset must.
 */
async function iptablesBaseline(
  ns: string,
  family: 4 | 6,
  chain: "INPUT" | "FORWARD" | "OUTPUT",
  flavour = "",
): Promise<void> {
  const lines = ["*filter", `:${chain} DROP [0:0]`];
  if (family === 6) {
    for (const t of [133, 134, 135, 136])
      lines.push(`-A ${chain} -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`);
  }
  if (chain === "FORWARD") lines.push("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
  lines.push(`-A ${chain} -j DROP`, "COMMIT", "");
  await inNs(ns, [`${ipt(family)}${flavour}-restore`, "--noflush"], { input: lines.join("\n") });
}

/** iptables through `iptables-restore` (flavour "") or `iptables-legacy-restore` (flavour "-legacy"). */
function iptablesFlavour(flavour: "" | "-legacy"): Backend {
  const restore = (family: 4 | 6) => `${ipt(family)}${flavour}-restore`;
  return {
    name: `iptables${flavour}`,
    adjust: (opts) => opts,
    render(plan, opts) {
      const text = generateIptables(plan, { ...opts, format: "restore" });
      const natDevice = extractIptablesNatDevice(text);
      return { gateway: text, ...(natDevice ? { natDevice } : {}) };
    },
    async loadGateway(ns, family, text, opts) {
      // With --default-drop the generated file sets the policy itself; without, it must work on top of ours.
      if (!opts.defaultDrop) await iptablesBaseline(ns, family, "INPUT", flavour);
      if (opts.egress) await iptablesBaseline(ns, family, "OUTPUT", flavour);
      await inNs(ns, [restore(family), "--noflush"], { input: text });
    },
    async loadNatDevice(ns, family, text) {
      await iptablesBaseline(ns, family, "FORWARD", flavour);
      await inNs(ns, [restore(family), "--noflush"], { input: text });
    },
    async check(ns, family, text) {
      await inNs(ns, [restore(family), "--test", "--noflush"], { input: text });
    },
    egress: true,
  };
}

export const iptablesBackend = iptablesFlavour("");
/**
 * The legacy (x_tables) backend matches differently in places: e.g. `ip6tables -p ah` never matches
 * there, because AH is an IPv6 extension header that ip6_tables skips to find the protocol.
 */
export const iptablesLegacyBackend = iptablesFlavour("-legacy");

/** Whether the namespace's ruleset uses conntrack, which makes the kernel reassemble fragments before filtering. */
export async function usesConntrack(ns: string, family: 4 | 6): Promise<boolean> {
  const nft = await inNs(ns, ["nft", "list", "ruleset"]);
  const legacy = await inNs(ns, [`${ipt(family)}-legacy-save`], { check: false });
  return /\bct (state|status)\b/.test(nft.stdout) || /-m (conntrack|state)\b/.test(legacy.stdout);
}

/** Splits an nft file at its NAT-device markers (inclusive) into the gateway part and the NAT-device part. */
export function splitNftables(text: string): Rendered {
  const lines = text.split("\n");
  const begin = lines.indexOf(NFT_NAT_BEGIN);
  const end = lines.indexOf(NFT_NAT_END);
  if (begin < 0) return { gateway: text };
  if (end < begin) throw new Error("NAT-device part has a begin marker but no end marker");
  return {
    gateway: [...lines.slice(0, begin), ...lines.slice(end + 1)].join("\n"),
    natDevice: `${lines.slice(begin, end + 1).join("\n")}\n`,
  };
}

const nftLoad = (ns: string, text: string, check = false) =>
  inNs(ns, ["nft", ...(check ? ["-c"] : []), "-f", "/dev/stdin"], { input: text });

export const nftablesBackend: Backend = {
  name: "nftables",
  // An accept in the generated table cannot override a drop elsewhere, so the only way it filters is
  // with its own drop policy: test it as the gateway's whole input filter.
  adjust: (opts) => ({ ...opts, defaultDrop: true }),
  render: (plan, opts) => splitNftables(generateNftables(plan, opts)),
  async loadGateway(ns, _family, text) {
    await nftLoad(ns, text);
  },
  // No FORWARD baseline: the generated forward chain is additive (policy accept) by design.
  async loadNatDevice(ns, _family, text) {
    await nftLoad(ns, text);
  },
  async check(ns, _family, text) {
    await nftLoad(ns, text, true);
  },
  // Its output chain has policy accept (additive), so an OUTPUT-drop baseline would override it.
  egress: false,
};

/** Every backend whose generator exists; the kernel suites run once per entry. */
export const BACKENDS: Backend[] = [iptablesBackend, iptablesLegacyBackend, nftablesBackend];
