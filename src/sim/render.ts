/**
 * Renderers for a simulation result: text (reads like the daemons' logs), JSON (the contract:
 * `anomalies` and `events`), markdown (for a ticket) and SVG (a timeline chart: one lane per
 * gateway, firewall session lifetimes, markers for drops and DPD).
 */
import type { Anomaly, TimelineEvent } from "./engine.js";
import type { SimResult } from "./scenario.js";

export interface StateInterval {
  up: boolean;
  start: number;
  end: number;
}

/** Up/down intervals per tunnel and gateway, covering [0, duration]. */
export function stateIntervals(r: SimResult): Record<string, Record<string, StateInterval[]>> {
  const out: Record<string, Record<string, StateInterval[]>> = {};
  for (const t of r.tunnels) {
    const per: Record<string, StateInterval[]> = {};
    for (const gw of [t.a, t.b]) {
      const list: StateInterval[] = [];
      let up = false;
      let since = 0;
      for (const tr of r.transitions) {
        if (tr.tunnel !== t.name || tr.gateway !== gw || tr.up === up) continue;
        if (tr.t > since) list.push({ up, start: since, end: tr.t });
        up = tr.up;
        since = tr.t;
      }
      if (r.duration > since || list.length === 0) list.push({ up, start: since, end: r.duration });
      per[gw] = list;
    }
    out[t.name] = per;
  }
  return out;
}

const fmtT = (s: number): string => (Number.isInteger(s) ? `${s}` : s.toFixed(3));

/** Human duration: 93 s, 12 min 5 s, 3 h 20 min, 2 d 4 h. */
export function human(s: number): string {
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min${s % 60 >= 1 ? ` ${Math.round(s % 60)} s` : ""}`;
  if (s < 172800)
    return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.round((s % 3600) / 60)} min` : ""}`;
  return `${Math.floor(s / 86400)} d${s % 86400 >= 3600 ? ` ${Math.round((s % 86400) / 3600)} h` : ""}`;
}

/** One sentence per anomaly. */
export function describeAnomaly(a: Anomaly): string {
  const end =
    a.end === null
      ? "until the end of the run — needs manual action unless a later timer recovers it"
      : `until t=${fmtT(a.end)} s`;
  const span = `from t=${fmtT(a.start)} s ${end} (${human(a.duration)}${a.end === null ? "+" : ""})`;
  switch (a.type) {
    case "asymmetric":
      return `asymmetric state on ${a.tunnel}: ${a.up} UP, ${a.down} DOWN ${span}`;
    case "outage":
      return `outage on ${a.tunnel}: both sides down ${span}${a.reason ? `; started by ${a.reason}` : ""}`;
    case "never-established":
      return `${a.tunnel} never came up (${a.reason ?? ""})`;
    case "flapping":
      return `${a.gateway} flapping on ${a.tunnel}: ${a.transitions} drops between t=${fmtT(a.start)} s and t=${fmtT(a.end ?? a.start)} s`;
    case "black-hole":
      return `black hole ${a.from} → ${a.to} on ${a.tunnel}: ${a.packets} packet(s) sent into an SA that does not deliver ${span}; ${a.reason ?? ""}`;
    case "spi-mismatch":
      return `SPI mismatch on ${a.tunnel}: both sides UP but not on a common SA pair ${span}`;
    case "unknown-verdict":
      return `${a.gateway}'s firewall could not decide ${a.packets} packet(s) from t=${fmtT(a.start)} s on (${a.tunnel}): ${a.reason ?? ""} — what this run shows rests on that assumption`;
  }
}

/** A one-line label for charts. */
export function shortAnomaly(a: Anomaly): string {
  const end = a.end === null ? "end of run (still open: manual action)" : `${fmtT(a.end)} s`;
  const when = `${fmtT(a.start)} s → ${end}`;
  switch (a.type) {
    case "asymmetric":
      return `asymmetric: ${a.up} UP, ${a.down} DOWN, ${when}`;
    case "outage":
      return `outage (both down), ${when}`;
    case "never-established":
      return "never established";
    case "flapping":
      return `${a.gateway} flapping: ${a.transitions} drops, ${fmtT(a.start)}–${fmtT(a.end ?? a.start)} s`;
    case "black-hole":
      return `black hole ${a.from} → ${a.to}: ${a.packets} pkt lost, ${when} (${(a.reason ?? "").slice(0, 60)})`;
    case "spi-mismatch":
      return `SPI mismatch, ${when}`;
    case "unknown-verdict":
      return `${a.gateway}: ${a.packets} undecided packet(s) from ${fmtT(a.start)} s (assumed)`;
  }
}

