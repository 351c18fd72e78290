/**
 * Loads an `iptables-save` / `ip6tables-save` file as an audit gateway: the symbolic evaluator
 * over the INPUT path (../../analysis/iptables-symbolic.ts), with the host's addresses from the
 * gateway input (flags or topology) and ipset contents from `ipset save` output when given.
 *
 * An iptables file declares no VPN (the scenario comes from flags or the topology), so `vpns` is
 * empty. Parse errors stop the audit with every `file:line:col` message: a half-read rule set
 * would give confident wrong verdicts.
 */
import { type GatewayInput, GatewayInputError, type LoadedGateway } from "../../analysis/gateway.js";
import { linkBroadcasts } from "../../analysis/iptables-path.js";
import { iptablesEvaluator } from "../../analysis/iptables-symbolic.js";
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { type Diagnostic, formatDiagnostic } from "../../model/ruleset.js";
import { evaluateLocalOut } from "./local-out.js";
import { BUILTIN_CHAINS, type Chain, type Hook, type Rule, type Ruleset, type TableName } from "./model.js";
import { parseIptables } from "./parse.js";
import { checkPortForward, checkPortForwardSet } from "./port-forward.js";
import { IPSET_FLAG, someRule } from "./rule-store.js";
import { forEachReachableRule } from "./walk.js";

/** Loads an iptables rule set for the audit. */
export function loadIptablesGateway(g: GatewayInput): LoadedGateway {
  const parsed = parseIptables(g.text, g.bytes ? { file: g.file, bytes: g.bytes } : { file: g.file });
  if (parsed.errors.length > 0) throw new GatewayInputError(parsed.errors.map(formatDiagnostic).join("\n"));
  const rs = parsed.ruleset;
  const family = rs.family;
  const warnings = parsed.warnings.map(formatDiagnostic);

  const own: string[] = [];
  const given = (g.addresses ?? []).map((a) => {
    try {
      // An interface address may come with its prefix length (`198.51.100.1/24`): the host
      // address is the address, and the subnet's directed broadcast is delivered locally too.
      const p = parsePrefix(a, { allowHostBits: true });
      own.push(formatAddress(p.family, p.addr));
      return { ...p, withLen: a.includes("/") };
    } catch (e) {
      throw new GatewayInputError(`gateway ${g.name}: ${(e as Error).message}`);
    }
  });
  const mine = given.filter((p) => p.family === family);
  const host =
    mine.length > 0
      ? AddrSet.fromPrefixes(
          family,
          mine.map((p) => ({ family, addr: p.addr, len: family === 4 ? 32 : 128 })),
        )
      : undefined;
  const broadcast = linkBroadcasts(mine.filter((p) => p.withLen));
  if (!host) {
    warnings.push(
      `${g.file}: warning: the host's own addresses are not given (--address, or addresses: in the topology): the VPN's local address is taken as the host's, and routing / -m addrtype answers that need the others are unknown`,
    );
  }

  let ipsets: Map<string, AddrSet> | undefined;
  if (g.ipset) {
    const r = parseIpsetSave(g.ipset.text, g.ipset.file, family);
    if (r.errors.length > 0) throw new GatewayInputError(r.errors.map(formatDiagnostic).join("\n"));
    warnings.push(...r.warnings.map(formatDiagnostic));
    ipsets = r.sets;
  }
  warnings.push(...inputPathWarnings(rs, ipsets));

  const pathOpts = {
    ...(ipsets ? { ipsets } : {}),
    ...(broadcast.isEmpty() ? {} : { broadcast }),
  };
  const localOutOpts = { ...(host ? { hostAddresses: host } : {}), ...pathOpts };
  const ev = iptablesEvaluator(rs, {
    ...(host ? { hostAddresses: host } : {}),
    ...(ipsets ? { ipset: ipsets } : {}),
    ...(broadcast.isEmpty() ? {} : { broadcast }),
  });
  const check = (q: { family: Family }): void => {
    if (q.family !== family)
      throw new GatewayInputError(
        `${g.file} is an ${family === 6 ? "ip6tables" : "iptables"} (IPv${family}) rule set, but the VPN on gateway ${g.name} is IPv${q.family}: give the ${q.family === 6 ? "ip6tables-save" : "iptables-save"} file`,
      );
  };
  return {
    input: g,
    evaluator: {
      platform: "iptables",
      evaluate(q) {
        check(q);
        return ev.evaluate(q);
      },
      stateTimeout(q) {
        check(q);
        return ev.stateTimeout(q);
      },
      evaluateOutbound(q) {
        check(q);
        return evaluateLocalOut(rs, localOutOpts, q);
      },
    },
    fixTarget: (f: Family) => (f === 6 ? "ip6tables" : "iptables"),
    vpns: [],
    ownAddresses: own,
    warnings,
    portForward: (q) => checkPortForward(rs, host, q, pathOpts),
    portForwardSet: (q) => checkPortForwardSet(rs, host, q, pathOpts),
  };
}

