import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

/** The built CLI (`npm ci` builds it) in a shell pipeline whose reader stops early. */
const BIN = "dist/cli/bin.js";

describe.skipIf(!existsSync(BIN))("tunnelcheck in a pipeline", () => {
  it("stops quietly when the reader goes away (… | head -1): no EPIPE stack trace", () => {
    const r = spawnSync(
      "sh",
      [
        "-c",
        `node ${BIN} simulate --topology examples/seed001/topology.yaml --duration 1d --level debug | head -1`,
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout).toMatch(/^tunnelcheck simulate: /);
    expect(r.stderr).toBe("");
  });
});
