import { generateRules, type Target } from "../platforms/registry.js";
import { planJson, planMarkdown, planText } from "../report/plan.js";
import { colorsFor } from "../report/style.js";
import { planFlows } from "../vpn/flows.js";
import { makeScenario } from "../vpn/scenario.js";
import { EXIT, type Io } from "./io.js";
import { type ScenarioFlags, scenarioInput } from "./scenario-options.js";

export function runPlan(o: ScenarioFlags & { format: "text" | "json" | "md" }, io: Io): number {
  const plan = planFlows(makeScenario(scenarioInput(o)));
  if (o.format === "json") io.stdout.write(`${JSON.stringify(planJson(plan), null, 2)}\n`);
  else if (o.format === "md") io.stdout.write(planMarkdown(plan));
  else io.stdout.write(planText(plan, colorsFor(io.stdout), io.stdout.columns ?? 120));
  return EXIT.ok;
}

export function runRules(
  o: ScenarioFlags & { target: Target; defaultDrop: boolean; requiredOnly: boolean; egress: boolean },
  io: Io,
): number {
  const plan = planFlows(makeScenario(scenarioInput(o)));
  io.stdout.write(
    generateRules(plan, o.target, {
      defaultDrop: o.defaultDrop,
      requiredOnly: o.requiredOnly,
      egress: o.egress,
    }),
  );
  return EXIT.ok;
}
