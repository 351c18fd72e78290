/** Numbers as C reads them, where iptables takes them with strtoul/strtoumax base 0. */

/**
 * C `strtoumax(text + at, &end, 0)` as xtables_strtoui reads a number: leading blanks, '+', octal
 * `010`, hex `0x50`. The value and where it stopped; null when no digit was read or it exceeds `max`.
 */
export function strtoui(text: string, at: number, max: number): { value: number; end: number } | null {
  let i = at;
  // isspace: ' ' and \t..\r.
  for (let c = text.charCodeAt(i); c === 32 || (c >= 9 && c <= 13); c = text.charCodeAt(++i));
  if (text.charCodeAt(i) === 43) i++; // '+'
  let radix = 10;
  if (text.charCodeAt(i) === 48) {
    radix = 8;
    const x = text.charCodeAt(i + 1) | 32;
    if (x === 120 && digitValue(text.charCodeAt(i + 2)) < 16) {
      radix = 16;
      i += 2;
    }
  }
  const from = i;
  let value = 0;
  for (let d = digitValue(text.charCodeAt(i)); d < radix; d = digitValue(text.charCodeAt(++i)))
    value = value * radix + d;
  if (i === from) return null;
  return value <= max ? { value, end: i } : null;
}

/** 0-9, a-f, A-F → 0..15; anything else (NaN past the end too) → 99. */
function digitValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  return l >= 97 && l <= 102 ? l - 87 : 99;
}

/** `strtoui` over the whole text (xtables_strtoui with a NULL end pointer). */
export function strtouiFull(text: string, max: number): number | undefined {
  const r = strtoui(text, 0, max);
  return r !== null && r.end === text.length ? r.value : undefined;
}
