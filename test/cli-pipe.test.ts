import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/** The installed CLI (package.json "bin"; `npm ci` builds it) in a shell pipeline whose reader stops early. */
const BIN = (JSON.parse(readFileSync("package.json", "utf8")) as { bin: { tunnelcheck: string } }).bin
  .tunnelcheck;

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
