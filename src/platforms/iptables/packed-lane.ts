/**
 * The packed lane (issue 3's cold parse): the canonical matches of an `iptables-save` rule line,
 * read straight into the columns a packed rule keeps (RuleStore), with no object, no string and
 * no map look-up per option. It accepts a strict subset of what the parser's direct path accepts
 * without a diagnostic — `[!] -s/-d a.b.c.d[/len]`, `[!] -p proto`, `-m comment --comment TEXT`,
 * `-m tcp|udp [--dport N] [--sport N]`, then `-j`/`-g` last — so a packed rule built again from
 * its line by the direct path is the rule the lane read. Anything else (another option, a quoted
 * or non-canonical value, a repeat) makes it give up having changed nothing; the direct path then
 * reads the line as before.
 */
import { protoNumber } from "./names.js";
import { V4_ADDR, v4At } from "./values.js";

/** What scanLean read of one line; -1 (or false) where the line has no such part. */
export class LeanLine {
  /** The rule index's prefixes: length -1 (address 0) for none, an inverted one or a /0. */
  srcLen = -1;
  srcAddr = 0;
  srcInv = false;
  dstLen = -1;
  dstAddr = 0;
  dstInv = false;
  /** `-p` (-1: none) and whether it is inverted. */
  proto = -1;
  protoInv = false;
  /** The protocol a `-m tcp` (6) or `-m udp` (17) match requires, 0 for none. */
  l4 = 0;
  /** That match's --dport, -1 for none. */
  dport = -1;
}

/** A line's longest comment the lane takes (the direct path checks longer ones' byte length). */
const COMMENT_MAX = 85;
/** Modules per line the lane takes (the direct path's limit is higher). */
const MODULES_MAX = 8;

/** Whether `line[s, e)` is `word`. */
function isWord(line: string, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (line.charCodeAt(s + i) !== word.charCodeAt(i)) return false;
  return true;
}

/** `line[s, e)` as a decimal port without a leading zero (or "0"), at most 65535; else -1. */
export function decimalPort(line: string, s: number, e: number): number {
  const len = e - s;
  if (len < 1 || len > 5 || (len > 1 && line.charCodeAt(s) === 48)) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = line.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= 65535 ? v : -1;
}

/**
 * Reads the options of an `-A chain …` line (tokens from 2 on, as the parser's fast tokenizers
 * left them: a negative start is a quoted token) into `out`. The index of its `-j`/`-g` token, nt
 * when it has none, or -1 when the lane leaves the line to the direct path.
 */
export function scanLean(
  line: string,
  nt: number,
  starts: Int32Array,
  ends: Int32Array,
  out: LeanLine,
): number {
  out.srcLen = -1;
  out.srcAddr = 0;
  out.srcInv = false;
  out.dstLen = -1;
  out.dstAddr = 0;
  out.dstInv = false;
  out.proto = -1;
  out.protoInv = false;
  out.l4 = 0;
  out.dport = -1;
  let srcSeen = false;
  let dstSeen = false;
  let inv = false;
  let modules = 0;
  let k = 2;
  while (k < nt) {
    const s = starts[k]!;
    if (s < 0 || ends[k]! - s > 2) return -1;
    const c0 = line.charCodeAt(s);
    if (ends[k]! - s === 1) {
      if (c0 !== 33 || inv) return -1; // '!'
      inv = true;
      k++;
      continue;
    }
    if (c0 !== 45) return -1;
    const c1 = line.charCodeAt(s + 1);
    if (c1 === 106 || c1 === 103) return inv ? -1 : k; // -j, -g
    if (k + 1 >= nt) return -1;
    const as = starts[k + 1]!;
    const ae = ends[k + 1]!;
    if (as < 0) return -1;
    if (c1 === 115 || c1 === 100) {
      // -s, -d
      const src = c1 === 115;
      if (src ? srcSeen : dstSeen) return -1;
      const len = v4At(line, as, ae);
      if (len < 0) return -1;
      // The rule index's prefix: none for an inverted or zero-length one.
      const indexed = !inv && len > 0;
      if (src) {
        srcSeen = true;
        out.srcLen = indexed ? len : -1;
        out.srcAddr = indexed ? V4_ADDR[0]! >>> 0 : 0;
        out.srcInv = inv;
      } else {
        dstSeen = true;
        out.dstLen = indexed ? len : -1;
        out.dstAddr = indexed ? V4_ADDR[0]! >>> 0 : 0;
        out.dstInv = inv;
      }
      inv = false;
      k += 2;
      continue;
    }
    if (c1 === 112) {
      // -p
      if (out.proto >= 0) return -1;
      const pn = isWord(line, as, ae, "tcp")
        ? 6
        : isWord(line, as, ae, "udp")
          ? 17
          : protoNumber(line.slice(as, ae));
      if (pn === undefined || pn === 0) return -1;
      out.proto = pn;
      out.protoInv = inv;
      inv = false;
      k += 2;
      continue;
    }
    if (c1 !== 109 || inv || ++modules > MODULES_MAX) return -1; // -m, not inverted
    k += 2;
    if (isWord(line, as, ae, "comment")) {
      // --comment TEXT, at once (the only option of the module).
      if (k + 1 >= nt) return -1;
      const os = starts[k]!;
      if (os < 0 || !isWord(line, os, ends[k]!, "--comment")) return -1;
      const ts = starts[k + 1]!;
      const te = ends[k + 1]!;
      if (ts >= 0) {
        // An unquoted `!`, `-4`, `-6`, `--ipv4`, `--ipv6` is not a comment to the direct path.
        const c = line.charCodeAt(ts);
        if (c === 33 || c === 45) return -1;
      }
      if (te - (ts < 0 ? -ts - 1 : ts) > COMMENT_MAX) return -1;
      k += 2;
      continue;
    }
    const l4 = isWord(line, as, ae, "tcp") ? 6 : isWord(line, as, ae, "udp") ? 17 : 0;
    if (l4 === 0 || out.l4 !== 0) return -1;
    out.l4 = l4;
    // Its --dport and --sport (decimal, once each), right after it.
    let sport = false;
    while (k + 1 < nt) {
      const os = starts[k]!;
      const ps = starts[k + 1]!;
      if (os < 0 || ps < 0) break;
      const dport = isWord(line, os, ends[k]!, "--dport");
      if (!dport && !isWord(line, os, ends[k]!, "--sport")) break;
      if (dport ? out.dport >= 0 : sport) return -1;
      const port = decimalPort(line, ps, ends[k + 1]!);
      if (port < 0) return -1;
      if (dport) out.dport = port;
      else sport = true;
      k += 2;
    }
  }
  return inv ? -1 : nt;
}

