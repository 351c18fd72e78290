/**
 * Packed rules (issue 3's cold parse): a rule of an append-only IPv4 table read by the parser's
 * packed lane (packed-lane.ts: canonical lines, read straight into the columns) or its direct path
 * is kept as a number: its line, plus the columns the rule index and the parser's end-of-table
 * checks read. Its `Rule` is built again from that line on first read, by the direct path (nothing
 * a line of an append-only table refers to changes after it; the lane takes only lines the direct
 * path builds). Readers that walk rules one at a time use `ruleCount` / `ruleAt` and the index
 * columns, and build only the rules they look at; every other reader of `chain.rules` gets the
 * whole chain built, unchanged. Keeping 100,000 rules as objects costs 26 MB of old generation.
 * The index's one-pass candidates (`candidatesPass`), the symbolic walk's source test
 * (`srcMissesAt`) and `someRule` read the columns in place, so a rule none of them can rule out is
 * the only kind that gets built.
 */
import { hostMask } from "../../model/address.js";
import type { AddrSet } from "../../model/addrset.js";
import type { Provenance } from "../../model/ruleset.js";
import type { Chain, Counters, Rule, Ruleset, TableName, Target } from "./model.js";

/** Columns of the packed rules of one parse, by packed id. */
export class RuleStore {
  n = 0;
  /** 0-based line of the input. */
  line = new Int32Array(4096);
  /** Position in its chain (0-based). */
  pos = new Int32Array(4096);
  /** Its chain, as an index into `chains`. */
  chainNo = new Int32Array(4096);
  /** The index columns (see indexProto, indexPort, prefixes): -1 for none. */
  proto = new Int16Array(4096);
  port = new Int32Array(4096);
  srcLen = new Int8Array(4096);
  srcAddr = new Uint32Array(4096);
  dstLen = new Int8Array(4096);
  dstAddr = new Uint32Array(4096);
  /** Chain jumped or gone to (index into `chains`), -1 for none. */
  jumpTo = new Int32Array(4096);
  /** Hooks the rule may be used from (the parser's mask), -1 when it needs no hook check. */
  allowed = new Int32Array(4096);
  /** Bit 0: the rule makes the kernel enable connection tracking (conntrackInUse). */
  flags = new Uint8Array(4096);
  readonly chains: PackedChain[] = [];

  /** Builds packed rule `id` of `chain` from its line (the parser's direct path). */
  constructor(readonly rebuild: (chain: PackedChain, id: number) => Rule) {}

  /** A new packed id (columns zeroed; the caller fills them). */
  add(): number {
    if (this.n === this.line.length) this.grow();
    return this.n++;
  }

  private grow(): void {
    const size = this.line.length * 2;
    const more = <T extends Int32Array | Int16Array | Int8Array | Uint32Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.line = more(this.line);
    this.pos = more(this.pos);
    this.chainNo = more(this.chainNo);
    this.proto = more(this.proto);
    this.port = more(this.port);
    this.srcLen = more(this.srcLen);
    this.srcAddr = more(this.srcAddr);
    this.dstLen = more(this.dstLen);
    this.dstAddr = more(this.dstAddr);
    this.jumpTo = more(this.jumpTo);
    this.allowed = more(this.allowed);
    this.flags = more(this.flags);
  }

  /** The rule of a packed id (built on first read). */
  rule(id: number): Rule {
    return this.chains[this.chainNo[id]!]!.at(this.pos[id]!);
  }
}

/** A chain as the parser makes it: its rules are Rule objects or packed ids, in order. */
export class PackedChain implements Chain {
  /** Rules and packed ids, in rule order. */
  slots: Array<Rule | number>;
  /** How many of `slots` are packed ids. */
  packed = 0;

  constructor(
    public name: string,
    public table: TableName,
    public builtin: boolean,
    public policy: "ACCEPT" | "DROP" | null,
    public counters: Counters | null,
    public prov: Provenance | null,
    readonly store: RuleStore | null,
    /** This chain's index in `store.chains` (-1 without a store). */
    readonly no: number,
  ) {
    this.slots = emptySlots();
  }