export interface TextOptions {
  /** Minimum level of timeline lines: "state" | "info" | "debug" (default info). */
  level?: "state" | "info" | "debug";
  /** Render times as wall-clock timestamps from this start (e.g. "2024-01-14T16:12:00Z"). */
  epoch?: string | Date;
  /** Only these gateways. */
  gateways?: string[];
  /** Cap on timeline lines (default: all). */
  maxLines?: number;
}

const LEVELS = { state: 1, info: 2, debug: 3 } as const;

function stamp(t: number, epoch?: string | Date): string {
  if (epoch === undefined) return `+${t.toFixed(3).padStart(10)}s`;
  const d = new Date(new Date(epoch).getTime() + t * 1000);
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

function filterEvents(r: SimResult, o: TextOptions): TimelineEvent[] {
  const min = LEVELS[o.level ?? "info"];
  return r.events.filter((e) => LEVELS[e.level] <= min && (!o.gateways || o.gateways.includes(e.gateway)));
}

export function renderText(r: SimResult, o: TextOptions = {}): string {
  const lines: string[] = [];
  lines.push(
    `tunnelcheck simulate: ${r.tunnels.map((t) => `${t.a} <-> ${t.b}`).join(", ")}, ${human(r.duration)} of virtual time, seed ${r.seed}`,
  );
  for (const g of r.gateways) {
    lines.push(
      `  ${g.name.padEnd(10)} ${g.address.padEnd(16)} ${g.vendor} IKEv${g.ikeVersion}, firewall: ${g.firewall ?? "none"}`,
    );
  }
  lines.push("");
  lines.push(r.anomalies.length === 0 ? "No anomalies." : `Anomalies (${r.anomalies.length}):`);
  for (const a of r.anomalies) lines.push(`  - ${describeAnomaly(a)}`);
  lines.push("");
  lines.push("State:");
  const st = stateIntervals(r);
  for (const [tn, per] of Object.entries(st)) {
    for (const [gw, list] of Object.entries(per)) {
      const parts = list.map((i) => `${i.up ? "UP" : "down"} ${fmtT(i.start)}–${fmtT(i.end)}`);
      lines.push(
        `  ${tn} ${gw.padEnd(10)} ${parts.length > 12 ? `${parts.slice(0, 12).join(", ")}, … (${parts.length} intervals)` : parts.join(", ")}`,
      );
    }
  }
  lines.push("");
  lines.push("Timeline:");
  const evs = filterEvents(r, o);
  const shown = o.maxLines !== undefined ? evs.slice(0, o.maxLines) : evs;
  const w = Math.max(...r.gateways.map((g) => g.name.length), 4);
  for (const e of shown) lines.push(`${stamp(e.t, o.epoch)} ${e.gateway.padEnd(w)} ${e.msg}`);
  if (shown.length < evs.length) lines.push(`… ${evs.length - shown.length} more lines`);
  return `${lines.join("\n")}\n`;
}

export interface JsonOptions {
  level?: "state" | "info" | "debug";
  /** Leave out the event list (large runs). */
  events?: boolean;
  /** What the scenario builder assumed or could not read (defaults used, NAT without forwards…). */
  notes?: readonly string[];
}

/** The JSON contract: at least `anomalies` and `events` (`t` in seconds). */
export function renderJson(r: SimResult, o: JsonOptions = {}): string {
  const events = o.events === false ? [] : filterEvents(r, { level: o.level ?? "info" });
  return JSON.stringify(
    {
      duration: r.duration,
      seed: r.seed,
      gateways: r.gateways,
      tunnels: r.tunnels,
      anomalies: r.anomalies,
      states: stateIntervals(r),
      sessions: r.sessions,
      drops: { total: r.dropCount, recorded: r.drops.length },
      notes: o.notes ?? [],
      events,
    },
    null,
    2,
  );
}

export function renderMarkdown(r: SimResult, o: TextOptions = {}): string {
  const out: string[] = [];
  out.push(`## Simulation: ${r.tunnels.map((t) => `${t.a} ⇄ ${t.b}`).join(", ")}`);
  out.push("");
  out.push(`${human(r.duration)} of virtual time, seed ${r.seed}.`);
  out.push("");
  out.push("| gateway | address | daemon | firewall |");
  out.push("|---|---|---|---|");
  for (const g of r.gateways)
    out.push(`| ${g.name} | ${g.address} | ${g.vendor} IKEv${g.ikeVersion} | ${g.firewall ?? "none"} |`);
  out.push("");
  out.push("### Anomalies");
  out.push("");
  if (r.anomalies.length === 0) out.push("None.");
  else {
    out.push("| type | tunnel | up | down | start (s) | end (s) | duration | detail |");
    out.push("|---|---|---|---|---|---|---|---|");
    for (const a of r.anomalies) {
      const detail =
        a.type === "black-hole"
          ? `${a.from} → ${a.to}, ${a.packets} pkt; ${a.reason ?? ""}`
          : a.type === "flapping"
            ? `${a.gateway}: ${a.transitions} drops`
            : a.type === "unknown-verdict"
              ? `${a.gateway}: ${a.packets} pkt; ${a.reason ?? ""}`
              : (a.reason ?? "");
      out.push(
        `| ${a.type} | ${a.tunnel} | ${a.up ?? ""} | ${a.down ?? ""} | ${fmtT(a.start)} | ${a.end === null ? "**still open** (manual action)" : fmtT(a.end)} | ${human(a.duration)} | ${detail.replace(/\|/g, "\\|")} |`,
      );
    }
  }
  out.push("");
  out.push("### State");
  out.push("");
  out.push("| tunnel | gateway | intervals |");
  out.push("|---|---|---|");
  for (const [tn, per] of Object.entries(stateIntervals(r))) {
    for (const [gw, list] of Object.entries(per)) {
      const parts = list.map((i) => `${i.up ? "**UP**" : "down"} ${fmtT(i.start)}–${fmtT(i.end)}`);
      out.push(
        `| ${tn} | ${gw} | ${parts.length > 10 ? `${parts.slice(0, 10).join(", ")}, … (${parts.length})` : parts.join(", ")} |`,
      );
    }
  }
  out.push("");
  out.push("### Timeline");
  out.push("");
  out.push("```");
  const evs = filterEvents(r, { level: o.level ?? "info", ...(o.gateways ? { gateways: o.gateways } : {}) });
  const max = o.maxLines ?? 400;
  for (const e of evs.slice(0, max)) out.push(`${stamp(e.t, o.epoch)} ${e.gateway} ${e.msg}`);
  if (evs.length > max) out.push(`… ${evs.length - max} more lines`);
  out.push("```");
  return `${out.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// SVG

export interface SvgOptions {
  /** Time window in seconds (default: the whole run). */
  from?: number;
  to?: number;
  width?: number;
  title?: string;
  /** Session rows per firewall (default 6). */
  maxSessionRows?: number;
}

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function niceStep(span: number, target: number): number {
  const raw = span / target;
  const steps = [
    1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
    604800,
  ];
  return steps.find((s) => s >= raw) ?? steps[steps.length - 1]!;
}

function tickLabel(s: number, step: number): string {
  if (step < 60) return `${s} s`;
  if (step < 3600) return `${Math.round((s / 60) * 10) / 10} min`;
  if (step < 86400) return `${Math.round((s / 3600) * 10) / 10} h`;
  return `${Math.round((s / 86400) * 10) / 10} d`;
}

const MARKERS: Record<string, { color: string; shape: "tick" | "tri" | "dot"; label: string }> = {
  "dpd-send": { color: "#1f6fd1", shape: "tick", label: "DPD probe" },
  "dpd-fail": { color: "#111", shape: "tri", label: "peer declared dead" },
  "dpd-action": { color: "#111", shape: "tri", label: "peer declared dead" },
  "dpd-timeout": { color: "#111", shape: "tri", label: "peer declared dead" },
  "delete-send": { color: "#8a2be2", shape: "dot", label: "DELETE sent" },
  "ike-initiate": { color: "#666", shape: "tick", label: "IKE initiation" },
};

/** A timeline chart an engineer can paste into a ticket. */
export function renderSvg(r: SimResult, o: SvgOptions = {}): string {
  const from = o.from ?? 0;
  const to = o.to ?? r.duration;
  const span = Math.max(to - from, 1e-3);
  const W = o.width ?? 1200;
  const left = 240;
  const right = 20;
  const plotW = W - left - right;
  const x = (t: number): number => left + ((Math.min(Math.max(t, from), to) - from) / span) * plotW;
  const inWin = (t: number): boolean => t >= from && t <= to;
  const parts: string[] = [];
  let y = 58;
  const laneH = 22;
  const rowH = 9;
  const maxRows = o.maxSessionRows ?? 6;
  const states = stateIntervals(r);
  const laneYs: Record<string, number> = {};
  const fwYs: Record<string, number> = {};

  const title = o.title ?? `tunnelcheck simulate — ${r.tunnels.map((t) => `${t.a} ⇄ ${t.b}`).join(", ")}`;
  parts.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(
    `<text x="${left}" y="40" font-size="11" fill="#444">${esc(`${tickLabel(from, span / 6)} – ${tickLabel(to, span / 6)} of virtual time · seed ${r.seed} · ${r.anomalies.length} anomal${r.anomalies.length === 1 ? "y" : "ies"}`)}</text>`,
  );

  const body: string[] = [];
  for (const t of r.tunnels) {
    for (const gw of [t.a, t.b]) {
      const g = r.gateways.find((x) => x.name === gw);
      laneYs[`${t.name}|${gw}`] = y;
      body.push(
        `<text x="${left - 8}" y="${y + 15}" font-size="12" text-anchor="end" font-weight="bold">${esc(gw)}</text>`,
      );
      body.push(
        `<text x="${left - 8}" y="${y + 27}" font-size="9" text-anchor="end" fill="#555">${esc(g ? `${g.vendor} IKEv${g.ikeVersion}` : "")}</text>`,
      );
      for (const iv of states[t.name]?.[gw] ?? []) {
        if (iv.end < from || iv.start > to) continue;
        const x0 = x(iv.start);
        const w = Math.max(x(iv.end) - x0, 0.5);
        body.push(
          `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${laneH}" fill="${iv.up ? "#3aa655" : "#d9d9d9"}"><title>${esc(`${gw} ${iv.up ? "UP" : "down"} ${fmtT(iv.start)}–${fmtT(iv.end)} s`)}</title></rect>`,
        );
        if (w > 40)
          body.push(
            `<text x="${(x0 + 4).toFixed(1)}" y="${y + 15}" font-size="10" fill="${iv.up ? "#fff" : "#666"}">${iv.up ? "UP" : "down"}</text>`,
          );
      }
      // Daemon event markers on the lane.
      const seenPx = new Set<string>();
      for (const e of r.events) {
        const m = MARKERS[e.type];
        if (!m || e.gateway !== gw || (e.tunnel !== undefined && e.tunnel !== t.name) || !inWin(e.t))
          continue;
        const px = x(e.t);
        const key = `${e.type}|${Math.round(px)}`;
        if (seenPx.has(key)) continue;
        seenPx.add(key);
        if (m.shape === "tick")
          body.push(
            `<line x1="${px.toFixed(1)}" y1="${y - 4}" x2="${px.toFixed(1)}" y2="${y + 4}" stroke="${m.color}" stroke-width="1.5"><title>${esc(`${fmtT(e.t)} s ${e.msg}`)}</title></line>`,
          );
        else if (m.shape === "tri")
          body.push(
            `<path d="M${px.toFixed(1)},${y + laneH + 1} l-5,8 h10 z" fill="${m.color}"><title>${esc(`${fmtT(e.t)} s ${e.msg}`)}</title></path>`,
          );
        else
          body.push(
            `<circle cx="${px.toFixed(1)}" cy="${y + laneH + 5}" r="3.5" fill="${m.color}"><title>${esc(`${fmtT(e.t)} s ${e.msg}`)}</title></circle>`,
          );
      }
      y += laneH + 14;
      // Firewall sessions of this gateway (its own firewall) and the drops there.
      const sess = r.sessions.filter(
        (s) => s.owner === gw && s.start <= to && (s.end === null || s.end >= from),
      );
      const rows = new Map<string, { start: number; end: number }[]>();
      for (const s of sess) {
        const label = s.label
          .replace(/^proto=17 /, "udp ")
          .replace(/^proto=50 /, "esp ")
          .replace(/^proto=6 /, "tcp ")
          .replace("->", " → ");
        const list = rows.get(label) ?? [];
        list.push({ start: s.start, end: s.end ?? r.duration });
        rows.set(label, list);
      }
      const drops = r.drops.filter((d) => d.owner === gw && inWin(d.t));
      if (rows.size > 0 || drops.length > 0 || r.gateways.find((q) => q.name === gw)?.firewall) {
        fwYs[gw] = y;
        const hasFw = !!r.gateways.find((q) => q.name === gw)?.firewall;
        body.push(
          `<text x="${left + 2}" y="${y + 8}" font-size="10" fill="#333" font-style="italic">${esc(hasFw ? `${gw} firewall: sessions and drops` : `${gw}: packets dropped locally (no firewall)`)}</text>`,
        );
        y += 12;
        // IKE ports first: they are the ones that matter here.
        const ordered = [...rows.entries()].sort(
          (a, b) =>
            Number(/:(500|4500)\b/.test(b[0])) - Number(/:(500|4500)\b/.test(a[0])) ||
            a[1][0]!.start - b[1][0]!.start,
        );
        const shown = ordered.slice(0, maxRows);
        let ry = y;
        for (const [label, list] of shown) {
          for (const iv of list) {
            if (iv.end < from || iv.start > to) continue;
            const x0 = x(iv.start);
            const w = Math.max(x(iv.end) - x0, 1);
            body.push(
              `<rect x="${x0.toFixed(1)}" y="${ry + 1}" width="${w.toFixed(1)}" height="${rowH - 2}" fill="#f0a93b" rx="2"><title>${esc(`${label}: ${fmtT(iv.start)}–${fmtT(iv.end)} s`)}</title></rect>`,
            );
          }
          body.push(
            `<text x="${left - 6}" y="${ry + rowH - 1}" font-size="8" text-anchor="end" fill="#7a5000">${esc(label)}</text>`,
          );
          ry += rowH;
        }
        if (ordered.length > shown.length) {
          body.push(
            `<text x="${left + 2}" y="${ry + 8}" font-size="8" fill="#777">${esc(`+${ordered.length - shown.length} more session tuples`)}</text>`,
          );
          ry += rowH;
        }
        ry = Math.max(ry, y + rowH);
        if (drops.length > 0)
          body.push(
            `<text x="${left - 6}" y="${ry + 8}" font-size="8" text-anchor="end" fill="#b00">drops</text>`,
          );
        const seen = new Set<number>();
        for (const d of drops) {
          const px = Math.round(x(d.t));
          if (seen.has(px)) continue;
          seen.add(px);
          const c = d.kind === "ike" ? "#d62728" : "#ff7f0e";
          body.push(
            `<g stroke="${c}" stroke-width="1.6"><title>${esc(`${fmtT(d.t)} s ${d.device} dropped ${d.label}${d.rule ? ` (${d.rule})` : ""}`)}</title><line x1="${px - 3}" y1="${ry + 1}" x2="${px + 3}" y2="${ry + 7}"/><line x1="${px - 3}" y1="${ry + 7}" x2="${px + 3}" y2="${ry + 1}"/></g>`,
          );
        }
        y = ry + 22;
      } else {
        y += 4;
      }
    }
    y += 8;
  }
  const plotTop = 50;
  const plotBottom = y;

  // Anomaly bands behind everything.
  const bands: string[] = [];
  let labelY = plotBottom + 36;
  const labels: string[] = [];
  for (const a of r.anomalies) {
    const end = a.end ?? r.duration;
    if (end < from || a.start > to) continue;
    const color =
      a.type === "asymmetric"
        ? "#ff9800"
        : a.type === "black-hole"
          ? "#d62728"
          : a.type === "outage" || a.type === "never-established"
            ? "#9e9e9e"
            : "#9c27b0";
    const x0 = x(a.start);
    const w = Math.max(x(end) - x0, 1);
    if (a.type === "black-hole") {
      const ly = laneYs[`${a.tunnel}|${a.from}`];
      if (ly !== undefined)
        bands.push(
          `<rect x="${x0.toFixed(1)}" y="${ly - 8}" width="${w.toFixed(1)}" height="4" fill="${color}" opacity="0.8"><title>${esc(describeAnomaly(a))}</title></rect>`,
        );
    } else {
      bands.push(
        `<rect x="${x0.toFixed(1)}" y="${plotTop}" width="${w.toFixed(1)}" height="${plotBottom - plotTop}" fill="${color}" opacity="0.13"><title>${esc(describeAnomaly(a))}</title></rect>`,
      );
      bands.push(
        `<line x1="${x0.toFixed(1)}" y1="${plotTop}" x2="${x0.toFixed(1)}" y2="${plotBottom}" stroke="${color}" stroke-dasharray="4,3"/>`,
      );
    }
    labels.push(
      `<rect x="20" y="${labelY - 9}" width="10" height="10" fill="${color}" opacity="0.6"/><text x="36" y="${labelY}" font-size="11">${esc(shortAnomaly(a))}<title>${esc(describeAnomaly(a))}</title></text>`,
    );
    labelY += 16;
  }

  // Axis.
  const step = niceStep(span, 10);
  const axis: string[] = [];
  const first = Math.ceil(from / step) * step;
  for (let t = first; t <= to + 1e-9; t += step) {
    const px = x(t);
    axis.push(
      `<line x1="${px.toFixed(1)}" y1="${plotTop}" x2="${px.toFixed(1)}" y2="${plotBottom}" stroke="#eee"/>`,
    );
    axis.push(
      `<text x="${px.toFixed(1)}" y="${plotBottom + 4 + 0}" font-size="9" text-anchor="middle" fill="#555" dy="0.8em">${esc(tickLabel(t, step))}</text>`,
    );
  }
  labelY += 6;
  // Legend.
  const legend: string[] = [];
  const lx = 20;
  const items: [string, string][] = [
    ["#3aa655", "tunnel UP (IKE SA + CHILD SA)"],
    ["#d9d9d9", "down"],
    ["#f0a93b", "firewall session / conntrack entry"],
  ];
  let cx = lx;
  for (const [c, l] of items) {
    legend.push(
      `<rect x="${cx}" y="${labelY}" width="12" height="10" fill="${c}"/><text x="${cx + 16}" y="${labelY + 9}" font-size="10">${esc(l)}</text>`,
    );
    cx += 30 + l.length * 5.6;
  }
  legend.push(
    `<g stroke="#d62728" stroke-width="1.6"><line x1="${cx}" y1="${labelY}" x2="${cx + 8}" y2="${labelY + 10}"/><line x1="${cx}" y1="${labelY + 10}" x2="${cx + 8}" y2="${labelY}"/></g><text x="${cx + 12}" y="${labelY + 9}" font-size="10">IKE packet dropped</text>`,
  );
  cx += 125;
  legend.push(
    `<g stroke="#ff7f0e" stroke-width="1.6"><line x1="${cx}" y1="${labelY}" x2="${cx + 8}" y2="${labelY + 10}"/><line x1="${cx}" y1="${labelY + 10}" x2="${cx + 8}" y2="${labelY}"/></g><text x="${cx + 12}" y="${labelY + 9}" font-size="10">data dropped</text>`,
  );
  cx += 95;
  legend.push(
    `<line x1="${cx}" y1="${labelY - 1}" x2="${cx}" y2="${labelY + 11}" stroke="#1f6fd1" stroke-width="1.5"/><text x="${cx + 5}" y="${labelY + 9}" font-size="10">DPD probe</text>`,
  );
  cx += 75;
  legend.push(
    `<path d="M${cx + 5},${labelY} l-5,9 h10 z" fill="#111"/><text x="${cx + 14}" y="${labelY + 9}" font-size="10">peer declared dead</text>`,
  );
  cx += 125;
  legend.push(
    `<circle cx="${cx + 4}" cy="${labelY + 5}" r="3.5" fill="#8a2be2"/><text x="${cx + 12}" y="${labelY + 9}" font-size="10">DELETE sent</text>`,
  );
  const H = labelY + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...axis,
    ...bands,
    ...parts,
    ...body,
    ...labels,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}
