import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const ex = (f: string) => resolve("examples/seed001", f);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("tunnelcheck simulate on the seed 001 FortiGate configs", () => {
  it("shows site 1 down and site 2 up, from site 2's dropped DPD on, until someone intervenes", async () => {
    const r = await cli(["simulate", "--topology", ex("topology.yaml"), "--format", "json"]);
    expect(r.code).toBe(1); // an anomaly: CI can gate on it
    const j = JSON.parse(r.stdout);
    const asym = j.anomalies.filter((a: { type: string }) => a.type === "asymmetric");
    expect(asym).toHaveLength(1);
    expect(asym[0]).toMatchObject({ up: "site2", down: "site1", end: null });
    // Timers from the configs: UDP session 180 s (udp-idle-timer default), DPD on-demand 20 s × 3,
    // after site 2's traffic stops at 240 s: first probe ≈ 261 s, link fail ≈ 321 s.
    expect(asym[0].start).toBeGreaterThan(300);
    expect(asym[0].start).toBeLessThan(340);
    const drops = j.events.filter(
      (e: { gateway: string; type: string; message?: string }) =>
        e.gateway === "site2" && /drop/.test(e.type),
    );
    expect(drops.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(drops)).toMatch(/site2\.conf:314/); // the deny is the real local-in policy 2
  });

  it("is stable for 7 days with the seed's resolution", async () => {
    const r = await cli(["simulate", "--topology", ex("topology-fixed.yaml"), "--format", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).anomalies).toEqual([]);
  });

  it("--duration overrides the file and bad values are usage errors", async () => {
    const r = await cli([
      "simulate",
      "--topology",
      ex("topology.yaml"),
      "--duration",
      "4m",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0); // the failure needs > 4 minutes to show
    expect(JSON.parse(r.stdout).duration).toBe(240);
    expect((await cli(["simulate", "--topology", ex("topology.yaml"), "--duration", "soon"])).code).toBe(2);
    expect((await cli(["simulate"])).code).toBe(2);
  });

  it("rejects unknown override keys with the allowed list", async () => {
    const d = mkdtempSync(join(tmpdir(), "tc-sim-"));
    dirs.push(d);
    const f = join(d, "t.yaml");
    writeFileSync(
      f,
      `gateways:\n  site1: { platform: fortios, config: ${ex("site1.conf")} }\n  site2: { platform: fortios, config: ${ex("site2.conf")} }\ntunnels:\n  - { type: site-to-site, between: [site1, site2] }\nsimulate:\n  overrides: { site2: { udp-sesion-ttl: 60 } }\n`,
    );
    const r = await cli(["simulate", "--topology", f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key 'udp-sesion-ttl'; allowed: .*udp-session-ttl/);
  });

  it("renders an SVG timeline", async () => {
    const r = await cli([
      "simulate",
      "--topology",
      ex("topology.yaml"),
      "--duration",
      "10m",
      "--format",
      "svg",
    ]);
    expect(r.stdout).toMatch(/^<svg[\s>]/);
    expect(r.stdout).toMatch(/site1/);
  });
});
