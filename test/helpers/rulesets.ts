/** An iptables-save filter table: INPUT with `policy`, FORWARD DROP, OUTPUT ACCEPT, then `lines`. */
export const filterRules = (lines: string[], policy = "DROP"): string =>
  [
    "*filter",
    `:INPUT ${policy} [0:0]`,
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ...lines,
    "COMMIT",
    "",
  ].join("\n");
