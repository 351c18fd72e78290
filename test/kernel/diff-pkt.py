#!/usr/bin/env python3
"""Packet agent for the differential kernel test (stdlib only; root for raw sockets).

One long-lived agent per namespace, driven over stdin/stdout with one JSON object per line, so the
interpreter starts once per run rather than once per ruleset.

Every packet is built here byte for byte (UDP/TCP/ICMP/ESP/AH over raw IPv4 sockets; the kernel adds
only the 20-byte IP header, with the TTL we set), so its IP length, TTL, ports, flags, ICMP type and
SPI are exactly what the engine is told. Probes carry "tc:<token>;" in their payload.

Roles:
  gw      raw sockets for ICMP, TCP, UDP, ESP and AH. Raw IPv4 sockets get a copy of every packet
          the host delivers locally, after the INPUT hook: a token seen here was accepted.
          "send" emits the gateway's outbound packets that make later client packets ESTABLISHED
          or RELATED (their payloads say "su:", never "tc:").
  client  raw sockets for ICMP and TCP: ICMP errors quoting a probe (REJECT's unreachables) and TCP
          resets (REJECT --reject-with tcp-reset). "send" emits the probes.

Commands:  {"cmd": "send", "packets": [...]}  -> {"ok": true, "sent": n, "errors": [...]}
           {"cmd": "reset"}                   -> {"ok": true}  (discards everything captured)
           {"cmd": "collect", "linger": s}    -> {"ok": true, "packets": [...]} (since the last reset)
"""

import json
import re
import select
import socket
import struct
import sys
import time

TOKEN_RE = re.compile(rb"tc:([A-Za-z0-9_.-]+);")
PROTO = {"icmp": 1, "tcp": 6, "udp": 17, "dccp": 33, "esp": 50, "ah": 51, "sctp": 132, "udplite": 136}


