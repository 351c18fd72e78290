#!/usr/bin/env bash
# Whole-process timings of the built CLI on the generated benchmark inputs (issues 3 and 4).
# Usage: npm run build && bash bench/cli.sh   (needs /usr/bin/time; iptables-restore for the ratio)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out; mkdir -p "$out"
runs=${RUNS:-5}

measure() { # label, command...
  local label=$1; shift
  local best=999999 cpu=999999 rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || true
    read -r wall user sys kb < "$out/time.txt"
    best=$(awk -v a="$best" -v b="$wall" 'BEGIN{print (b<a)?b:a}')
    cpu=$(awk -v a="$cpu" -v u="$user" -v s="$sys" 'BEGIN{c=u+s; print (c<a)?c:a}')
    rss=$(( kb > rss ? kb : rss ))
  done
  # CPU time next to wall time: on a shared machine the wall figure carries other processes' load.
  printf '%-58s wall %6.2f s  cpu %6.2f s  peak RSS %5d MB  (load %s)\n' "$label" "$best" "$cpu" $((rss / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
}

npx tsx bench/fortios.ts --write "$out/fortios-big.conf" > "$out/fortios-inprocess.txt"
measure "fortios: trace --src any (10k policies, 20k addresses)" \
  node dist/cli/bin.js trace --fortios "$out/fortios-big.conf" --proto udp --dport 500 --iif port1 --format json
