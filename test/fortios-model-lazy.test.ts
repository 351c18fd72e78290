import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { buildModel, type FortiosModel, modelToJSON } from "../src/platforms/fortios/model.js";
import { parseFortios } from "../src/platforms/fortios/parse.js";
import { traceFortios } from "../src/platforms/fortios/trace.js";

// The model builds address objects and groups on first lookup when their sections hold only
// `edit` blocks (model.ts `entryTable`, lazymap.ts). Whatever is read, in whatever order, every
// answer and the finished model — objects, map order, diagnostics — must be those of a model built
// from a tree parsed at once (`lazy: false`, where every table is resolved as a whole).

const NAMES = ["a", "b", "c", "g1", "g2", "all", "none", "x y"];
const name = fc.constantFrom(...NAMES);
const q = (n: string) => `"${n}"`;

const addressBody = fc.oneof(
  fc.constant(["set subnet 10.0.1.0 255.255.255.0"]),
  fc.constant(["set subnet 10.0.1.7 255.255.255.0"]), // host bits: a warning
  fc.constant(["set subnet bogus"]), // invalid: a warning
  fc.constant(["set type iprange", "set start-ip 10.0.2.1", "set end-ip 10.0.2.9"]),
  fc.constant(["set type fqdn", 'set fqdn "h.example.com"']),
  fc.constant(["set type interface-subnet", "set interface port1"]),
  fc.constant(["set comment hi", "set associated-interface port1"]),
  fc.constant([] as string[]),
);
const address6Body = fc.oneof(
  fc.constant(["set ip6 2001:db8::/64"]),
  fc.constant(["set ip6 2001:db8::1/64"]),
  fc.constant(["set ip6 nope"]),
  fc.constant([] as string[]),
);
const groupBody = fc
  .record({
    members: fc.array(name, { maxLength: 3 }),
    exclude: fc.option(fc.array(name, { maxLength: 2 })),
    append: fc.option(name),
  })
  .map((g) => [
    ...(g.members.length > 0 ? [`set member ${g.members.map(q).join(" ")}`] : []),
    ...(g.exclude ? ["set exclude enable", `set exclude-member ${g.exclude.map(q).join(" ")}`] : []),
    ...(g.append ? [`append member ${q(g.append)}`] : []),
  ]);

/** A section: blocks of edits, sometimes a table command, a field on the section or an error. */
const section = (path: string, body: fc.Arbitrary<readonly string[]>) =>
  fc
    .record({
      blocks: fc.array(fc.array(fc.tuple(name, body), { maxLength: 4 }), { minLength: 1, maxLength: 2 }),
      extra: fc.constantFrom("", "", "", "rename", "clone", "delete", "move", "field", "error"),
      x: name,
      y: name,
    })
    .map(({ blocks, extra, x, y }) =>
      blocks
        .map((edits, k) => {
          const out = [`config ${path}`];
          for (const [n, b] of edits) out.push(`  edit ${q(n)}`, ...b.map((l) => `    ${l}`), "  next");
          if (k === blocks.length - 1) {
            if (extra === "rename") out.push(`  rename ${q(x)} to ${q(`${y}2`)}`);
            if (extra === "clone") out.push(`  clone ${q(x)} to ${q(y)}`);
            if (extra === "delete") out.push(`  delete ${q(x)}`);
            if (extra === "move") out.push(`  move ${q(x)} before ${q(y)}`);
            if (extra === "field") out.push("  set foo bar");
            if (extra === "error") out.push("  bogus line");
          }
          out.push("end");
          return out.join("\n");
        })
        .join("\n"),
    );

const policies = (path: string, n: number) =>
  fc
    .array(fc.tuple(fc.array(name, { minLength: 1, maxLength: 2 }), name, fc.boolean()), { maxLength: n })
    .map((ps) =>
      [
        `config ${path}`,
        ...ps.flatMap(([src, dst, deny], i) => [
          `  edit ${i + 1}`,
          '    set intf "port1"',
          ...(path.includes("local-in")
            ? []
            : ['    set srcintf "port1"', '    set dstintf "port2"', '    set schedule "always"']),
          `    set srcaddr ${src.map(q).join(" ")}`,
          `    set dstaddr ${q(dst)}`,
          `    set service "IKE"`,
          `    set action ${deny ? "deny" : "accept"}`,
          "  next",
        ]),
        "end",
      ].join("\n"),
    );