/** The standard verdict `line[s, e)` names ("" for none), compared in place. */
export function verdictAt(line: string, s: number, e: number): "" | "ACCEPT" | "DROP" | "RETURN" | "QUEUE" {
  const n = e - s;
  if (n === 6) {
    if (isWord(line, s, e, "ACCEPT")) return "ACCEPT";
    if (isWord(line, s, e, "RETURN")) return "RETURN";
  } else if (n === 4) {
    if (isWord(line, s, e, "DROP")) return "DROP";
  } else if (n === 5 && isWord(line, s, e, "QUEUE")) return "QUEUE";
  return "";
}

/** How many target parts a TargetMemo keeps. */
const MEMO_SIZE = 8;

/**
 * The last few target parts (`-j NAME options…`, to the end of the line) the lane read in one
 * table, with what they gave. Reading a target with options is a function of its text, the table,
 * the chain when it is built-in (its hook) and the rule's protocol only, and dumps repeat a few of
 * them over and over (`-j REJECT --reject-with icmp-port-unreachable`, kube-proxy's `-j MARK
 * --set-xmark 0x4000/0x4000`): a repeat is compared in place, not read and built again. A hit moves
 * one place up, a new part replaces the last.
 */
export class TargetMemo {
  private readonly texts: string[] = [];
  private readonly keys: number[] = [];
  readonly hookCheck: boolean[] = [];
  readonly allowed: number[] = [];
  readonly flags: number[] = [];

  /** The entry whose text is `line` from `from` on, read with context `key`; -1 for none. */
  find(line: string, from: number, key: number): number {
    const n = line.length - from;
    const texts = this.texts;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      if (t.length !== n || this.keys[i] !== key || !line.startsWith(t, from)) continue;
      if (i === 0) return 0;
      this.swap(i, i - 1);
      return i - 1;
    }
    return -1;
  }

  add(text: string, key: number, hookCheck: boolean, allowed: number, flags: number): void {
    const i = this.texts.length < MEMO_SIZE ? this.texts.length : MEMO_SIZE - 1;
    this.texts[i] = text;
    this.keys[i] = key;
    this.hookCheck[i] = hookCheck;
    this.allowed[i] = allowed;
    this.flags[i] = flags;
  }

  private swap(i: number, j: number): void {
    const swap = <T>(a: T[]) => {
      const x = a[i]!;
      a[i] = a[j]!;
      a[j] = x;
    };
    swap(this.texts);
    swap(this.keys);
    swap(this.hookCheck);
    swap(this.allowed);
    swap(this.flags);
  }
}