// ---------------------------------------------------------------------------------------------
// Warnings: what the audit's verdicts may depend on and the file cannot say

const INPUT_PATH: Array<[TableName, Hook]> = [
  ["raw", "PREROUTING"],
  ["mangle", "PREROUTING"],
  ["nat", "PREROUTING"],
  ["mangle", "INPUT"],
  ["filter", "INPUT"],
  ["security", "INPUT"],
  ["nat", "INPUT"],
];

/**
 * Rules on the local-delivery path (built-in chains and the user chains they reach), in line
 * order; only those `keep` accepts when given (filtered before the sort: a kube-proxy dump has
 * 100,000 rules on that path and few worth a warning).
 */
export function inputPathRules(rs: Ruleset, keep?: (r: Rule) => boolean): Rule[] {
  const out: Rule[] = [];
  for (const [table, hook] of INPUT_PATH) {
    const t = rs.tables.get(table);
    const start = t?.chains.get(hook);
    if (!t || !start || !(BUILTIN_CHAINS[table] as readonly string[]).includes(hook)) continue;
    forEachReachableRule(t, start, new Set<Chain>([start]), (r) => {
      if (keep === undefined || keep(r)) out.push(r);
      return true;
    });
  }
  return out.sort((a, b) => a.prov.line - b.prov.line);
}

const MAX_WARNINGS = 20;

