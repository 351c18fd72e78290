const UNIT: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `30m`, `2h`, `7d`, `1h30m`, or plain seconds; null when it is none of these. */
export function parseDuration(v: string | number): number | null {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? v : null;
  const t = v.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === t.length && pos > 0 ? total : null;
}
