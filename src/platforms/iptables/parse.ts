/**
 * Parser for `iptables-save` / `ip6tables-save` output, hand-written `iptables-restore` input
 * and `iptables -S` output, into the typed model of ./model.ts.
 *
 * It follows iptables' own command-line parser where that decides meaning: options bind to the
 * most recently loaded module that defines them, `-p tcp` loads the tcp match implicitly when
 * one of its options follows, long options may be abbreviated to a unique prefix, `!` comes
 * before an option (or, deprecated, before its argument), `-s a,b` expands into one rule per
 * address. It never throws: problems are collected as `file:line:col` diagnostics (up to a
 * limit), a broken line is skipped and parsing goes on. Constructs the engine cannot evaluate
 * are kept and listed in `Rule.unknown` with a warning, never dropped.
 */
import type { Family } from "../../model/address.js";
import { type Diagnostic, DiagnosticSink, type Provenance, RulesetParseError } from "../../model/ruleset.js";
import {
  type AddrCond,
  type AddrSpec,
  BUILTIN_CHAINS,
  type Chain,
  type Counters,
  type Hook,
  type IfaceCond,
  type Match,
  type PortCond,
  type ProtoCond,
  type RawOption,
  type Rule,
  type Ruleset,
  TABLES,
  type Table,
  type TableName,
  type Target,
  type Unknown,
} from "./model.js";
import {
  type BuildCtx,
  checkRequired,
  findModule,
  ifaceCond,
  implicitModule,
  type ModuleDef,
  type OptionLookup,
  type OptSpec,
  optionLookup,
} from "./modules.js";
import { ip6SkippedHeader, protoName, protoNumber, protoNumberWide } from "./names.js";
import { decimalPort, LeanLine, scanLean, TargetMemo, verdictAt } from "./packed-lane.js";
import {
  indexPort,
  indexProto,
  PackedChain,
  prefixOf,
  RuleStore,
  ruleFlags,
  targetFlags,
} from "./rule-store.js";
import {
  checkOpaqueTarget,
  findTarget,
  isTargetName,
  isVerdict,
  STANDARD_TARGETS,
  type TargetDef,
} from "./targets.js";
import { type Token, tokenize } from "./tokenize.js";
import { parseNet } from "./values.js";

export interface IptablesParseOptions {
  /** Name used in diagnostics and provenance. */
  file?: string;
  /** Address family; detected from the header comment, the file name or the addresses otherwise. */
  family?: Family;
  /** Table of `iptables -S` input (inferred from its built-in chains when absent). */
  table?: TableName;
  /** Stop after this many errors (default 50). */
  maxErrors?: number;
  /**
   * Parse every line with the general path (tokenizer, option binding, module builders). The
   * fast paths give the same result; tests compare the two.
   */
  noFastPath?: boolean;
  /**
   * The input's bytes when it is one byte per character (`text` decoded from them as Latin-1 or
   * ASCII): the fast path then reads tokens from them. Ignored unless its length is the text's.
   */
  bytes?: Uint8Array;
  /**
   * Keep every rule as an object (no packed rules, see RuleStore). The result reads the same;
   * tests compare the two.
   */
  keepRules?: boolean;
}

