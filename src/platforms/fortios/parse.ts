/**
 * FortiOS CLI configuration parser: a hand-written lexer and a block parser producing a generic
 * tree (`config` / `edit` / `set`-like / table commands) with provenance on every node.
 *
 * Lexical rules follow what FortiOS accepts and what real backups contain (cross-checked with the
 * Batfish FortiOS lexer, batfish/batfish@cba18733 FortiosLexer.g4, and its `fortios_replacemsg` test):
 * - words are separated by blanks; a word may join unquoted, "double-quoted" and 'single-quoted'
 *   pieces (`"new"_group1` is `new_group1`);
 * - inside double quotes `\"`, `\'` and `\\` are escapes, any other backslash is literal
 *   (HTML in replacement messages keeps `\n` as two characters); quotes may span lines;
 * - inside single quotes nothing is an escape;
 * - unquoted, `\` + newline continues the line and `\` + any other character is that character;
 * - `#` as the first non-blank character of a line starts a comment; `#key=value` comments before
 *   the first command are the backup header (`#config-version=…`);
 * - CRLF line endings are accepted everywhere.
 *
 * Block rules: `next` closes an `edit`; `end` closes a `config` — and, inside an `edit`, closes the
 * entry and its table together, as the FortiOS CLI does ("Subcommands", FortiOS CLI reference,
 * https://docs.fortinet.com/document/container-fortios/7.2.2/cli-reference/627485).
 *
 * Errors never throw: they are collected as `file:line:col: message` diagnostics (up to a limit)
 * and parsing resumes on the next line. Secrets are redacted here, before any node exists.
 */
import { applyMask, isPem, isSecretKey, REDACTED, scrub, secretValueMask } from "./redact.js";

/** Where a node comes from. `text` is the (redacted) first line of the command, without indentation. */
export interface Loc {
  file: string;
  line: number;
  col: number;
  text: string;
}

export interface Pos {
  line: number;
  col: number;
}

export type SetVerb = "set" | "unset" | "append" | "select" | "unselect" | "clear";
export type TableVerb = "rename" | "move" | "clone" | "delete" | "purge";

export interface ConfigNode {
  kind: "config";
  /** Section words, e.g. `["firewall", "local-in-policy"]`. */
  path: string[];
  children: Node[];
  loc: Loc;
  /** Where the closing `end` was (absent when the file ended first). */
  close?: Pos;
}

export interface EditNode {
  kind: "edit";
  name: string;
  children: Node[];
  loc: Loc;
  close?: Pos;
}

export interface SetNode {
  kind: "set";
  verb: SetVerb;
  key: string;
  /** Values after redaction: a secret run is one `<redacted>` value. */
  values: string[];
  redacted: boolean;
  loc: Loc;
}

/** `rename A to B`, `move A before|after B`, `clone A to B`, `delete A`, `purge`. */
export interface CommandNode {
  kind: "command";
  verb: TableVerb;
  args: string[];
  loc: Loc;
}

export type Node = ConfigNode | EditNode | SetNode | CommandNode;

export interface HeaderField {
  key: string;
  value: string;
  loc: Loc;
}

export interface ConfigTree {
  kind: "root";
  file: string;
  header: HeaderField[];
  children: Node[];
}

/** Parsing yields errors and warnings; the model adds `info` (e.g. a predefined object was assumed). */
export type Severity = "error" | "warning" | "info";

export interface Diagnostic {
  severity: Severity;
  file: string;
  line: number;
  col: number;
  message: string;
}

export interface ParseResult {
  tree: ConfigTree;
  /** Errors and warnings in source order (errors capped at `maxErrors`). */
  diagnostics: Diagnostic[];
  errorCount: number;
  /** No errors (warnings allowed). */
  ok: boolean;
  /** Parsing stopped early because `maxErrors` was reached. */
  truncated: boolean;
}

export interface ParseOptions {
  /** Name used in provenance and diagnostics. */
  file?: string;
  /** Stop after this many errors (default 100). */
  maxErrors?: number;
  /**
   * Build each top-level section's nodes when its `children` are first read (default true). The
   * tree, diagnostics and redaction are the same either way; `false` builds everything at once.
   */
  lazy?: boolean;
}

