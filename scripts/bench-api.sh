#!/usr/bin/env bash
# API throughput of one controller, measured with wrk over loopback:
# GET /compute/v2.1/ without a token, and with a token (validated on every
# request). Starts its own single-node controller in a temporary directory
# and stops it at the end. Usage: scripts/bench-api.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-50}
command -v wrk >/dev/null || { echo "wrk is missing: run make deps" >&2; exit 1; }
make -s build
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
bin/keel-controller --name bench --data-dir "$dir" --listen 127.0.0.1:$port \
  --raft-addr 127.0.0.1:$((port + 1)) --gossip-addr 127.0.0.1:$((port + 2)) \
  --admin-password bench-password --log-level warn >"$dir/controller.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
for i in $(seq 100); do
  tok=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' "$base/identity/v3/auth/tokens" -d \
    '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"bench-password"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' \
    | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r') || true
  [ -n "$tok" ] && break
  sleep 0.2
done
[ -n "$tok" ] || { echo "could not get a token; controller log:" >&2; tail -20 "$dir/controller.log" >&2; exit 1; }
echo "== GET /compute/v2.1/ without a token: wrk -t2 -c$conns -d${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --latency "$base/compute/v2.1/" | grep -E "Requests/sec|Latency|50%|99%"
echo "== GET /compute/v2.1/ with a token (validated on each request): wrk -t2 -c$conns -d${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "X-Auth-Token: $tok" "$base/compute/v2.1/" | grep -E "Requests/sec|Latency|50%|99%"
echo "controller CPU time (user+sys, clock ticks): $(awk '{print $14+$15}' /proc/$pid/stat)"