export interface IptablesParseResult {
  ruleset: Ruleset;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

export function parseIptables(text: string, opts: IptablesParseOptions = {}): IptablesParseResult {
  return new Parser(text, opts).run();
}

/** Like `parseIptables`, but throws one `RulesetParseError` carrying every error. */
export function parseIptablesOrThrow(text: string, opts: IptablesParseOptions = {}): IptablesParseResult {
  const r = parseIptables(text, opts);
  if (r.errors.length > 0) throw new RulesetParseError(r.errors, r.warnings);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Generic (non-extension) options

type GenericId =
  | "src"
  | "dst"
  | "proto"
  | "iif"
  | "oif"
  | "frag"
  | "jump"
  | "goto"
  | "match"
  | "counters"
  | "ipv4"
  | "ipv6"
  | "table"
  | "A"
  | "I"
  | "D"
  | "C"
  | "R"
  | "N"
  | "P"
  | "F"
  | "X"
  | "Z"
  | "E";

interface GenericSpec extends OptSpec {
  id: GenericId;
}

const G = (id: GenericId, args: OptSpec["args"], inv = false): GenericSpec => ({ id, args, inv });

const GENERIC: Readonly<Record<string, GenericSpec>> = {
  "-s": G("src", 1, true),
  "--source": G("src", 1, true),
  "--src": G("src", 1, true),
  "-d": G("dst", 1, true),
  "--destination": G("dst", 1, true),
  "--dst": G("dst", 1, true),
  "-p": G("proto", 1, true),
  "--protocol": G("proto", 1, true),
  "-i": G("iif", 1, true),
  "--in-interface": G("iif", 1, true),
  "-o": G("oif", 1, true),
  "--out-interface": G("oif", 1, true),
  "-f": G("frag", 0, true),
  "--fragments": G("frag", 0, true),
  "-j": G("jump", 1),
  "--jump": G("jump", 1),
  "-g": G("goto", 1),
  "--goto": G("goto", 1),
  "-m": G("match", 1),
  "--match": G("match", 1),
  "-c": G("counters", 2),
  "--set-counters": G("counters", 2),
  "-4": G("ipv4", 0),
  "--ipv4": G("ipv4", 0),
  "-6": G("ipv6", 0),
  "--ipv6": G("ipv6", 0),
  "-t": G("table", 1),
  "--table": G("table", 1),
  "-A": G("A", 1),
  "--append": G("A", 1),
  "-I": G("I", 1),
  "--insert": G("I", 1),
  "-D": G("D", 1),
  "--delete": G("D", 1),
  "-C": G("C", 1),
  "--check": G("C", 1),
  "-R": G("R", 1),
  "--replace": G("R", 1),
  "-N": G("N", 1),
  "--new-chain": G("N", 1),
  "-P": G("P", 2),
  "--policy": G("P", 2),
  "-F": G("F", "optional"),
  "--flush": G("F", "optional"),
  "-X": G("X", "optional"),
  "--delete-chain": G("X", "optional"),
  "-Z": G("Z", "optional"),
  "--zero": G("Z", "optional"),
  "-E": G("E", 2),
  "--rename-chain": G("E", 2),
};
const GENERIC_LONG = Object.keys(GENERIC).filter((k) => k.startsWith("--"));
/** iptables' other long options: not rule options, but a prefix of one is theirs or ambiguous. */
const OTHER_LONG = [
  "--list",
  "--list-rules",
  "--numeric",
  "--verbose",
  "--wait",
  "--wait-interval",
  "--exact",
  "--version",
  "--help",
  "--line-numbers",
  "--modprobe",
];
const GENERIC_MAP = new Map(Object.entries(GENERIC));

const WHOLE_WORD_ARG = new Set<GenericId>(["proto", "src", "dst", "iif", "oif", "jump"]);
const COMMANDS = new Set<GenericId>(["A", "I", "D", "C", "R", "N", "P", "F", "X", "Z", "E"]);

interface Resolved {
  spec: OptSpec;
  canonical: string;
  provider: Provider | null;
}

/** Exact option name: generic options first (they take precedence in iptables), then the newest provider. */
function exactOption(name: string, providers: Provider[]): Resolved | null {
  const g = GENERIC_MAP.get(name);
  if (g) return { spec: g, canonical: name, provider: null };
  for (let i = providers.length - 1; i >= 0; i--) {
    const p = providers[i]!;
    if (!p.def) continue;
    const hit = optionLookup(p.def).get(name);
    if (hit) return { spec: hit.spec, canonical: hit.canonical, provider: p };
  }
  return null;
}

/** A loaded match module or the target, in load order; options bind to the newest that knows them. */
interface Provider {
  kind: "match" | "target";
  name: string;
  col: number;
  /** null: unknown to us; it then absorbs unknown options. */
  def: ModuleDef | TargetDef | null;
  opts: RawOption[];
  implicit: boolean;
}

/** An option no provider owns, kept in place among the matches. */
interface UnknownItem {
  kind: "unknown-option";
  option: RawOption;
  after: string | null;
}
type Item = Provider | UnknownItem;

interface Command {
  id: GenericId;
  col: number;
  args: Token[];
}

/** Everything one line says, before it is applied to the rule set. */
interface LineParse {
  command: Command | null;
  counters: Counters | null;
  srcs: { specs: AddrSpec[]; invert: boolean; col: number } | null;
  dsts: { specs: AddrSpec[]; invert: boolean; col: number } | null;
  iif: IfaceCond | null;
  oif: IfaceCond | null;
  iifCol: number;
  oifCol: number;
  proto: ProtoCond | null;
  /** Column of -p (also for `-p all`, which leaves `proto` null). */
  protoCol: number;
  fragment: { invert: boolean } | null;
  items: Item[];
  target: {
    kind: "jump" | "goto";
    name: string;
    col: number;
    provider: Provider | null;
    /** The chain, when it was already declared (looked up once). */
    chain: Chain | undefined;
  } | null;
  onlyFamily: Family | null;
  /** Any option besides the command: rejected for -N, -P, -F, … */
  ruleOptionCol: number;
  unknown: Unknown[];
  bad: boolean;
}

/** A `-j NAME` that names no known target nor (yet) a chain: resolved when the table is complete. */
interface PendingTarget {
  rule: Rule;
  name: string;
  col: number;
  kind: "jump" | "goto";
  opts: RawOption[];
}

interface TableState {
  table: Table;
  openLine: number;
  pending: PendingTarget[];
  /**
   * Rules were only appended (no -I/-R/-D/-F/-X/-E, no chain declared twice): then rules are
   * numbered as they are appended, and the jumps and the rules that need a hook check are
   * collected on the way (`jumps`, `hookRules`), so the end of the table needs no pass over
   * every rule.
   */
  appendOnly: boolean;
  /** Rules and packed ids (see RuleStore). */
  jumps: Array<Rule | number>;
  hookRules: Array<Rule | number>;
  /** hookMasks of the table, made for its first packed rule that needs a hook check. */
  maskOf?: (allowed: readonly Hook[]) => number;
  /** The packed lane's target parts read in this table. */
  targets?: TargetMemo;
}

const COUNTERS_RE = /^\[(\d+):(\d+)\]$/;
/** Token boundaries of the fast path (reused: one line at a time). */
const FAST_MAX = 128;
const FAST_STARTS = new Int32Array(FAST_MAX);
const FAST_ENDS = new Int32Array(FAST_MAX);
const NO_UNKNOWN = Object.freeze([]) as unknown as Unknown[];
const NO_MATCHES = Object.freeze([]) as unknown as Match[];
/** What a direct-path line loaded (one line at a time: one instance, reused). */
const DIRECT_MAX = 16;
class DirectState {
  src: AddrCond | null = null;
  dst: AddrCond | null = null;
  iif: IfaceCond | null = null;
  oif: IfaceCond | null = null;
  proto: ProtoCond | null = null;
  protoSeen = false;
  /** Modules in load order: definition, option lookup, column, ports / comment, other options. */
  nm = 0;
  mDef: Array<ModuleDef | null> = new Array(DIRECT_MAX).fill(null);
  mLook: Array<OptionLookup | null> = new Array(DIRECT_MAX).fill(null);
  mCol = new Int32Array(DIRECT_MAX);
  mSport: Array<PortCond | null> = new Array(DIRECT_MAX).fill(null);
  mDport: Array<PortCond | null> = new Array(DIRECT_MAX).fill(null);
  mText: Array<string | null> = new Array(DIRECT_MAX).fill(null);
  mOpts: Array<RawOption[] | null> = new Array(DIRECT_MAX).fill(null);
  tKind: "jump" | "goto" | null = null;
  tName = "";
  tCol = 0;
  tDef: TargetDef | undefined = undefined;
  tLook: OptionLookup | null = null;
  tChain: Chain | undefined = undefined;
  tOpts: RawOption[] | null = null;
}
const DS = new DirectState();
/** What the packed lane read of the current line. */
const LEAN = new LeanLine();
/** The columns of the rule being packed (appendPacked, leanRule), written by pushPacked. */
const COLS = {
  proto: -1,
  port: -1,
  srcLen: -1,
  srcAddr: 0,
  dstLen: -1,
  dstAddr: 0,
  jumpTo: -1,
  hookCheck: false,
  allowed: 0,
  flags: 0,
};
/** -s -d -p -i -o -m -j -g by their letter. */
const SHORT_GENERIC: Array<GenericId | undefined> = [];
for (const [c, id] of [
  ["s", "src"],
  ["d", "dst"],
  ["p", "proto"],
  ["i", "iif"],
  ["o", "oif"],
  ["m", "match"],
  ["j", "jump"],
  ["g", "goto"],
] as const)
  SHORT_GENERIC[c.charCodeAt(0)] = id;
/** Arguments that make iptables-restore read the line otherwise (the other paths handle them). */
const isSpecialArg = (a: string): boolean =>
  a === "!" || a === "-4" || a === "-6" || a === "--ipv4" || a === "--ipv6";
const CHAIN_NAME_MAX = 28;
/** xtables-addons targets: valid on hosts that have the add-ons, unknown to this tool. */
const ADDON_TARGETS = new Set([
  "TARPIT",
  "DELUDE",
  "CHAOS",
  "ECHO",
  "IPMARK",
  "LOGMARK",
  "SYSRQ",
  "DHCPMAC",
  "STEAL",
  "RAWDNAT",
  "RAWSNAT",
  "ACCOUNT",
  "DNETMAP",
  "PROTO",
]);

class Parser {
  private readonly sink: DiagnosticSink;
  private readonly file: string;
  private readonly lines: Lines;
  private family: Family;
  private format: "save" | "list-rules" = "save";
  private readonly tables = new Map<TableName, Table>();
  private cur: TableState | null = null;
  private lineNo = 0;
  private lineText = "";
  /** The current line ended in a carriage return (removed from lineText). */
  private lineCr = false;
  private crWarned = false;
  private ctxUnknown: Unknown[] = [];
  private readonly ctx: BuildCtx;
  private readonly fast: boolean;
  /** The input has no tab and no carriage return: fastTokens need not look for them line by line. */
  private readonly spacesOnly: boolean;
  /** opts.bytes when usable; `lineOff` is the current line's offset in them. */
  private readonly bytes: Uint8Array | null;
  private lineOff = 0;
  /** Build context of the direct path: records that something would be reported, reports nothing. */
  private readonly silent: BuildCtx & { bad: boolean };
  /** Packed rules (IPv4 direct path); null when every rule is kept as an object. */
  private readonly store: RuleStore | null;
  /** The table of each chain of the store, by chain number. */
  private readonly chainTables: Table[] = [];
  /** Position-free model objects shared by the rules of the direct path (nothing mutates them). */
  private readonly shared = {
    proto: new Map<number, ProtoCond>(),
    port: new Map<number, PortCond>(),
    match: new Map<number, Match>(),
    single: new Map<Match, Match[]>(),
    shared: new Set<Match>(),
    verdict: new Map<number, Target>(),
  };
  /** The chain of the previous direct `-A` line (consecutive lines mostly append to one chain). */
  private lastChain: Chain | null = null;

  constructor(
    text: string,
    private readonly opts: IptablesParseOptions,
  ) {
    this.file = opts.file ?? "<input>";
    this.sink = new DiagnosticSink(this.file, opts.maxErrors ?? 50);
    this.lines = new Lines(text);
    this.spacesOnly = text.indexOf("\t") < 0 && text.indexOf("\r") < 0;
    this.bytes = opts.bytes !== undefined && opts.bytes.length === text.length ? opts.bytes : null;
    this.family = opts.family ?? detectFamily(text, this.file);
    this.ctx = {
      family: this.family,
      proto: null,
      error: (col, msg) => this.err(col, msg),
      warn: (col, msg) => this.warn(col, msg),
      unknown: (col, what, reason) => this.ctxUnknown.push({ col, what, reason }),
    };
    this.fast = !opts.noFastPath;
    this.store =
      this.fast && this.family === 4 && !opts.keepRules
        ? new RuleStore((c, id) => this.rebuild(c, id))
        : null;
    const silent: BuildCtx & { bad: boolean } = {
      family: this.family,
      proto: null,
      bad: false,
      error: () => {
        silent.bad = true;
      },
      warn: () => {
        silent.bad = true;
      },
      unknown: () => {
        silent.bad = true;
      },
    };
    this.silent = silent;
  }

  run(): IptablesParseResult {
    const firstSig = this.lines.findIndex((l) => /^\s*[^\s#]/.test(l));
    const hasTableHeader = this.lines.some((l) => {
      let i = 0;
      while (l.charCodeAt(i) === 32 || l.charCodeAt(i) === 9) i++;
      return l.charCodeAt(i) === 42; // '*'
    });
    this.format = hasTableHeader || firstSig < 0 ? "save" : "list-rules";
    if (firstSig >= 0 && !this.checkFormat(firstSig)) return this.result();
    if (this.format === "list-rules") this.openListTable();

    let nextOff = 0;
    const nLines = this.lines.length;
    for (let i = 0; i < nLines; i++) {
      this.lineOff = nextOff;
      const line0 = this.lines.at(i);
      nextOff += line0.length + 1;
      if (this.sink.full) {
        this.sink.errors.push({
          severity: "error",
          file: this.file,
          line: i + 1,
          col: 0,
          message: `too many errors; stopped parsing at line ${i + 1}`,
        });
        return this.result();
      }
      let line = line0;
      this.lineCr = line.charCodeAt(line.length - 1) === 13;
      if (this.lineCr) line = line.slice(0, -1); // CRLF: read as LF, with crLine's warning
      this.lineNo = i + 1;
      this.lineText = line;
      let p = 0;
      while (p < line.length && (line.charCodeAt(p) === 32 || line.charCodeAt(p) === 9)) p++;
      if (p === line.length || line.charCodeAt(p) === 35) {
        if (p === line.length && this.lineCr) this.crLine(); // blank or '#' comment; a lone CR is a word
        continue;
      }
      const c = line[p]!;
      if (this.format === "list-rules") {
        if (c === "-") this.commandLine(line);
        else this.err(p + 1, `expected an iptables command like -A, -P or -N, got '${firstWord(line, p)}'`);
        continue;
      }
      if (c === "*") {
        if (this.lineCr) this.crLine();
        this.tableHeader(line, p);
      } else if (c === ":") this.chainHeader(line, p);
      else if (c === "-" || c === "[") {
        if (!this.cur) {
          this.err(p + 1, "rule before table: expected a '*table' line (e.g. *filter) first");
          continue;
        }
        this.commandLine(line);
      } else if (line.slice(p).trimEnd() === "COMMIT") {
        if (this.lineCr) this.crLine();
        this.commit(p);
      } else this.err(p + 1, `expected '*table', ':chain', a rule or COMMIT, got '${firstWord(line, p)}'`);
    }
    if (this.cur) {
      if (this.format === "save") {
        const t = this.cur.table.name;
        this.errAt(
          this.lines.length,
          1,
          `expected COMMIT at end of input for table ${t} (opened at line ${this.cur.openLine})`,
        );
      }
      this.finishTable();
    }
    if (this.sink.droppedErrors > 0) {
      this.sink.errors.push({
        severity: "error",
        file: this.file,
        line: 0,
        col: 0,
        message: `${this.sink.droppedErrors} more error(s) not shown`,
      });
    }
    return this.result();
  }

  private result(): IptablesParseResult {
    return {
      ruleset: { family: this.family, format: this.format, file: this.file, tables: this.tables },
      errors: this.sink.errors,
      warnings: this.sink.warnings,
    };
  }

  /** Rejects inputs that are not rule dumps at all, with a message saying what to give instead. */
  private checkFormat(i: number): boolean {
    const line = this.lines.at(i).trim();
    this.lineNo = i + 1;
    this.lineText = this.lines.at(i);
    if (/^Chain \S+ \((policy \S+|\d+ references)/.test(line)) {
      this.err(
        1,
        "unsupported format: this is `iptables -L` output, which loses match details; give `iptables-save` or `iptables -S` output",
      );
      return false;
    }
    if (
      /^(sudo\s+)?(ip6?tables|\/\S*\/ip6?tables)(-legacy|-nft)?\s/.test(line) ||
      /^#!/.test(this.lines.at(0))
    ) {
      this.err(
        1,
        "unsupported format: this is a shell script of iptables commands; run it and give `iptables-save` output",
      );
      return false;
    }
    if (this.format === "list-rules" && !line.startsWith("-")) {
      this.err(1, `expected '*table' (iptables-save) or -P/-N/-A (iptables -S), got '${firstWord(line, 0)}'`);
      return false;
    }
    return true;
  }

  // ---- diagnostics ----

  private err(col: number, msg: string): void {
    this.sink.error(this.lineNo, col, msg);
  }
  private errAt(line: number, col: number, msg: string): void {
    this.sink.error(line, col, msg);
  }
  private warn(col: number, msg: string): void {
    this.sink.warning(this.lineNo, col, msg);
  }
  /**
   * A line ending in CR (a file with CRLF line endings): iptables-restore 1.8.9 reads the CR into
   * the line's last word and refuses the line ("Invalid target name `ACCEPT\r'", "Bad argument
   * `COMMIT\r'"), except '#' comments, chain headers with counters or of user chains, and a CR
   * inside an unterminated quote. Read here as LF; said once per input.
   */
  private crLine(): void {
    if (this.crWarned) return;
    this.crWarned = true;
    this.warn(
      this.lineText.length + 1,
      "line ends in a carriage return (CRLF line endings): iptables-restore and iptables refuse such a line (they read the CR into the last word), so this file does not load as it is; read here as if it ended in LF (convert it with sed -i 's/\\r$//'); said once per file",
    );
  }

  private prov(): Provenance {
    return { file: this.file, line: this.lineNo, text: this.lineText };
  }

  // ---- tables and chains ----

  private newTable(name: TableName, prov: Provenance | null): Table {
    const table: Table = { name, chains: new Map<string, Chain>(), prov };
    for (const b of BUILTIN_CHAINS[name])
      table.chains.set(b, this.newChain(b, table, true, "ACCEPT", null, null));
    return table;
  }

  private openListTable(): void {
    let name = this.opts.table;
    if (!name) {
      // `iptables -t nat -S` lists -P lines for the table's built-in chains: infer the table.
      const policies = new Set<string>();
      for (const l of this.lines.all()) {
        const m = /^-P\s+(\S+)/.exec(l);
        if (m) policies.add(m[1]!);
      }
      name =
        TABLES.find(
          (t) =>
            BUILTIN_CHAINS[t].length === policies.size && BUILTIN_CHAINS[t].every((c) => policies.has(c)),
        ) ?? "filter";
    }
    const table = this.newTable(name, null);
    this.tables.set(name, table);
    this.cur = { table, openLine: 1, pending: [], appendOnly: true, jumps: [], hookRules: [] };
  }

  private tableHeader(line: string, p: number): void {
    const name = line.slice(p + 1).trim();
    if (this.cur) {
      this.err(
        p + 1,
        `expected COMMIT before '*${name}' (table ${this.cur.table.name} opened at line ${this.cur.openLine})`,
      );
      this.finishTable();
    }
    if (!(TABLES as readonly string[]).includes(name)) {
      this.err(p + 2, `unknown table '${name}' (expected one of ${TABLES.join(", ")})`);
      // Keep parsing its lines into a throw-away table so their errors are still reported.
      const table = this.newTable("filter", this.prov());
      this.cur = { table, openLine: this.lineNo, pending: [], appendOnly: true, jumps: [], hookRules: [] };
      return;
    }
    const tn = name as TableName;
    if (this.tables.has(tn)) {
      this.warn(
        p + 1,
        `table ${tn} appears again; iptables-restore flushes it, so this block replaces the earlier one`,
      );
    }
    const table = this.newTable(tn, this.prov());
    this.tables.delete(tn);
    this.tables.set(tn, table);
    this.cur = { table, openLine: this.lineNo, pending: [], appendOnly: true, jumps: [], hookRules: [] };
  }

  private chainHeader(line: string, p: number): void {
    if (!this.cur) {
      this.err(p + 1, "chain before table: expected a '*table' line (e.g. *filter) first");
      return;
    }
    // The words after ':' (texts and 1-based columns): split here when the line has no quote
    // (tens of thousands of `:KUBE-… - [0:0]` lines), else by the tokenizer.
    const w = CHAIN_WORDS;
    const wc = CHAIN_COLS;
    let nw = chainWords(line, p + 1);
    if (nw < 0) {
      const { tokens } = tokenize(line.slice(p + 1));
      nw = Math.min(tokens.length, 4);
      for (let k = 0; k < nw; k++) {
        w[k] = tokens[k]!.text;
        wc[k] = tokens[k]!.col + p + 1;
      }
    }
    const col = (k: number) => (k < nw ? wc[k]! : line.length + 1);
    if (nw < 1) {
      this.err(p + 2, "expected a chain name after ':'");
      return;
    }
    const name = w[0]!;
    if (!this.validChainName(name, col(0), true)) return;
    if (nw < 2) {
      this.err(col(1), `expected a policy (ACCEPT, DROP, or - for a user chain) after ':${name}'`);
      return;
    }
    let counters: Counters | null = null;
    if (nw >= 3) {
      counters = parseCounters(w[2]!);
      if (!counters) {
        this.err(col(2), `expected counters [packets:bytes], got '${w[2]!}'`);
        return;
      }
    }
    if (nw >= 4) this.err(col(3), `unexpected '${w[3]!}' after the chain counters`);
    const table = this.cur.table;
    const builtin = (BUILTIN_CHAINS[table.name] as readonly string[]).includes(name);
    const pol = w[1]!;
    // A built-in chain's policy read with the CR: "Bad policy name" (after counters it is not).
    if (this.lineCr && builtin && nw === 2) this.crLine();
    if (builtin) {
      const chain = table.chains.get(name)!;
      if (pol === "ACCEPT" || pol === "DROP") chain.policy = pol;
      else if (pol !== "-") {
        this.err(col(1), `expected policy ACCEPT or DROP for built-in chain ${name}, got '${pol}'`);
        return;
      }
      chain.counters = counters;
      chain.prov = this.prov();
      return;
    }
    if (pol !== "-") {
      const what =
        pol === "ACCEPT" || pol === "DROP"
          ? `'${name}' is not a built-in chain of table ${table.name}, so it cannot have policy ${pol} (use -)`
          : `expected '-' as the policy of user chain ${name}, got '${pol}'`;
      this.err(col(1), what);
      return;
    }
    if (table.chains.has(name)) {
      this.warn(col(0), `chain ${name} declared twice; iptables-restore flushes it again`);
      this.notAppendOnly(this.cur);
      table.chains.get(name)!.rules = [];
      return;
    }
    table.chains.set(name, this.newChain(name, table, false, null, counters, this.prov()));
  }

  private validChainName(name: string, col: number, declaring: boolean): boolean {
    if (name.length > CHAIN_NAME_MAX) {
      this.err(col, `chain name '${name}' too long (must be under 29 chars)`);
      return false;
    }
    if (name.startsWith("-") || name.startsWith("!") || name === "") {
      this.err(col, `invalid chain name '${name}'`);
      return false;
    }
    if (declaring && isTargetName(name)) {
      this.err(col, `chain name '${name}' may not clash with a target name`);
      return false;
    }
    return true;
  }

  private commit(p: number): void {
    if (!this.cur) {
      this.err(p + 1, "COMMIT without a table: expected a '*table' line first");
      return;
    }
    this.finishTable();
  }

  // ---- command lines ----

  private commandLine(line: string): void {
    // A CR in an unterminated quote is part of the argument, not a word of its own.
    if (this.lineCr && !this.crWarned && tokenize(line).unterminatedQuoteCol === undefined) this.crLine();
    const bytes = this.bytes;
    const nt = !this.fast
      ? -1
      : bytes !== null
        ? byteTokens(bytes, this.lineOff, line.length)
        : fastTokens(line, this.spacesOnly);
    if (nt >= 0) {
      if (this.leanRule(line, nt) || this.directRule(line, nt)) return;
      const fast = this.fastOptions(line, nt);
      if (fast) {
        this.applyCommand(fast.command!, fast);
        return;
      }
    }
    const { tokens, unterminatedQuoteCol } = tokenize(line);
    if (unterminatedQuoteCol !== undefined) {
      // iptables-restore takes the quoted part to the end of the line, its newline included (a
      // comment then ends in "\n"; LOG prefixes refuse it); so do we, loudly.
      this.warn(unterminatedQuoteCol, "unterminated quote: taken to the end of the line, newline included");
      const last = tokens[tokens.length - 1]!;
      const end = (this.lineCr ? "\r" : "") + (this.lineNo < this.lines.length ? "\n" : "");
      if (end !== "") tokens[tokens.length - 1] = { ...last, text: last.text + end };
    }
    // `-4`/`-6` lines are for the other tool: skip before their addresses cause errors.
    const other = this.family === 4 ? ["-6", "--ipv6"] : ["-4", "--ipv4"];
    for (const t of tokens) if (!t.quoted && t.text.length <= 6 && other.includes(t.text)) return;
    let start = 0;
    let counters: Counters | null = null;
    const first = tokens[0]!;
    if (first.text.startsWith("[")) {
      counters = parseCounters(first.text);
      if (!counters) {
        this.err(first.col, `expected counters [packets:bytes], got '${first.text}'`);
        return;
      }
      if (this.format === "list-rules")
        this.warn(first.col, "[packets:bytes] counters are iptables-save syntax");
      start = 1;
    }
    const lp = this.parseOptions(tokens, start);
    if (counters) {
      if (lp.counters) this.err(first.col, "counters given twice ([p:b] and -c)");
      lp.counters = counters;
    }
    if (lp.bad) return;
    const cmd = lp.command;
    if (!cmd) {
      this.err(tokens[start]?.col ?? 1, "expected a command (-A, -I, -N, -P, …)");
      return;
    }
    if (lp.onlyFamily !== null && lp.onlyFamily !== this.family) return; // -4 / -6 line for the other tool
    this.applyCommand(cmd, lp);
  }

  private needChain(table: Table, t: Token | undefined): Chain | null {
    if (!t) return null;
    const c = table.chains.get(t.text);
    if (!c) {
      this.err(t.col, `unknown chain '${t.text}' in table ${table.name}`);
      return null;
    }
    return c;
  }

  private noRuleOptions(cmd: Command, lp: LineParse): boolean {
    if (lp.ruleOptionCol > 0) {
      this.err(lp.ruleOptionCol, `-${cmd.id} takes no rule options`);
      return false;
    }
    return true;
  }

  /** Appends a rule (-A), numbering it and noting what the end of the table checks. */
  private append(chain: Chain, rule: Rule, hookCheck: boolean): void {
    const st = this.cur!;
    if (chain instanceof PackedChain) {
      chain.slots.push(rule);
      rule.num = chain.slots.length;
    } else {
      chain.rules.push(rule);
      rule.num = chain.rules.length;
    }
    const t = rule.target;
    if (t !== null && (t.kind === "jump" || t.kind === "goto")) st.jumps.push(rule);
    if (hookCheck) st.hookRules.push(rule);
  }

  /**
   * Appends a direct-path rule of an append-only table as a packed id: its line and the columns
   * the rule index and the end-of-table checks read (the rule itself is dropped and built again
   * from its line on first read).
   */
  private appendPacked(chain: PackedChain, rule: Rule, hookCheck: boolean): void {
    const st = this.cur!;
    const c = COLS;
    c.proto = indexProto(rule);
    c.port = indexPort(rule);
    const sp = prefixOf(rule.src, 4);
    c.srcLen = sp ? sp.len : -1;
    c.srcAddr = sp ? Number(sp.addr) : 0;
    const dp = prefixOf(rule.dst, 4);
    c.dstLen = dp ? dp.len : -1;
    c.dstAddr = dp ? Number(dp.addr) : 0;
    const t = rule.target;
    // The chain the direct path found for the jump (a PackedChain of this parser).
    c.jumpTo = t !== null && (t.kind === "jump" || t.kind === "goto") ? (DS.tChain as PackedChain).no : -1;
    c.hookCheck = hookCheck;
    if (hookCheck) {
      st.maskOf ??= hookMasks(BUILTIN_CHAINS[st.table.name]);
      c.allowed = allowedHooks(rule, chain, st.maskOf, this.family);
    }
    c.flags = ruleFlags(rule);
    this.pushPacked(chain);
  }

  /** A packed id with the columns in COLS becomes the last rule of `chain`. */
  private pushPacked(chain: PackedChain): void {
    const st = this.cur!;
    const c = COLS;
    const store = chain.store!;
    const id = store.add();
    store.line[id] = this.lineNo - 1;
    store.pos[id] = chain.slots.length;
    store.chainNo[id] = chain.no;
    store.proto[id] = c.proto;
    store.port[id] = c.port;
    store.srcLen[id] = c.srcLen;
    store.srcAddr[id] = c.srcAddr;
    store.dstLen[id] = c.dstLen;
    store.dstAddr[id] = c.dstAddr;
    store.jumpTo[id] = c.jumpTo;
    if (c.hookCheck) store.allowed[id] = c.allowed;
    store.flags[id] = c.flags;
    chain.slots.push(id);
    chain.packed++;
    if (c.jumpTo >= 0) st.jumps.push(id);
    if (c.hookCheck) st.hookRules.push(id);
  }

  /**
   * A line of an append-only table read by the packed lane (scanLean: its matches straight into
   * the columns, no rule built); false, having changed nothing, for a line the lane leaves to the
   * direct path. A target with options is read by the direct path's own code (DS, directTarget),
   * so both read it alike.
   */
  private leanRule(line: string, nt: number): boolean {
    const st = this.cur!;
    if (!st.appendOnly || this.store === null || nt < 2 || FAST_STARTS[1]! < 0) return false;
    const table = st.table;
    const chain = this.chainOfLine(line, table);
    if (chain === null || !(chain instanceof PackedChain) || chain.store === null) return false;
    const L = LEAN;
    const k = scanLean(line, nt, FAST_STARTS, FAST_ENDS, L);
    if (k < 0) return false;
    // -m tcp / -m udp need their protocol, not inverted (the direct path's directMatch).
    if (L.l4 !== 0 && (L.proto !== L.l4 || L.protoInv)) return false;
    let jumpTo = -1;
    let flags = 0;
    let hookCheck = false;
    let allowed = 0;
    if (k < nt) {
      if (k + 1 >= nt) return false;
      const goto = line.charCodeAt(FAST_STARTS[k]! + 1) === 103;
      const ns = FAST_STARTS[k + 1]!;
      if (ns < 0) return false;
      const ne = FAST_ENDS[k + 1]!;
      const verdict = verdictAt(line, ns, ne);
      if (verdict !== "") {
        if (goto || k + 2 !== nt || (verdict === "DROP" && table.name === "nat")) return false;
      } else {
        const name = line.slice(ns, ne);
        const to = table.chains.get(name);
        if (to !== undefined) {
          if (k + 2 !== nt || to.builtin || !(to instanceof PackedChain)) return false;
          jumpTo = to.no;
        } else {
          if (goto) return false;
          // What the target part gives depends on its text, the table, a built-in chain's hook and
          // the protocol only (see TargetMemo).
          const key =
            (chain.builtin ? chain.no + 1 : 0) * 1024 +
            (L.proto < 0 ? 0 : L.proto * 2 + (L.protoInv ? 2 : 1));
          st.targets ??= new TargetMemo();
          const memo = st.targets;
          const ts = FAST_STARTS[k]!;
          const m = memo.find(line, ts, key);
          if (m >= 0) {
            hookCheck = memo.hookCheck[m]!;
            allowed = memo.allowed[m]!;
            flags = memo.flags[m]!;
          } else {
            const target = this.leanTarget(line, nt, k, name, chain, table);
            if (target === undefined) return false;
            hookCheck = this.directHookCheck(chain, target);
            if (hookCheck) {
              st.maskOf ??= hookMasks(BUILTIN_CHAINS[table.name]);
              allowed = targetHooks(target, chain, st.maskOf, this.family);
            }
            flags = targetFlags(target);
            memo.add(line.slice(ts), key, hookCheck, allowed, flags);
          }
        }
      }
    }
    const c = COLS;
    c.proto = L.protoInv ? -1 : L.proto;
    c.port = L.dport;
    c.srcLen = L.srcLen;
    c.srcAddr = L.srcAddr;
    c.dstLen = L.dstLen;
    c.dstAddr = L.dstAddr;
    c.jumpTo = jumpTo;
    c.hookCheck = hookCheck;
    c.allowed = allowed;
    c.flags = flags;
    this.pushPacked(chain);
    return true;
  }

  /**
   * The packed lane's target extension `name` (at token k) with its options: read into DS and
   * built as the direct path does; undefined when that would report anything.
   */
  private leanTarget(
    line: string,
    nt: number,
    k: number,
    name: string,
    chain: Chain,
    table: Table,
  ): Target | undefined {
    const def = findTarget(name, this.family);
    if (def === undefined) return undefined;
    const d = DS;
    d.nm = 0;
    d.tKind = "jump";
    d.tName = name;
    d.tCol = FAST_STARTS[k]! + 1;
    d.tDef = def;
    d.tLook = optionLookup(def);
    d.tChain = undefined;
    d.tOpts = null;
    let j = k + 2;
    while (j < nt) {
      // Only the target's own long options (a generic one is the direct path's to read).
      const s = FAST_STARTS[j]!;
      if (s < 0) return undefined;
      const len = FAST_ENDS[j]! - s;
      if (len < 3 || line.charCodeAt(s) !== 45 || line.charCodeAt(s + 1) !== 45) return undefined;
      const opt = line.slice(s, s + len);
      if (opt.includes("=") || GENERIC_MAP.has(opt)) return undefined;
      j = this.directOption(line, nt, j + 1, opt, false, s + 1, s + 1);
      if (j < 0) return undefined;
    }
    const ctx = this.silent;
    ctx.proto = LEAN.proto < 0 ? null : this.sharedProto(LEAN.proto, LEAN.protoInv);
    ctx.bad = false;
    return this.directTarget(chain, table);
  }

  /**
   * The table stops being append-only (-I, -D, -R, -F, -X, -E, a chain declared again): its
   * packed rules are built now, while every line they refer to still reads as it did.
   */
  private notAppendOnly(st: TableState): void {
    if (!st.appendOnly) return;
    st.appendOnly = false;
    // (jumps and hookRules are not read any more: the end of the table walks every rule.)
    for (const c of st.table.chains.values()) void c.rules;
  }

  private ruleOf(x: Rule | number): Rule {
    return typeof x === "number" ? this.store!.rule(x) : x;
  }

  private newChain(
    name: string,
    table: Table,
    builtin: boolean,
    policy: "ACCEPT" | "DROP" | null,
    counters: Counters | null,
    prov: Provenance | null,
  ): PackedChain {
    const store = this.store;
    const no = store ? store.chains.length : -1;
    const c = new PackedChain(name, table.name, builtin, policy, counters, prov, store, no);
    if (store) {
      store.chains.push(c);
      this.chainTables.push(table);
    }
    return c;
  }

  /**
   * Builds packed rule `id` of `chain` from its line, as the direct path built it when it was
   * read (the parser's line state is saved and restored: this may run in the middle of a parse).
   */
  private rebuild(chain: PackedChain, id: number): Rule {
    const store = this.store!;
    const saved = [this.cur, this.lineNo, this.lineText, this.lineCr, this.lastChain] as const;
    const i = store.line[id]!;
    let line = this.lines.at(i);
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    this.lineNo = i + 1;
    this.lineText = line;
    this.lineCr = false;
    this.lastChain = null;
    this.cur = {
      table: this.chainTables[chain.no]!,
      openLine: 0,
      pending: [],
      appendOnly: false,
      jumps: [],
      hookRules: [],
    };
    const nt = fastTokens(line, this.spacesOnly);
    const rule = nt < 0 ? null : this.directBuild(line, nt);
    [this.cur, this.lineNo, this.lineText, this.lineCr, this.lastChain] = saved;
    if (rule === null || rule.chain !== chain.name)
      throw new Error(`${this.file}:${i + 1}: a packed rule no longer reads as it did`);
    rule.num = store.pos[id]! + 1;
    return rule;
  }

  private applyCommand(cmd: Command, lp: LineParse): void {
    const st = this.cur!;
    const table = st.table;
    const chainTok = cmd.args[0];
    if (cmd.id === "A") {
      // The common case (one per rule line) first, without allocating the helpers below.
      const chain = this.needChain(table, chainTok);
      if (!chain) return;
      const rules = this.buildRules(lp, chain);
      if (!rules) return;
      for (let i = 0; i < rules.length; i++)
        this.append(chain, rules[i]!, needsHookCheck(rules[i]!, chain, this.family));
      return;
    }
    if (cmd.id !== "N" && cmd.id !== "P" && cmd.id !== "Z" && cmd.id !== "C") this.notAppendOnly(st);
    const needChain = (t: Token | undefined): Chain | null => this.needChain(table, t);
    const noRuleOptions = (): boolean => this.noRuleOptions(cmd, lp);
    switch (cmd.id) {
      case "I":
      case "R": {
        const chain = needChain(chainTok);
        if (!chain) return;
        const num = cmd.args[1] ? Number(cmd.args[1].text) : undefined;
        const rules = this.buildRules(lp, chain);
        if (!rules) return;
        if (cmd.id === "I") {
          const at = (num ?? 1) - 1;
          if (at > chain.rules.length) {
            this.err(
              cmd.args[1]!.col,
              `index of insertion too big: chain ${chain.name} has ${chain.rules.length} rule(s)`,
            );
            return;
          }
          chain.rules.splice(at, 0, ...rules);
        } else {
          if (num === undefined || num < 1 || num > chain.rules.length) {
            this.err(
              cmd.args[1]?.col ?? cmd.col,
              `-R needs an existing rule number (chain ${chain.name} has ${chain.rules.length})`,
            );
            return;
          }
          if (rules.length !== 1) {
            this.err(cmd.col, "-R cannot replace with multiple rules (several -s/-d addresses)");
            return;
          }
          chain.rules.splice(num - 1, 1, rules[0]!);
        }
        return;
      }
      case "D": {
        const chain = needChain(chainTok);
        if (!chain) return;
        const numTok = cmd.args[1];
        if (numTok) {
          const n = Number(numTok.text);
          if (n < 1 || n > chain.rules.length) {
            this.err(numTok.col, `-D: no rule ${n} in chain ${chain.name}`);
            return;
          }
          chain.rules.splice(n - 1, 1);
          return;
        }
        const rules = this.buildRules(lp, chain);
        if (!rules) return;
        for (const r of rules) {
          const i = indexOfRule(chain, r);
          if (i < 0) {
            this.err(cmd.col, `-D: no matching rule in chain ${chain.name}`);
            return;
          }
          chain.rules.splice(i, 1);
        }
        return;
      }
      case "C": {
        // iptables-restore runs -C as iptables does: the line fails unless the rule is there.
        const chain = needChain(chainTok);
        if (!chain) return;
        const rules = this.buildRules(lp, chain);
        if (!rules) return;
        for (const r of rules) {
          if (indexOfRule(chain, r) < 0) {
            this.err(cmd.col, `-C: no matching rule in chain ${chain.name} (iptables: Bad rule)`);
            return;
          }
        }
        return;
      }
      case "N": {
        if (!noRuleOptions() || !chainTok) return;
        if (!this.validChainName(chainTok.text, chainTok.col, true)) return;
        if (table.chains.has(chainTok.text)) {
          this.err(chainTok.col, `chain '${chainTok.text}' already exists`);
          return;
        }
        table.chains.set(chainTok.text, this.newChain(chainTok.text, table, false, null, null, this.prov()));
        return;
      }
      case "P": {
        if (!noRuleOptions()) return;
        const chain = needChain(chainTok);
        if (!chain) return;
        const polTok = cmd.args[1]!;
        if (!chain.builtin) {
          this.err(chainTok!.col, `can't set policy on user chain ${chain.name}`);
          return;
        }
        if (polTok.text !== "ACCEPT" && polTok.text !== "DROP") {
          this.err(polTok.col, `expected policy ACCEPT or DROP, got '${polTok.text}'`);
          return;
        }
        chain.policy = polTok.text;
        if (lp.counters) chain.counters = lp.counters;
        if (!chain.prov) chain.prov = this.prov();
        return;
      }
      case "F": {
        if (!noRuleOptions()) return;
        if (!chainTok) for (const c of table.chains.values()) c.rules = [];
        else {
          const chain = needChain(chainTok);
          if (chain) chain.rules = [];
        }
        return;
      }
      case "X": {
        if (!noRuleOptions()) return;
        const victims = chainTok
          ? [needChain(chainTok)]
          : [...table.chains.values()].filter((c) => !c.builtin);
        for (const c of victims) {
          if (!c) return;
          if (c.builtin) {
            this.err(chainTok!.col, `can't delete built-in chain ${c.name}`);
            return;
          }
          if (chainTok && c.rules.length > 0) {
            this.err(chainTok.col, `can't delete chain ${c.name}: it is not empty`);
            return;
          }
          for (const other of table.chains.values()) {
            if (victims.includes(other)) continue;
            if (other.rules.some((r) => refersTo(r, c.name))) {
              this.err(
                chainTok?.col ?? cmd.col,
                `can't delete chain ${c.name}: it is referenced from ${other.name}`,
              );
              return;
            }
          }
          table.chains.delete(c.name);
        }
        return;
      }
      case "Z":
        noRuleOptions();
        return;
      case "E": {
        if (!noRuleOptions()) return;
        const chain = needChain(chainTok);
        const newTok = cmd.args[1]!;
        if (!chain) return;
        if (chain.builtin) {
          this.err(chainTok!.col, `can't rename built-in chain ${chain.name}`);
          return;
        }
        if (!this.validChainName(newTok.text, newTok.col, true)) return;
        if (table.chains.has(newTok.text)) {
          this.err(newTok.col, `chain '${newTok.text}' already exists`);
          return;
        }
        const old = chain.name;
        const renamed = new Map<string, Chain>();
        for (const [k, c] of table.chains) renamed.set(k === old ? newTok.text : k, c);
        chain.name = newTok.text;
        table.chains.clear();
        for (const [k, c] of renamed) table.chains.set(k, c);
        for (const c of table.chains.values()) {
          for (const r of c.rules) {
            r.chain = c.name;
            const t = r.target;
            if (t && (t.kind === "jump" || t.kind === "goto") && t.chain === old) t.chain = newTok.text;
          }
        }
        for (const p of st.pending) if (p.name === old) p.name = newTok.text;
        return;
      }
      default:
        return;
    }
  }

  /** Tokens → options, bound to generic options, modules and the target as iptables binds them. */
  private parseOptions(tokens: Token[], start: number): LineParse {
    const lp = emptyLineParse(null);
    const providers: Provider[] = [];
    let invertCol = 0;
    const fail = (col: number, msg: string) => {
      this.err(col, msg);
      lp.bad = true;
    };
    let k = start;
    while (k < tokens.length) {
      const tok = tokens[k]!;
      if (tok.text === "!" && !tok.quoted) {
        if (invertCol) fail(tok.col, "multiple consecutive ! not allowed");
        invertCol = tok.col;
        k++;
        continue;
      }
      if (!tok.text.startsWith("-") || tok.text === "-" || tok.text === "--") {
        fail(tok.col, `expected an option, got '${tok.text}'`);
        k++;
        continue;
      }
      // --name=value and -xVALUE forms (getopt accepts both).
      let name = tok.text;
      let inline: string | undefined;
      if (name.startsWith("--")) {
        const eq = name.indexOf("=");
        if (eq > 0) {
          inline = name.slice(eq + 1);
          name = name.slice(0, eq);
        }
      } else if (name.length > 2 && GENERIC_MAP.get(name.slice(0, 2))?.args === 1) {
        inline = name.slice(2);
        name = name.slice(0, 2);
      }
      const res = this.resolve(name, tok.col, providers, lp);
      k++;
      if (res === "error") {
        lp.bad = true;
        // Skip what looks like its arguments so one typo gives one error.
        while (k < tokens.length && !looksLikeOption(tokens[k]!)) k++;
        invertCol = 0;
        continue;
      }
      if (res === "unknown") {
        const args: string[] = inline !== undefined ? [inline] : [];
        const argCol = inline !== undefined ? tok.col + name.length + 1 : (tokens[k]?.col ?? tok.col);
        while (k < tokens.length && !looksLikeOption(tokens[k]!)) args.push(tokens[k++]!.text);
        const raw: RawOption = {
          name,
          args,
          invert: invertCol > 0,
          col: invertCol || tok.col,
          argCol: args.length > 0 ? argCol : tok.col,
        };
        invertCol = 0;
        const absorber = [...providers].reverse().find((p) => p.def === null);
        if (absorber) absorber.opts.push(raw);
        else {
          const after = providers.filter((p) => p.kind === "match").at(-1)?.name ?? null;
          lp.items.push({ kind: "unknown-option", option: raw, after });
          const where = after ? ` after -m ${after}` : "";
          this.warn(raw.col, `unknown option '${name}'${where}: rule kept, its result is unknown`);
          lp.unknown.push({ col: raw.col, what: name, reason: `option not known${where}` });
        }
        continue;
      }
      const { spec, canonical, provider } = res;
      const gid = provider ? null : (spec as GenericSpec).id;
      if (gid && COMMANDS.has(gid)) {
        if (invertCol) fail(invertCol, `-${gid} cannot be inverted`);
        invertCol = 0;
        if (lp.command) fail(tok.col, `only one command per line (already -${lp.command.id})`);
        const cmd: Command = { id: gid, col: tok.col, args: [] };
        if (inline !== undefined) cmd.args.push({ text: inline, col: tok.col + 2, quoted: false });
        const want = spec.args === "optional" ? 1 : (spec.args as number);
        while (cmd.args.length < want && k < tokens.length && !looksLikeOption(tokens[k]!))
          cmd.args.push(tokens[k++]!);
        // -I chain [num], -R chain num, -D chain num
        if (
          (gid === "I" || gid === "R" || gid === "D") &&
          k < tokens.length &&
          /^\d+$/.test(tokens[k]!.text)
        ) {
          cmd.args.push(tokens[k++]!);
        }
        if (spec.args !== "optional" && cmd.args.length < want) {
          fail(
            tok.col,
            `-${gid} requires ${want === 2 ? (gid === "P" ? "a chain and a policy" : "two chain names") : "a chain name"}`,
          );
        } else if (gid === "R" && cmd.args.length < 2) fail(tok.col, "-R requires a chain and a rule number");
        if (!lp.command) lp.command = cmd;
        continue;
      }
      // Arguments, with the deprecated `--opt ! value` negation.
      const args: string[] = [];
      const want =
        spec.args === "optional" ? (k < tokens.length && !looksLikeOption(tokens[k]!) ? 1 : 0) : spec.args;
      let invert = invertCol > 0;
      let invCol = invertCol;
      invertCol = 0;
      if (want > 0 && inline === undefined && tokens[k]?.text === "!" && !tokens[k]!.quoted) {
        if (invert) fail(tokens[k]!.col, "multiple ! flags not allowed");
        if (!spec.inv) {
          fail(tokens[k]!.col, `option ${canonical} cannot be inverted`);
        } else {
          this.warn(
            tokens[k]!.col,
            `'${canonical} ! value' is deprecated; iptables 1.8 expects '! ${canonical} value'`,
          );
        }
        invert = true;
        invCol = tokens[k]!.col;
        k++;
      }
      // iptables takes -p -s -d -i -o -j's argument as argv[optind-1]: given inline, the whole word.
      if (inline !== undefined && gid && WHOLE_WORD_ARG.has(gid)) inline = tok.text;
      if (inline !== undefined) args.push(inline);
      const argCol =
        inline !== undefined
          ? tok.col + tok.text.length - inline.length
          : want > 0
            ? (tokens[k]?.col ?? tok.col)
            : tok.col;
      while (args.length < want) {
        const a = tokens[k];
        if (!a) break;
        args.push(a.text);
        k++;
      }
      if (args.length < want) {
        fail(tok.col, `option ${canonical} requires ${want === 2 ? "two arguments" : "an argument"}`);
        continue;
      }
      if (invert && !spec.inv) {
        fail(invCol, `option ${canonical} cannot be inverted`);
        continue;
      }
      const raw: RawOption = { name: canonical, args, invert, col: invCol || tok.col, argCol };
      if (provider) {
        provider.opts.push(raw);
        lp.ruleOptionCol ||= tok.col;
      } else this.generic((spec as GenericSpec).id, raw, tok, lp, providers, fail);
    }
    if (invertCol) fail(invertCol, "'!' at the end of the line: expected an option after it");
    return lp;
  }

  /**
   * Direct path for the most common `-A chain …` lines: the rule is built from the token
   * boundaries of `fastTokens` without the intermediate LineParse / Provider / RawOption objects
   * of the other paths. It knows the generic options -s -d -p -i -o -m -j -g (exact names),
   * tcp/udp `--sport`/`--dport` with a decimal port, `-m comment`, other typed modules and targets
   * through their builders (with a context that only records whether anything would be
   * reported), standard verdicts and jumps to declared chains. Identical position-free objects
   * (protocol and port conditions, tcp/udp matches, verdicts, one-match lists) are shared between
   * rules. For anything else — or anything that would give a diagnostic or an unknown — it
   * returns false having changed and reported nothing; `fastOptions` or the general path then
   * handles the line (and reports).
   */
  private directRule(line: string, nt: number): boolean {
    const rule = this.directBuild(line, nt);
    if (rule === null) return false;
    const chain = this.lastChain!;
    const hookCheck = this.directHookCheck(chain, rule.target);
    if (this.cur!.appendOnly && chain instanceof PackedChain && chain.store !== null)
      this.appendPacked(chain, rule, hookCheck);
    else this.append(chain, rule, hookCheck);
    return true;
  }

  /** directRule's rule, not appended (its chain is `lastChain`); null for the other paths. */
  private directBuild(line: string, nt: number): Rule | null {
    if (nt < 2 || FAST_STARTS[1]! < 0) return null;
    const table = this.cur!.table;
    const chain = this.chainOfLine(line, table);
    if (chain === null) return null;
    const d = DS;
    if (!this.directScan(line, nt, table)) return null;
    // -i/-o where the hook can never have that interface.
    if (chain.builtin) {
      const cn = chain.name;
      if (d.oif && (cn === "INPUT" || cn === "PREROUTING")) return null;
      if (d.iif && (cn === "OUTPUT" || cn === "POSTROUTING")) return null;
    }
    const ctx = this.silent;
    ctx.proto = d.proto;
    ctx.bad = false;
    const matches = this.directMatches();
    if (matches === null) return null;
    const target = d.tKind === null ? null : this.directTarget(chain, table);
    if (target === undefined) return null;
    const rule: Rule = {
      table: chain.table,
      chain: chain.name,
      num: 0,
      prov: this.prov(),
      counters: null,
      src: d.src,
      dst: d.dst,
      iif: d.iif,
      oif: d.oif,
      proto: d.proto,
      fragment: null,
      matches,
      target,
      unknown: NO_UNKNOWN,
    };
    return rule;
  }

  /** The chain of a fast-tokenized `-A chain …` line (it becomes `lastChain`), or null. */
  private chainOfLine(line: string, table: Table): Chain | null {
    const cs = FAST_STARTS[1]!;
    const cl = FAST_ENDS[1]! - cs;
    let chain = this.lastChain;
    if (
      chain === null ||
      chain.table !== table.name ||
      chain.name.length !== cl ||
      !line.startsWith(chain.name, cs)
    ) {
      chain = table.chains.get(line.slice(cs, cs + cl)) ?? null;
      if (chain === null) return null;
    } else if (table.chains.get(chain.name) !== chain) return null; // deleted or replaced since
    this.lastChain = chain;
    return chain;
  }

  /** As needsHookCheck, from what the line loaded. */
  private directHookCheck(chain: Chain, target: Target | null): boolean {
    if (target !== null && !chain.builtin && target.kind !== "jump" && target.kind !== "goto") {
      const def = findTarget(target.kind === "opaque" ? target.name : target.kind, this.family);
      if (def?.hooks !== undefined) return true;
    }
    const mDef = DS.mDef;
    for (let q = 0; q < DS.nm; q++) {
      const n = mDef[q]!.name;
      if (n === "policy" || n === "addrtype" || n === "mac") return true;
    }
    return false;
  }

  /** The options of a direct-path line into DS; false for anything the direct path leaves alone. */
  private directScan(line: string, nt: number, table: Table): boolean {
    const starts = FAST_STARTS;
    const ends = FAST_ENDS;
    const d = DS;
    d.src = null;
    d.dst = null;
    d.iif = null;
    d.oif = null;
    d.proto = null;
    d.protoSeen = false;
    d.nm = 0;
    d.tKind = null;
    d.tName = "";
    d.tCol = 0;
    d.tDef = undefined;
    d.tLook = null;
    d.tChain = undefined;
    d.tOpts = null;
    let invertCol = 0;
    let k = 2;
    while (k < nt) {
      const st = starts[k]!;
      if (st < 0) return false; // a quoted option name
      const col = st + 1;
      const len = ends[k]! - st;
      if (line.charCodeAt(st) !== 45) {
        if (len === 1 && line.charCodeAt(st) === 33 && invertCol === 0) {
          invertCol = col;
          k++;
          continue;
        }
        return false;
      }
      if (len < 2) return false;
      const long = line.charCodeAt(st + 1) === 45;
      if (long ? len < 3 : len !== 2) return false;
      k++;
      const invert = invertCol > 0;
      const rawCol = invertCol || col;
      invertCol = 0;
      let gid: GenericId | undefined;
      let name = "";
      if (!long) {
        gid = SHORT_GENERIC[line.charCodeAt(st + 1)];
        if (gid === undefined) return false;
      } else {
        name = line.slice(st, st + len);
        if (name.includes("=")) return false;
        gid = GENERIC_MAP.get(name)?.id;
      }
      if (gid !== undefined) {
        // A generic option with one argument.
        if (k >= nt) return false;
        const as = starts[k]!;
        const arg = as < 0 ? line.slice(-as - 1, ends[k]!) : line.slice(as, ends[k]!);
        if (as >= 0 && isSpecialArg(arg)) return false;
        k++;
        if (!this.directGeneric(gid, arg, invert, col, table)) return false;
        continue;
      }
      k = this.directOption(line, nt, k, name, invert, col, rawCol);
      if (k < 0) return false;
    }
    return invertCol === 0;
  }

  /** A generic option of the direct path into DS. */
  private directGeneric(gid: GenericId, arg: string, invert: boolean, col: number, table: Table): boolean {
    const d = DS;
    const family = this.family;
    switch (gid) {
      case "src":
      case "dst": {
        if ((gid === "src" ? d.src : d.dst) !== null || arg.includes(",")) return false;
        const r = parseNet(arg, family, { allowName: true });
        if (!r.ok || r.warning !== undefined || r.value.kind !== "net") return false;
        const c: AddrCond = { spec: r.value, invert };
        if (gid === "src") d.src = c;
        else d.dst = c;
        return true;
      }
      case "proto": {
        if (d.protoSeen) return false;
        d.protoSeen = true;
        const pn = protoNumber(arg);
        if (pn === undefined || pn === 0 || (family === 6 && ip6SkippedHeader(pn))) return false;
        d.proto = this.sharedProto(pn, invert);
        return true;
      }
      case "iif":
      case "oif": {
        if ((gid === "iif" ? d.iif : d.oif) !== null) return false;
        const c = ifaceCond(arg, invert);
        if (typeof c === "string" || (c.wildcard && c.name === "" && !invert) || /[\s/]/.test(c.name))
          return false;
        if (gid === "iif") d.iif = c;
        else d.oif = c;
        return true;
      }
      case "match": {
        if (invert || d.tKind !== null || d.nm === DIRECT_MAX) return false;
        const def = findModule(arg, family);
        if (!def || def.opaque || !def.build || (def.family !== undefined && def.family !== family))
          return false;
        const q = d.nm++;
        d.mDef[q] = def;
        d.mLook[q] = optionLookup(def);
        d.mCol[q] = col;
        d.mSport[q] = null;
        d.mDport[q] = null;
        d.mText[q] = null;
        d.mOpts[q] = null;
        return true;
      }
      case "jump":
      case "goto": {
        if (invert || d.tKind !== null || arg === "") return false;
        // The verdicts by comparison, and the chain before the targets: a chain may not have a
        // target's name, and hashing the name into three maps was ≈ 2 % of a 100k-rule parse.
        const standard = isVerdict(arg);
        const chain = standard ? undefined : table.chains.get(arg);
        const def = standard || chain || gid !== "jump" ? undefined : findTarget(arg, family);
        // Not a target nor (yet) a chain: an unknown extension or a later chain.
        if (!def && !standard && !chain) return false;
        d.tKind = gid;
        d.tName = arg;
        d.tCol = col;
        d.tDef = def;
        d.tLook = def ? optionLookup(def) : null;
        d.tChain = chain;
        return true;
      }
      default:
        return false;
    }
  }

  /** The protocol condition of the direct path's rules (one object per protocol and inversion). */
  private sharedProto(pn: number, invert: boolean): ProtoCond {
    const key = pn * 2 + (invert ? 1 : 0);
    let proto = this.shared.proto.get(key);
    if (proto === undefined) {
      proto = { num: pn, invert };
      this.shared.proto.set(key, proto);
    }
    return proto;
  }

  /**
   * An option of the target (the newest provider when there is one) or of a module, at token k
   * (its first argument): the next token index, or -1.
   */
  private directOption(
    line: string,
    nt: number,
    k: number,
    name: string,
    invert: boolean,
    col: number,
    rawCol: number,
  ): number {
    const d = DS;
    const starts = FAST_STARTS;
    const ends = FAST_ENDS;
    let hit: { canonical: string; spec: OptSpec } | undefined;
    let owner = -1; // module index; -2: the target
    if (d.tLook !== null) {
      hit = d.tLook.get(name);
      if (hit) owner = -2;
    }
    for (let q = d.nm - 1; owner === -1 && q >= 0; q--) {
      hit = d.mLook[q]!.get(name);
      if (hit) owner = q;
    }
    if (hit === undefined) return -1;
    const spec = hit.spec;
    const canonical = hit.canonical;
    const want = spec.args;
    if (want === "optional" || (invert && !spec.inv) || k + want > nt) return -1;
    const argCol = want > 0 ? (starts[k]! < 0 ? -starts[k]! - 1 : starts[k]! + 1) : col;
    if (owner >= 0) {
      const mname = d.mDef[owner]!.name;
      if (mname === "tcp" || mname === "udp") {
        // Only a decimal --sport/--dport, once each (anything else: the other paths).
        if (want !== 1 || starts[k]! < 0) return -1;
        const port = decimalPort(line, starts[k]!, ends[k]!);
        if (port < 0) return -1;
        const which = canonical === "--dport" ? d.mDport : canonical === "--sport" ? d.mSport : null;
        if (which === null || which[owner] !== null) return -1;
        const key = port * 2 + (invert ? 1 : 0);
        let pc = this.shared.port.get(key);
        if (pc === undefined) {
          pc = { range: { lo: port, hi: port }, invert };
          this.shared.port.set(key, pc);
        }
        which[owner] = pc;
        return k + 1;
      }
      if (mname === "comment") {
        if (d.mText[owner] !== null || want !== 1) return -1;
        const as = starts[k]!;
        const text = as < 0 ? line.slice(-as - 1, ends[k]!) : line.slice(as, ends[k]!);
        if (as >= 0 && isSpecialArg(text)) return -1;
        d.mText[owner] = text;
        return k + 1;
      }
    }
    const args: string[] = [];
    for (let a = 0; a < want; a++, k++) {
      const as = starts[k]!;
      const qs = as < 0;
      const text = line.slice(qs ? -as - 1 : as, ends[k]!);
      if (!qs && (text === "-4" || text === "-6" || text === "--ipv4" || text === "--ipv6")) return -1;
      if (a === 0 && !qs && text === "!") return -1; // deprecated `--opt ! value`
      args.push(text);
    }
    const raw: RawOption = { name: canonical, args, invert, col: rawCol, argCol };
    if (owner === -2) {
      if (d.tOpts === null) d.tOpts = [];
      d.tOpts.push(raw);
    } else {
      let os = d.mOpts[owner];
      if (!os) {
        os = [];
        d.mOpts[owner] = os;
      }
      os.push(raw);
    }
    return k;
  }

  /** The matches of DS, in load order; null when one would report anything. */
  private directMatches(): Match[] | null {
    const d = DS;
    const nm = d.nm;
    if (nm === 0) return NO_MATCHES;
    if (nm === 1) {
      const m = this.directMatch(0);
      if (m === null) return null;
      let list = this.shared.single.get(m);
      if (list === undefined) {
        // Only shared matches are in the map: a match of its own gets a list of its own.
        list = [m];
        if (this.shared.shared.has(m)) this.shared.single.set(m, list);
      }
      return list;
    }
    const m0 = this.directMatch(0);
    if (m0 === null) return null;
    const m1 = this.directMatch(1);
    if (m1 === null) return null;
    // Two or three matches (the usual lines): an array of exactly that size (a list grown by
    // push keeps room for 17).
    if (nm === 2) return [m0, m1];
    const m2 = this.directMatch(2);
    if (m2 === null) return null;
    if (nm === 3) return [m0, m1, m2];
    const matches: Match[] = [m0, m1, m2];
    for (let q = 3; q < nm; q++) {
      const m = this.directMatch(q);
      if (m === null) return null;
      matches.push(m);
    }
    return matches;
  }

  private directMatch(q: number): Match | null {
    const d = DS;
    const def = d.mDef[q]!;
    const col = d.mCol[q]!;
    const name = def.name;
    if (name === "tcp" || name === "udp") {
      const tcp = name === "tcp";
      const proto = d.proto;
      if (d.mOpts[q] !== null) return null;
      if (proto === null || proto.invert || proto.num !== (tcp ? 6 : 17)) return null;
      const sport = d.mSport[q]!;
      const dport = d.mDport[q]!;
      if (sport !== null)
        return tcp
          ? { kind: "tcp", col, sport, dport, flags: null, option: null }
          : { kind: "udp", col, sport, dport };
      const key =
        ((col * 65537 + (dport ? dport.range.lo + 1 : 0)) * 2 + (dport?.invert ? 1 : 0)) * 2 + (tcp ? 1 : 0);
      let m = this.shared.match.get(key);
      if (m === undefined) {
        m = tcp
          ? { kind: "tcp", col, sport, dport, flags: null, option: null }
          : { kind: "udp", col, sport, dport };
        this.shared.match.set(key, m);
        this.shared.shared.add(m);
      }
      return m;
    }
    if (name === "comment") {
      const text = d.mText[q]!;
      if (text === null || d.mOpts[q] !== null) return null;
      if (text.length > 85 && Buffer.byteLength(text) > 255) return null;
      return { kind: "comment", col, text };
    }
    const ctx = this.silent;
    const m = def.build!({ name, col, opts: d.mOpts[q] ?? [] }, ctx);
    return ctx.bad ? null : m;
  }

  /** The target of DS; undefined when it would report anything. */
  private directTarget(chain: Chain, table: Table): Target | undefined {
    const d = DS;
    const tName = d.tName;
    const tCol = d.tCol;
    const tOpts = d.tOpts;
    const verdict = isVerdict(tName);
    if (d.tKind === "goto" || (!d.tDef && !verdict)) {
      // No chain has a target's name (refused when declared), so a chain found is not a target.
      if (!d.tChain || tOpts !== null) return undefined;
      if ((BUILTIN_CHAINS[table.name] as readonly string[]).includes(tName)) return undefined;
      return { kind: d.tKind!, col: tCol, chain: d.tChain.name };
    }
    if (verdict) {
      if (tOpts !== null || (tName === "DROP" && table.name === "nat")) return undefined;
      const key = tCol * 4 + (tName === "ACCEPT" ? 0 : tName === "DROP" ? 1 : tName === "RETURN" ? 2 : 3);
      let target = this.shared.verdict.get(key);
      if (target === undefined) {
        target = { kind: tName as "ACCEPT" | "DROP" | "RETURN" | "QUEUE", col: tCol };
        this.shared.verdict.set(key, target);
      }
      return target;
    }
    const def = d.tDef!;
    if (def.tables && !def.tables.includes(table.name)) return undefined;
    if (def.hooks && chain.builtin && !def.hooks.includes(chain.name as Hook)) return undefined;
    const ctx = this.silent;
    const inst = { name: def.name, col: tCol, opts: tOpts ?? [] };
    if (def.build) {
      const target = def.build(inst, ctx);
      return ctx.bad || target === null ? undefined : target;
    }
    checkOpaqueTarget(def, inst, ctx);
    if (ctx.bad || def.effect !== "continue") return undefined;
    return { kind: "opaque", col: tCol, name: def.name, options: inst.opts, effect: "continue", known: true };
  }

  /**
   * Fast path of `tokenize` + `parseOptions` for the common shape of `-A chain …` lines: plain
   * or whole-word quoted tokens without escapes, options named exactly (no prefixes, no
   * `--opt=value`, no implicit protocol module), known modules and generic options whose values
   * parse without any diagnostic. It returns the very `LineParse` the general path builds, or
   * null, having reported nothing, for anything else: the general path then handles the line.
   */
  private fastOptions(line: string, nt: number): LineParse | null {
    const starts = FAST_STARTS;
    const ends = FAST_ENDS;
    if (nt < 2 || starts[1]! < 0) return null;
    const chainName = line.slice(starts[1]!, ends[1]!);
    const c0 = chainName.charCodeAt(0);
    if (c0 === 45 || (c0 === 33 && chainName.length === 1)) return null; // looks like an option
    const lp = emptyLineParse({
      id: "A",
      col: 1,
      args: [{ text: chainName, col: starts[1]! + 1, quoted: false }],
    });
    const providers: Provider[] = [];
    let invertCol = 0;
    let k = 2;
    while (k < nt) {
      const st = starts[k]!;
      if (st < 0) return null; // a quoted option name
      const col = st + 1;
      const len = ends[k]! - st;
      if (line.charCodeAt(st) !== 45) {
        if (len === 1 && line.charCodeAt(st) === 33 && invertCol === 0) {
          invertCol = col;
          k++;
          continue;
        }
        return null;
      }
      if (len < 2) return null;
      const long = line.charCodeAt(st + 1) === 45;
      if (long ? len < 3 : len !== 2) return null;
      const name = line.slice(st, st + len);
      if (long && name.includes("=")) return null;
      if (name === "-4" || name === "-6" || name === "--ipv4" || name === "--ipv6") return null;
      k++;
      // exactOption, without allocating for generic options.
      let spec: OptSpec | undefined = GENERIC_MAP.get(name);
      let canonical = name;
      let provider: Provider | null = null;
      if (!spec) {
        for (let q = providers.length - 1; q >= 0; q--) {
          const p = providers[q]!;
          if (!p.def) continue;
          const hit = optionLookup(p.def).get(name);
          if (hit) {
            spec = hit.spec;
            canonical = hit.canonical;
            provider = p;
            break;
          }
        }
        if (!spec) return null;
      }
      const want = spec.args;
      if (want === "optional") return null;
      if (provider === null) {
        const id = (spec as GenericSpec).id;
        if (want !== 1 || COMMANDS.has(id)) return null;
      }
      const invert = invertCol > 0;
      if (invert && !spec.inv) return null;
      if (k + want > nt) return null;
      const argCol = want > 0 ? (starts[k]! < 0 ? -starts[k]! - 1 : starts[k]! + 1) : col;
      const rawCol = invertCol || col;
      invertCol = 0;
      if (provider === null) {
        // A generic option: one argument, used at once (no RawOption to allocate).
        const as = starts[k]!;
        const arg = as < 0 ? line.slice(-as - 1, ends[k]!) : line.slice(as, ends[k]!);
        if (as >= 0 && (arg === "!" || arg === "-4" || arg === "-6" || arg === "--ipv4" || arg === "--ipv6"))
          return null;
        k++;
        if (!this.fastGeneric((spec as GenericSpec).id, arg, invert, col, rawCol, lp, providers)) return null;
        continue;
      }
      const args: string[] = [];
      for (let a = 0; a < want; a++, k++) {
        const as = starts[k]!;
        const qs = as < 0;
        const from = qs ? -as - 1 : as;
        const text = line.slice(from, ends[k]!);
        if (!qs && (text === "-4" || text === "-6" || text === "--ipv4" || text === "--ipv6")) return null;
        if (a === 0 && !qs && text === "!") return null; // deprecated `--opt ! value`
        args.push(text);
      }
      provider.opts.push({ name: canonical, args, invert, col: rawCol, argCol });
      lp.ruleOptionCol ||= col;
    }
    if (invertCol) return null;
    return lp;
  }

  /** `generic()` for the fast path: false (nothing reported) where it would report anything. */
  private fastGeneric(
    id: GenericId,
    arg: string,
    invert: boolean,
    col: number,
    rawCol: number,
    lp: LineParse,
    providers: Provider[],
  ): boolean {
    lp.ruleOptionCol ||= col;
    const family = this.family;
    switch (id) {
      case "src":
      case "dst": {
        const which = id === "src" ? "srcs" : "dsts";
        if (lp[which] || arg.includes(",")) return false;
        const r = parseNet(arg, family, { allowName: true });
        if (!r.ok || r.warning !== undefined || r.value.kind !== "net") return false;
        lp[which] = { specs: [r.value], invert, col: rawCol };
        return true;
      }
      case "proto": {
        if (lp.protoCol) return false;
        const pn = protoNumber(arg);
        if (pn === undefined || pn === 0 || (family === 6 && ip6SkippedHeader(pn))) return false;
        lp.protoCol = col;
        lp.proto = { num: pn, invert };
        return true;
      }
      case "iif":
      case "oif": {
        if (lp[id]) return false;
        const c = ifaceCond(arg, invert);
        if (typeof c === "string" || (c.wildcard && c.name === "" && !invert) || /[\s/]/.test(c.name))
          return false;
        lp[id] = c;
        if (id === "iif") lp.iifCol = rawCol;
        else lp.oifCol = rawCol;
        return true;
      }
      case "match": {
        const def = findModule(arg, family);
        if (!def || (def.family !== undefined && def.family !== family)) return false;
        const p: Provider = { kind: "match", name: def.name, col, def, opts: [], implicit: false };
        providers.push(p);
        lp.items.push(p);
        return true;
      }
      case "jump":
      case "goto": {
        if (lp.target || arg === "") return false;
        let tp: Provider | null = null;
        const def = id === "jump" ? findTarget(arg, family) : undefined;
        const chain = def || STANDARD_TARGETS.has(arg) ? undefined : this.cur?.table.chains.get(arg);
        if (def) tp = { kind: "target", name: arg, col, def, opts: [], implicit: false };
        else if (id === "jump" && !STANDARD_TARGETS.has(arg) && !chain)
          tp = { kind: "target", name: arg, col, def: null, opts: [], implicit: false };
        if (tp) providers.push(tp);
        lp.target = { kind: id, name: arg, col, provider: tp, chain };
        return true;
      }
      default:
        return false;
    }
  }

  /** Finds who owns an option: generic, newest module/target knowing it, unique prefix, implicit proto module. */
  private resolve(
    name: string,
    col: number,
    providers: Provider[],
    lp: LineParse,
  ): Resolved | "unknown" | "error" {
    const found = exactOption(name, providers) ?? this.prefixOption(name, col, providers);
    if (found) return found;
    // iptables loads the protocol's match when an unknown option follows -p (e.g. `-p tcp --dport`).
    const proto = lp.proto;
    if (proto && !proto.invert) {
      const mod = implicitModule(proto.num, this.family);
      if (mod && !providers.some((p) => p.kind === "match" && p.name === mod)) {
        const def = findModule(mod, this.family)!;
        const known = optionLookup(def);
        if (known.has(name) || (name.startsWith("--") && [...known.keys()].some((k) => k.startsWith(name)))) {
          const p: Provider = { kind: "match", name: mod, col, def, opts: [], implicit: true };
          providers.push(p);
          lp.items.push(p);
          return exactOption(name, providers) ?? this.prefixOption(name, col, providers) ?? "unknown";
        }
      }
    }
    // An option only the other family's variant of a module in play has (ip6tables' ah --ahres).
    const other = this.family === 4 ? 6 : 4;
    const mods = providers.filter((p) => p.kind === "match").map((p) => p.name);
    const implicit = proto && !proto.invert ? implicitModule(proto.num, this.family) : undefined;
    if (implicit) mods.push(implicit);
    const twin = mods.find((m) => {
      const d = findModule(m, other);
      return d !== undefined && d !== findModule(m, this.family) && name in d.options;
    });
    if (twin) {
      this.err(col, `unknown option '${name}': only the IPv${other} ${twin} match has it`);
      return "error";
    }
    return "unknown";
  }

  /** getopt_long's abbreviations: a unique prefix of a long option in scope is that option. */
  private prefixOption(name: string, col: number, providers: Provider[]): Resolved | null | "error" {
    if (!name.startsWith("--") || name.length < 3 || OTHER_LONG.includes(name)) return null;
    const hits: Array<Resolved & { shown: string }> = [];
    for (const g of GENERIC_LONG) {
      if (
        g.startsWith(name) &&
        !hits.some((h) => h.provider === null && (h.spec as GenericSpec).id === GENERIC[g]!.id)
      ) {
        hits.push({ spec: GENERIC[g]!, canonical: g, provider: null, shown: g });
      }
    }
    for (let i = providers.length - 1; i >= 0; i--) {
      const p = providers[i]!;
      if (!p.def) continue;
      const names = [...Object.keys(p.def.options), ...Object.keys(p.def.aliases ?? {})];
      for (const n of names) {
        if (!n.startsWith(name)) continue;
        const canonical = p.def.aliases?.[n] ?? n;
        if (!hits.some((h) => h.provider === p && h.canonical === canonical)) {
          hits.push({ spec: p.def.options[canonical]!, canonical, provider: p, shown: n });
        }
      }
    }
    const others = OTHER_LONG.filter((o) => o.startsWith(name));
    // A prefix of only such an option stays unknown, as its whole name would be.
    if (others.length === 1 && hits.length === 0) return null;
    if (hits.length === 1 && others.length === 0) {
      const h = hits[0]!;
      this.warn(col, `abbreviated option '${name}' taken as '${h.shown}'`);
      return h;
    }
    if (hits.length + others.length > 1) {
      this.err(col, `option '${name}' is ambiguous (${[...others, ...hits.map((h) => h.shown)].join(", ")})`);
      return "error";
    }
    return null;
  }

  private generic(
    id: GenericId,
    raw: RawOption,
    tok: Token,
    lp: LineParse,
    providers: Provider[],
    fail: (col: number, msg: string) => void,
  ): void {
    const arg = raw.args[0] ?? "";
    if (id !== "counters" && id !== "ipv4" && id !== "ipv6") lp.ruleOptionCol ||= tok.col;
    switch (id) {
      case "src":
      case "dst": {
        if (lp[id === "src" ? "srcs" : "dsts"]) {
          fail(tok.col, `multiple ${id === "src" ? "-s" : "-d"} flags not allowed`);
          return;
        }
        const specs: AddrSpec[] = [];
        for (const part of arg.includes(",") ? arg.split(",") : [arg]) {
          // iptables skips blanks (C isspace) before each address of the list.
          const r = parseNet(part.replace(/^[ \t\n\v\f\r]+/, ""), this.family, { allowName: true });
          if (!r.ok) {
            fail(raw.argCol, `${id === "src" ? "-s" : "-d"}: expected ${r.error}`);
            return;
          }
          if (r.warning) this.warn(raw.argCol, r.warning);
          if (r.value.kind === "name") {
            this.warn(
              raw.argCol,
              `unsupported: host name '${r.value.name}' in ${id === "src" ? "-s" : "-d"}; iptables resolves it with DNS when loading, so the rule's result is unknown`,
            );
            lp.unknown.push({
              col: raw.argCol,
              what: `${id === "src" ? "-s" : "-d"} ${r.value.name}`,
              reason: "host name resolved by DNS at load time",
            });
          }
          specs.push(r.value);
        }
        if (raw.invert && specs.length > 1) {
          fail(raw.col, "! not allowed with multiple source or destination IP addresses");
          return;
        }
        lp[id === "src" ? "srcs" : "dsts"] = { specs, invert: raw.invert, col: raw.col };
        return;
      }
      case "proto": {
        if (lp.protoCol) {
          fail(tok.col, "multiple -p flags not allowed");
          return;
        }
        lp.protoCol = tok.col;
        const n = protoNumberWide(arg);
        if (n === undefined) {
          fail(
            raw.argCol,
            `-p: unknown protocol '${arg}' (expected a name like tcp, udp, esp or a number 0..255)`,
          );
          return;
        }
        if (n === 0) {
          if (raw.invert) fail(raw.col, "rule would never match protocol: ! -p all");
          return;
        }
        if (n > 255) {
          this.warn(
            raw.argCol,
            `-p ${arg} is protocol ${n}: iptables-nft matches its low byte (${protoName(n & 255)}), while extensions see ${n}`,
          );
        }
        if (this.family === 6 && !raw.invert && ip6SkippedHeader(n)) {
          this.warn(
            raw.argCol,
            n === 51
              ? `-p ${arg}: AH is an IPv6 extension header: iptables-nft matches AH packets (taken here), legacy ip6tables never does (it looks past extension headers); -m ah works with both`
              : `-p ${arg} never matches: ip6tables looks past IPv6 extension headers; use -m ${n === 44 ? "frag" : n === 43 ? "rt" : "dst"}`,
          );
        }
        lp.proto = { num: n, invert: raw.invert };
        return;
      }
      case "iif":
      case "oif": {
        if (lp[id]) {
          fail(tok.col, `multiple ${id === "iif" ? "-i" : "-o"} flags not allowed`);
          return;
        }
        const c = ifaceCond(arg, raw.invert);
        if (typeof c === "string") {
          fail(raw.argCol, `${id === "iif" ? "-i" : "-o"}: ${c}`);
          return;
        }
        // `-i +` matches every interface: iptables stores no condition at all.
        if (c.wildcard && c.name === "" && !c.invert) return;
        if (/[\s/]/.test(c.name))
          this.warn(
            raw.col,
            `weird character in interface '${arg}' ('/' and ' ' are not allowed by the kernel)`,
          );
        lp[id] = c;
        if (id === "iif") lp.iifCol = raw.col;
        else lp.oifCol = raw.col;
        return;
      }
      case "frag":
        if (this.family === 6) {
          fail(tok.col, "-f is IPv4-only (ip6tables matches fragments with -m frag)");
          return;
        }
        lp.fragment = { invert: raw.invert };
        return;
      case "match": {
        let def = findModule(arg, this.family);
        const name = def?.name ?? arg;
        if (def && def.family !== undefined && def.family !== this.family) {
          this.warn(
            tok.col,
            `unsupported: match ${arg} is IPv${def.family}-only; ${this.family === 4 ? "iptables" : "ip6tables"} cannot load it — rule kept, its result is unknown`,
          );
          lp.unknown.push({
            col: tok.col,
            what: `-m ${arg}`,
            reason: `IPv${def.family}-only match in an IPv${this.family} rule set`,
          });
          def = undefined;
        } else if (!def) {
          this.warn(tok.col, `unsupported: unknown match module '${arg}' — rule kept, its result is unknown`);
          lp.unknown.push({ col: tok.col, what: `-m ${arg}`, reason: "match module unknown to this tool" });
        }
        const p: Provider = {
          kind: "match",
          name,
          col: tok.col,
          def: def ?? null,
          opts: [],
          implicit: false,
        };
        providers.push(p);
        lp.items.push(p);
        return;
      }
      case "jump":
      case "goto": {
        if (lp.target) {
          fail(tok.col, "multiple -j/-g flags not allowed");
          return;
        }
        if (arg === "") {
          fail(raw.col, `expected a target or chain name after ${tok.text}`);
          return;
        }
        let provider: Provider | null = null;
        const def = id === "jump" ? findTarget(arg, this.family) : undefined;
        const chain = def || STANDARD_TARGETS.has(arg) ? undefined : this.cur?.table.chains.get(arg);
        if (def) provider = { kind: "target", name: arg, col: tok.col, def, opts: [], implicit: false };
        else if (id === "jump" && !STANDARD_TARGETS.has(arg) && !chain) {
          // Not a chain (yet): may be a target extension we do not know. Collect its options.
          provider = { kind: "target", name: arg, col: tok.col, def: null, opts: [], implicit: false };
        }
        if (provider) providers.push(provider);
        lp.target = { kind: id, name: arg, col: tok.col, provider, chain };
        return;
      }
      case "counters": {
        const [p, b] = raw.args;
        if (!/^\d+$/.test(p!) || !/^\d+$/.test(b!)) {
          fail(raw.argCol, `-c: expected packet and byte counts, got '${p} ${b}'`);
          return;
        }
        lp.counters = { packets: BigInt(p!), bytes: BigInt(b!) };
        return;
      }
      case "ipv4":
      case "ipv6":
        lp.onlyFamily = id === "ipv4" ? 4 : 6;
        return;
      case "table":
        fail(tok.col, "-t is not allowed here: tables are given by '*table' lines in iptables-restore input");
        return;
      default:
        return;
    }
  }

  /** Builds the rule(s) for an -A/-I/-R/-D line: typed matches, target, `-s`/`-d` expansion. */
  private buildRules(lp: LineParse, chain: Chain): Rule[] | null {
    const errorsBefore = this.sink.errors.length + this.sink.droppedErrors;
    const unknown = lp.unknown;
    // One context object for the whole parse (rules are built one at a time).
    const ctx = this.ctx;
    ctx.proto = lp.proto;
    this.ctxUnknown = unknown;
    const matches: Match[] = [];
    for (const item of lp.items) {
      if (item.kind === "unknown-option") {
        matches.push({
          kind: "unknown-option",
          col: item.option.col,
          after: item.after,
          option: item.option,
        });
        continue;
      }
      const p = item;
      const def = p.def as ModuleDef | null;
      if (!def || def.opaque) {
        if (def) checkRequired(def, p, ctx);
        const why = def?.opaque?.why ?? "unknown-module";
        const reason = def?.opaque?.reason ?? "match module unknown to this tool";
        matches.push({ kind: "opaque", col: p.col, module: p.name, options: p.opts, why, reason });
        if (def) unknown.push({ col: p.col, what: `-m ${p.name}`, reason });
        continue;
      }
      const m = def.build!({ name: p.name, col: p.col, opts: p.opts }, ctx);
      if (m) matches.push(m);
    }
    const target = this.buildTarget(lp, chain, ctx, unknown);
    // -i/-o where the hook can never have that interface: iptables refuses it on built-in chains.
    if (chain.builtin) {
      if (lp.oif && (chain.name === "INPUT" || chain.name === "PREROUTING")) {
        this.err(lp.oifCol, `can't use -o with ${chain.name}`);
      }
      if (lp.iif && (chain.name === "OUTPUT" || chain.name === "POSTROUTING")) {
        this.err(lp.iifCol, `can't use -i with ${chain.name}`);
      }
    }
    // iptables refuses any `!` on -s/-d as soon as either of them is a list, not only on the list itself.
    const negated = lp.srcs?.invert ? lp.srcs : lp.dsts?.invert ? lp.dsts : null;
    if (negated && ((lp.srcs?.specs.length ?? 0) > 1 || (lp.dsts?.specs.length ?? 0) > 1)) {
      this.err(negated.col, "! not allowed with multiple source or destination IP addresses");
    }
    if (this.sink.errors.length + this.sink.droppedErrors > errorsBefore) return null;
    const srcs = lp.srcs?.specs;
    const dsts = lp.dsts?.specs;
    const ns = srcs ? srcs.length : 1;
    const nd = dsts ? dsts.length : 1;
    const rules: Rule[] = [];
    // nft's meta l4proto is one byte (extensions were built with the whole number above).
    const proto =
      lp.proto && lp.proto.num > 255 ? { num: lp.proto.num & 255, invert: lp.proto.invert } : lp.proto;
    // iptables expands `-s a,b -d c,d` source-major into one rule per pair.
    for (let a = 0; a < ns; a++) {
      const s = srcs ? srcs[a]! : null;
      for (let b = 0; b < nd; b++) {
        const d = dsts ? dsts[b]! : null;
        const rule: Rule = {
          table: chain.table,
          chain: chain.name,
          num: 0,
          prov: this.prov(),
          counters: lp.counters,
          src: s ? { spec: s, invert: lp.srcs!.invert } : null,
          dst: d ? { spec: d, invert: lp.dsts!.invert } : null,
          iif: lp.iif,
          oif: lp.oif,
          proto,
          fragment: lp.fragment,
          matches,
          target: target === "pending" ? null : target,
          // Shared frozen empty list for the common exact rule (fewer allocations on big files).
          unknown: unknown.length === 0 ? NO_UNKNOWN : [...unknown],
        };
        if (target === "pending") {
          this.cur!.pending.push({
            rule,
            name: lp.target!.name,
            col: lp.target!.col,
            kind: lp.target!.kind,
            opts: lp.target!.provider?.opts ?? [],
          });
        }
        rules.push(rule);
      }
    }
    return rules;
  }

  private buildTarget(
    lp: LineParse,
    chain: Chain,
    ctx: BuildCtx,
    unknown: Unknown[],
  ): Target | null | "pending" {
    const t = lp.target;
    if (!t) return null;
    const table = this.cur!.table;
    if (t.kind === "goto" || (!t.provider && !STANDARD_TARGETS.has(t.name))) {
      // A chain. It exists (checked in generic()) unless this is a goto to a later chain.
      if (STANDARD_TARGETS.has(t.name) || isTargetName(t.name)) {
        this.err(t.col, `-g needs a user-defined chain, not ${t.name}`);
        return null;
      }
      if ((BUILTIN_CHAINS[table.name] as readonly string[]).includes(t.name)) {
        this.err(t.col, `cannot jump to built-in chain ${t.name}`);
        return null;
      }
      const to = t.chain ?? table.chains.get(t.name);
      if (!to) return "pending";
      // The chain's own name string: later lookups by it hit V8's cached hash and identity check.
      return { kind: t.kind, col: t.col, chain: to.name };
    }
    if (STANDARD_TARGETS.has(t.name)) {
      if (t.name === "DROP" && table.name === "nat") {
        this.err(t.col, "the nat table does not support DROP (filter in the filter table)");
        return null;
      }
      return { kind: t.name as "ACCEPT" | "DROP" | "RETURN" | "QUEUE", col: t.col };
    }
    const p = t.provider!;
    const def = p.def as TargetDef | null;
    if (!def) return "pending"; // unknown name: a chain declared later, or an unknown extension
    if (def.tables && !def.tables.includes(table.name)) {
      const msg = `${def.name} is only valid in the ${def.tables.join("/")} table, not ${table.name}`;
      if (def.tableIsWarning) this.warn(t.col, msg);
      else {
        this.err(t.col, msg);
        return null;
      }
    }
    if (def.hooks && chain.builtin && !def.hooks.includes(chain.name as Hook)) {
      this.err(t.col, `${def.name} is only valid in ${def.hooks.join("/")}, not ${chain.name}`);
      return null;
    }
    if (def.build) return def.build({ name: def.name, col: t.col, opts: p.opts }, ctx);
    checkOpaqueTarget(def, { name: def.name, col: t.col, opts: p.opts }, ctx);
    const effect = def.effect;
    if (effect !== "continue") {
      unknown.push({
        col: t.col,
        what: `-j ${def.name}`,
        reason: effect === "unknown" ? "the target's verdict is decided at run time" : "target not modelled",
      });
    }
    return { kind: "opaque", col: t.col, name: def.name, options: p.opts, effect, known: true };
  }

  // ---- end of a table: references, loops, hook restrictions, numbering ----

  private finishTable(): void {
    const st = this.cur!;
    this.cur = null;
    const table = st.table;
    let resolved = false;
    for (const p of st.pending) {
      const savedLine = this.lineNo;
      const savedText = this.lineText;
      this.lineNo = p.rule.prov.line;
      this.lineText = p.rule.prov.text;
      const chain = table.chains.get(p.name);
      if (chain) {
        if (chain.builtin) this.err(p.col, `cannot jump to built-in chain ${p.name}`);
        else if (p.opts.length > 0)
          this.err(p.opts[0]!.col, `unknown option '${p.opts[0]!.name}' after -j ${p.name}`);
        else {
          p.rule.target = { kind: p.kind, col: p.col, chain: chain.name };
          st.jumps.push(p.rule);
          resolved = true;
        }
      } else if (
        p.kind === "jump" &&
        /^[A-Z][A-Z0-9_]*$/.test(p.name) &&
        (p.opts.length > 0 || ADDON_TARGETS.has(p.name))
      ) {
        // An upper-case name with options (or a known out-of-tree one): a target extension this
        // tool does not know. A bare undeclared name is far more likely a missing chain.
        this.warn(
          p.col,
          `unsupported: unknown target '${p.name}' (no such chain either) — rule kept, its effect is unknown`,
        );
        p.rule.target = {
          kind: "opaque",
          col: p.col,
          name: p.name,
          options: p.opts,
          effect: "unknown",
          known: false,
        };
        p.rule.unknown = [
          ...p.rule.unknown,
          { col: p.col, what: `-j ${p.name}`, reason: "target unknown to this tool" },
        ];
      } else {
        this.err(
          p.col,
          `unknown chain '${p.name}' referenced (not declared in table ${table.name}, and not a target iptables knows)`,
        );
      }
      this.lineNo = savedLine;
      this.lineText = savedText;
    }
    // Jumps resolved here come after the others: back in rule order.
    if (resolved && st.appendOnly) st.jumps.sort((a, b) => this.numOf(a) - this.numOf(b));
    this.checkGraph(table, st);
  }

  /** Loops (the kernel refuses them) and hook-restricted matches/targets in user chains. */
  private checkGraph(table: Table, st: TableState): void {
    // Chains by index, edges in one flat list per table (CSR): one name lookup per edge, then
    // array work only (tens of thousands of chains in kube-proxy dumps). When rules were only
    // appended, they are numbered and their jumps collected already; otherwise one pass over
    // every rule numbers them and finds the jumps. Each step is a function of its own: V8
    // compiles each hot loop alone instead of recompiling one large function per loop.
    const nc = table.chains.size;
    const chains: Chain[] = new Array(nc);
    const idx = new Map<string, number>();
    indexChains(table, chains, idx);
    const g = st.appendOnly ? this.edgesOfJumps(st.jumps, idx, nc) : edgesOfRules(chains, idx);
    findLoops(g, chains, this.sink, (x) => this.ruleOf(x));
    // Hooks reaching each chain (bit per built-in chain of this table).
    const hooksOf = BUILTIN_CHAINS[table.name];
    const reach = hookReach(g, hooksOf, idx);
    if (st.appendOnly) {
      // Nearly all of them are fine (kube-proxy: 12,500 DNAT rules in user chains reached from
      // PREROUTING and OUTPUT): find the others first; only their errors need the sort.
      const hr = st.hookRules;
      st.maskOf ??= hookMasks(hooksOf);
      const maskOf = st.maskOf;
      const store = this.store;
      const bad: Rule[] = [];
      for (let i = 0; i < hr.length; i++) {
        const x = hr[i]!;
        if (typeof x === "number") {
          const k = idx.get(store!.chains[store!.chainNo[x]!]!.name)!;
          if (reach[k]! & ~store!.allowed[x]!) bad.push(store!.rule(x));
          continue;
        }
        const k = idx.get(x.chain)!;
        if (reach[k]! & ~allowedHooks(x, chains[k]!, maskOf, this.family)) bad.push(x);
      }
      if (bad.length === 0) return;
      const key = (r: Rule) => idx.get(r.chain)! * 2 ** 26 + r.num;
      bad.sort((a, b) => key(a) - key(b));
      for (const rule of bad) {
        const k = idx.get(rule.chain)!;
        this.checkHooks(rule, chains[k]!, hooksOf, reach[k]!);
      }
      return;
    }
    for (let k = 0; k < nc; k++) {
      const bits = reach[k]!;
      if (!bits) continue;
      const c = chains[k]!;
      const rules = c.rules;
      for (let r = 0; r < rules.length; r++) {
        const rule = rules[r]!;
        if (needsHookCheck(rule, c, this.family)) this.checkHooks(rule, c, hooksOf, bits);
      }
    }
  }

  private numOf(x: Rule | number): number {
    return typeof x === "number" ? this.store!.pos[x]! + 1 : x.num;
  }

  /** The graph of an append-only table from its collected jumps: a counting sort by chain. */
  private edgesOfJumps(jumps: Array<Rule | number>, idx: Map<string, number>, nc: number): JumpGraph {
    const store = this.store;
    const edgeStart = new Int32Array(nc + 1);
    const from = new Int32Array(jumps.length);
    const to = new Int32Array(jumps.length);
    const count = new Int32Array(nc + 1);
    for (let j = 0; j < jumps.length; j++) {
      const x = jumps[j]!;
      let k: number | undefined;
      let f: number;
      if (typeof x === "number") {
        // Packed: both chains by their store number (a jump target was declared when read).
        k = idx.get(store!.chains[store!.jumpTo[x]!]!.name);
        f = k === undefined ? -1 : idx.get(store!.chains[store!.chainNo[x]!]!.name)!;
      } else {
        k = idx.get((x.target as { chain: string }).chain);
        f = k === undefined ? -1 : idx.get(x.chain)!;
      }
      from[j] = f;
      to[j] = k ?? -1;
      if (f >= 0) count[f + 1]!++;
    }
    for (let i = 0; i < nc; i++) edgeStart[i + 1] = edgeStart[i]! + count[i + 1]!;
    const fill = edgeStart.slice(0, nc);
    const m = edgeStart[nc]!;
    const edgeTo: number[] = [];
    const edgeRule: Array<Rule | number> = [];
    for (let e = 0; e < m; e++) {
      edgeTo.push(0);
      edgeRule.push(jumps[0]!);
    }
    for (let j = 0; j < jumps.length; j++) {
      const f = from[j]!;
      if (f < 0) continue;
      const at = fill[f]!++;
      edgeTo[at] = to[j]!;
      edgeRule[at] = jumps[j]!;
    }
    return { edgeStart, edgeTo, edgeRule };
  }

  /** `bits`: the hooks (of `hooksOf`) that reach `chain`. */
  private checkHooks(r: Rule, chain: Chain, hooksOf: readonly Hook[], bits: number): void {
    for (const m of r.matches) {
      if (m.kind === "policy") {
        const allowed = m.dir === "in" ? IN_HOOKS : OUT_HOOKS;
        const h = firstOutside(hooksOf, bits, allowed);
        if (h) {
          const msg = `policy --dir ${m.dir} is not valid in ${where(chain, h)} (only ${allowed.join(", ")})`;
          this.sink.error(r.prov.line, m.col, msg);
        }
      } else if (m.kind === "addrtype" && (m.limitIfaceIn || m.limitIfaceOut)) {
        const h = firstOutside(hooksOf, bits, m.limitIfaceIn ? IN_HOOKS : OUT_HOOKS);
        if (h) {
          const msg = `addrtype --limit-iface-${m.limitIfaceIn ? "in" : "out"} is not valid in ${where(chain, h)}`;
          this.sink.error(r.prov.line, m.col, msg);
        }
      } else if (m.kind === "mac") {
        const h = firstOutside(hooksOf, bits, IN_HOOKS);
        if (h)
          this.sink.error(
            r.prov.line,
            m.col,
            `mac match is not valid in ${where(chain, h)} (only ${IN_HOOKS.join(", ")})`,
          );
      }
    }
    const t = r.target;
    if (t && !chain.builtin) {
      const def = t.kind === "opaque" ? findTarget(t.name, this.family) : findTarget(t.kind, this.family);
      const h = def?.hooks ? firstOutside(hooksOf, bits, def.hooks) : undefined;
      if (h) {
        const msg = `${def!.name} is not valid in ${where(chain, h)} (only ${def!.hooks!.join(", ")})`;
        this.sink.error(r.prov.line, t.col, msg);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** A table's jump graph (CSR): chain i's edges are edgeTo/edgeRule[edgeStart[i], edgeStart[i + 1]). */
interface JumpGraph {
  edgeStart: Int32Array;
  edgeTo: number[];
  /** Rules and packed ids. */
  edgeRule: Array<Rule | number>;
}

function indexChains(table: Table, chains: Chain[], idx: Map<string, number>): void {
  let i = 0;
  for (const c of table.chains.values()) {
    chains[i] = c;
    idx.set(c.name, i++);
  }
}

/** The graph from every rule (tables edited by other commands), numbering the rules. */
function edgesOfRules(chains: Chain[], idx: Map<string, number>): JumpGraph {
  const nc = chains.length;
  const edgeStart = new Int32Array(nc + 1);
  const edgeTo: number[] = [];
  const edgeRule: Rule[] = [];
  for (let i = 0; i < nc; i++) {
    edgeStart[i] = edgeTo.length;
    const rules = chains[i]!.rules;
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r]!;
      rule.num = r + 1;
      const t = rule.target;
      if (!t || (t.kind !== "jump" && t.kind !== "goto")) continue;
      const k = idx.get(t.chain);
      if (k === undefined) continue;
      edgeTo.push(k);
      edgeRule.push(rule);
    }
  }
  edgeStart[nc] = edgeTo.length;
  return { edgeStart, edgeTo, edgeRule };
}

/** Loop detection: iterative DFS with colours (1 on the stack, 2 done); each loop reported. */
function findLoops(
  g: JumpGraph,
  chains: Chain[],
  sink: DiagnosticSink,
  ruleOf: (x: Rule | number) => Rule,
): void {
  const { edgeStart, edgeTo, edgeRule } = g;
  const nc = chains.length;
  const colour = new Uint8Array(nc);
  const stackChain: number[] = [];
  const stackEdge: number[] = [];
  for (let start = 0; start < nc; start++) {
    if (colour[start]) continue;
    colour[start] = 1;
    stackChain.push(start);
    stackEdge.push(edgeStart[start]!);
    while (stackChain.length > 0) {
      const top = stackChain.length - 1;
      const c = stackChain[top]!;
      const e = stackEdge[top]!;
      if (e >= edgeStart[c + 1]!) {
        colour[c] = 2;
        stackChain.pop();
        stackEdge.pop();
        continue;
      }
      stackEdge[top] = e + 1;
      const next = edgeTo[e]!;
      if (colour[next] === 1) {
        const names = stackChain.slice(stackChain.indexOf(next)).map((k) => chains[k]!.name);
        const rule = ruleOf(edgeRule[e]!);
        sink.error(
          rule.prov.line,
          rule.target!.col,
          `chain loop: ${[...names, chains[next]!.name].join(" -> ")} (the kernel refuses loops)`,
        );
      } else if (colour[next] === 0) {
        colour[next] = 1;
        stackChain.push(next);
        stackEdge.push(edgeStart[next]!);
      }
    }
  }
}

/** The hooks (bit h: hooksOf[h]) whose built-in chain reaches each chain. */
function hookReach(g: JumpGraph, hooksOf: readonly string[], idx: Map<string, number>): Uint8Array {
  const { edgeStart, edgeTo } = g;
  const reach = new Uint8Array(edgeStart.length - 1);
  const todo: number[] = [];
  for (let h = 0; h < hooksOf.length; h++) {
    const bit = 1 << h;
    todo.push(idx.get(hooksOf[h]!)!);
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (reach[n]! & bit) continue;
      reach[n]! |= bit;
      for (let e = edgeStart[n]!; e < edgeStart[n + 1]!; e++) todo.push(edgeTo[e]!);
    }
  }
  return reach;
}

/** Hooks where a packet has an input interface / is on its way out. */
const IN_HOOKS: readonly Hook[] = ["PREROUTING", "INPUT", "FORWARD"];
const OUT_HOOKS: readonly Hook[] = ["FORWARD", "OUTPUT", "POSTROUTING"];

/**
 * Only rules with hook-restricted matches, or hook-restricted targets in user chains, need the
 * check (checkHooks reports nothing for the others).
 */
function needsHookCheck(r: Rule, c: Chain, family: Family): boolean {
  const t = r.target;
  if (t && !c.builtin && t.kind !== "jump" && t.kind !== "goto") {
    const def = findTarget(t.kind === "opaque" ? t.name : t.kind, family);
    if (def?.hooks) return true;
  }
  const ms = r.matches;
  for (let i = 0; i < ms.length; i++) {
    const k = ms[i]!.kind;
    if (k === "policy" || k === "addrtype" || k === "mac") return true;
  }
  return false;
}

/** The mask (bit h: hooksOf[h]) of a list of allowed hooks, computed once per list. */
function hookMasks(hooksOf: readonly Hook[]): (allowed: readonly Hook[]) => number {
  const memo = new Map<readonly Hook[], number>();
  return (allowed) => {
    let m = memo.get(allowed);
    if (m === undefined) {
      m = 0;
      for (let h = 0; h < hooksOf.length; h++) if (allowed.includes(hooksOf[h]!)) m |= 1 << h;
      memo.set(allowed, m);
    }
    return m;
  };
}

/**
 * The hooks where `checkHooks` accepts rule `r` of `chain`: it reports an error exactly when a
 * hook reaching the chain is outside this mask.
 */
function allowedHooks(
  r: Rule,
  chain: Chain,
  maskOf: (allowed: readonly Hook[]) => number,
  family: Family,
): number {
  let mask = -1;
  const ms = r.matches;
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    if (m.kind === "policy") mask &= maskOf(m.dir === "in" ? IN_HOOKS : OUT_HOOKS);
    else if (m.kind === "addrtype" && (m.limitIfaceIn || m.limitIfaceOut))
      mask &= maskOf(m.limitIfaceIn ? IN_HOOKS : OUT_HOOKS);
    else if (m.kind === "mac") mask &= maskOf(IN_HOOKS);
  }
  return r.target === null ? mask : mask & targetHooks(r.target, chain, maskOf, family);
}

/** allowedHooks' part of a rule's target: where a hook-restricted target may be used from a user chain. */
function targetHooks(
  t: Target,
  chain: Chain,
  maskOf: (allowed: readonly Hook[]) => number,
  family: Family,
): number {
  if (chain.builtin) return -1;
  const def = findTarget(t.kind === "opaque" ? t.name : t.kind, family);
  return def?.hooks ? maskOf(def.hooks) : -1;
}

/** The first hook (in `hooksOf` order) of the set `bits` that is not in `allowed`. */
function firstOutside(hooksOf: readonly Hook[], bits: number, allowed: readonly Hook[]): Hook | undefined {
  for (let h = 0; h < hooksOf.length; h++) {
    if (bits & (1 << h) && !allowed.includes(hooksOf[h]!)) return hooksOf[h];
  }
  return undefined;
}

function where(chain: Chain, h: Hook): string {
  return chain.builtin ? chain.name : `chain ${chain.name}, reached from ${h}`;
}

const ZERO_COUNTERS: Counters = { packets: 0n, bytes: 0n };
function parseCounters(s: string): Counters | null {
  if (s === "[0:0]") return ZERO_COUNTERS; // the usual case, without the regex (nothing mutates counters)
  const m = COUNTERS_RE.exec(s);
  return m ? { packets: BigInt(m[1]!), bytes: BigInt(m[2]!) } : null;
}

function firstWord(line: string, p: number): string {
  const w = line.slice(p).split(/\s+/)[0] ?? "";
  return w.length > 40 ? `${w.slice(0, 40)}…` : w;
}

/** A token that starts a new option (for skipping arguments of unknown options). */
function looksLikeOption(t: Token): boolean {
  if (t.quoted) return false;
  if (t.text === "!") return true;
  return t.text.length > 1 && t.text.startsWith("-") && !/^-\d/.test(t.text);
}

function refersTo(r: Rule, chain: string): boolean {
  const t = r.target;
  return !!t && (t.kind === "jump" || t.kind === "goto") && t.chain === chain;
}

/** Identity of a rule for `-D chain rulespec`: its content without position, counters, provenance. */
const KEY_SKIP = new Set(["col", "num", "prov", "counters", "unknown", "table", "chain"]);
/** The first rule of `chain` equal to `r` as -D and -C compare them (positions aside); -1 if none. */
function indexOfRule(chain: Chain, r: Rule): number {
  const key = ruleKey(r);
  return chain.rules.findIndex((x) => ruleKey(x) === key);
}

function ruleKey(r: Rule): string {
  return JSON.stringify(r, (k, v) =>
    KEY_SKIP.has(k) ? undefined : typeof v === "bigint" ? v.toString() : v,
  );
}

/**
 * Family from the header comment (`# Generated by ip6tables-save`), the file name, or the first
 * address-like argument of -s/-d; IPv4 otherwise.
 */
export function detectFamily(text: string, file: string): Family {
  const head = text.slice(0, 4096);
  if (/^#.*ip6tables-save/m.test(head)) return 6;
  if (/^#.*iptables-save/m.test(head)) return 4;
  if (/ip6tables|\.v6\b|rules\.v6/i.test(file)) return 6;
  const m = /\s(?:-s|-d|--source|--destination|--src-range|--dst-range)\s+(?:!\s+)?([0-9a-fA-F:.]+)/.exec(
    text.slice(0, 1 << 20),
  );
  if (m?.[1]?.includes(":")) return 6;
  if (/-p\s+(?:icmpv6|ipv6-icmp)\b|-m icmp6\b|--icmpv6-type/.test(head) && !/-p\s+icmp\b/.test(head))
    return 6;
  return 4;
}

/**
 * Token boundaries of a plain `-A chain …` line into FAST_STARTS/FAST_ENDS (text [start, end);
 * a quoted token's start stored as -(start) - 1, its column being start): plain or whole-word
 * quoted tokens without escapes. The number of tokens, or -1 for any other line.
 */
function fastTokens(line: string, spacesOnly: boolean): number {
  const n = line.length;
  if (n < 4 || line.charCodeAt(0) !== 45 || line.charCodeAt(1) !== 65 || line.charCodeAt(2) !== 32) return -1;
  // Blanks other than the space (rare): the character loop below. Asked once per input when it
  // has none (two native scans per line were ≈ 1 % of a 100k-rule parse).
  if (!spacesOnly && (line.indexOf("\t") >= 0 || line.indexOf("\r") >= 0)) return blankTokens(line);
  // Spaces only (iptables-save's own output): jump from blank to blank and quote to quote with
  // indexOf (a native scan), instead of testing every character: ≈ 2.5 % of a 100k-rule trace.
  const starts = FAST_STARTS;
  const ends = FAST_ENDS;
  let q = line.indexOf('"');
  if (q < 0) q = n;
  let nt = 0;
  let i = 0;
  while (i < n) {
    if (line.charCodeAt(i) === 32) {
      i++;
      continue;
    }
    if (nt === FAST_MAX) return -1;
    if (i === q) {
      // A whole-word quoted token without escapes.
      const s0 = i + 1;
      const j = line.indexOf('"', s0);
      if (j < 0) return -1;
      const bs = line.indexOf("\\", s0);
      if (bs >= 0 && bs < j) return -1;
      if (j + 1 < n && line.charCodeAt(j + 1) !== 32) return -1;
      starts[nt] = -s0 - 1; // negative: quoted (s0 = column of the opening quote)
      ends[nt++] = j;
      i = j + 1;
      q = line.indexOf('"', i);
      if (q < 0) q = n;
      continue;
    }
    let e = line.indexOf(" ", i);
    if (e < 0) e = n;
    if (q < e) return -1; // a quote inside a word
    starts[nt] = i;
    ends[nt++] = e;
    i = e;
  }
  return nt;
}

/** fastTokens for a line with tabs or carriage returns: one character at a time. */
function blankTokens(line: string): number {
  const n = line.length;
  const starts = FAST_STARTS;
  const ends = FAST_ENDS;
  let nt = 0;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9 || c === 13 || c === 10) {
      i++;
      continue;
    }
    if (nt === FAST_MAX) return -1;
    if (c === 34) {
      // A whole-word quoted token without escapes.
      const s0 = i + 1;
      let j = s0;
      while (j < n) {
        c = line.charCodeAt(j);
        if (c === 34 || c === 92) break;
        j++;
      }
      if (j >= n || c !== 34) return -1;
      if (j + 1 < n) {
        const d = line.charCodeAt(j + 1);
        if (d !== 32 && d !== 9 && d !== 13 && d !== 10) return -1;
      }
      starts[nt] = -s0 - 1; // negative: quoted (s0 = column of the opening quote)
      ends[nt++] = j;
      i = j + 1;
      continue;
    }
    const s0 = i;
    while (i < n) {
      c = line.charCodeAt(i);
      if (c === 32 || c === 9 || c === 13 || c === 10) break;
      if (c === 34) return -1;
      i++;
    }
    starts[nt] = s0;
    ends[nt++] = i;
  }
  return nt;
}

/**
 * fastTokens over the input's bytes: the line is `n` characters from `base` in `bytes`, one byte
 * per character (ASCII input). The same tokens as fastTokens, read from a byte array: no string
 * builtin per token (`indexOf` on the line was a tenth of a 100k-rule parse's instructions).
 */
function byteTokens(bytes: Uint8Array, base: number, n: number): number {
  if (n < 4 || bytes[base] !== 45 || bytes[base + 1] !== 65 || bytes[base + 2] !== 32) return -1;
  const starts = FAST_STARTS;
  const ends = FAST_ENDS;
  const end = base + n;
  let nt = 0;
  let i = base;
  while (i < end) {
    let c = bytes[i]!;
    if (c === 32 || c === 9 || c === 13 || c === 10) {
      i++;
      continue;
    }
    if (nt === FAST_MAX) return -1;
    if (c === 34) {
      // A whole-word quoted token without escapes.
      const s0 = i + 1;
      let j = s0;
      while (j < end) {
        c = bytes[j]!;
        if (c === 34 || c === 92) break;
        j++;
      }
      if (j >= end || c !== 34) return -1;
      if (j + 1 < end) {
        const d = bytes[j + 1]!;
        if (d !== 32 && d !== 9 && d !== 13 && d !== 10) return -1;
      }
      starts[nt] = -(s0 - base) - 1; // negative: quoted (s0 - base = column of the opening quote)
      ends[nt++] = j - base;
      i = j + 1;
      continue;
    }
    const s0 = i;
    while (i < end) {
      c = bytes[i]!;
      if (c === 32 || c === 9 || c === 13 || c === 10) break;
      if (c === 34) return -1;
      i++;
    }
    starts[nt] = s0 - base;
    ends[nt++] = i - base;
  }
  return nt;
}

/**
 * The input's lines, sliced from the text when read: a parse reads each line once (and a packed
 * rule's line again when it is built), so no array of 100,000 strings lives through the parse.
 */
class Lines {
  readonly length: number;
  /** Start of line i; starts[length] is one past the end (as if a newline followed the text). */
  private readonly starts: Int32Array;
  constructor(private readonly text: string) {
    let n = 1;
    for (let p = text.indexOf("\n"); p >= 0; p = text.indexOf("\n", p + 1)) n++;
    const starts = new Int32Array(n + 1);
    let k = 1;
    for (let p = text.indexOf("\n"); p >= 0; p = text.indexOf("\n", p + 1)) starts[k++] = p + 1;
    starts[n] = text.length + 1;
    this.length = n;
    this.starts = starts;
  }
  at(i: number): string {
    return i < 0 || i >= this.length ? "" : this.text.slice(this.starts[i]!, this.starts[i + 1]! - 1);
  }
  *all(): Generator<string> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }
  findIndex(pred: (l: string) => boolean): number {
    for (let i = 0; i < this.length; i++) if (pred(this.at(i))) return i;
    return -1;
  }
  some(pred: (l: string) => boolean): boolean {
    return this.findIndex(pred) >= 0;
  }
}

/** Words of a `:chain` line (at most the first 4: texts and 1-based columns), split by chainWords. */
const CHAIN_WORDS: string[] = ["", "", "", ""];
const CHAIN_COLS = new Int32Array(4);

/**
 * The blank-separated words of `line` from `from` into CHAIN_WORDS/CHAIN_COLS (the first 4; the
 * count may be higher), as `tokenize` splits them; -1 when the line has a quote (the tokenizer's
 * case).
 */
function chainWords(line: string, from: number): number {
  const n = line.length;
  let nw = 0;
  let i = from;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9 || c === 13 || c === 10) {
      i++;
      continue;
    }
    const s0 = i;
    while (i < n) {
      c = line.charCodeAt(i);
      if (c === 32 || c === 9 || c === 13 || c === 10) break;
      if (c === 34) return -1;
      i++;
    }
    if (nw < 4) {
      CHAIN_WORDS[nw] = line.slice(s0, i);
      CHAIN_COLS[nw] = s0 + 1;
    }
    nw++;
  }
  return nw;
}

/** A line with nothing parsed yet: the general and the fast path start from the same state. */
function emptyLineParse(command: LineParse["command"]): LineParse {
  return {
    command,
    counters: null,
    srcs: null,
    dsts: null,
    iif: null,
    oif: null,
    iifCol: 0,
    oifCol: 0,
    proto: null,
    protoCol: 0,
    fragment: null,
    items: [],
    target: null,
    onlyFamily: null,
    ruleOptionCol: 0,
    unknown: [],
    bad: false,
  };
}