  get rules(): Rule[] {
    if (this.packed > 0) {
      const s = this.slots;
      for (let i = 0; i < s.length; i++) if (typeof s[i] === "number") this.at(i);
    }
    return this.slots as Rule[];
  }

  set rules(rules: Rule[]) {
    this.slots = rules;
    this.packed = 0;
  }

  /** Rule i, built from its line when packed. */
  at(i: number): Rule {
    const s = this.slots[i]!;
    if (typeof s !== "number") return s;
    const r = this.store!.rebuild(this, s);
    this.slots[i] = r;
    this.packed--;
    return r;
  }

  /** The chain as plain data (JSON output, test comparisons): every rule built. */
  toJSON(): Chain {
    const { name, table, builtin, policy, counters, rules, prov } = this;
    return { name, table, builtin, policy, counters, rules, prov };
  }
}

/**
 * An empty slot list whose elements are already of the object kind: a chain's list is made at its
 * `:chain` line, long before its first rule, and an empty `[]` starts as a list of small integers
 * that the first push of a rule converts (the code compiled for the first appends then deoptimizes).
 */
const NOT_A_RULE = {} as Rule;
function emptySlots(): Array<Rule | number> {
  const s: Array<Rule | number> = [NOT_A_RULE];
  s.pop();
  return s;
}

/** How many rules a chain has (none built). */
export function ruleCount(c: Chain): number {
  return c instanceof PackedChain ? c.slots.length : c.rules.length;
}

/** Rule i of a chain, built when packed (and kept: the same object on every read). */
export function ruleAt(c: Chain, i: number): Rule {
  return c instanceof PackedChain ? c.at(i) : c.rules[i]!;
}

/** The packed id of rule i, or -1 when it is a Rule object. */
function packedId(c: Chain, i: number): number {
  if (!(c instanceof PackedChain)) return -1;
  const s = c.slots[i];
  return typeof s === "number" ? s : -1;
}

