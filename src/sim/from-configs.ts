/**
 * Builds a simulation from real configs: the audit's gateways and tunnels, each gateway's IKE
 * timers from its own config (FortiOS phase1/phase2), and every packet's fate at a gateway from
 * the platform's real rule evaluation (the same FilterEvaluator the audit uses). The simulator
 * adds what a static check cannot: sessions/conntrack entries that come and go with time.
 */
import type { DeclaredVpn, GatewayLoader, LoadedGateway, PlatformName } from "../analysis/gateway.js";
import { GatewayInputError } from "../analysis/gateway.js";
import type { FilterEvaluator, FlowQuery } from "../analysis/query.js";
import { type AuditRequest, siteToSiteEnds } from "../analysis/run-audit.js";
import { formatAddress, parsePrefix } from "../model/address.js";
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
    decide(pkt: SimPacket, state: ConnState, iface: string | undefined, hook: Hook): Decision {
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
        ...(iface !== undefined ? { iif: iface } : {}),
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
  // FortiOS phase1 `keepalive`, strongSwan `keep_alive` (charon.keep_alive): NAT-T keepalive interval.
  keepalive: "natKeepalive",
  "nat-keepalive": "natKeepalive",
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
  const notForwarded: Array<{ proto: "udp"; port: number; reason: string }> = [];
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
      else {
        o.notes.push(`${name}: UDP ${port} to ${publicIp} is not forwarded to ${gwName} (${c.reason})`);
        notForwarded.push({ proto: "udp", port, reason: c.reason });
      }
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
    // A FortiGate in front keeps its sessions by FortiOS's timers (UDP 180 s), not conntrack's.
    ...(o.device?.input.platform === "fortios" ? { platform: "fortios" as const } : {}),
    ...(forwards.length ? { forwards } : {}),
    ...(notForwarded.length ? { notForwarded } : {}),
    ...(Object.keys(ov.timeouts).length ? { timeouts: ov.timeouts } : {}),
  };
}

/** The IKE timers a config declares (FortiOS phase1/phase2) as simulator profile knobs. */
function profileOfTimers(t: NonNullable<DeclaredVpn["timers"]>): ProfileOverrides {
  return {
    dpd: t.dpd,
    dpdRetryInterval: t.dpdRetryInterval,
    dpdRetryCount: t.dpdRetryCount,
    keylife: t.keylife,
    ...(t.keylifeseconds !== undefined ? { keylifeseconds: t.keylifeseconds } : {}),
    ...(t.natKeepalive !== undefined ? { natKeepalive: t.natKeepalive } : {}),
  };
}

type RemoteAccessRequest = Extract<AuditRequest["tunnels"][number], { kind: "remote-access" }>;

/** The address that stands for `clients:` (its first network's first host; any: TEST-NET-1). */
function representativeClient(tunnel: string, clients: string[]): { address: string; any: boolean } {
  const first = clients[0];
  if (first === undefined || first === "any") return { address: "192.0.2.100", any: true };
  const p = parsePrefix(first, { allowHostBits: true });
  if (p.family !== 4) throw new SimulateInputError(`tunnel ${tunnel}: IPv6 clients are not simulated yet`);
  if (p.len === 0) return { address: "192.0.2.100", any: true };
  return { address: formatAddress(4, p.len <= 30 ? p.addr + 1n : p.addr), any: false };
}

/**
 * A remote-access tunnel (L2TP/IPsec or IKEv2) as one representative client and the server. The
 * client is a strongSwan initiator (IKEv1 for L2TP/IPsec) that starts the tunnel and, like a
 * user's client, does not retry when it fails; behind NAT (`nat: peer`/`both`) it sits behind a
 * masquerading router whose public address is the representative client address. The server
 * answers through its real rules and never initiates: a Linux gateway with strongSwan's defaults,
 * or a FortiGate with the timers of its dial-up phase1 for that IKE version.
 */
