/**
 * Builds a simulation from real configs: the audit's gateways and tunnels, each gateway's IKE
 * timers from its own config (FortiOS phase1/phase2), and every packet's fate at a gateway from
 * the platform's real rule evaluation (the same FilterEvaluator the audit uses). The simulator
 * adds what a static check cannot: sessions/conntrack entries that come and go with time.
 */
import type { GatewayLoader, LoadedGateway, PlatformName } from "../analysis/gateway.js";
import { GatewayInputError } from "../analysis/gateway.js";
import type { FilterEvaluator, FlowQuery } from "../analysis/query.js";
import { type AuditRequest, siteToSiteEnds } from "../analysis/run-audit.js";
import { parsePrefix } from "../model/address.js";
import { AddrSet } from "../model/addrset.js";
import type { ConnState, Decision, Hook, SessionTimeouts, SimPacket, StatelessFilter } from "./firewall.js";
import type { PortForward } from "./nat.js";
import type { ProfileOverrides, Vendor } from "./profiles.js";
import type { GatewaySpec, MiddleboxSpec, Scenario, TrafficSpec, TunnelSpec } from "./scenario.js";

const PROTO = { udp: 17, tcp: 6, esp: 50 } as const;

/**
 * The platform's evaluator as the simulator's stateless filter. Only the input path (packets to
 * the gateway itself) is evaluated; the gateway's own outbound packets are accepted, as both
 * platforms do by default (FortiOS has no policy for self-originated traffic).
 */
export function evaluatorFilter(ev: FilterEvaluator): StatelessFilter {
  const cache = new Map<string, Decision>();
  return {
    decide(pkt: SimPacket, state: ConnState, iface: string, hook: Hook): Decision {
      if (hook !== "input")
        return {
          verdict: "accept",
          rule: { text: `${hook}: not filtered (only the input path is modelled)` },
        };
      const key = `${pkt.proto}|${pkt.src}|${pkt.dst}|${pkt.sport ?? ""}|${pkt.dport ?? ""}|${state}|${iface}`;
      const hit = cache.get(key);
      if (hit) return hit;
      const src = parsePrefix(pkt.src);
      const q: FlowQuery = {
        family: src.family,
        proto: PROTO[pkt.proto],
        sources: AddrSet.fromPrefix(src),
        dst: AddrSet.fromPrefix(parsePrefix(pkt.dst)),
        ...(pkt.sport !== undefined ? { sport: pkt.sport } : {}),
        ...(pkt.dport !== undefined ? { dport: pkt.dport } : {}),
        iif: iface,
        state,
        ipsec: false,
      };
      const part = ev.evaluate(q)[0];
      const d: Decision = !part
        ? { verdict: "unknown", rule: { text: "no verdict" } }
        : {
            verdict: part.verdict === "reject" ? "drop" : part.verdict,
            rule: part.rule
              ? { file: part.rule.file, line: part.rule.line, text: part.rule.text }
              : { text: part.defaultName ?? part.unknown?.reason ?? "default" },
          };
      cache.set(key, d);
      return d;
    },
  };
}

/** Topology `simulate.overrides` keys → simulator knobs (kebab-case, as in the configs). */
const PROFILE_KEYS: Record<string, keyof ProfileOverrides> = {
  dpd: "dpd",
  "dpd-delay": "dpdDelay",
  "dpd-timeout": "dpdTimeout",
  "dpd-retryinterval": "dpdRetryInterval",
  "dpd-retrycount": "dpdRetryCount",
  "dpd-action": "dpdAction",
  keylife: "keylife",
  keylifeseconds: "keylifeseconds",
  "rekey-time": "ikeRekeyTime",
  "child-rekey-time": "childRekeyTime",
  "retransmit-timeout": "retransmitTimeout",
  "retransmit-base": "retransmitBase",
  "retransmit-tries": "retransmitTries",
  keyingtries: "keyingTries",
  "auto-negotiate": "autoNegotiate",
  "start-action": "startAction",
  "close-action": "closeAction",
  mobike: "mobike",
};
const TIMEOUT_KEYS: Record<string, (keyof SessionTimeouts)[]> = {
  "udp-session-ttl": ["udp", "udpStream"],
  "udp-idle-timer": ["udp", "udpStream"],
  "conntrack-udp-timeout": ["udp"],
  "conntrack-udp-timeout-stream": ["udpStream"],
  "session-ttl": ["other"],
  "generic-timeout": ["other"],
};

