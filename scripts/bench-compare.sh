#!/usr/bin/env bash
# The same keel-bench load against Keel and against the real Nova of
# ../shared/novaref (Debian's Zed, fake driver, one compute host, all on
# loopback), side by side. Keel runs as 3 controllers and 1 simulated host
# (the reference has one fake compute host too).
#
# Usage: scripts/bench-compare.sh OUTDIR
#   writes OUTDIR/compare-nova-<scenario>-h1.* and compare-keel-<scenario>-h1.*
# Needs the reference set up (../shared/novaref/setup.sh); it is started for
# the run if it is stopped, and stopped again afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/bench-compare.sh OUTDIR}
ref=$(cd .. && pwd)/shared/novaref
[ -x "$ref/start.sh" ] || { echo "bench-compare: no reference Nova at $ref (see its NOTES.md)" >&2; exit 1; }
mkdir -p "$out"
log() { printf '[bench-compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The load, identical on both clouds.
scenarios='boot-and-delete --count 40 --concurrency 8
create-and-show --count 40 --concurrency 8
show --prepare 20 --duration 15s --concurrency 50
list-detail --prepare 50 --count 50 --concurrency 4'

started_ref=
if ! (. "$ref/openrc" && /usr/bin/openstack token issue -f value -c id >/dev/null 2>&1); then
	log "starting the reference Nova"
	"$ref/start.sh" >&2
	started_ref=1
fi
(
	# shellcheck disable=SC1091
	. "$ref/openrc"
	export OS_COMPUTE_API_VERSION=2.37
	while read -r line; do
		read -r -a args <<<"$line"
		name=${args[0]}
		log "nova: $line"
		bin/keel-bench --scenario "$name" "${args[@]:1}" --image tiny --flavor m1.tiny --network none \
			--poll 50ms --timeout 5m --name-prefix "cmp-nova-" \
			--json "$out/compare-nova-$name-h1.json" --histogram "$out/compare-nova-$name-h1.svg" \
			>"$out/compare-nova-$name-h1.txt" || [ $? = 3 ] || { log "keel-bench $name on Nova failed"; exit 1; }
		cat "$out/compare-nova-$name-h1.txt" >&2
	done <<<"$scenarios"
)
[ -z "$started_ref" ] || "$ref/stop.sh" >&2

log "keel: 3 controllers, 1 simulated host"
BENCH_SCENARIOS=$scenarios BENCH_PREFIX=compare-keel scripts/bench-cluster.sh 1 "$out"
