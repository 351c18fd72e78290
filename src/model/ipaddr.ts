/**
 * ipaddr.js, loaded with `require` on first use. Imported as an ES module, a CommonJS package is
 * first scanned for its export names (Node's cjs-module-lexer over its 38 KB source, hot enough to
 * be compiled by TurboFan: ≈15 ms, plus the compile, at every start); IPv4 work on the hot paths
 * does not need it at all.
 */
import { createRequire } from "node:module";
import type ipaddrModule from "ipaddr.js";

let mod: typeof ipaddrModule | undefined;

export function ipaddr(): typeof ipaddrModule {
  mod ??= createRequire(import.meta.url)("ipaddr.js") as typeof ipaddrModule;
  return mod;
}
