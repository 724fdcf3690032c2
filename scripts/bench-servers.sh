#!/usr/bin/env bash
# Controller memory with many servers: starts a single-node keel-controller,
# creates servers through the API in batches of 1,000 (max_count), and prints
# the controller's RSS at 0, 10,000 and 100,000 servers (or the counts given),
# with the time each step took; then the size of a snapshot of the whole
# state at the last count, and how long saving and restoring it take.
# Usage: scripts/bench-servers.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10000 100000)
make -s build
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
bin/keel-controller --name bench --data-dir "$dir" --listen 127.0.0.1:$port \
  --raft-addr 127.0.0.1:$((port + 1)) --gossip-addr 127.0.0.1:$((port + 2)) \
  --admin-password bench-password --log-level warn >"$dir/controller.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
auth='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"bench-password"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
tok=""
for i in $(seq 100); do
  tok=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' "$base/identity/v3/auth/tokens" -d "$auth" \
    | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r') || true
  [ -n "$tok" ] && break
  sleep 0.2
done
[ -n "$tok" ] || { echo "no token; controller log:" >&2; tail -20 "$dir/controller.log" >&2; exit 1; }
api() { curl -sf -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' "$@"; }
project=$(api "$base/identity/v3/auth/tokens" -H "X-Subject-Token: $tok" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["project"]["id"])')
api -X PUT "$base/compute/v2.1/os-quota-sets/$project" -d '{"quota_set":{"instances":-1,"cores":-1,"ram":-1,"force":true}}' >/dev/null
# An image to boot from.
img=$(api -X POST "$base/image/v2/images" -d '{"name":"bench","disk_format":"raw","container_format":"bare","visibility":"public"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
printf 'bench image' | curl -sf -X PUT -H "X-Auth-Token: $tok" -H 'Content-Type: application/octet-stream' --data-binary @- "$base/image/v2/images/$img/file"
rss() { awk '/VmRSS/{printf "%.0f MiB", $2/1024}' /proc/$pid/status; }
echo "servers 0: controller RSS $(rss)"
made=0
for target in "${counts[@]}"; do
  start=$(date +%s)
  while [ $made -lt "$target" ]; do
    api -X POST "$base/compute/v2.1/servers" -H 'OpenStack-API-Version: compute 2.74' \
      -d "{\"server\":{\"name\":\"b$made\",\"flavorRef\":\"1\",\"imageRef\":\"$img\",\"networks\":\"none\",\"min_count\":1000,\"max_count\":1000}}" >/dev/null
    made=$((made + 1000))
    [ $((made % 10000)) -eq 0 ] && printf '\r  %d servers created' $made >&2
  done
  printf '\r' >&2
  secs=$(( $(date +%s) - start ))
  echo "servers $made: controller RSS $(rss) (step took ${secs} s); data dir $(du -sm "$dir" | cut -f1) MiB"
done
# Snapshot of the whole state at the last count: size, save time, restore
# time (keelctl, as an operator backs up and restores).
key="$dir/cluster.key"
snap="$dir/bench.snap"
t0=$(date +%s.%N)
bin/keelctl --url "$base" --cluster-key-file "$key" --timeout 120s snapshot save "$snap" >/dev/null 2>&1
t1=$(date +%s.%N)
bin/keelctl --url "$base" --cluster-key-file "$key" --timeout 120s snapshot restore "$snap" >/dev/null 2>&1
t2=$(date +%s.%N)
printf 'snapshot at %d servers: %d MiB, saved in %.2f s, restored in %.2f s; controller RSS after the restore %s\n' \
  "$made" $(( $(stat -c %s "$snap") / 1048576 )) "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$(rss)"