/** Constructs on the INPUT path whose result is unknown: any verdict they decide is reported as unknown. */
function inputPathWarnings(rs: Ruleset, ipsets: Map<string, AddrSet> | undefined): string[] {
  const out: string[] = [];
  let more = 0;
  const add = (r: Rule, col: number, msg: string) => {
    if (out.length >= MAX_WARNINGS) {
      more++;
      return;
    }
    out.push(
      formatDiagnostic({ severity: "warning", file: r.prov.file, line: r.prov.line, col, message: msg }),
    );
  };
  const seen = new Set<Rule>();
  const worth = (r: Rule): boolean => {
    if (r.unknown.length > 0) return true;
    const ms = r.matches;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i]!;
      if (m.kind === "set" && !ipsets?.has(m.name)) return true;
    }
    return false;
  };
  // Most rule sets have no such rule anywhere: then no walk over the path's chains at all (a
  // kube-proxy dump reaches 100,000 rules from PREROUTING).
  // (A packed rule has no unknowns: only one with a set match is built.)
  if (!someRule(rs, IPSET_FLAG, worth)) return out;
  for (const r of inputPathRules(rs, worth)) {
    if (seen.has(r)) continue;
    seen.add(r);
    for (const u of r.unknown)
      add(r, u.col, `${u.what}: ${u.reason}; on the INPUT path, so flows it decides are reported as unknown`);
    for (const m of r.matches) {
      if (m.kind === "set" && !ipsets?.has(m.name))
        add(
          r,
          m.col,
          `-m set --match-set ${m.name}: the set's contents are not given (ipset save output); flows it decides are reported as unknown`,
        );
    }
  }
  if (more > 0)
    out.push(`${rs.file}: warning: … and ${more} more constructs with unknown results on the INPUT path`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// `ipset save`

export interface IpsetParseResult {
  /** Single-dimension address sets of the wanted family (hash:ip, hash:net, bitmap:ip, list:set of those). */
  sets: Map<string, AddrSet>;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

interface SetDef {
  name: string;
  type: string;
  family: Family;
  netmask: number | null;
  line: number;
  entries: Array<{ lo: bigint; hi: bigint; len: number; nomatch: boolean }>;
  members: string[];
  timeouts: boolean;
}

const ADDRESS_TYPES = new Set(["hash:ip", "hash:net", "bitmap:ip"]);

/**
 * Parses `ipset save` output (`create NAME TYPE [options]`, `add NAME ENTRY [options]`). Address
 * sets become AddrSets: hash:ip (with `netmask`), hash:net (a more specific `nomatch` entry
 * excludes, as the kernel's longest-prefix lookup does), bitmap:ip, and list:set (a member matches).
 * Sets of other types (`hash:ip,port`, …) are left out: `-m set` on them stays unknown.
 */
export function parseIpsetSave(text: string, file: string, family: Family): IpsetParseResult {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const defs = new Map<string, SetDef>();
  const err = (line: number, col: number, message: string) =>
    errors.push({ severity: "error", file, line, col, message });
  const warn = (line: number, col: number, message: string) =>
    warnings.push({ severity: "warning", file, line, col, message });
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const words: Array<{ w: string; col: number }> = [];
    for (const m of raw.matchAll(/\S+/g)) words.push({ w: m[0], col: m.index + 1 });
    if (words.length === 0 || words[0]!.w.startsWith("#")) return;
    const [cmd, name, arg] = words;
    if (cmd!.w !== "create" && cmd!.w !== "add") {
      err(line, cmd!.col, `expected 'create' or 'add' (ipset save output), got '${cmd!.w}'`);
      return;
    }
    if (!name || !arg) {
      err(line, cmd!.col, `'${cmd!.w}' needs a set name and ${cmd!.w === "create" ? "a type" : "an entry"}`);
      return;
    }
    const opts = new Map<string, string>();
    const flags = new Set<string>();
    for (let k = 3; k < words.length; k++) {
      const w = words[k]!.w;
      if (["nomatch", "counters", "comment", "skbinfo", "forceadd"].includes(w)) flags.add(w);
      else if (k + 1 < words.length) opts.set(w, words[++k]!.w);
      else flags.add(w);
    }
    if (cmd!.w === "create") {
      if (defs.has(name.w)) {
        err(line, name.col, `set '${name.w}' is created twice`);
        return;
      }
      const fam = opts.get("family");
      const netmask = opts.get("netmask");
      defs.set(name.w, {
        name: name.w,
        type: arg.w,
        family: fam === "inet6" ? 6 : 4,
        netmask: netmask !== undefined ? Number(netmask) : null,
        line,
        entries: [],
        members: [],
        timeouts: opts.has("timeout") && opts.get("timeout") !== "0",
      });
      return;
    }
    const d = defs.get(name.w);
    if (!d) {
      err(line, name.col, `'add' to set '${name.w}' before its 'create'`);
      return;
    }
    if (opts.has("timeout") && opts.get("timeout") !== "0") d.timeouts = true;
    if (d.type === "list:set") {
      d.members.push(arg.w);
      return;
    }
    if (!ADDRESS_TYPES.has(d.type)) return;
    const e = entryOf(arg.w, d);
    if (typeof e === "string") {
      err(line, arg.col, e);
      return;
    }
    d.entries.push({ ...e, nomatch: flags.has("nomatch") });
  });

  const sets = new Map<string, AddrSet>();
  const build = (d: SetDef, path: Set<string>): AddrSet | null => {
    const done = sets.get(d.name);
    if (done) return done;
    if (d.family !== family) return null;
    let s: AddrSet | null = null;
    if (ADDRESS_TYPES.has(d.type)) {
      s = AddrSet.empty(family);
      // Longest prefix decides: apply entries from the least to the most specific.
      for (const e of [...d.entries].sort((a, b) => a.len - b.len)) {
        const r = AddrSet.fromRange(family, e.lo, e.hi);
        s = e.nomatch ? s.difference(r) : s.union(r);
      }
    } else if (d.type === "list:set") {
      if (path.has(d.name)) return null;
      path.add(d.name);
      s = AddrSet.empty(family);
      for (const m of d.members) {
        const md = defs.get(m);
        const ms = md ? build(md, path) : null;
        if (!ms) {
          warn(
            d.line,
            1,
            `list:set '${d.name}': member '${m}' is not an address set of this family; -m set on it stays unknown`,
          );
          s = null;
          break;
        }
        s = s.union(ms);
      }
      path.delete(d.name);
    } else {
      warn(
        d.line,
        1,
        `set '${d.name}' is of type ${d.type}, not a single address dimension; -m set on it stays unknown`,
      );
    }
    if (s) {
      sets.set(d.name, s);
      if (d.timeouts)
        warn(
          d.line,
          1,
          `set '${d.name}' has entries with timeouts: its contents change at run time, this is a snapshot`,
        );
    }
    return s;
  };
  for (const d of defs.values()) build(d, new Set());
  return { sets, errors, warnings };
}

function entryOf(text: string, d: SetDef): { lo: bigint; hi: bigint; len: number } | string {
  const bits = d.family === 4 ? 32 : 128;
  const range = text.split("-");
  try {
    if (range.length === 2) {
      const lo = parsePrefix(range[0]!).addr;
      const hi = parsePrefix(range[1]!).addr;
      if (lo > hi) return `range '${text}' is empty`;
      return { lo, hi, len: bits };
    }
    const p = parsePrefix(text, { allowHostBits: true });
    if (p.family !== d.family) return `'${text}' is not an IPv${d.family} address (set family)`;
    // hash:ip with netmask N: entries and packet addresses are compared masked to N bits.
    const len = d.type === "hash:ip" && d.netmask !== null ? Math.min(d.netmask, p.len) : p.len;
    const size = 1n << BigInt(bits - len);
    const lo = (p.addr / size) * size;
    return { lo, hi: lo + size - 1n, len };
  } catch (e) {
    return (e as Error).message;
  }
}
