/**
 * Seed 001 (FortiGate local-in policy vs IKE), reproduced from timers and filters: nothing in the
 * scenario says when the session expires, when DPD fires or that the DELETE is lost.
 */
import { describe, expect, it } from "vitest";
import { type SimResult, seed001Scenario, simulate, type TimelineEvent } from "../src/sim/index.js";

const first = (r: SimResult, pred: (e: TimelineEvent) => boolean, after = -1): TimelineEvent => {
  const e = r.events.find((x) => x.t > after && pred(x));
  if (!e) throw new Error("expected event not found");
  return e;
};
const all = (r: SimResult, pred: (e: TimelineEvent) => boolean): TimelineEvent[] => r.events.filter(pred);

describe("seed 001: two FortiGates, site 2's local-in policy drops IKE without a session", () => {
  const r = simulate(seed001Scenario({ duration: 3600, logLevel: "debug" }));

  it("reproduces the seed's sequence, in order", () => {
    // 1. The tunnel comes up, initiated by site 2.
    const init = first(r, (e) => e.type === "ike-initiate");
    expect(init.gateway).toBe("site2");
    const up2 = first(r, (e) => e.type === "tunnel-up" && e.gateway === "site2");
    const up1 = first(r, (e) => e.type === "tunnel-up" && e.gateway === "site1");
    expect(Math.max(up1.t, up2.t)).toBeLessThan(1);

    // 2. Traffic flows site 1 → site 2 (ESP is not subject to local-in: detect-unknown-esp).
    const esp = first(r, (e) => e.type === "esp-recv" && e.gateway === "site2");
    expect(esp.t).toBeLessThan(5);

    // 3. Site 2's local UDP 500 session (created by its own outbound IKE) expires ~180 s after the
    //    last IKE packet: nothing else uses UDP 500 while ESP carries the traffic.
    const expiry = first(
      r,
      (e) => e.type === "fw-session-expired" && e.gateway === "site2" && /:500->.*:500/.test(e.msg),
    );
    expect(expiry.t).toBeGreaterThan(179);
    expect(expiry.t).toBeLessThan(182);
    expect(expiry.msg).toContain("180 s idle");

    // 4. Site 1 sends traffic and receives nothing for dpd-retryinterval → on-demand DPD; three
    //    probes with the same seqno, 20 s apart, all dropped by local-in policy 2.
    const probes = all(r, (e) => e.type === "dpd-send" && e.gateway === "site1");
    expect(probes.length).toBeGreaterThanOrEqual(3);
    const [p1, p2, p3] = probes as [TimelineEvent, TimelineEvent, TimelineEvent];
    expect(p1.t).toBeGreaterThan(expiry.t);
    expect(p2.t - p1.t).toBeCloseTo(20, 3);
    expect(p3.t - p2.t).toBeCloseTo(20, 3);
    expect(p1.msg).toMatch(/send IKEv1 DPD probe, seqno \d+/);
    expect(new Set(probes.slice(0, 3).map((p) => p.seq)).size).toBe(1);
    const probeDrops = all(
      r,
      (e) => e.type === "fw-drop" && e.gateway === "site2" && e.packet === "R-U-THERE",
    );
    expect(probeDrops.length).toBeGreaterThanOrEqual(3);
    expect(probeDrops[0]!.msg).toContain("local-in-policy 2");
    expect(probeDrops[0]!.t).toBeCloseTo(p1.t + 0.01, 3);

    // 5. Link fail 20 s after the third probe: SAs deleted, a DELETE sent — and dropped too.
    const fail = first(r, (e) => e.type === "dpd-fail" && e.gateway === "site1");
    expect(fail.t - p3.t).toBeCloseTo(20, 3);
    expect(fail.msg).toContain("link fail");
    const del = first(r, (e) => e.type === "delete-send" && e.gateway === "site1", fail.t - 0.001);
    expect(del.msg).toMatch(/send IPsec SA delete, spi [0-9a-f]{8}/);
    const delDrop = first(
      r,
      (e) => e.type === "fw-drop" && e.gateway === "site2" && e.packet === "IPsec SA_DELETE-NOTIFY",
    );
    expect(delDrop.t).toBeCloseTo(fail.t + 0.01, 3);
    const order = [
      "dpd-fail",
      "link-down",
      "child-deleting",
      "child-deleted",
      "snmp-trap",
      "delete-send",
      "oper-down",
    ];
    const idx = order.map((t) =>
      r.events.findIndex((e) => e.type === t && e.gateway === "site1" && e.t === fail.t),
    );
    expect(idx.every((i) => i >= 0)).toBe(true);
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);

    // 6. Site 1 down, site 2 up.
    const down1 = first(r, (e) => e.type === "tunnel-down" && e.gateway === "site1");
    expect(down1.t).toBe(fail.t);
    expect(all(r, (e) => e.type === "tunnel-down" && e.gateway === "site2")).toHaveLength(0);

    // 7. Site 1's re-negotiation (triggered by its traffic) is dropped, again and again.
    const reinit = first(r, (e) => e.type === "ike-initiate" && e.gateway === "site1");
    expect(reinit.t).toBeGreaterThanOrEqual(fail.t);
    const mmDrops = all(
      r,
      (e) => e.type === "fw-drop" && e.gateway === "site2" && String(e.packet).startsWith("Main Mode 1/6"),
    );
    expect(mmDrops.length).toBeGreaterThan(50);
    expect(mmDrops[0]!.t).toBeGreaterThanOrEqual(reinit.t);

    // The times in order.
    const seq = [up2.t, esp.t, expiry.t, p1.t, p2.t, p3.t, fail.t, delDrop.t, mmDrops[0]!.t];
    expect([...seq].sort((a, b) => a - b)).toEqual(seq);
  });

  it("reports the asymmetric state as still open at the end (needs manual action)", () => {
    const fail = first(r, (e) => e.type === "dpd-fail");
    expect(r.anomalies.filter((a) => a.type === "asymmetric")).toEqual([
      expect.objectContaining({ type: "asymmetric", up: "site2", down: "site1", start: fail.t, end: null }),
    ]);
    expect(r.tunnels[0]!.final).toEqual({ site1: "down", site2: "up" });
  });

  it("holds until site 2 sends traffic: its on-demand DPD opens the session for site 1", () => {
    const s = simulate(seed001Scenario({ duration: 2400, site2SendsAt: [1800] }));
    const asym = s.anomalies.find((a) => a.type === "asymmetric")!;
    expect(asym.up).toBe("site2");
    expect(asym.end).not.toBeNull();
    // Site 2's ESP goes into a black hole at site 1 (unknown SPI) until the tunnel is rebuilt.
    const hole = s.anomalies.find((a) => a.type === "black-hole" && a.from === "site2")!;
    expect(hole.start).toBe(1800);
    expect(hole.reason).toContain("unknown SPI");
    expect(asym.end!).toBeGreaterThan(1800);
    expect(asym.end!).toBeLessThan(1800 + 60);
    expect(s.tunnels[0]!.final).toEqual({ site1: "up", site2: "up" });
    expect(s.tunnels[0]!.consistent).toBe(true);
  });

  it("with the fix (local-in accepts IKE from site 1) stays up for 7 days", () => {
    const s = simulate(seed001Scenario({ fix: true, duration: 7 * 86400, logLevel: "state" }));
    expect(s.anomalies).toEqual([]);
    // Both sides came up once and never went down, through ~14 phase-2 and 7 phase-1 rekeys.
    expect(s.transitions.map((t) => `${t.gateway}:${t.up}`).sort()).toEqual(["site1:true", "site2:true"]);
    expect(s.tunnels[0]!.final).toEqual({ site1: "up", site2: "up" });
    expect(s.tunnels[0]!.consistent).toBe(true);
    const d = s.tunnels[0]!.data["site1>site2"]!;
    expect(d.failed).toBe(0);
    expect(d.noSa).toBe(0);
    expect(d.delivered).toBeGreaterThanOrEqual(d.sent - 1);
  });

  it("strictly one-way traffic from t=0 does not fail: site 1's answered probes keep the session alive", () => {
    // FortiOS on-demand DPD probes whenever it sends but received nothing for 20 s (TT 260424),
    // so with one-way traffic it probes every 20 s — and each probe refreshes site 2's UDP 500
    // session (lab note 2). The seed's failure needs an IKE-quiet period of ≥ 180 s first.
    const s = simulate(seed001Scenario({ duration: 7200, site2TrafficUntil: 0 }));
    expect(s.anomalies).toEqual([]);
    const probes = s.events.filter((e) => e.type === "dpd-send" && e.gateway === "site1");
    expect(probes.length).toBeGreaterThan(300);
    expect(s.events.filter((e) => e.type === "fw-drop")).toHaveLength(0);
  });

  it("model prediction: without any site 2 traffic, site 2's own phase-2 rekey ends the state", () => {
    // Site 2's Quick Mode rekey (keylifeseconds 43200) goes out from UDP 500, which re-creates its
    // local session; site 1's next re-negotiation then matches it. Not in the seed; emergent.
    const s = simulate(seed001Scenario({ duration: 14 * 3600, logLevel: "state" }));
    const asym = s.anomalies.find((a) => a.type === "asymmetric")!;
    expect(asym.end).not.toBeNull();
    expect(asym.end!).toBeGreaterThan(43200 - 400);
    expect(asym.end!).toBeLessThan(43200);
  });
});
