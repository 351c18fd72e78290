import { type GatewayInput, GatewayInputError, type LoadedGateway } from "../../analysis/gateway.js";
import type { FlowQuery } from "../../analysis/query.js";
import { formatAddress } from "../../model/address.js";
import { fortiosEvaluator } from "./evaluator.js";
import { pickVdom, vdomOfInterface } from "./localin.js";
import { loadFortios } from "./model.js";
import { formatDiagnostic } from "./parse.js";
import { checkFortiosPortForward, checkFortiosPortForwardSet } from "./port-forward.js";
import { discoverVpns, vpnScenarioInput } from "./vpn.js";

/**
 * Firewall policies filter traffic through the FortiGate and local-in policies traffic to it
 * (Administration Guide, "Local-in policy"); neither table applies to what the FortiGate itself
 * sends, so there is nothing in the config to evaluate its outbound IKE/ESP against.
 */
const LOCAL_OUT_NOTE =
  'outbound flows (the FortiGate\'s own IKE, NAT-T and ESP to its peers) are not evaluated: they are local-out traffic, which neither firewall policies (traffic through the FortiGate) nor local-in policies (traffic to it) filter — FortiOS Administration Guide, "Local-in policy"';

/** Loads a FortiGate backup for the audit: evaluator, declared VPNs, parse warnings. */
export function loadFortiosGateway(g: GatewayInput): LoadedGateway {
  const { parse, model } = loadFortios(g.text, { file: g.file });
  // Syntax errors stop the audit: a half-read policy table would give confident wrong verdicts.
  const errors = [...parse.diagnostics, ...model.diagnostics].filter((d) => d.severity === "error");
  if (errors.length > 0) throw new GatewayInputError(errors.map(formatDiagnostic).join("\n"));
  if (g.vdom !== undefined && !model.vdoms.has(g.vdom)) {
    throw new GatewayInputError(
      `${g.file}: no VDOM '${g.vdom}' (have: ${[...model.vdoms.keys()].join(", ")})`,
    );
  }
  // A packet is handled by the VDOM of the interface it arrives on (`system interface` `set vdom`):
  // without --vdom, a multi-VDOM backup's queries go to that VDOM's tables, not root's.
  const byVdom = new Map<string, ReturnType<typeof fortiosEvaluator>>();
  const evaluatorFor = (iif: string | undefined) => {
    const vdom = g.vdom ?? vdomOfInterface(model, iif);
    const key = vdom ?? "";
    let ev = byVdom.get(key);
    if (!ev) {
      ev = fortiosEvaluator(model, vdom !== undefined ? { vdom } : {});
      byVdom.set(key, ev);
    }
    return ev;
  };
  const evaluator = {
    platform: "fortios",
    evaluate: (q: FlowQuery) => evaluatorFor(q.iif).evaluate(q),
    stateTimeout: (q: FlowQuery) => evaluatorFor(q.iif).stateTimeout(q),
    outboundNote: LOCAL_OUT_NOTE,
  };
  const vpns = discoverVpns(model, g.vdom !== undefined ? { vdom: g.vdom } : {}).map((v) => {
    const s = vpnScenarioInput(model, v);
    return {
      name: v.name,
      peer: v.peer,
      local: v.localAddress,
      scenario: s.input,
      timers: {
        ikeVersion: v.ikeVersion,
        dpd: v.dpd.mode,
        dpdRetryInterval: v.dpd.retryinterval,
        dpdRetryCount: v.dpd.retrycount,
        keylife: v.keylife,
        ...(v.phase2[0] ? { keylifeseconds: v.phase2[0].keylifeseconds } : {}),
        // The simulator's autoNegotiate is phase2's: keep the IPsec SA up without traffic.
        autoNegotiate: v.phase2.some((p) => p.autoNegotiate),
        natKeepalive: v.keepalive,
      },
      notes: s.notes,
      unknown: s.unknown,
      loc: { file: v.loc.file, line: v.loc.line, text: v.loc.text },
    };
  });
  const own = new Set<string>();
  for (const i of model.interfaces.values()) {
    for (const a of [i.ip, ...i.secondary, i.ip6]) if (a) own.add(formatAddress(a.prefix.family, a.address));
  }
  for (const v of vpns) if (v.local) own.add(v.local);
  return {
    input: g,
    evaluator,
    fixTarget: () => "fortios",
    vpns,
    ownAddresses: [...own],
    warnings: [...parse.diagnostics, ...model.diagnostics]
      .filter((d) => d.severity === "warning")
      .map(formatDiagnostic),
    // "info" (a predefined object assumed, …) is a note, not a warning about the input.
    notes: [...parse.diagnostics, ...model.diagnostics]
      .filter((d) => d.severity !== "warning" && d.severity !== "error")
      .map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`),
    // As the NAT device in front of another gateway: its VIPs and firewall policies.
    portForward: (q) =>
      checkFortiosPortForward(model, pickVdom(model, g.vdom ?? vdomOfInterface(model, q.iif)), q),
    portForwardSet: (q) =>
      checkFortiosPortForwardSet(model, pickVdom(model, g.vdom ?? vdomOfInterface(model, q.iif)), q),
  };
}
