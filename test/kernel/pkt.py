#!/usr/bin/env python3
"""Packet probe for the kernel tests (stdlib only; needs root for raw sockets and ports < 1024).

listen: bind UDP/TCP ports and raw IP-protocol sockets, print {"event": "ready"} once bound, then
        one JSON line per received probe, and exit after --timeout seconds.
send:   send the probes given as a JSON list (UDP/TCP from a chosen source address and port, raw
        ESP/AH bound to a chosen source address). Each payload carries "tc:<token>;" so the
        listener can tell probes apart without trusting addresses or ports.
"""

import argparse
import json
import re
import select
import socket
import struct
import sys
import threading
import time

TOKEN_RE = re.compile(rb"tc:([A-Za-z0-9_.-]+);")
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def token_of(data):
    m = TOKEN_RE.search(data)
    return m.group(1).decode() if m else None


def ports(text):
    return [int(p) for p in text.split(",") if p]


def listen(args):
    af = socket.AF_INET6 if args.family == 6 else socket.AF_INET
    any_addr = "::" if args.family == 6 else "0.0.0.0"
    socks = {}
    for port in ports(args.udp):
        s = socket.socket(af, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((any_addr, port))
        socks[s] = ("udp", port)
    for port in ports(args.tcp):
        s = socket.socket(af, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((any_addr, port))
        s.listen(16)
        socks[s] = ("tcp-listen", port)
    for proto in ports(args.raw):
        s = socket.socket(af, socket.SOCK_RAW, proto)
        socks[s] = ("raw", proto)
    emit({"event": "ready"})
    deadline = time.monotonic() + args.timeout
    watch = list(socks) + [sys.stdin]
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readable, _, _ = select.select(watch, [], [], left)
        for s in readable:
            if s is sys.stdin:
                # The driver closes stdin once every probe is sent: linger briefly, then stop.
                if not sys.stdin.buffer.read1(4096):
                    watch.remove(sys.stdin)
                    deadline = min(deadline, time.monotonic() + args.linger)
                continue
            kind, num = socks[s]
            if kind == "tcp-listen":
                conn, peer = s.accept()
                conn.settimeout(0.3)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                conn.close()
                emit({"proto": "tcp", "src": peer[0], "dport": num, "token": token_of(data), "len": len(data)})
                continue
            data, peer = s.recvfrom(65535)
            if kind == "udp":
                emit({"proto": "udp", "src": peer[0], "dport": num, "token": token_of(data), "len": len(data)})
            else:
                # AF_INET raw sockets include the IP header, AF_INET6 ones do not.
                if af == socket.AF_INET:
                    data = data[(data[0] & 0x0F) * 4 :]
                name = {50: "esp", 51: "ah"}.get(num, str(num))
                emit({"proto": name, "src": peer[0], "token": token_of(data), "len": len(data)})


def payload(probe):
    body = b"tc:" + probe["token"].encode() + b";"
    size = int(probe.get("size", 0))
    if size > len(body):
        body += b"x" * (size - len(body))
    return body


def send_udp(af, probe):
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if af == socket.AF_INET:
        # Let the kernel fragment large datagrams (IKE_AUTH with certificates) instead of failing.
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.bind((probe["src"], int(probe.get("sport", 0))))
    s.sendto(payload(probe), (probe["dst"], int(probe["dport"])))
    s.close()


def send_raw(af, probe):
    proto = {"esp": 50, "ah": 51}[probe["proto"]]
    if proto == 50:
        head = struct.pack("!II", 0x1000 + 1, 1)  # SPI, sequence number
    else:
        # Minimal AH: next header 59 (none), length 1 -> (1 + 2) * 4 = 12 bytes, SPI, sequence.
        head = struct.pack("!BBHII", 59, 1, 0, 0x2000 + 1, 1)
    s = socket.socket(af, socket.SOCK_RAW, proto)
    s.bind((probe["src"], 0))
    s.sendto(head + payload(probe), (probe["dst"], 0))
    s.close()


def send_tcp(af, probe, timeout):
    s = socket.socket(af, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((probe["src"], int(probe.get("sport", 0))))
    s.settimeout(timeout)
    try:
        s.connect((probe["dst"], int(probe["dport"])))
        s.sendall(payload(probe))
        time.sleep(0.05)
    except OSError:
        pass  # a dropped SYN shows up as a timeout; the listener is the judge
    finally:
        s.close()


def send(args):
    probes = json.loads(args.probes)
    if args.wait_stdin:
        # Started alongside the listener to overlap interpreter start-up; go once the driver says so.
        if sys.stdin.readline().strip() != "go":
            sys.exit("send: no go on stdin")
    threads = []
    blocked = []
    for probe in probes:
        af = socket.AF_INET6 if ":" in probe["src"] else socket.AF_INET
        try:
            if probe["proto"] == "udp":
                send_udp(af, probe)
            elif probe["proto"] == "tcp":
                t = threading.Thread(target=send_tcp, args=(af, probe, args.tcp_timeout))
                t.start()
                threads.append(t)
            else:
                send_raw(af, probe)
        except PermissionError:
            # EPERM: this host's own OUTPUT chain dropped it; the listener will simply not see it.
            blocked.append(probe["token"])
    for t in threads:
        t.join()
    emit({"event": "sent", "count": len(probes), "blocked_by_output": blocked})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    lp = sub.add_parser("listen")
    lp.add_argument("--family", type=int, choices=(4, 6), default=4)
    lp.add_argument("--udp", default="500,4500,1701")
    lp.add_argument("--tcp", default="")
    lp.add_argument("--raw", default="50,51")
    lp.add_argument("--timeout", type=float, default=5.0, help="hard limit in seconds")
    lp.add_argument("--linger", type=float, default=0.1, help="seconds to wait after stdin closes")
    sp = sub.add_parser("send")
    sp.add_argument("--probes", required=True, help="JSON list of probes")
    sp.add_argument("--tcp-timeout", type=float, default=0.5)
    sp.add_argument("--wait-stdin", action="store_true", help='send only after reading "go" from stdin')
    args = p.parse_args()
    listen(args) if args.mode == "listen" else send(args)


if __name__ == "__main__":
    main()