def crc32c(data):
    """CRC-32C (Castagnoli), reflected, as SCTP uses it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def pseudo(src, dst, proto, length):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def payload(p):
    body = (p.get("tag", "tc") + ":" + p["token"] + ";").encode()
    size = int(p.get("payload", 0))
    if size > len(body):
        body += b"." * (size - len(body))
    return body


def l4(p):
    """The transport part (what a raw socket without IP_HDRINCL sends) of one packet description."""
    proto = p["proto"]
    data = payload(p)
    if proto == "udp":
        length = 8 + len(data)
        head = struct.pack("!HHHH", p["sport"], p["dport"], length, 0)
        c = checksum(pseudo(p["src"], p["dst"], 17, length) + head + data) or 0xFFFF
        return struct.pack("!HHHH", p["sport"], p["dport"], length, c) + data
    if proto == "tcp":
        flags = int(p.get("flags", 0x02))
        seq = int(p.get("seq", 1000)) & 0xFFFFFFFF
        ack = int(p.get("ack", 0)) & 0xFFFFFFFF
        head = struct.pack("!HHIIBBHHH", p["sport"], p["dport"], seq, ack, 5 << 4, flags, 64240, 0, 0)
        c = checksum(pseudo(p["src"], p["dst"], 6, len(head) + len(data)) + head + data)
        return head[:16] + struct.pack("!H", c) + head[18:] + data
    if proto == "icmp":
        t = int(p["icmpType"])
        code = int(p.get("icmpCode", 0))
        if "inner" in p:
            # An ICMP error quoting a packet: its IP header and first 8 bytes, then our token.
            i = p["inner"]
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 16, 0x1234, 0, 64, PROTO[i["proto"]], 0,
                socket.inet_aton(i["src"]), socket.inet_aton(i["dst"]),
            )
            ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
            quoted = ip + struct.pack("!HHHH", i["sport"], i["dport"], 8 + 16, 0)
            body = struct.pack("!I", 0) + quoted + data
        else:
            extra = b"\0" * 12 if t in (13, 14) else b""  # timestamps
            body = struct.pack("!HH", int(p.get("icmpId", 0)), int(p.get("icmpSeq", 1))) + extra + data
        head = struct.pack("!BBH", t, code, 0)
        c = checksum(head + body)
        return struct.pack("!BBH", t, code, c) + body
    if proto == "udplite":
        # Checksum coverage 0: the whole datagram, like UDP's checksum.
        head = struct.pack("!HHHH", p["sport"], p["dport"], 0, 0)
        c = checksum(pseudo(p["src"], p["dst"], 136, 8 + len(data)) + head + data) or 0xFFFF
        return struct.pack("!HHHH", p["sport"], p["dport"], 0, c) + data
    if proto == "sctp":
        # An INIT chunk (verification tag 0, as conntrack wants for a new association); the token rides in
        # an unrecognised parameter (type 0x8000 | x: skip it), padded to 4 bytes by the generator.
        param = struct.pack("!HH", 0x8123, 4 + len(data)) + data
        chunk = struct.pack("!BBHIIHHI", 1, 0, 20 + len(param), 0x1234, 65536, 4, 4, 1) + param
        pkt = struct.pack("!HHII", p["sport"], p["dport"], 0, 0) + chunk
        return pkt[:8] + struct.pack("<I", crc32c(pkt)) + pkt[12:]
    if proto == "dccp":
        # A DCCP-Request (type 0) with 48-bit sequence numbers (X=1) and a service code; checksum over all.
        head = struct.pack("!HHBBHBBHIi", p["sport"], p["dport"], 5, 0, 0, (0 << 1) | 1, 0, 0, 1, 0)
        c = checksum(pseudo(p["src"], p["dst"], 33, len(head) + len(data)) + head + data)
        return head[:6] + struct.pack("!H", c) + head[8:] + data
    if proto == "esp":
        return struct.pack("!II", int(p.get("spi", 0x1001)), 1) + data
    if proto == "ah":
        # Next header 59 (none), payload length 1 -> (1 + 2) * 4 = 12 bytes: SPI, sequence number.
        return struct.pack("!BBHII", 59, 1, 0, int(p.get("spi", 0x2001)), 1) + data
    raise ValueError("unknown protocol %r" % proto)


def send_one(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO[p["proto"]])
    try:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(p.get("ttl", 64)))
        if p.get("broadcast"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.bind((p["src"], 0))
        s.sendto(l4(p), (p["dst"], 0))
    finally:
        s.close()


def parse_ip(pkt):
    """Fields of an IPv4 packet as a raw socket returns it (header included)."""
    ihl = (pkt[0] & 0x0F) * 4
    total, ttl, proto = struct.unpack("!H", pkt[2:4])[0], pkt[8], pkt[9]
    out = {
        "src": socket.inet_ntoa(pkt[12:16]),
        "dst": socket.inet_ntoa(pkt[16:20]),
        "proto": proto,
        "len": total,
        "ttl": ttl,
    }
    body = pkt[ihl:]
    if proto in (6, 17, 33, 132, 136) and len(body) >= 4:
        out["sport"], out["dport"] = struct.unpack("!HH", body[:4])
    if proto == 6 and len(body) >= 14:
        out["flags"] = body[13]
    if proto == 1 and len(body) >= 2:
        out["icmpType"], out["icmpCode"] = body[0], body[1]
    m = TOKEN_RE.search(body)
    out["token"] = m.group(1).decode() if m else None
    return out


class Agent:
    def __init__(self, role):
        self.socks = []
        protos = ["icmp", "tcp", "udp", "esp", "ah", "sctp", "dccp", "udplite"] if role == "gw" else ["icmp", "tcp"]
        for name in protos:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO[name])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setblocking(False)
            self.socks.append(s)
        self.role = role

    def drain(self):
        got = []
        while True:
            readable, _, _ = select.select(self.socks, [], [], 0)
            if not readable:
                return got
            for s in readable:
                while True:
                    try:
                        data = s.recv(65535)
                    except BlockingIOError:
                        break
                    got.append(parse_ip(data))

    def interesting(self, pkt):
        if self.role == "gw":
            return pkt["token"] is not None
        # Client: ICMP errors quoting a probe, and TCP resets.
        if pkt["proto"] == 1:
            return pkt.get("icmpType") in (3, 4, 5, 11, 12) and pkt["token"] is not None
        return pkt["proto"] == 6 and bool(pkt.get("flags", 0) & 0x04)

    def handle(self, cmd):
        c = cmd["cmd"]
        if c == "reset":
            self.drain()
            return {"ok": True}
        if c == "send":
            errors = []
            for p in cmd["packets"]:
                try:
                    send_one(p)
                except OSError as e:
                    errors.append({"token": p.get("token"), "error": str(e)})
            return {"ok": True, "sent": len(cmd["packets"]), "errors": errors}
        if c == "collect":
            time.sleep(float(cmd.get("linger", 0.05)))
            return {"ok": True, "packets": [p for p in self.drain() if self.interesting(p)]}
        return {"ok": False, "error": "unknown command %r" % c}


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ("gw", "client"):
        sys.exit("usage: diff-pkt.py gw|client")
    agent = Agent(role)
    sys.stdout.write(json.dumps({"ok": True, "ready": role}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = agent.handle(json.loads(line))
        except Exception as e:  # report, never die: the driver decides
            out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