const CT_MATCHES = new Set(["state", "conntrack", "connmark"]);
const CT_TARGETS = new Set(["CONNMARK", "CT", "NOTRACK", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"]);
/** Opaque modules/targets that need conntrack or nf_defrag in their checkentry. */
const CT_OPAQUE = new Set([
  "helper",
  "connlimit",
  "connbytes",
  "connlabel",
  "cluster",
  "socket",
  "ipvs",
  "NETMAP",
  "CONNSECMARK",
  "TPROXY",
  "SYNPROXY",
  "CLUSTERIP",
]);

/**
 * Bits of RuleStore.flags, facts a reader may look for over the whole rule set: enablesConntrack;
 * a `-m set` match (a packed rule has no `unknown`); rewritesPorts.
 */
export const CONNTRACK_FLAG = 1;
export const IPSET_FLAG = 2;
export const NAT_PORTS_FLAG = 4;

/** The flags of a rule (one pass: the parser asks for every packed rule). */
export function ruleFlags(r: Rule): number {
  let f = 0;
  const ms = r.matches;
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    if (m.kind === "comment" || m.kind === "tcp" || m.kind === "udp") continue;
    if (m.kind === "set") f |= IPSET_FLAG;
    if (CT_MATCHES.has(m.kind) || (m.kind === "opaque" && CT_OPAQUE.has(m.module))) f |= CONNTRACK_FLAG;
  }
  return r.target === null ? f : f | targetFlags(r.target);
}

/** The flags a rule's target gives it. */
export function targetFlags(tg: Target): number {
  if (tg.kind === "jump" || tg.kind === "goto" || tg.kind === "ACCEPT" || tg.kind === "DROP") return 0;
  let f = 0;
  if (CT_TARGETS.has(tg.kind) || (tg.kind === "opaque" && CT_OPAQUE.has(tg.name))) f |= CONNTRACK_FLAG;
  if (targetRewritesPorts(tg)) f |= NAT_PORTS_FLAG;
  return f;
}

/** A target that may rewrite a packet's ports in the nat table (DNAT/REDIRECT to ports, an unmodelled one). */
export function rewritesPorts(r: Rule): boolean {
  return r.target !== null && targetRewritesPorts(r.target);
}

function targetRewritesPorts(tg: Target): boolean {
  return (
    (tg.kind === "DNAT" && tg.ranges.some((x) => x.portLo !== null)) ||
    tg.kind === "REDIRECT" ||
    tg.kind === "opaque"
  );
}

/**
 * Whether loading this rule makes the kernel enable connection tracking (and with it nf_defrag)
 * in the network namespace: some match or target calls `nf_ct_netns_get` / `nf_defrag_*_enable`.
 */
export function enablesConntrack(r: Rule): boolean {
  for (const m of r.matches)
    if (CT_MATCHES.has(m.kind) || (m.kind === "opaque" && CT_OPAQUE.has(m.module))) return true;
  const tg = r.target;
  return tg !== null && (CT_TARGETS.has(tg.kind) || (tg.kind === "opaque" && CT_OPAQUE.has(tg.name)));
}

/** The protocol a rule is indexed by (-1: any). */
export const indexProto = (r: Rule): number => (r.proto && !r.proto.invert ? r.proto.num : -1);

/** The single destination port a rule is indexed by (-1: any). */
export function indexPort(r: Rule): number {
  let port = -1;
  const ms = r.matches;
  for (let q = 0; q < ms.length; q++) {
    const m = ms[q]!;
    if ((m.kind === "tcp" || m.kind === "udp") && m.dport && !m.dport.invert) {
      if (m.dport.range.lo === m.dport.range.hi) port = m.dport.range.lo;
    }
  }
  return port;
}

/** The indexable prefix of an address condition: not inverted, contiguous, not the whole space. */
export function prefixOf(c: Rule["src"], family: 4 | 6): { len: number; addr: bigint } | null {
  if (!c || c.invert || c.spec.kind !== "net" || c.spec.family !== family) return null;
  if (c.spec.len === null || c.spec.len === 0) return null;
  // The address spec itself (its len is a number here): no object per indexed rule.
  return c.spec as { len: number; addr: bigint };
}

/** indexProto of rule i without building it. */
export function indexProtoAt(c: Chain, i: number): number {
  const id = packedId(c, i);
  return id < 0 ? indexProto(ruleAt(c, i)) : (c as PackedChain).store!.proto[id]!;
}

/** indexPort of rule i without building it. */
export function indexPortAt(c: Chain, i: number): number {
  const id = packedId(c, i);
  return id < 0 ? indexPort(ruleAt(c, i)) : (c as PackedChain).store!.port[id]!;
}

/** prefixOf the source (`dst` false) or destination of rule i without building it. */
export function prefixAt(
  c: Chain,
  i: number,
  dst: boolean,
  family: 4 | 6,
): { len: number; addr: bigint } | null {
  const id = packedId(c, i);
  if (id < 0) {
    const r = ruleAt(c, i);
    return prefixOf(dst ? r.dst : r.src, family);
  }
  const st = (c as PackedChain).store!;
  const len = (dst ? st.dstLen : st.srcLen)[id]!;
  return len < 0 ? null : { len, addr: BigInt((dst ? st.dstAddr : st.srcAddr)[id]!) };
}

/**
 * Whether rule i's source prefix certainly leaves out every address of `set`, read from a packed
 * rule's columns without building it (false for a rule object, no prefix, or another family). The
 * column is a necessary condition of the rule's match (the index relies on it too): a rule it
 * rules out matches no packet from `set`, whatever its other matches and target.
 */
export function srcMissesAt(c: Chain, i: number, set: AddrSet): boolean {
  const id = packedId(c, i);
  if (id < 0 || set.family !== 4) return false;
  const st = (c as PackedChain).store!;
  const len = st.srcLen[id]!;
  if (len <= 0) return false;
  const lo = st.srcAddr[id]!;
  return !set.overlapsV4(lo, lo + 2 ** (32 - len));
}

/**
 * The rules of a chain the index keeps for a packet of protocol `proto` (-1: any) to port `dport`
 * and, when not null, address `dst`, from any source: those of protocol -1 or `proto` (only -1 for
 * -1), of port -1 or `dport` (any port when undefined), less those `dstMissesAt` leaves out. One
 * pass; packed rules read from their columns in place (50,000 rules per audit flow).
 */
export function candidatesPass(
  c: Chain,
  proto: number,
  dport: number | undefined,
  dst: bigint | null,
  family: 4 | 6,
): number[] {
  const keeps = (pr: number, port: number): boolean =>
    (pr === -1 || (proto !== -1 && pr === proto)) && (dport === undefined || port === -1 || port === dport);
  const out: number[] = [];
  if (!(c instanceof PackedChain) || c.store === null || family !== 4) {
    for (let i = 0, n = ruleCount(c); i < n; i++)
      if (keeps(indexProtoAt(c, i), indexPortAt(c, i)) && (dst === null || !dstMissesAt(c, i, dst, family)))
        out.push(i);
    return out;
  }
  const st = c.store;
  const slots = c.slots;
  const d = dst === null ? 0 : Number(dst);
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (typeof s !== "number") {
      if (keeps(indexProto(s), indexPort(s)) && (dst === null || !dstMissesAt(c, i, dst, 4))) out.push(i);
      continue;
    }
    if (!keeps(st.proto[s]!, st.port[s]!)) continue;
    // dstMissesAt on the columns.
    const len = st.dstLen[s]!;
    if (
      dst !== null &&
      st.srcLen[s]! < 0 &&
      len > 0 &&
      ((d ^ st.dstAddr[s]!) & (0xffffffff << (32 - len))) !== 0
    )
      continue;
    out.push(i);
  }
  return out;
}