const configArb = fc
  .record({
    addr: section("firewall address", addressBody),
    grp: section("firewall addrgrp", groupBody),
    addr6: fc.option(section("firewall address6", address6Body)),
    grp6: fc.option(section("firewall addrgrp6", groupBody)),
    localIn: policies("firewall local-in-policy", 4),
    fwd: policies("firewall policy", 3),
    order: fc.nat(5),
    vdom: fc.boolean(),
  })
  .map((c) => {
    const iface = [
      "config system interface",
      '  edit "port1"',
      "    set ip 192.0.2.1 255.255.255.0",
      "  next",
      '  edit "port2"',
      "  next",
      "end",
    ].join("\n");
    const parts = [c.addr, c.grp, c.addr6 ?? "", c.grp6 ?? "", c.localIn, c.fwd];
    // Sections in a few orders (groups before addresses too).
    const k = c.order % parts.length;
    const body = [...parts.slice(k), ...parts.slice(0, k)].filter((p) => p !== "").join("\n");
    return c.vdom
      ? `config global\n${iface}\nend\nconfig vdom\nedit root\n${body}\nnext\nend\n`
      : `${iface}\n${body}\n`;
  });

type Read = { kind: string; name: string; v6: boolean };
const readArb = fc.record({
  kind: fc.constantFrom(
    "get",
    "has",
    "getGroup",
    "hasGroup",
    "size",
    "iterate",
    "trace",
    "policies",
    "diagnostics",
  ),
  name,
  v6: fc.boolean(),
});

const J = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v instanceof Map ? Object.fromEntries(v) : v,
  );

function read(m: FortiosModel, r: Read): string {
  const v = m.vdoms.get("root")!;
  const addrs = r.v6 ? v.addresses6 : v.addresses;
  const groups = r.v6 ? v.addrgrps6 : v.addrgrps;
  switch (r.kind) {
    case "get":
      return J(addrs.get(r.name) ?? null);
    case "has":
      return J(addrs.has(r.name));
    case "getGroup":
      return J(groups.get(r.name) ?? null);
    case "hasGroup":
      return J(groups.has(r.name));
    case "size":
      return J([addrs.size, groups.size]);
    case "iterate":
      return J([[...addrs.keys()], [...groups.values()]]);
    case "trace":
      return J(traceFortios(m, { src: r.v6 ? "any6" : "any", proto: "udp", dport: 500, iif: "port1" }));
    case "policies":
      return J(v.policies);
    default:
      return J(m.diagnostics);
  }
}

describe("address objects built on first lookup", () => {
  test.prop([configArb, fc.array(readArb, { maxLength: 8 })], { numRuns: 400 })(
    "answer every read and finish as the model of a tree parsed at once",
    (text, reads) => {
      const lazy = buildModel(parseFortios(text, { file: "l.conf" }).tree);
      const eager = buildModel(parseFortios(text, { file: "l.conf", lazy: false }).tree);
      for (const r of reads) expect(read(lazy, r)).toBe(read(eager, r));
      expect(modelToJSON(lazy)).toBe(modelToJSON(eager));
      expect(J(lazy.diagnostics)).toBe(J(eager.diagnostics));
    },
  );

  it("a local-in trace builds only the objects its policies name", () => {
    const lines = ["config firewall address"];
    for (let i = 0; i < 50; i++)
      lines.push(`  edit "h${i}"`, `    set subnet 10.0.${i}.0 255.255.255.0`, "  next");
    lines.push(
      "end",
      "config firewall local-in-policy",
      "  edit 1",
      '    set intf "any"',
      '    set srcaddr "h7"',
      '    set dstaddr "all"',
      '    set service "IKE"',
      "    set action accept",
      "  next",
      "end",
    );
    const m = buildModel(parseFortios(lines.join("\n"), { file: "t.conf" }).tree);
    const v = m.vdoms.get("root")!;
    const built = Object.getOwnPropertyNames(v.addresses); // the overrides are still there
    expect(built).toContain("get");
    traceFortios(m, { src: "any", proto: "udp", dport: 500, iif: "port1" });
    expect(Object.getOwnPropertyNames(v.addresses)).toContain("get");
    expect(v.addresses.size).toBe(51); // 50 + the predefined "all"
    expect(Object.getOwnPropertyNames(v.addresses)).toEqual([]);
  });
});
