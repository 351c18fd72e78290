/**
 * Log phrasing per vendor, so the timeline reads like the daemons' own debug output: FortiOS
 * `diagnose debug application ike -1` (as quoted in seed 001) and strongSwan charon's file log.
 * Only the wording is vendor-specific; the event types are shared.
 */
import type { Vendor } from "./profiles.js";

export interface SaRef {
  conn: string;
  serial: number;
  spiI: string;
  spiR: string;
  local: string;
  remote: string;
  localPort: number;
  remotePort: number;
  v: 1 | 2;
}

export interface LogStyle {
  prefix(conn: string, serial?: number): string;
  initiate(sa: SaRef, why: string): string;
  sent(sa: SaRef, what: string, mid: number, len: number): string;
  received(
    sa: SaRef | null,
    what: string,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    len: number,
  ): string;
  retransmit(sa: SaRef, n: number, mid: number, what: string): string;
  giveUp(sa: SaRef, n: number): string;
  established(sa: SaRef): string;
  childUp(sa: SaRef, child: number, spiIn: string, spiOut: string): string;
  childRekeyStart(sa: SaRef, child: number): string;
  ikeRekeyStart(sa: SaRef): string;
  ikeRekeyed(sa: SaRef, next: SaRef): string;
  dpdIdle(sa: SaRef, mode: string, seq: number): string;
  dpdSend(sa: SaRef, seq: number): string;
  dpdAck(sa: SaRef, seq: number): string;
  dpdTimeout(sa: SaRef): string;
  deleteSend(sa: SaRef, what: "ike" | "child", spi: string): string;
  deleteRecv(sa: SaRef, what: "ike" | "child", spi: string): string;
  childDeleted(sa: SaRef, child: number, spiIn: string, spiOut: string): string;
  ikeDeleted(sa: SaRef, why: string): string;
  unknownSa(spiI: string, spiR: string, what: string): string;
  unknownSpi(spi: string, src: string): string;
  retry(sa: SaRef, attempt: number, tries: number): string;
  failed(sa: SaRef): string;
  keepalive(sa: SaRef): string;
  noSa(conn: string): string;
  dpdAction(sa: SaRef, action: string, child: string): string;
}

const fortios: LogStyle = {
  prefix: (conn, serial) => `ike V=root:0:${conn}${serial !== undefined ? `:${serial}` : ""}: `,
  initiate: (sa, why) =>
    sa.v === 1
      ? `initiator: main mode is sending 1st message... (${why})`
      : `initiator: sending IKE_SA_INIT (${why})`,
  sent: (sa, what, mid, len) =>
    `sent IKE msg (${what}): ${sa.local}:${sa.localPort}->${sa.remote}:${sa.remotePort}, len=${len}, vrf=0, id=${sa.spiI}/${sa.spiR || "0000000000000000"}:${mid.toString(16).padStart(8, "0")}`,
  received: (_sa, what, src, sport, dst, dport, len) =>
    `comes ${src}:${sport}->${dst}:${dport},ifindex=3,vrf=0.... (${what}, len=${len})`,
  retransmit: (sa, n, mid, what) =>
    `sent IKE msg (retransmit ${n}, ${what}): ${sa.local}:${sa.localPort}->${sa.remote}:${sa.remotePort}, id=${sa.spiI}/${sa.spiR || "0000000000000000"}:${mid.toString(16).padStart(8, "0")}`,
  giveUp: (_sa, n) => `negotiation failure: no response after ${n} retransmissions`,
  established: (sa) => `${sa.v === 1 ? "ISAKMP" : "IKE"} SA ${sa.spiI}/${sa.spiR} established`,
  childUp: (sa, _c, i, o) => `added IPsec SA: SPIs=${i}/${o}; IPsec SA connect 3 ${sa.local}->${sa.remote}:0`,
  childRekeyStart: () => "IPsec SA rekey: quick mode initiator",
  ikeRekeyStart: (sa) => `${sa.v === 1 ? "ISAKMP" : "IKE"} SA rekey`,
  ikeRekeyed: (_sa, n) => `rekeyed to SA ${n.spiI}/${n.spiR}`,
  dpdIdle: (sa, mode, seq) =>
    `link is idle 3 ${sa.local}->${sa.remote}:0 dpd=${mode === "on-demand" ? 2 : 1} seqno=${seq} rr=0`,
  dpdSend: (sa, seq) =>
    sa.v === 1 ? `send IKEv1 DPD probe, seqno ${seq}` : `sending DPD probe (INFORMATIONAL), seqno ${seq}`,
  dpdAck: (_sa, seq) => `recv DPD R-U-THERE-ACK, seqno ${seq}`,
  dpdTimeout: (sa) => `link fail 3 ${sa.local}->${sa.remote}:0 dpd=2`,
  deleteSend: (sa, what, spi) =>
    what === "child"
      ? `send IPsec SA delete, spi ${spi}`
      : `send ${sa.v === 1 ? "ISAKMP" : "IKE"} SA delete ${sa.spiI}/${sa.spiR}`,
  deleteRecv: (_sa, what, spi) =>
    what === "child" ? `recv IPsec SA delete, spi ${spi}` : "recv ISAKMP SA delete",
  childDeleted: (_sa, _c, _i, o) => `deleted IPsec SA with SPI ${o}, SA count: 0`,
  ikeDeleted: (sa, why) => `${sa.v === 1 ? "ISAKMP" : "IKE"} SA ${sa.spiI}/${sa.spiR} deleted (${why})`,
  unknownSa: (i, r, what) => `ignoring ${what} for unknown SA ${i}/${r}`,
  unknownSpi: (spi, src) => `no IPsec SA for ESP spi=${spi} from ${src}, drop`,
  retry: () => "negotiation timeout, deleting",
  failed: () => "negotiation timeout, deleting",
  keepalive: (sa) => `sending NAT-T keep-alive to ${sa.remote}:${sa.remotePort}`,
  noSa: (conn) => `tunnel ${conn} is down: no IPsec SA for outgoing packet`,
  dpdAction: (_sa, action) => action,
};