/**
 * Whether the rule index leaves rule i out for a packet to `dst`: the rule has no source prefix and
 * a destination prefix that does not hold `dst` (what `candidates` finds by the destination),
 * read from a packed rule's columns without building it.
 */
export function dstMissesAt(c: Chain, i: number, dst: bigint, family: 4 | 6): boolean {
  const id = packedId(c, i);
  if (id < 0) {
    const r = ruleAt(c, i);
    if (prefixOf(r.src, family) !== null) return false;
    const p = prefixOf(r.dst, family);
    if (p === null) return false;
    return ((dst ^ p.addr) & ~hostMask(family, p.len)) !== 0n;
  }
  const st = (c as PackedChain).store!;
  const len = st.dstLen[id]!;
  if (st.srcLen[id]! >= 0 || len <= 0) return false;
  return ((Number(dst) ^ st.dstAddr[id]!) & (0xffffffff << (32 - len))) !== 0;
}

/**
 * `test` of rule i, where `bits` are the flags a rule needs for `test` to hold: a packed rule
 * without any of them is not built (false), one with them is built and tested.
 */
export function ruleTestAt(c: Chain, i: number, bits: number, test: (r: Rule) => boolean): boolean {
  const id = packedId(c, i);
  if (id >= 0 && ((c as PackedChain).store!.flags[id]! & bits) === 0) return false;
  return test(ruleAt(c, i));
}

/** Whether some rule of the rule set passes `test` (see ruleTestAt for `bits`). */
export function someRule(rs: Ruleset, bits: number, test: (r: Rule) => boolean): boolean {
  for (const t of rs.tables.values())
    for (const c of t.chains.values()) {
      if (!(c instanceof PackedChain) || c.store === null) {
        for (let i = 0, n = ruleCount(c); i < n; i++) if (ruleTestAt(c, i, bits, test)) return true;
        continue;
      }
      // `ruleTestAt` unrolled over the slots: asked of every rule of 100,000 on each audit.
      const flags = c.store.flags;
      const slots = c.slots;
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i]!;
        if (typeof s !== "number") {
          if (test(s)) return true;
        } else if ((flags[s]! & bits) !== 0 && test(c.at(i))) return true;
      }
    }
  return false;
}