export class SimulateInputError extends Error {}

function applyOverrides(gw: string, o: Record<string, number | string | boolean>) {
  const profile: Record<string, unknown> = {};
  const timeouts: Partial<SessionTimeouts> = {};
  let vendor: Vendor | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (k === "vendor") {
      if (v !== "fortios" && v !== "strongswan")
        throw new SimulateInputError(`overrides.${gw}.vendor: expected fortios or strongswan`);
      vendor = v;
    } else if (TIMEOUT_KEYS[k]) {
      if (typeof v !== "number" || v <= 0)
        throw new SimulateInputError(`overrides.${gw}.${k}: expected seconds (a positive number)`);
      for (const t of TIMEOUT_KEYS[k]!) timeouts[t] = v;
    } else if (PROFILE_KEYS[k]) {
      profile[PROFILE_KEYS[k]!] = v;
    } else {
      const allowed = ["vendor", ...Object.keys(TIMEOUT_KEYS), ...Object.keys(PROFILE_KEYS)].join(", ");
      throw new SimulateInputError(`overrides.${gw}: unknown key '${k}'; allowed: ${allowed}`);
    }
  }
  return { profile: profile as ProfileOverrides, timeouts, vendor };
}

export interface SimulateOptions {
  duration: number;
  initiator?: string;
  seed?: number;
  traffic?: TrafficSpec[];
  overrides?: Record<string, Record<string, number | string | boolean>>;
}

/**
 * The NAT device in front of a gateway the topology puts behind NAT (`nat:`). Its public address:
 * `public:`, else the address the peer's config uses for this gateway (its phase1 remote-gw), else
 * the NAT device's own first address. Port forwards: those the NAT device's real ruleset performs
 * for UDP 500/4500 (`nat-devices:`, checked like the audit's port-forward-missing); without a
 * device config, none — a plain masquerading router, so only this side can bring the tunnel up.
 * Mapping timeouts: Linux conntrack's, or `simulate.overrides.<device>`.
 */
function natDevice(
  g: LoadedGateway,
  local: string | undefined,
  other: { local: string | undefined; peer: string },
  o: {
    tunnel: string;
    single: boolean;
    publicAddress?: string;
    device?: LoadedGateway | undefined;
    overrides: Record<string, Record<string, number | string | boolean>>;
    notes: string[];
  },
): MiddleboxSpec {
  const gwName = g.input.name;
  const name = o.device?.input.name ?? `${gwName}-nat`;
  const seen = (a: string | undefined) => (a && a !== local ? a : undefined);
  const peerView = seen(other.peer);
  const publicIp =
    (o.single ? seen(o.publicAddress) : undefined) ?? peerView ?? seen(o.device?.input.addresses?.[0]);
  if (!publicIp || !local) {
    throw new SimulateInputError(
      `tunnel ${o.tunnel}: ${gwName} is behind NAT but ${!local ? "its own address" : "the NAT device's public address"} is unknown; add \`${!local ? "addresses:" : "public:"}\``,
    );
  }
  const forwards: PortForward[] = [];
  if (o.device?.portForward && other.local) {
    for (const port of [500, 4500]) {
      const c = o.device.portForward({
        proto: 17,
        port,
        src: other.local,
        publicAddress: publicIp,
        to: local,
      });
      if (c.status === "forwarded") forwards.push({ proto: "udp", port, to: local, toPort: port });
      else o.notes.push(`${name}: UDP ${port} to ${publicIp} is not forwarded to ${gwName} (${c.reason})`);
    }
  } else if (o.device) {
    o.notes.push(
      `${name}: its port forwards cannot be read from a ${o.device.input.platform} config; none assumed`,
    );
  } else {
    o.notes.push(
      `${gwName} is behind a NAT device (${publicIp}) without port forwards: name it under nat-devices: to use its real rules`,
    );
  }
  const ov = applyOverrides(name, o.overrides[name] ?? {});
  return {
    kind: "nat",
    name,
    publicIp,
    ...(forwards.length ? { forwards } : {}),
    ...(Object.keys(ov.timeouts).length ? { timeouts: ov.timeouts } : {}),
  };
}

