import { z } from "zod";
import { parsePrefix } from "../model/address.js";
import { NAT_MODES, VPN_TYPES } from "../vpn/scenario.js";

// nftables rulesets are not parsed yet: rejected here rather than half-audited.
export const PLATFORMS = ["fortios", "iptables"] as const;

const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, { error: "expected a name of letters, digits, '_', '.', '-'" });
const duration = z.union([
  z.number().nonnegative(),
  z
    .string()
    .regex(/^(\d+(\.\d+)?\s*(ms|s|m|h|d)?)+$/, { error: "expected a duration like 90s, 30m, 2h, 7d, 1h30m" }),
]);

/** An IPv4/IPv6 address or prefix, checked here so that a bad one is reported with its line. */
const prefix = z.string().refine(
  (v) => {
    try {
      parsePrefix(v, { allowHostBits: true });
      return true;
    } catch {
      return false;
    }
  },
  { error: (i) => `expected an IPv4 or IPv6 address or prefix, got '${String(i.input)}'` },
);

export const GatewaySchema = z
  .strictObject({
    platform: z.enum(PLATFORMS, { error: `expected one of: ${PLATFORMS.join(", ")}` }),
    config: z.string({ error: "expected the path of the gateway's configuration file" }).min(1),
    addresses: z
      .array(z.string())
      .optional()
      .describe("the host's own addresses (iptables/nftables: needed to tell local from forwarded traffic)"),
    wan: z.string().optional().describe("the WAN interface"),
    vdom: z.string().optional().describe("FortiOS VDOM to audit (multi-VDOM backups)"),
    ipset: z.string().optional().describe("`ipset save` output, so `-m set` matches are exact"),
  })
  .describe("a firewall/VPN gateway");

const common = {
  name: name.optional(),
  nat: z.enum(NAT_MODES, { error: `expected one of: ${NAT_MODES.join(", ")}` }).optional(),
  ike: z.union([z.literal(1), z.literal(2)], { error: "expected 1 or 2" }).optional(),
  ah: z.boolean().optional(),
  mobike: z.boolean().optional(),
  encap: z.boolean().optional(),
  "ike-tcp": z.boolean().optional(),
  "ike-fragmentation": z.boolean().optional(),
  public: z.string().optional().describe("the NAT device's public address, when a gateway is behind NAT"),
  "nat-devices": z
    .record(name, name)
    .optional()
    .describe(
      "gateway → the NAT device in front of it (another gateway of this file): its port forwards are checked (audit) and used (simulate)",
    ),
};

export const TunnelSchema = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      type: z.literal("site-to-site"),
      between: z.tuple([name, name], { error: "expected two gateway names: [site1, site2]" }),
      ...common,
      phase1: z.string().optional().describe("FortiOS phase1-interface name, when not derivable"),
    }),
    z.strictObject({
      type: z.enum(["l2tp-ipsec", "ikev2-remote-access"]),
      server: name,
      clients: z.union([z.literal("any"), z.array(prefix)]).default("any"),
      ...common,
    }),
  ],
  { error: `expected type: one of ${VPN_TYPES.join(", ")}` },
);

export const SimulateSchema = z.strictObject({
  duration: duration.optional(),
  initiator: name.optional(),
  seed: z.number().int().optional(),
  traffic: z
    .array(
      z.strictObject({
        from: name,
        to: name,
        every: duration,
        start: duration.optional(),
        stop: duration.optional(),
      }),
    )
    .optional(),
  overrides: z.record(name, z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]))).optional(),
});

export const TopologySchema = z
  .strictObject({
    gateways: z.record(name, GatewaySchema),
    tunnels: z.array(TunnelSchema).optional(),
    simulate: SimulateSchema.optional(),
  })
  .describe(
    "tunnelcheck topology: gateways with their configs, the tunnels between them, and an optional simulation",
  );

export type TopologyInput = z.input<typeof TopologySchema>;
export type Topology = z.output<typeof TopologySchema>;
export type GatewayDef = z.output<typeof GatewaySchema>;
export type TunnelDef = z.output<typeof TunnelSchema>;

export const topologyJsonSchema = () =>
  z.toJSONSchema(TopologySchema, { io: "input", target: "draft-2020-12" }) as Record<string, unknown>;
