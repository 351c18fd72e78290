/**
 * Splits one iptables-restore line into arguments the way iptables does (xshared.c
 * `add_param_to_argv`): blanks separate; `"` opens and closes a quoted part; inside quotes a
 * backslash makes the next character literal (`\"`, `\\`); outside quotes a backslash is an
 * ordinary character. A closing quote ends the argument. iptables-save writes strings that way
 * (`xtables_save_string`), so comments and prefixes with blanks and quotes round-trip.
 */

export interface Token {
  text: string;
  /** 1-based column of the token's first character (its opening quote, if quoted). */
  col: number;
  /** Some part was quoted: `"-j"` is then still an option to iptables, but a value to us when in doubt. */
  quoted: boolean;
}

export interface TokenizeResult {
  tokens: Token[];
  /** Set for an unterminated quote: 1-based column of the opening quote. */
  unterminatedQuoteCol?: number;
}

const SPACE = 32;
const TAB = 9;
const CR = 13;
const LF = 10;
const QUOTE = 34;
const BACKSLASH = 92;

export function tokenize(line: string): TokenizeResult {
  const tokens: Token[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === SPACE || c === TAB || c === CR || c === LF) {
      i++;
      continue;
    }
    const start = i;
    // Fast path: a plain run without quotes.
    while (i < n) {
      c = line.charCodeAt(i);
      if (c === SPACE || c === TAB || c === CR || c === LF || c === QUOTE) break;
      i++;
    }
    if (i >= n || c !== QUOTE) {
      tokens.push({ text: line.slice(start, i), col: start + 1, quoted: false });
      continue;
    }
    // Slow path: the argument has a quoted part.
    let text = line.slice(start, i);
    const quoteCol = i + 1;
    i++; // opening quote
    let closed = false;
    while (i < n) {
      // Copy the run up to the next quote or backslash in one slice.
      let j = i;
      while (j < n) {
        c = line.charCodeAt(j);
        if (c === QUOTE || c === BACKSLASH) break;
        j++;
      }
      if (j > i) text += line.slice(i, j);
      i = j;
      if (i >= n) break;
      if (c === BACKSLASH) {
        if (i + 1 < n) text += line[i + 1]; // a trailing backslash is dropped, as iptables does
        i += 2;
        continue;
      }
      closed = true; // the closing quote
      i++;
      break;
    }
    tokens.push({ text, col: start + 1, quoted: true });
    if (!closed) return { tokens, unterminatedQuoteCol: quoteCol };
  }
  return { tokens };
}

const PLAIN = /^[A-Za-z0-9_-]+$/;
const BARE_OK = /^[^\s"\\]+$/;

/**
 * Quotes only when the value would not survive tokenizing bare (blanks, quotes, backslashes,
 * empty, a lone `!`): how iptables-save prints most option values, which it does not quote.
 */
export function quoteIfNeeded(value: string): string {
  return BARE_OK.test(value) && value !== "!" ? value : `"${value.replace(/["\\]/g, (m) => `\\${m}`)}"`;
}

/** Quotes a value as iptables-save does: bare when only `[A-Za-z0-9_-]`, else `"…"` escaping `"`, `\`, `'`. */
export function quoteArg(value: string): string {
  if (PLAIN.test(value)) return value;
  return `"${value.replace(/["\\']/g, (m) => `\\${m}`)}"`;
}
