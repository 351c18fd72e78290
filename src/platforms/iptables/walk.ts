import type { Chain, Rule, Table } from "./model.js";

/**
 * Visits the rules of `start` and of the user chains it jumps or goes to, each chain once (`seen`,
 * shared across calls by the caller, must already hold `start`). `visit` says whether the rule's jump
 * is followed: a rule that cannot match leads nowhere.
 */
export function forEachReachableRule(
  t: Table,
  start: Chain,
  seen: Set<Chain>,
  visit: (r: Rule) => boolean,
): void {
  const stack = [start];
  while (stack.length > 0) {
    const rules = stack.pop()!.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!visit(r)) continue;
      const tg = r.target;
      if (tg !== null && (tg.kind === "jump" || tg.kind === "goto")) {
        const to = t.chains.get(tg.chain);
        if (to !== undefined && !seen.has(to)) {
          seen.add(to);
          stack.push(to);
        }
      }
    }
  }
}
