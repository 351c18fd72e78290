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
import {
  indexPort,
  indexProto,
  PackedChain,
  prefixOf,
  ruleAt,
  ruleCount,
  ruleFlags,
} from "../../src/platforms/iptables/rule-store.js";

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

/**
 * What each packed rule's columns say, next to what they must say of the rule built from its line
 * (rule index columns, jump, flags): the packed lane and the direct path fill them from the line,
 * the readers trust them. Call before anything builds the rules.
 */
export function packedColumns(rs: Ruleset): { kept: unknown[]; built: unknown[] } {
  const kept: unknown[] = [];
  const built: unknown[] = [];
  const prefix = (len: number, addr: number) => (len < 0 ? null : `${addr}/${len}`);
  for (const t of rs.tables.values())
    for (const c of t.chains.values()) {
      if (!(c instanceof PackedChain) || c.store === null) continue;
      const st = c.store;
      const ids = c.slots.map((s) => (typeof s === "number" ? s : -1));
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < 0) continue;
        kept.push({
          line: st.line[id],
          pos: st.pos[id],
          chain: st.chains[st.chainNo[id]!]!.name,
          proto: st.proto[id],
          port: st.port[id],
          src: prefix(st.srcLen[id]!, st.srcAddr[id]!),
          dst: prefix(st.dstLen[id]!, st.dstAddr[id]!),
          jumpTo: st.jumpTo[id]! < 0 ? null : st.chains[st.jumpTo[id]!]!.name,
          flags: st.flags[id],
        });
        const r = c.at(i);
        const sp = prefixOf(r.src, 4);
        const dp = prefixOf(r.dst, 4);
        const tg = r.target;
        built.push({
          line: r.prov.line - 1,
          pos: i,
          chain: c.name,
          proto: indexProto(r),
          port: indexPort(r),
          src: sp ? `${sp.addr}/${sp.len}` : null,
          dst: dp ? `${dp.addr}/${dp.len}` : null,
          jumpTo: tg !== null && (tg.kind === "jump" || tg.kind === "goto") ? tg.chain : null,
          flags: ruleFlags(r),
        });
      }
    }
  return { kept, built };
}
