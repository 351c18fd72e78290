import type { GatewayLoader, PlatformName } from "./analysis/gateway.js";
import { loadFortiosGateway } from "./platforms/fortios/gateway.js";
import { loadIptablesGateway } from "./platforms/iptables/gateway.js";

/**
 * Every platform's gateway loader, for `runAudit` and `scenarioFromConfigs` from the library (the CLI
 * loads the FortiOS one only when a config needs it).
 */
export const defaultLoaders: Readonly<Record<PlatformName, GatewayLoader>> = {
  fortios: loadFortiosGateway,
  iptables: loadIptablesGateway,
};