const charon: LogStyle = {
  prefix: (conn, serial) => `${serial !== undefined ? `[IKE] <${conn}|${serial}> ` : `[IKE] <${conn}> `}`,
  initiate: (sa, why) =>
    `initiating ${sa.v === 1 ? "Main Mode " : ""}IKE_SA ${sa.conn}[${sa.serial}] to ${sa.remote} (${why})`,
  sent: (sa, _what, _mid, len) =>
    `sending packet: from ${sa.local}[${sa.localPort}] to ${sa.remote}[${sa.remotePort}] (${len} bytes)`,
  received: (_sa, _what, src, sport, dst, dport, len) =>
    `received packet: from ${src}[${sport}] to ${dst}[${dport}] (${len} bytes)`,
  retransmit: (_sa, n, mid, what) => `retransmit ${n} of request with message ID ${mid} (${what})`,
  giveUp: (_sa, n) => `giving up after ${n} retransmits`,
  established: (sa) =>
    `IKE_SA ${sa.conn}[${sa.serial}] established between ${sa.local}[${sa.local}]...${sa.remote}[${sa.remote}]`,
  childUp: (sa, c, i, o) => `CHILD_SA ${sa.conn}{${c}} established with SPIs ${i}_i ${o}_o`,
  childRekeyStart: (sa, c) => `initiating CHILD_SA ${sa.conn}{${c}} rekeying`,
  ikeRekeyStart: (sa) => `initiating IKE_SA ${sa.conn}[${sa.serial}] rekeying`,
  ikeRekeyed: (sa, n) => `IKE_SA ${sa.conn}[${sa.serial}] rekeyed to ${sa.conn}[${n.serial}]`,
  dpdIdle: () => "",
  dpdSend: () => "sending DPD request",
  dpdAck: () => "received DPD response",
  dpdTimeout: () => "DPD check timed out, enforcing DPD action",
  deleteSend: (sa, what, spi) =>
    what === "child"
      ? `sending DELETE for ESP CHILD_SA with SPI ${spi}`
      : `deleting IKE_SA ${sa.conn}[${sa.serial}] between ${sa.local}[${sa.local}]...${sa.remote}[${sa.remote}]`,
  deleteRecv: (sa, what, spi) =>
    what === "child"
      ? `received DELETE for ESP CHILD_SA with SPI ${spi}`
      : `received DELETE for IKE_SA ${sa.conn}[${sa.serial}]`,
  childDeleted: (sa, c, i, o) => `closing CHILD_SA ${sa.conn}{${c}} with SPIs ${i}_i ${o}_o`,
  ikeDeleted: (sa, why) => `IKE_SA ${sa.conn}[${sa.serial}] state change: => DESTROYING (${why})`,
  unknownSa: (i, r, what) => `ignoring ${what} for unknown IKE_SA ${i}_i ${r}_r`,
  unknownSpi: (spi, src) => `received ESP packet with unknown SPI ${spi} from ${src}, dropped`,
  retry: (_sa, a, t) => `peer not responding, trying again (${a}/${t})`,
  failed: () => "establishing IKE_SA failed, peer not responding",
  keepalive: (sa) => `sending keep alive to ${sa.remote}[${sa.remotePort}]`,
  noSa: (conn) => `no CHILD_SA for ${conn}: packet dropped (no IPsec policy)`,
  dpdAction: (_sa, action, child) =>
    action === "restart"
      ? `restarting CHILD_SA ${child}`
      : action === "trap"
        ? `installing trap policy for CHILD_SA ${child}`
        : `closing CHILD_SA ${child} (dpd_action=clear)`,
};

export function logStyle(v: Vendor): LogStyle {
  return v === "fortios" ? fortios : charon;
}
