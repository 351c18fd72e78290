/**
 * `tunnelcheck simulate` core: a deterministic discrete-event simulation of IKE daemons,
 * stateful firewalls and NAT over days of virtual time. See docs/simulator.md.
 */
export type { Anomaly, DropRecord, LogLevel, SessionRecord, TimelineEvent, Transition } from "./engine.js";
export {
  acceptAll,
  acceptNewIkeFrom,
  type ConnState,
  type Decision,
  establishedOnly,
  type FirewallSpec,
  type Hook,
  type PacketKind,
  type Platform,
  platformTimeouts,
  type Rule,
  type RuleRef,
  ruleFilter,
  type SessionTimeouts,
  type SimPacket,
  type StatelessFilter,
} from "./firewall.js";
export type { NatSpec, PortForward } from "./nat.js";
export {
  type LabVariant,
  labOverrides,
  SEED001,
  type Seed001Options,
  seed001LocalIn,
  seed001Scenario,
  strongswanLabScenario,
} from "./presets.js";
export {
  charonSchedule,
  fortiosProfile,
  giveUpAfter,
  type IkeProfile,
  makeProfile,
  type ProfileOverrides,
  strongswanProfile,
  type Vendor,
} from "./profiles.js";
export {
  describeAnomaly,
  human,
  type JsonOptions,
  renderJson,
  renderMarkdown,
  renderSvg,
  renderText,
  type StateInterval,
  type SvgOptions,
  shortAnomaly,
  stateIntervals,
  type TextOptions,
} from "./render.js";
export {
  type ActionSpec,
  type GatewayFirewallSpec,
  type GatewaySpec,
  type MiddleboxSpec,
  type Scenario,
  type SimResult,
  type SimulateOptions,
  simulate,
  type TrafficSpec,
  type TunnelResult,
  type TunnelSpec,
} from "./scenario.js";
