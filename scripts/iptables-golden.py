#!/usr/bin/env python3
"""Ground truth for test/iptables-parse.test.ts: loads each input rule (one per line of stdin, as
"table<TAB>rule") with the real iptables-restore in a fresh network namespace, then prints a
GOLDEN4 entry (what iptables-save lists) or a REJECTED4 entry (iptables-restore's message) as
TypeScript. Needs root and iptables. Usage: scripts/iptables-golden.py [-6] < lines.tsv"""
import json, subprocess, sys, uuid

v6 = "-6" in sys.argv[1:]
restore, save = ("ip6tables-restore", "ip6tables-save") if v6 else ("iptables-restore", "iptables-save")

def entry(table: str, rule: str) -> str:
    ns = f"golden-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        text = f"*{table}\n:U - [0:0]\n:V - [0:0]\n{rule}\nCOMMIT\n"
        r = subprocess.run(["ip", "netns", "exec", ns, restore], input=text, text=True, capture_output=True)
        if r.returncode != 0:
            msg = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "refused"
            return f"  [{json.dumps(table)}, {json.dumps(rule)}, {json.dumps(msg)}],  // REJECTED"
        out = subprocess.run(["ip", "netns", "exec", ns, save, "-t", table], text=True, capture_output=True, check=True)
        saved = [l for l in out.stdout.splitlines() if l.startswith("-A ")]
        return f"  [{json.dumps(table)}, {json.dumps(rule)}, {json.dumps(saved)}],"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)

for line in sys.stdin:
    line = line.rstrip("\n")
    if line.strip():
        table, rule = line.split("\t", 1)
        print(entry(table, rule))
