import type { Plan } from "../vpn/flows.js";
import { generateFirewalld } from "./firewalld/generate.js";
import { generateFortios } from "./fortios/generate.js";
import { generateIptables } from "./iptables/generate.js";
import { generateNftables } from "./nftables/generate.js";
import { TARGETS, type Target } from "./targets.js";
import { type GenerateOptions, TargetError } from "./types.js";

export { TARGETS, type Target };

/** Renders the plan's flows as rules for one platform. */
export function generateRules(plan: Plan, target: Target, opts: GenerateOptions): string {
  const v6 = plan.scenario.family === 6;
  switch (target) {
    case "iptables":
    case "iptables-restore":
    case "ip6tables":
    case "ip6tables-restore": {
      const wants6 = target.startsWith("ip6");
      if (wants6 !== v6) {
        const other = target.replace(wants6 ? "ip6tables" : "iptables", wants6 ? "iptables" : "ip6tables");
        throw new TargetError(
          `the scenario is IPv${v6 ? 6 : 4} but --target ${target} writes IPv${wants6 ? 6 : 4} rules; use --target ${other}`,
        );
      }
      return generateIptables(plan, {
        ...opts,
        format: target.endsWith("-restore") ? "restore" : "commands",
      });
    }
    case "nftables":
      return generateNftables(plan, opts);
    case "fortios":
      return generateFortios(plan, opts);
    case "firewalld":
      return generateFirewalld(plan, opts);
  }
}
