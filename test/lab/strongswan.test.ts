/**
 * Ground truth for the simulator: real strongSwan charons in network namespaces, iptables on site2 as the
 * FortiGate local-in policy of seed 001, and the sequence of states each variant must show. The variants run
 * concurrently (about 100 s in all). The measured times go to test/lab/.out/strongswan-lab.json, the charon
 * logs to test/lab/.out/logs/. See docs/lab.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkVariant, LAB_TOLERANCE, measure } from "./checks.js";
import {
  cleanupLabs,
  DEFAULT_TIMERS,
  LAB_ARTEFACT,
  LAB_OUT_DIR,
  type LabResult,
  labUnavailable,
  runLabVariant,
  VARIANTS,
} from "./strongswan-lab.js";

const unavailable = labUnavailable();

if (unavailable && process.env.CI) {
  describe("strongSwan lab", () => {
    it("has its prerequisites (CI must run the lab)", () => {
      throw new Error(`strongSwan lab cannot run: ${unavailable}`);
    });
  });
} else if (unavailable) {
  describe.skip(`strongSwan lab (skipped: ${unavailable})`, () => {
    it("runs", () => {});
  });
} else {
  describe("strongSwan lab: real charon in network namespaces", () => {
    const results = new Map<string, LabResult>();

    afterAll(async () => {
      await cleanupLabs();
      if (results.size === 0) return;
      await mkdir(LAB_OUT_DIR, { recursive: true });
      const variants = Object.fromEntries(
        [...results.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, r]) => [name, { measured: measure(r), result: r }]),
      );
      const artefact = {
        generatedAt: new Date().toISOString(),
        defaults: DEFAULT_TIMERS,
        tolerance: LAB_TOLERANCE,
        variants,
      };
      await writeFile(LAB_ARTEFACT, `${JSON.stringify(artefact, null, 1)}\n`);
    });

    it.concurrent.each(Object.keys(VARIANTS))(
      "%s",
      async (name) => {
        const r = await runLabVariant(name, { logDir: join(LAB_OUT_DIR, "logs") });
        results.set(name, r);
        expect(checkVariant(r), `${name}: ${VARIANTS[name]?.description}`).toEqual([]);
      },
      (Math.max(...Object.values(VARIANTS).map((v) => v.duration)) + 60) * 1000,
    );
  });
}
