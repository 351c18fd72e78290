/** Numbers as C reads them, where iptables takes them with strtoul/strtoumax base 0. */

/**
 * C `strtoumax(text + at, &end, 0)` as xtables_strtoui reads a number: leading blanks, '+', octal
 * `010`, hex `0x50`. The value and where it stopped; null when no digit was read or it exceeds `max`.
 */
export function strtoui(text: string, at: number, max: number): { value: number; end: number } | null {
  let i = at;
  while (i < text.length && " \t\n\v\f\r".includes(text[i]!)) i++;
  if (text[i] === "+") i++;
  let radix = 10;
  if (text[i] === "0") {
    radix = 8;
    if ((text[i + 1] === "x" || text[i + 1] === "X") && /[0-9a-fA-F]/.test(text[i + 2] ?? "")) {
      radix = 16;
      i += 2;
    }
  }
  const digit = radix === 16 ? /[0-9a-fA-F]/ : radix === 8 ? /[0-7]/ : /[0-9]/;
  const from = i;
  while (i < text.length && digit.test(text[i]!)) i++;
  if (i === from) return null;
  const value = Number.parseInt(text.slice(from, i), radix);
  return value <= max ? { value, end: i } : null;
}

/** `strtoui` over the whole text (xtables_strtoui with a NULL end pointer). */
export function strtouiFull(text: string, max: number): number | undefined {
  const r = strtoui(text, 0, max);
  return r !== null && r.end === text.length ? r.value : undefined;
}
