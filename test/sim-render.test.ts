/** Renderers: the JSON contract, text/markdown content, and a well-formed SVG timeline. */
import { describe, expect, it } from "vitest";
import {
  renderJson,
  renderMarkdown,
  renderSvg,
  renderText,
  seed001Scenario,
  simulate,
  strongswanLabScenario,
} from "../src/sim/index.js";

const seed = simulate(seed001Scenario({ duration: 900 }));

/** Minimal XML well-formedness: tags balance, attributes quoted, no stray `<` or `&`. */
function wellFormed(xml: string): void {
  const stack: string[] = [];
  const body = xml.replace(/<\?xml[^>]*\?>/, "");
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|#\d+);)/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    if (m[0] === "<" || m[0] === "&")
      throw new Error(`stray ${m[0]} at ${m.index}: ${body.slice(m.index, m.index + 60)}`);
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new Error(`</${name}> closes <${top}>`);
    } else stack.push(name!);
  }
  expect(stack).toEqual([]);
}

describe("renderers", () => {
  it("JSON: anomalies and events with t (seconds), gateway, type", () => {
    const j = JSON.parse(renderJson(seed));
    expect(j.anomalies).toEqual([
      {
        tunnel: "site1-site2",
        type: "asymmetric",
        up: "site2",
        down: "site1",
        start: 321,
        end: null,
        duration: 579,
      },
    ]);
    expect(j.events.length).toBeGreaterThan(20);
    for (const e of j.events) {
      expect(typeof e.t).toBe("number");
      expect(typeof e.gateway).toBe("string");
      expect(typeof e.type).toBe("string");
    }
    expect(j.states["site1-site2"].site1.at(-1)).toEqual({ up: false, start: 321, end: 900 });
    expect(JSON.parse(renderJson(seed, { events: false })).events).toEqual([]);
  });

  it("text reads like the daemons' logs, optionally with wall-clock timestamps", () => {
    const txt = renderText(seed, { epoch: "2024-01-14T16:12:40Z" });
    expect(txt).toContain(
      "asymmetric state on site1-site2: site2 UP, site1 DOWN from t=321 s until the end of the run",
    );
    expect(txt).toMatch(
      /2024-01-14 16:18:01\.000000 site1 ike V=root:0:site1: link fail 3 10\.56\.240\.208->10\.56\.240\.221:0 dpd=2/,
    );
    expect(txt).toContain("send IPsec SA delete, spi");
    expect(txt).toContain("set oper down");
    const charon = renderText(simulate(strongswanLabScenario("V1")));
    expect(charon).toContain("[IKE] <site1|1> giving up after 3 retransmits");
    expect(charon).toContain("[IKE] <site1|1> restarting CHILD_SA site1");
  });

  it("markdown: anomaly table and the timeline in a code block", () => {
    const md = renderMarkdown(seed);
    expect(md).toContain("| asymmetric | site1-site2 | site2 | site1 | 321 | **still open** (manual action)");
    expect(md).toMatch(/```\n[\s\S]*link fail[\s\S]*```/);
  });

  it("SVG: well-formed, one lane per gateway, sessions, drops and the anomaly band", () => {
    const svg = renderSvg(seed);
    wellFormed(svg);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain(">site1</text>");
    expect(svg).toContain(">site2</text>");
    expect(svg).toContain("site2 firewall: sessions and drops");
    expect(svg).toContain("udp 10.56.240.221:500 → 10.56.240.208:500");
    expect(svg).toMatch(/dropped R-U-THERE \(local-in-policy 2/);
    expect(svg).toContain("asymmetric: site2 UP, site1 DOWN, 321 s → end of run");
    const win = renderSvg(simulate(strongswanLabScenario("V1")), { from: 30, to: 160, width: 900 });
    wellFormed(win);
    expect(win).toContain('width="900"');
  });
});