/**
 * The entries of a section read on demand whose children are `edit` blocks only, checked without
 * a single error: the model can then build one entry without building the whole section.
 */
export interface SectionEntries {
  /** The `edit` names in file order (a name may occur more than once). */
  readonly names: readonly string[];
  /** The `i`-th `edit` node, equal to `children[i]`; built by reading that entry alone. */
  edit(i: number): EditNode;
}

const entryIndex = new WeakMap<ConfigNode, SectionEntries>();

/**
 * The entries of `node` when it is a section read on demand (`lazy`, the default), holds nothing
 * but `edit` blocks and had no error; otherwise undefined (then read `children`).
 */
export function sectionEntries(node: ConfigNode): SectionEntries | undefined {
  return entryIndex.get(node);
}

/** `file:line:col: message` — the format compilers use, so editors can jump to it. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity === "error" ? "" : `${d.severity}: `}${d.message}`;
}

/** Thrown by `parseFortiosStrict`; carries every diagnostic. A CLI prints `message` and exits 2. */
export class FortiosParseError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
    this.name = "FortiosParseError";
  }
}

// ---------------------------------------------------------------------------------------------
// Lexer. It allocates nothing per word: the current command lives in parallel arrays reused from
// one command to the next (a 10,000-policy backup has ~200,000 commands; garbage was the cost).

const EOF = 0;
const COMMAND = 1;
const COMMENT = 2;
const LEX_ERROR = 3;
type TokenType = typeof EOF | typeof COMMAND | typeof COMMENT | typeof LEX_ERROR;

const NL = 10;
const CR = 13;
const HASH = 35;
const DQ = 34;
/** A line inside a quoted value that reads like a command: the quote was likely unbalanced. */
const COMMAND_LINE = /\n[ \t]*(?:(?:config|edit|set|unset)[ \t]|(?:next|end)[ \t]*\r?(?:\n|$))/;
const SQ = 39;
const BS = 92;

/** Blanks separate words. A CR is a blank too, so CRLF needs no special casing between words. */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === CR || c === 12 || c === 11 || c === 0xa0;
}

/** Where the lexer is: enough to start a second lexer at the same command. */
interface LexState {
  i: number;
  line: number;
  lineStart: number;
}

class Lexer {
  i = 0;
  line = 1;
  lineStart = 0;

