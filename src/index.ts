export * from "./model/address.js";
export { generateRules, TARGETS, type Target } from "./platforms/registry.js";
export * from "./platforms/types.js";
export { planJson, planMarkdown, planText } from "./report/plan.js";
export * from "./vpn/flows.js";
export * from "./vpn/scenario.js";
