import type { GenerateOptions } from "../../src/platforms/types.js";
import { type Plan, planFlows } from "../../src/vpn/flows.js";
import { makeScenario, NAT_MODES, type ScenarioInput, VPN_TYPES } from "../../src/vpn/scenario.js";

/** A scenario of the generator tests: documentation addresses, peers known or any. */
export function gridInput(
  vpn: string,
  nat: string,
  ah: boolean,
  v6: boolean,
  peersKnown: boolean,
  wan: string,
): ScenarioInput {
  return {
    vpn,
    nat,
    ah,
    ipv6: v6,
    peers: peersKnown ? (v6 ? ["2001:db8:1::/48", "2001:db8:2::7"] : ["192.0.2.0/24", "198.51.100.7"]) : [],
    local: v6 ? "2001:db8::10" : "10.0.0.10",
    publicAddress: v6 ? "2001:db8:ffff::1" : "203.0.113.1",
    wan,
  };
}

export interface Combo {
  name: string;
  plan: Plan;
  opts: GenerateOptions;
}

/** vpn × nat × AH × family × peers known/any × default drop; egress and required-only cycle through all four pairs. */
export function generatorGrid(wan: string): Combo[] {
  const out: Combo[] = [];
  let i = 0;
  for (const vpn of VPN_TYPES)
    for (const nat of NAT_MODES)
      for (const ah of [false, true])
        for (const v6 of [false, true])
          for (const peersKnown of [false, true])
            for (const defaultDrop of [false, true]) {
              const opts = { defaultDrop, egress: i % 2 === 1, requiredOnly: (i >> 1) % 2 === 1 };
              i++;
              out.push({
                name: `${vpn} nat=${nat} ah=${ah} v${v6 ? 6 : 4} peers=${peersKnown} ${JSON.stringify(opts)}`,
                plan: planFlows(makeScenario(gridInput(vpn, nat, ah, v6, peersKnown, wan))),
                opts,
              });
            }
  return out;
}