  // The current command (valid after next() returned COMMAND).
  count = 0;
  readonly vals: string[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly lines: number[] = [];
  readonly cols: number[] = [];
  cmdLine = 0;
  cmdCol = 0;
  cmdStart = 0;
  cmdLineStart = 0;
  /** End offset of the command's first physical line, trailing blanks excluded. */
  firstLineEnd = -1;
  /** The command crossed a line break (quoted newline or continuation). */
  crossed = false;

  // The current comment or error.
  text = "";
  errLine = 0;
  /** Quoted values that ran across lines that look like commands (an unbalanced quote?). */
  spans: Array<{ line: number; col: number; to: number }> = [];
  errCol = 0;

  constructor(
    private readonly s: string,
    from?: LexState,
  ) {
    if (from) {
      this.i = from.i;
      this.line = from.line;
      this.lineStart = from.lineStart;
    } else if (s.charCodeAt(0) === 0xfeff) {
      this.i = 1;
      this.lineStart = 1;
    }
  }

  col(at: number): number {
    return at - this.lineStart + 1;
  }

  private markFirstLineEnd(at: number): void {
    if (this.firstLineEnd >= 0) return;
    let e = at;
    while (e > this.cmdStart && isBlank(this.s.charCodeAt(e - 1))) e--;
    this.firstLineEnd = e;
  }

  /** A line break inside the current command, at offset `at` (the LF). */
  private newline(at: number): void {
    this.crossed = true;
    this.markFirstLineEnd(at);
    this.line++;
    this.lineStart = at + 1;
  }

  /** Length of a line break at `at` (`\n` or `\r\n`), or 0. */
  private breakAt(at: number): number {
    const c = this.s.charCodeAt(at);
    if (c === NL) return 1;
    if (c === CR && this.s.charCodeAt(at + 1) === NL) return 2;
    return 0;
  }

  next(): TokenType {
    const s = this.s;
    const n = s.length;
    for (;;) {
      if (this.i >= n) return EOF;
      const c = s.charCodeAt(this.i);
      if (c === NL) {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (isBlank(c)) {
        this.i++;
      } else if (c === BS && this.breakAt(this.i + 1) > 0) {
        this.i += 1 + this.breakAt(this.i + 1);
        this.line++;
        this.lineStart = this.i;
      } else break;
    }
    const start = this.i;
    this.cmdStart = start;
    this.cmdLineStart = this.lineStart;
    this.cmdLine = this.line;
    this.cmdCol = this.col(start);
    if (s.charCodeAt(start) === HASH) {
      let end = s.indexOf("\n", start);
      if (end < 0) end = n;
      this.i = end;
      this.text = s.slice(start, end).trimEnd();
      return COMMENT;
    }
    this.firstLineEnd = -1;
    this.crossed = false;
    this.count = 0;
    for (;;) {
      while (this.i < n) {
        const c = s.charCodeAt(this.i);
        if (isBlank(c)) this.i++;
        else if (c === BS && this.breakAt(this.i + 1) > 0) {
          const k = this.breakAt(this.i + 1);
          this.newline(this.i + k);
          this.i += 1 + k;
        } else break;
      }
      if (this.i >= n) {
        this.markFirstLineEnd(n);
        break;
      }
      if (s.charCodeAt(this.i) === NL) {
        this.markFirstLineEnd(this.i);
        this.i++;
        this.line++;
        this.lineStart = this.i;
        break;
      }
      if (!this.word()) return LEX_ERROR;
    }
    return COMMAND;
  }

  /** Reads one word into slot `count`. False on an unterminated quote (error fields set). */
  private word(): boolean {
    const s = this.s;
    const n = s.length;
    const k = this.count;
    this.starts[k] = this.i;
    this.lines[k] = this.line;
    this.cols[k] = this.col(this.i);
    let buf = "";
    let seg = this.i;
    while (this.i < n) {
      const c = s.charCodeAt(this.i);
      if (c === NL || isBlank(c)) break;
      if (c === DQ || c === SQ) {
        buf += s.slice(seg, this.i);
        const qLine = this.line;
        const qCol = this.col(this.i);
        this.i++;
        seg = this.i;
        let closed = false;
        while (this.i < n) {
          const d = s.charCodeAt(this.i);
          if (d === c) {
            buf += s.slice(seg, this.i);
            this.i++;
            closed = true;
            break;
          }
          if (d === BS && c === DQ) {
            const e = s.charCodeAt(this.i + 1);
            if (e === DQ || e === SQ || e === BS) {
              buf += s.slice(seg, this.i) + s[this.i + 1];
              this.i += 2;
              seg = this.i;
              continue;
            }
          }
          if (d === CR && s.charCodeAt(this.i + 1) === NL) {
            // CRLF inside a multi-line value reads as LF, so values do not depend on line endings.
            buf += s.slice(seg, this.i);
            this.i++;
            seg = this.i;
            continue;
          }
          if (d === NL) this.newline(this.i);
          this.i++;
        }
        if (closed && this.line !== qLine && COMMAND_LINE.test(s.slice(seg, this.i - 1)))
          this.spans.push({ line: qLine, col: qCol, to: this.line });
        if (!closed) {
          this.errLine = qLine;
          this.errCol = qCol;
          this.text =
            c === DQ
              ? `unterminated double-quoted string: expected a closing " before end of file`
              : `unterminated single-quoted string: expected a closing ' before end of file`;
          return false;
        }
        seg = this.i;
        continue;
      }
      if (c === BS) {
        buf += s.slice(seg, this.i);
        const b = this.breakAt(this.i + 1);
        if (b > 0) {
          this.newline(this.i + b);
          this.i += 1 + b;
        } else if (this.i + 1 < n) {
          buf += s[this.i + 1];
          this.i += 2;
        } else {
          buf += "\\";
          this.i++;
        }
        seg = this.i;
        continue;
      }
      this.i++;
    }
    this.vals[k] = seg === this.starts[k] ? s.slice(seg, this.i) : buf + s.slice(seg, this.i);
    this.ends[k] = this.i;
    this.count = k + 1;
    return true;
  }

  /** The raw source of word `k`, cut at its first line break. */
  raw(k: number): string {
    const r = this.s.slice(this.starts[k], this.ends[k]);
    const nl = r.indexOf("\n");
    return nl < 0 ? r : `${r.slice(0, nl).trimEnd()} …`;
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

const SET_VERBS: ReadonlySet<string> = new Set(["set", "unset", "append", "select", "unselect", "clear"]);
const TABLE_VERBS: ReadonlySet<string> = new Set(["rename", "move", "clone", "delete", "purge"]);
const COMMANDS = "config, edit, set, unset, append, select, unselect, next, end";
const HEADER = /^#([A-Za-z_][\w-]*)=(.*)$/;
const MAX_TEXT = 240;

const COMMAND_WORDS = COMMANDS.split(", ");

/** Levenshtein distance, stopping early above `max` (words here are short). */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Lines that are not FortiOS at all, quoted as they are: they are our constants, not the file's data. */
const FOREIGN_WORDS: ReadonlySet<string> = new Set([
  "content-type:",
  "mime-version:",
  "content-transfer-encoding:",
  "content-disposition:",
  "#cloud-config",
]);

/**
 * A word found where a command belongs, for an error message. Only a near miss of a command is
 * quoted (`sett`: did you mean 'set'?): anything else may be key material — a PSK or an `ENC`
 * blob wrapped onto a line of its own by a mail client or a terminal — so only its length is said.
 */
function shown(w: string): string {
  const lower = w.toLowerCase();
  if (FOREIGN_WORDS.has(lower)) return `'${w}'`;
  const near = COMMAND_WORDS.find((c) => editDistance(lower, c, 1) <= 1 && /^[a-z]+$/i.test(w));
  if (near) return `'${w}' (did you mean '${near}'?)`;
  return `a word of ${w.length} character${w.length === 1 ? "" : "s"} (not shown: it may be part of a secret wrapped onto its own line)`;
}

function clip(t: string): string {
  return t.length > MAX_TEXT ? `${t.slice(0, MAX_TEXT)} …` : t;
}

type Frame = ConfigNode | EditNode;

/**
 * One whole line `set KEY VALUE…` that a section checked without building accepts silently: the
 * key lower-case and unquoted, naming no secret (no `pass`, `pwd`, `secret`, `key`, `psk`,
 * `token`, and not `name`, a secret in SNMP communities; see redact.ts), each value unquoted or
 * one quoted piece without backslash or line break, no `ENC` and no `-----` (PEM) anywhere on the
 * line; blanks as `isBlank` has them. Such a line yields no diagnostic and no secret; everything
 * else takes the general path. Sticky and tested without captures: the regular-expression engine
 * runs it as native code from the first line on, where a hand-written scanner waits for the JIT.
 */
const PLAIN_SET =
  /[ \t\r\f\v\u00a0]*set[ \t\r\f\v\u00a0]+(?!name[ \t\r\f\v\u00a0])(?![a-z0-9_-]*(?:pass|pwd|secret|key|psk|token))[a-z0-9_-]+(?![^\n]*(?:-----|ENC))(?:[ \t\r\f\v\u00a0]+(?:"[^"\\\r\n]*"|'[^'\\\r\n]*'|[^ \t\r\f\v\u00a0\n"'\\]+))+[ \t\r\f\v\u00a0]*\n/y;

/** What `sectionEntries` needs, gathered while a section is checked: `at` holds (i, line, lineStart) per edit. */
interface EntryRec {
  names: string[];
  at: number[];
  onlyEdits: boolean;
  /** The error count when the section opened. */
  errors: number;
}

function describe(f: Frame): string {
  return f.kind === "config" ? `'config ${f.path.join(" ")}'` : `'edit ${f.name}'`;
}

class Parser {
  readonly tree: ConfigTree;
  readonly diagnostics: Diagnostic[] = [];
  readonly secrets = new Set<string>();
  /** Line of the last `set` of a secret (or ending in `ENC`), or of a stray line right after it. */
  private secretLine = -1;
  readonly stack: Frame[] = [];
  errorCount = 0;
  truncated = false;
  private seenCommand = false;
  private readonly lx: Lexer;
  /**
   * Index in `stack` of the section being read without building nodes (see `lazySection`), or -1;
   * `lazyEnd` receives where that section ends.
   */
  private lazyAt = -1;
  private lazyEnd: ((end: number, closed: boolean) => void) | undefined;
  /** The direct `edit`s of that section, for `sectionEntries`. */
  private lazyRec: EntryRec | undefined;
  /** Frames below the one being read (1 when re-reading one entry inside its section's frame). */
  private readonly base: number;

  /**
   * `section`: re-read one section from `from` (see `lazySection`), building every node, and stop
   * where it closes; with `entryOf` (the section's path), `from` is one of its `edit`s, read inside
   * a frame for the section and up to where it closes. Otherwise the whole file, top-level sections
   * read lazily.
   */
  constructor(
    private readonly src: string,
    private readonly file: string,
    private readonly maxErrors: number,
    private readonly lazy: boolean,
    private readonly section?: LexState,
    entryOf?: string[],
  ) {
    this.lx = new Lexer(src, section);
    this.tree = { kind: "root", file, header: [], children: [] };
    if (section) this.seenCommand = true;
    this.base = 0;
    if (entryOf) {
      const frame: ConfigNode = { kind: "config", path: entryOf, children: [], loc: this.loc("") };
      this.tree.children.push(frame);
      this.stack.push(frame);
      this.base = 1;
    }
  }

  /**
   * Top-level sections (and those directly inside `config global` or a VDOM's `edit`) are checked
   * in full as they are read — every diagnostic, every secret — but their nodes are built on first
   * access to `children`, by re-reading just that section. Most consumers need a few sections of a
   * large backup (a local-in trace never looks at the forward policy table); a tree built on demand
   * is identical to one built at once, because a section's parse depends only on where it starts.
   */
  private atSectionScope(path: readonly string[]): boolean {
    if (this.section || !this.lazy) return false;
    const st = this.stack;
    if (st.length === 0) return !(path.length === 1 && (path[0] === "global" || path[0] === "vdom"));
    const a = st[0]!;
    if (a.kind !== "config" || a.path.length !== 1) return false;
    if (st.length === 1) return a.path[0] === "global";
    return st.length === 2 && a.path[0] === "vdom" && st[1]!.kind === "edit";
  }

  private lazySection(path: string[]): ConfigNode {
    const lx = this.lx;
    const from: LexState = { i: lx.cmdStart, line: lx.cmdLine, lineStart: lx.cmdLineStart };
    const src = this.src;
    const file = this.file;
    let end = src.length;
    let children: Node[] | undefined;
    const rec: EntryRec = { names: [], at: [], onlyEdits: true, errors: this.errorCount };
    this.lazyRec = rec;
    this.lazyEnd = (e, closed) => {
      end = e;
      if (closed && rec.onlyEdits && this.errorCount === rec.errors) {
        const { names, at } = rec;
        entryIndex.set(node, {
          names,
          edit(k: number): EditNode {
            const from: LexState = { i: at[3 * k]!, line: at[3 * k + 1]!, lineStart: at[3 * k + 2]! };
            const p = new Parser(src, file, Number.POSITIVE_INFINITY, false, from, path);
            p.run();
            return (p.tree.children[0] as ConfigNode).children[0] as EditNode;
          },
        });
      }
    };
    const node: ConfigNode = {
      kind: "config",
      path,
      get children(): Node[] {
        if (children === undefined) {
          const p = new Parser(src, file, Number.POSITIVE_INFINITY, false, from);
          p.run(end);
          const top = p.tree.children[0];
          children = top?.kind === "config" ? top.children : [];
        }
        return children;
      },
      set children(c: Node[]) {
        children = c;
        entryIndex.delete(node); // the entries described the section as parsed
      },
      loc: this.loc(this.plainText()),
    };
    return node;
  }

  /** After a command: the lazily read section closed (or, with `end`, reading stopped). */
  private lazyDone(end?: number): void {
    if (this.lazyAt >= 0 && (end !== undefined || this.stack.length <= this.lazyAt)) {
      this.lazyEnd?.(end ?? this.lx.i, end === undefined);
      this.lazyAt = -1;
      this.lazyEnd = undefined;
      this.lazyRec = undefined;
    }
  }

  report(line: number, col: number, message: string, severity: Severity = "error"): void {
    if (this.truncated) return;
    const file = this.file;
    this.diagnostics.push({ severity, file, line, col, message });
    if (severity !== "error") return;
    this.errorCount++;
    if (this.errorCount >= this.maxErrors) {
      this.diagnostics.push({
        severity: "error",
        file,
        line,
        col,
        message: `too many errors (${this.errorCount}); stopped parsing here`,
      });
      this.errorCount++;
      this.truncated = true;
    }
  }

  /** Reports at word `k` of the current command. */
  private at(k: number, message: string, severity: Severity = "error"): void {
    const lx = this.lx;
    const j = Math.min(k, lx.count - 1);
    this.report(lx.lines[j]!, lx.cols[j]!, message, severity);
  }

  private loc(text: string): Loc {
    return { file: this.file, line: this.lx.cmdLine, col: this.lx.cmdCol, text };
  }

  private plainText(): string {
    const lx = this.lx;
    const t = clip(this.src.slice(lx.cmdStart, lx.firstLineEnd));
    return lx.crossed ? `${t} …` : t;
  }

  /** Field names repeat on every entry; sharing one string per name keeps a large tree small. */
  private readonly names = new Map<string, string>();
  private intern(v: string): string {
    const hit = this.names.get(v);
    if (hit !== undefined) return hit;
    if (this.names.size < 50_000) this.names.set(v, v);
    return v;
  }

  private configPath(): string[] {
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const f = this.stack[k]!;
      if (f.kind === "config") return f.path;
    }
    return [];
  }

  run(end = Number.POSITIVE_INFINITY): void {
    const lx = this.lx;
    while (!this.truncated && lx.i < end) {
      if (this.lazyAt >= 0 && this.stack.length > this.lazyAt + 1 && this.skipPlainSet()) continue;
      const t = lx.next();
      if (lx.spans.length > 0) {
        // The value is not shown: it may be a secret (and the lines it swallowed with it).
        for (const sp of lx.spans)
          this.report(
            sp.line,
            sp.col,
            `a quoted value runs from here to line ${sp.to} across lines that read like commands (config, edit, set, next, end): an unbalanced quote? Those lines are read as part of the value, not as configuration`,
            "warning",
          );
        lx.spans.length = 0;
      }
      if (t === EOF) break;
      if (t === LEX_ERROR) {
        this.report(lx.errLine, lx.errCol, lx.text);
        continue;
      }
      if (t === COMMENT) {
        if (!this.seenCommand) {
          const m = HEADER.exec(lx.text);
          if (m) this.tree.header.push({ key: m[1]!, value: m[2]!, loc: this.loc(lx.text) });
        }
        continue;
      }
      if (lx.count === 0) continue;
      this.seenCommand = true;
      this.command();
      if (this.section && this.stack.length <= this.base) return;
    }
    if (this.section) return;
    this.lazyDone(lx.i);
    if (!this.truncated) {
      const line = lx.line;
      const col = lx.col(this.src.length);
      for (let k = this.stack.length - 1; k >= 0; k--) {
        const f = this.stack[k]!;
        const closer = f.kind === "edit" ? "next' or 'end" : "end";
        this.report(
          line,
          col,
          `expected '${closer}' to close ${describe(f)} opened at ${f.loc.line}:${f.loc.col}, found end of file`,
        );
      }
    }
    if (this.secrets.size > 0) {
      for (const d of this.diagnostics) d.message = scrub(d.message, this.secrets);
    }
  }

  /**
   * Inside an entry of a section read without building: skips the current line when it is a plain
   * `set` the general path would accept without a word of output (see `PLAIN_SET`). Anything else
   * (false) goes through `lx.next()` and `command()`; both leave the lexer at the next line.
   */
  private skipPlainSet(): boolean {
    const lx = this.lx;
    PLAIN_SET.lastIndex = lx.i;
    if (!PLAIN_SET.test(this.src)) return false;
    lx.i = PLAIN_SET.lastIndex;
    lx.line++;
    lx.lineStart = lx.i;
    return true;
  }

  private command(): void {
    const lx = this.lx;
    const n = lx.count;
    const verb = lx.vals[0]!;
    const stack = this.stack;
    const f = stack[stack.length - 1];
    /** Inside a lazily read section: check everything, build nothing (frames only, for messages). */
    const build = this.lazyAt < 0;
    const rec = this.lazyRec;
    if (rec && stack.length === this.lazyAt + 1 && verb !== "edit" && verb !== "end") rec.onlyEdits = false;

    if (verb === "set" || SET_VERBS.has(verb)) {
      this.setLike(verb as SetVerb, f, build);
      return;
    }

    if (verb === "edit") {
      let parent = f;
      if (parent?.kind === "edit") {
        // A missing `next`: close the open entry so the rest of the table still parses.
        this.at(
          0,
          `expected 'next' before 'edit': entry ${describe(parent)} opened at ${parent.loc.line}:${parent.loc.col} is still open`,
        );
        stack.pop();
        parent = stack[stack.length - 1];
      }
      if (parent === undefined) {
        this.at(0, "expected 'config' before 'edit': 'edit' is only valid inside a 'config' block");
        return;
      }
      if (n < 2) {
        this.at(0, "expected a name after 'edit'");
        return;
      }
      if (n > 2) this.at(2, `expected end of line after 'edit ${lx.vals[1]}'`);
      if (rec && parent === stack[this.lazyAt]) {
        rec.names.push(lx.vals[1]!);
        rec.at.push(lx.cmdStart, lx.cmdLine, lx.cmdLineStart);
      }
      const node: EditNode = {
        kind: "edit",
        name: lx.vals[1]!,
        children: [],
        loc: this.loc(this.plainText()),
      };
      if (build) parent.children.push(node);
      stack.push(node);
      return;
    }

    if (verb === "next") {
      if (f?.kind !== "edit") {
        this.at(
          0,
          f ? `expected 'end' to close ${describe(f)}, found 'next'` : "'next' without an open 'edit'",
        );
        return;
      }
      if (n > 1) this.at(1, "expected end of line after 'next'");
      f.close = { line: lx.cmdLine, col: lx.cmdCol };
      stack.pop();
      this.lazyDone();
      return;
    }

    if (verb === "config") {
      if (n < 2) {
        this.at(0, "expected a section name after 'config'");
        return;
      }
      const path = lx.vals.slice(1, n);
      if (build && this.atSectionScope(path)) {
        const node = this.lazySection(path);
        (f?.children ?? this.tree.children).push(node);
        this.lazyAt = stack.length;
        stack.push(node);
        return;
      }
      const node: ConfigNode = { kind: "config", path, children: [], loc: this.loc(this.plainText()) };
      if (build) (f?.children ?? this.tree.children).push(node);
      stack.push(node);
      return;
    }

    if (verb === "end") {
      if (f === undefined) {
        this.at(0, "'end' without an open 'config' (ignored)", "warning");
        return;
      }
      if (n > 1) this.at(1, "expected end of line after 'end'");
      const close = { line: lx.cmdLine, col: lx.cmdCol };
      f.close = close;
      stack.pop();
      const g = stack[stack.length - 1];
      if (f.kind === "edit" && g?.kind === "config") {
        g.close = close;
        stack.pop();
      }
      this.lazyDone();
      return;
    }

    if (TABLE_VERBS.has(verb)) {
      if (f?.kind !== "config") {
        this.at(
          0,
          f
            ? `expected 'next' before '${verb}': table commands are only valid directly inside a 'config' block`
            : `expected 'config' before '${verb}'`,
        );
        return;
      }
      const args = lx.vals.slice(1, n);
      const usage = tableUsage(verb as TableVerb, args);
      if (usage !== null) {
        this.at(usage.at + 1, usage.message);
        return;
      }
      if (build)
        f.children.push({ kind: "command", verb: verb as TableVerb, args, loc: this.loc(this.plainText()) });
      return;
    }

    // Right after a secret's `set`: most likely its value wrapped onto this line; say nothing of it.
    if (this.secretLine >= 0 && this.lx.cmdLine - this.secretLine <= 1) {
      this.secretLine = this.lx.cmdLine;
      this.at(
        0,
        `expected a command (${COMMANDS}), found a word of ${verb.length} characters (not shown: the line above sets a secret — is its value wrapped onto this line?)`,
      );
      return;
    }
    this.at(0, `expected a command (${COMMANDS}), found ${shown(verb)}`);
  }

  private setLike(verb: SetVerb, f: Frame | undefined, build: boolean): void {
    const lx = this.lx;
    const n = lx.count;
    if (f === undefined) {
      this.at(0, `expected 'config' before '${verb}': '${verb}' is only valid inside a 'config' block`);
      return;
    }
    if (n < 2) {
      this.at(0, `expected a field name after '${verb}'`);
      return;
    }
    const key = build ? this.intern(lx.vals[1]!) : lx.vals[1]!;
    if (lx.vals[n - 1] === "ENC" || isSecretKey(key, this.configPath())) this.secretLine = lx.cmdLine;
    const valueless = verb === "unset" || verb === "clear";
    if (valueless && n > 2) {
      this.at(2, `expected end of line after '${verb} ${key}'`);
      return;
    }
    if (!valueless && n < 3) {
      this.at(0, `expected a value after '${verb} ${key}'`);
      return;
    }
    if (!build) {
      this.scanSecrets(key, n);
      return;
    }
    const values = lx.vals.slice(2, n);
    const mask = secretValueMask(key, values, this.configPath());
    let node: SetNode;
    if (mask === null) {
      node = { kind: "set", verb, key, values, redacted: false, loc: this.loc(this.plainText()) };
    } else {
      const parts = [lx.raw(0), lx.raw(1)];
      for (let k = 0; k < values.length; k++) {
        if (!mask[k]) parts.push(lx.raw(k + 2));
        else {
          this.secrets.add(values[k]!);
          if (k === 0 || !mask[k - 1]) parts.push(REDACTED);
        }
      }
      node = {
        kind: "set",
        verb,
        key,
        values: applyMask(values, mask),
        redacted: true,
        loc: this.loc(clip(parts.join(" "))),
      };
    }
    f.children.push(node);
  }

  /** The secrets of a command read without building its node (for scrubbing diagnostics). */
  private scanSecrets(key: string, n: number): void {
    const lx = this.lx;
    const path = this.configPath();
    if (!isSecretKey(key, path)) {
      let marked = false;
      for (let k = 2; k < n && !marked; k++) marked = lx.vals[k] === "ENC" || isPem(lx.vals[k]!);
      if (!marked) return;
    }
    const values = lx.vals.slice(2, n);
    const mask = secretValueMask(key, values, path);
    if (mask) for (let k = 0; k < values.length; k++) if (mask[k]) this.secrets.add(values[k]!);
  }
}

/** Parses FortiOS configuration text. Never throws on any input. */
export function parseFortios(text: string, opts: ParseOptions = {}): ParseResult {
  const p = new Parser(text, opts.file ?? "<input>", Math.max(1, opts.maxErrors ?? 100), opts.lazy ?? true);
  p.run();
  return {
    tree: p.tree,
    diagnostics: p.diagnostics,
    errorCount: p.errorCount,
    ok: p.errorCount === 0,
    truncated: p.truncated,
  };
}

function tableUsage(verb: TableVerb, args: string[]): { at: number; message: string } | null {
  const want = (n: number, form: string): { at: number; message: string } | null =>
    args.length === n ? null : { at: Math.min(args.length, n), message: `expected '${form}'` };
  switch (verb) {
    case "purge":
      return want(0, "purge");
    case "delete":
      return want(1, "delete NAME");
    case "rename":
    case "clone": {
      const form = `${verb} NAME to NEW-NAME`;
      const bad = want(3, form);
      if (bad) return bad;
      return args[1] === "to" ? null : { at: 1, message: `expected 'to' in '${form}'` };
    }
    case "move": {
      const bad = want(3, "move NAME before|after OTHER");
      if (bad) return bad;
      return args[1] === "before" || args[1] === "after"
        ? null
        : { at: 1, message: "expected 'before' or 'after' in 'move NAME before|after OTHER'" };
    }
  }
}

/** Parses and throws one `FortiosParseError` carrying every error (warnings are dropped). */
export function parseFortiosStrict(text: string, opts: ParseOptions = {}): ConfigTree {
  const r = parseFortios(text, opts);
  if (!r.ok) throw new FortiosParseError(r.diagnostics.filter((d) => d.severity === "error"));
  return r.tree;
}
