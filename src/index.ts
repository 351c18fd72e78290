// The library API: the same core the CLI and the web page use.
export * from "./analysis/audit.js";
export * from "./analysis/findings.js";
export type { DeclaredVpn, GatewayInput, LoadedGateway, PlatformName } from "./analysis/gateway.js";
export { conntrackInUse, decisionName, evaluatePath } from "./analysis/iptables-path.js";
export { iptablesEvaluator } from "./analysis/iptables-symbolic.js";
export * from "./analysis/query.js";
export { type AuditRequest, runAudit, type TunnelRequest } from "./analysis/run-audit.js";
export { defaultLoaders } from "./loaders.js";
export * from "./model/address.js";
export { AddrSet } from "./model/addrset.js";
export { fortiosEvaluator } from "./platforms/fortios/evaluator.js";
export { loadFortiosGateway } from "./platforms/fortios/gateway.js";
export { loadFortios } from "./platforms/fortios/model.js";
export type {
  FortiosSymbolicTrace,
  FortiosTrace,
  FortiosTracePacket,
  SymbolicTracePart as FortiosSymbolicTracePart,
  TraceIngress as FortiosTraceIngress,
  TraceRule as FortiosTraceRule,
  TraceVisit as FortiosTraceVisit,
  TunnelWalk as FortiosTunnelWalk,
} from "./platforms/fortios/trace.js";
export { renderTraceText as renderFortiosTrace, traceFortios } from "./platforms/fortios/trace.js";
export { loadIptablesGateway, parseIpsetSave } from "./platforms/iptables/gateway.js";
export { parseIptables, parseIptablesOrThrow } from "./platforms/iptables/parse.js";
export {
  IptablesTraceError,
  renderBatchJsonl,
  renderTraceText as renderIptablesTrace,
  traceIptables,
  traceIptablesBatch,
} from "./platforms/iptables/trace.js";
export { generateRules, TARGETS, type Target } from "./platforms/registry.js";
export * from "./platforms/types.js";
export { type AuditReport, auditJson, auditMarkdown, auditText } from "./report/audit.js";
export { planJson, planMarkdown, planText } from "./report/plan.js";
export { toSarif } from "./report/sarif.js";
export { scenarioFromConfigs } from "./sim/from-configs.js";
export * as sim from "./sim/index.js";
export { parseTopology } from "./topology/load.js";
export { topologyJsonSchema } from "./topology/schema.js";
export * from "./vpn/flows.js";
export * from "./vpn/scenario.js";