/** The simulator scenario for the site-to-site tunnels of an audit request. */
export function scenarioFromConfigs(
  req: AuditRequest,
  loaders: Record<PlatformName, GatewayLoader>,
  opts: SimulateOptions,
): { scenario: Scenario; notes: string[] } {
  const notes: string[] = [];
  const gws = new Map<string, LoadedGateway>();
  for (const g of req.gateways) gws.set(g.name, loaders[g.platform](g));
  const s2s = req.tunnels.filter((t) => t.kind === "site-to-site");
  if (s2s.length === 0)
    throw new SimulateInputError(
      "simulate needs a site-to-site tunnel between two gateways (tunnels: in the topology)",
    );
  if (s2s.length < req.tunnels.length)
    notes.push("remote-access tunnels are not simulated yet; only the site-to-site ones are");
  const specs = new Map<string, GatewaySpec>();
  const tunnels: TunnelSpec[] = [];
  for (const t of s2s) {
    const [a, b] = t.between.map((n) => {
      const g = gws.get(n);
      if (!g) throw new GatewayInputError(`unknown gateway '${n}'`);
      return g;
    }) as [LoadedGateway, LoadedGateway];
    const name = t.name ?? `${t.between[0]}-${t.between[1]}`;
    const endsA = siteToSiteEnds(a, b, name);
    const endsB = siteToSiteEnds(b, a, name);
    const natA = t.nat === "local" || t.nat === "both";
    const natB = t.nat === "peer" || t.nat === "both";
    for (const [g, ends, other, behindNat] of [
      [a, endsA, endsB, natA],
      [b, endsB, endsA, natB],
    ] as const) {
      if (specs.has(g.input.name)) continue;
      if (!ends.local)
        throw new SimulateInputError(
          `tunnel ${name}: cannot tell ${g.input.name}'s own address; add \`addresses:\``,
        );
      const o = applyOverrides(g.input.name, opts.overrides?.[g.input.name] ?? {});
      const timers = ends.declX?.timers;
      const vendor: Vendor = o.vendor ?? (g.input.platform === "fortios" ? "fortios" : "strongswan");
      const fromConfig: ProfileOverrides = timers
        ? {
            dpd: timers.dpd,
            dpdRetryInterval: timers.dpdRetryInterval,
            dpdRetryCount: timers.dpdRetryCount,
            keylife: timers.keylife,
            ...(timers.keylifeseconds !== undefined ? { keylifeseconds: timers.keylifeseconds } : {}),
            autoNegotiate: timers.autoNegotiate,
          }
        : {};
      if (!timers)
        notes.push(
          `${g.input.name}: IKE timers are ${vendor}'s defaults (the config declares none); override them under simulate.overrides`,
        );
      const platform = g.input.platform === "fortios" ? "fortios" : "linux";
      const nat = behindNat
        ? natDevice(g, ends.local, other, {
            tunnel: name,
            single: natA !== natB,
            ...(t.overrides?.publicAddress ? { publicAddress: t.overrides.publicAddress } : {}),
            ...(t.natDevices?.[g.input.name] ? { device: gws.get(t.natDevices[g.input.name]!) } : {}),
            overrides: opts.overrides ?? {},
            notes,
          })
        : undefined;
      specs.set(g.input.name, {
        name: g.input.name,
        address: ends.local,
        vendor,
        ...(timers ? { ikeVersion: timers.ikeVersion } : {}),
        overrides: { ...fromConfig, ...o.profile },
        firewall: {
          platform,
          filter: evaluatorFilter(g.evaluator),
          iface: g.input.wan ?? ends.declX?.scenario.wan ?? "wan",
          ...(Object.keys(o.timeouts).length ? { timeouts: o.timeouts } : {}),
        },
        ...(nat ? { behind: [nat] } : {}),
      });
    }
    tunnels.push({ name, a: a.input.name, b: b.input.name });
  }
  for (const name of [opts.initiator, ...(opts.traffic ?? []).flatMap((x) => [x.from, x.to])]) {
    if (name !== undefined && name !== "both" && name !== "none" && !specs.has(name)) {
      throw new SimulateInputError(
        `unknown gateway '${name}' in simulate; known: ${[...specs.keys()].join(", ")}`,
      );
    }
  }
  return {
    scenario: {
      gateways: [...specs.values()],
      tunnels,
      ...(opts.initiator ? { initiator: opts.initiator } : {}),
      ...(opts.traffic ? { traffic: opts.traffic } : {}),
      duration: opts.duration,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    },
    notes,
  };
}
