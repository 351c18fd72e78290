/** An iptables-save filter table: INPUT with `policy`, FORWARD DROP, OUTPUT ACCEPT, then `lines`. */
export const filterRules = (lines: string[], policy = "DROP"): string =>
  [
    "*filter",
    `:INPUT ${policy} [0:0]`,
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ...lines,
    "COMMIT",
    "",
  ].join("\n");

import type { Chain, Ruleset } from "../../src/platforms/iptables/model.js";
import { PackedChain, ruleAt, ruleCount } from "../../src/platforms/iptables/rule-store.js";

/**
 * A parsed rule set as plain data, every rule built: parses that keep rules as objects and parses
 * that pack them (RuleStore) compare equal exactly when their rules are equal. `reverse` builds
 * packed rules last to first (the order of first reads must not matter).
 */
export function plainRuleset(rs: Ruleset, reverse = false): unknown {
  const chain = (c: Chain) => {
    if (reverse) for (let i = ruleCount(c) - 1; i >= 0; i--) ruleAt(c, i);
    return c instanceof PackedChain ? c.toJSON() : c;
  };
  return {
    ...rs,
    tables: new Map(
      [...rs.tables].map(([n, t]) => [
        n,
        { ...t, chains: new Map([...t.chains].map(([k, c]) => [k, chain(c)])) },
      ]),
    ),
  };
}
