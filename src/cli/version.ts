import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
/** From package.json, so `--version`, SARIF and the package never disagree. */
export const VERSION: string = (require("../../package.json") as { version: string }).version;
