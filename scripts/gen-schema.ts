// Regenerates schema/topology.schema.json from the zod schema (a test checks they agree).
import { writeFileSync } from "node:fs";
import { topologyJsonSchema } from "../src/topology/schema.js";

const schema = topologyJsonSchema();
writeFileSync(
  new URL("../schema/topology.schema.json", import.meta.url),
  `${JSON.stringify(schema, null, 2)}\n`,
);
