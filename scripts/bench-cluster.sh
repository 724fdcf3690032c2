#!/usr/bin/env bash
# The load scenarios of `make bench` against real processes: three
# keel-controllers on loopback (production timing) and one keel-agent
# simulating HOSTS compute hosts with the fake driver, driven by keel-bench
# through the public API with the admin's OS_* environment, exactly as it
# would drive any OpenStack cloud.
#
# Usage: scripts/bench-cluster.sh HOSTS OUTDIR
#   writes OUTDIR/scenario-<name>-h<HOSTS>.json and .svg (keel-bench's
#   results and latency histograms) and OUTDIR/cluster-h<HOSTS>.log.
# Environment: BENCH_QUICK=1 runs each scenario small (checking the harness);
# BENCH_SCENARIOS (one "NAME [flags]" a line) replaces the scenarios, and
# BENCH_PREFIX (default "scenario") the results' file names.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:?usage: scripts/bench-cluster.sh HOSTS OUTDIR}
out=${2:?usage: scripts/bench-cluster.sh HOSTS OUTDIR}
q=${BENCH_QUICK:+1}
mkdir -p "$out"
log() { printf '[bench-cluster %s h=%s] %s\n' "$(date +%H:%M:%S)" "$hosts" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
pids=()
cleanup() {
	local rc=$? pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "$rc" != 0 ]; then
		for f in "$tmp"/*.log; do echo "==== $f ====" >&2; tail -n 20 "$f" >&2; done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

# Eleven free loopback ports: API, Raft, gossip (TCP+UDP) per controller,
# the agent's API and its gossip.
read -r -a ports < <(/usr/bin/python3 - <<'EOF'
import socket
got = []
while len(got) < 11:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    if port in got:
        continue
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port)); got.append(port)
    except OSError:
        pass
    u.close()
print(*got)
EOF
)
((${#ports[@]} == 11)) || die "could not find free loopback ports"

key=$(bin/keelctl keygen)
password=bench-admin-password
urls=()
for i in 0 1 2; do
	api=${ports[$((3 * i))]} raft=${ports[$((3 * i + 1))]} gossip=${ports[$((3 * i + 2))]}
	args=(--name "n$((i + 1))" --data-dir "$tmp/n$((i + 1))" --listen "127.0.0.1:$api" --raft-addr "127.0.0.1:$raft"
		--gossip-addr "127.0.0.1:$gossip" --bootstrap-expect 3 --cluster-key "$key" --admin-password "$password"
		--public-url "http://127.0.0.1:$api" --log-level warn)
	[ "$i" = 0 ] || args+=(--join "127.0.0.1:${ports[2]}")
	bin/keel-controller "${args[@]}" >"$tmp/n$((i + 1)).log" 2>&1 &
	pids+=($!)
	urls+=("http://127.0.0.1:$api")
done
base=${urls[0]}
for _ in $(seq 300); do
	bin/keelctl --url "$base" --cluster-key "$key" --timeout 2s cluster status >/dev/null 2>&1 && break
	sleep 0.2
done
bin/keelctl --url "$base" --cluster-key "$key" --timeout 2s cluster status >/dev/null || die "the cluster did not become healthy"
rc=
for _ in $(seq 100); do
	rc=$(bin/keelctl --url "$base" --cluster-key "$key" openrc --password "$password" 2>/dev/null) && break
	sleep 0.2
done
[ -n "$rc" ] || die "keelctl openrc failed: identity not bootstrapped"
eval "$rc"
export OS_COMPUTE_API_VERSION=2.74

bin/keel-agent --name sim --driver fake --fake-hosts "$hosts" --controllers "$(IFS=,; echo "${urls[*]}")" \
	--cluster-key "$key" --listen "127.0.0.1:${ports[9]}" --state-dir "$tmp/agent" --log-level warn >"$tmp/agent.log" 2>&1 &
pids+=($!)

# Unlimited quota for the admin project, and a tiny image.
bin/keelctl --url "$base" --cluster-key "$key" --timeout 5s hosts --json >/dev/null
/usr/bin/openstack quota set --instances -1 --cores -1 --ram -1 admin >/dev/null
head -c 16384 /dev/zero >"$tmp/tiny.img"
/usr/bin/openstack image create --file "$tmp/tiny.img" --disk-format raw --container-format bare --public bench-tiny >/dev/null
for _ in $(seq 300); do
	n=$(bin/keelctl --url "$base" --cluster-key "$key" --timeout 5s hosts --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))')
	[ "$n" -ge "$hosts" ] && break
	sleep 0.2
done
[ "$n" -ge "$hosts" ] || die "only $n of $hosts simulated hosts registered"
log "3 controllers and $hosts simulated hosts up"

prefix=${BENCH_PREFIX:-scenario}
run() {
	local name=$1
	shift
	log "scenario $name $*"
	# Exit 3: some iterations failed; they are in the results (errors by
	# fault), which is what a benchmark reports, not a harness failure.
	bin/keel-bench --scenario "$name" --image bench-tiny --flavor m1.tiny --network none --name-prefix "bench-h$hosts-" \
		--poll 50ms --json "$out/$prefix-$name-h$hosts.json" --histogram "$out/$prefix-$name-h$hosts.svg" "$@" \
		>"$out/$prefix-$name-h$hosts.txt" || [ $? = 3 ] || die "keel-bench $name failed"
	cat "$out/$prefix-$name-h$hosts.txt" >&2
}
if [ -n "${BENCH_SCENARIOS:-}" ]; then
	# One scenario a line: NAME [keel-bench flags].
	while read -r line; do
		[ -n "$line" ] || continue
		read -r -a args <<<"$line"
		run "${args[@]}"
	done <<<"$BENCH_SCENARIOS"
elif [ -z "$q" ]; then
	run boot-and-delete --count 400 --concurrency 16
	run create-and-show --count 400 --concurrency 16
	run show --prepare 100 --duration 15s --concurrency 50
	run list-detail --prepare 1000 --count 50 --concurrency 4
	run actions --prepare 20 --count 20 --concurrency 8
else
	run boot-and-delete --count 20 --concurrency 4
	run create-and-show --count 20 --concurrency 4
	run show --prepare 10 --duration 3s --concurrency 50
	run list-detail --prepare 50 --count 5 --concurrency 2
	run actions --prepare 2 --count 2 --concurrency 2
fi
cp "$tmp"/n1.log "$out/cluster-h$hosts.log"
log "done"
