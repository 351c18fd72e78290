// The installed `tunnelcheck` command: tsc's dist/cli/bin.js and everything it imports, bundled
// into one file per lazily imported command plus chunks for the shared code (run after tsc:
// `npm run build`). The library (dist/index.js) stays unbundled.
//
// Why: loading ≈ 250 small ES modules one by one (resolve, read, compile, link) costs ≈ 80 M
// instructions, 20–30 ms, on every run (docs/iptables.md, "Session 12"). Rolldown, not esbuild:
// esbuild turns top-level `const` into `var`, and V8 folds a module's `const` bindings into
// optimized code but reloads a `var` on every use: the parser ran 90 M instructions more.
import { chmodSync, readFileSync, rmSync } from "node:fs";
import { build } from "rolldown";

const outdir = "dist/bin";
const entry = "tunnelcheck";
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
if (pkg.bin?.tunnelcheck !== `${outdir}/${entry}.js`) {
  throw new Error(`package.json "bin" must point at ${outdir}/${entry}.js`);
}
rmSync(outdir, { recursive: true, force: true });
await build({
  input: { [entry]: "dist/cli/bin.js" },
  platform: "node",
  // ipaddr.js is required at run time, on first use (src/model/ipaddr.ts); version.ts reads
  // ../../package.json, which resolves from dist/bin as it does from dist/cli.
  external: ["ipaddr.js", /^node:/],
  output: {
    dir: outdir,
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "[name]-[hash].js",
    sourcemap: true,
  },
  logLevel: "warn",
});
chmodSync(`${outdir}/${entry}.js`, 0o755);
// tsc's unbundled entry stays runnable too (the bin of earlier versions; links made then point at it).
chmodSync("dist/cli/bin.js", 0o755);