function remoteAccess(
  t: RemoteAccessRequest,
  server: LoadedGateway,
  device: LoadedGateway | undefined,
  /** The server's spec exists already (it is also in a site-to-site tunnel): that one is kept. */
  serverKnown: boolean,
  opts: SimulateOptions,
  notes: string[],
): { server: GatewaySpec; client: GatewaySpec; tunnel: TunnelSpec } {
  const name = t.name ?? `${t.server}-${t.vpn}`;
  const ike: 1 | 2 = String(t.overrides?.ike ?? (t.vpn === "l2tp-ipsec" ? 1 : 2)) === "1" ? 1 : 2;
  const fortigate = server.input.platform === "fortios";
  // A FortiGate's dial-up phase1 (no remote-gw) for this IKE version: its timers and interface.
  const dialups = fortigate ? server.vpns.filter((v) => v.peer === null && v.timers?.ikeVersion === ike) : [];
  const dialup = dialups[0];
  if (dialups.length > 1)
    notes.push(
      `tunnel ${name}: ${t.server} has ${dialups.length} IKEv${ike} dial-up phase1s; the timers of '${dialup!.name}' are used`,
    );
  const serverAddr = dialup?.local ?? server.input.addresses?.[0] ?? server.ownAddresses[0];
  if (!serverAddr)
    throw new SimulateInputError(`tunnel ${name}: cannot tell ${t.server}'s own address; add \`addresses:\``);
  // The representative client is IPv4 (any: TEST-NET-1); an IPv6 server would get a query it cannot answer.
  if (parsePrefix(serverAddr, { allowHostBits: true }).family !== 4)
    throw new SimulateInputError(
      `tunnel ${name}: ${t.server}'s address ${serverAddr} is IPv6; IPv6 remote access is not simulated yet (audit it with tunnelcheck audit)`,
    );
  const clientName = `${name}-client`;
  const rep = representativeClient(name, t.clients);
  const clientsBehindNat = t.nat === "peer" || t.nat === "both";
  const so = applyOverrides(t.server, opts.overrides?.[t.server] ?? {});
  const serverNat =
    t.nat === "local" || t.nat === "both"
      ? natDevice(
          server,
          serverAddr,
          { local: rep.address, peer: "" },
          {
            tunnel: name,
            single: true,
            ...(t.overrides?.publicAddress ? { publicAddress: t.overrides.publicAddress } : {}),
            ...(device ? { device } : {}),
            overrides: opts.overrides ?? {},
            notes,
          },
        )
      : undefined;
  const co = applyOverrides(clientName, opts.overrides?.[clientName] ?? {});
  const natName = `${clientName}-nat`;
  const natTimeouts = applyOverrides(natName, opts.overrides?.[natName] ?? {}).timeouts;
  notes.push(
    `tunnel ${name}: the clients are one strongSwan client '${clientName}' (IKEv${ike}) at ${rep.address}${rep.any ? " (clients: any; a documentation address stands for them)" : ""}${clientsBehindNat ? " behind a masquerading NAT router" : ""}; it starts the tunnel and does not retry after a failure, as a user's client. Other clients' timers differ: set them under simulate.overrides.${clientName}${t.vpn === "l2tp-ipsec" ? "; L2TP's own hellos are not modelled (add traffic: from the client)" : ""}`,
  );
  if (!serverKnown && !dialup)
    notes.push(
      `${t.server}: ${fortigate ? `declares no IKEv${ike} dial-up phase1, so its` : "its"} IKE timers are ${fortigate ? "FortiOS" : "strongSwan"}'s defaults for ${name} (remote access: it never initiates); override them under simulate.overrides.${t.server}`,
    );
  if (!serverKnown && dialup)
    notes.push(
      `${t.server}: IKE timers of its dial-up phase1 '${dialup.name}' (${dialup.loc.file}:${dialup.loc.line}); a dial-up server never initiates`,
    );
  const timers = dialup?.timers;
  // A dial-up server cannot bring the tunnel up: it learns the client's address when the client
  // connects (Fortinet, "Defining the tunnel ends").
  const fromConfig: ProfileOverrides = fortigate
    ? {
        ...(timers ? profileOfTimers(timers) : {}),
        autoNegotiate: false,
        trafficTriggered: false,
      }
    : {};
  return {
    server: {
      name: t.server,
      address: serverAddr,
      vendor: so.vendor ?? (fortigate ? "fortios" : "strongswan"),
      overrides: { ...fromConfig, ...so.profile },
      firewall: {
        platform: fortigate ? "fortios" : "linux",
        filter: evaluatorFilter(server.evaluator),
        // Not known (no wan:, no phase1 interface): not guessed, the evaluator answers for every one.
        iface: server.input.wan ?? dialup?.scenario.wan ?? null,
        ...(Object.keys(so.timeouts).length ? { timeouts: so.timeouts } : {}),
      },
      ...(serverNat ? { behind: [serverNat] } : {}),
    },
    client: {
      name: clientName,
      address: clientsBehindNat ? "100.64.0.2" : rep.address,
      vendor: co.vendor ?? "strongswan",
      overrides: { startAction: "start", ...co.profile },
      ...(clientsBehindNat
        ? {
            behind: [
              {
                kind: "nat" as const,
                name: natName,
                publicIp: rep.address,
                ...(Object.keys(natTimeouts).length ? { timeouts: natTimeouts } : {}),
              },
            ],
          }
        : {}),
    },
    tunnel: { name, a: clientName, b: t.server, ikeVersion: ike },
  };
}

/** The simulator scenario for the tunnels of an audit request (site-to-site and remote access). */
export function scenarioFromConfigs(
  req: AuditRequest,
  loaders: Record<PlatformName, GatewayLoader>,
  opts: SimulateOptions,
): { scenario: Scenario; notes: string[] } {
  const notes: string[] = [];
  const gws = new Map<string, LoadedGateway>();
  for (const g of req.gateways) gws.set(g.name, loaders[g.platform](g));
  const known = (n: string): LoadedGateway => {
    const g = gws.get(n);
    if (!g) throw new GatewayInputError(`unknown gateway '${n}'`);
    return g;
  };
  const s2s = req.tunnels.filter((t) => t.kind === "site-to-site");
  const ra = req.tunnels.filter((t) => t.kind === "remote-access");
  if (s2s.length + ra.length === 0)
    throw new SimulateInputError(
      "simulate needs a tunnel: a site-to-site tunnel between two gateways or a remote-access one (tunnels: in the topology)",
    );
  const specs = new Map<string, GatewaySpec>();
  const tunnels: TunnelSpec[] = [];
  for (const t of s2s) {
    const [a, b] = t.between.map(known) as [LoadedGateway, LoadedGateway];
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
        ? { ...profileOfTimers(timers), autoNegotiate: timers.autoNegotiate }
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
          iface: g.input.wan ?? ends.declX?.scenario.wan ?? null,
          ...(Object.keys(o.timeouts).length ? { timeouts: o.timeouts } : {}),
        },
        ...(nat ? { behind: [nat] } : {}),
      });
    }
    tunnels.push({ name, a: a.input.name, b: b.input.name });
  }
  for (const t of ra) {
    const device = t.natDevices?.[t.server];
    const r = remoteAccess(
      t,
      known(t.server),
      device ? known(device) : undefined,
      specs.has(t.server),
      opts,
      notes,
    );
    if (!specs.has(r.server.name)) specs.set(r.server.name, r.server);
    specs.set(r.client.name, r.client);
    tunnels.push(r.tunnel);
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
