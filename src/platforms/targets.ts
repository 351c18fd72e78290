/** Rule syntaxes `tunnelcheck rules` can write (kept apart from the generators so the CLI loads fast). */
export const TARGETS = [
  "iptables",
  "iptables-restore",
  "ip6tables",
  "ip6tables-restore",
  "nftables",
  "fortios",
  "firewalld",
] as const;
export type Target = (typeof TARGETS)[number];
