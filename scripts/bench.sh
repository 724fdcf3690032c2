#!/usr/bin/env bash
# `make bench`: every benchmark of BENCHMARKS.md, then the generated part of
# BENCHMARKS.md rewritten from the results (scripts/benchreport).
#
#   Go micro-benchmarks   FSM apply and encoding, the Raft log store, token
#                         validation, the scheduler at 10,000 hosts (each run
#                         several times; summarised with benchstat)
#   in-process clusters   proposals, leader failover, creates, a detail page
#                         at 100,000 servers, boot to ACTIVE with 10/100/1,000
#                         simulated hosts, evacuating 100 servers
#   real processes        keel-bench's scenarios on 3 controllers with 10, 100
#                         and 1,000 simulated hosts (scripts/bench-cluster.sh);
#                         controller memory at 0/10,000/100,000 servers and a
#                         snapshot of 100,000 (scripts/bench-servers.sh);
#                         host-down detection over 20 trials (e2e)
#
# Results go to bench-results/ (git-ignored; kept for inspection) and the
# histograms to docs/bench/. Environment: BENCH_QUICK=1 runs each part small
# (minutes, for checking the harness; the figures are then not comparable);
# BENCH_NOVAREF=1 also runs the same load against the reference Nova of
# ../shared/novaref, side by side (scripts/bench-compare.sh; set it up first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results
rm -rf "$out"
mkdir -p "$out" docs/bench
quick=${BENCH_QUICK:-}
start=$SECONDS
step() { printf '\n[bench %s, %ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - start)) "$*" >&2; }

{
	echo "date=$(date -u +%Y-%m-%d)"
	echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' ':!docs/bench' || echo -dirty)"
	echo "cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
	echo "cores=$(nproc)"
	echo "memory=$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "go=$(go env GOVERSION)"
	echo "quick=$quick"
} >"$out/machine.env"

make -s build
count=6 n=2000 creates=5000 boots=5000 page=100000 servers="10000 100000" trials=20
[ -z "$quick" ] || { count=1 n=200 creates=500 boots=500 page=2000 servers="2000" trials=2; }
gotest() { go test -run '^$' -timeout 30m "$@"; }

step "Go micro-benchmarks (x$count)"
gotest -bench 'EncodeCommand|DecodeCommand|ApplyBatch64' -benchtime ${n}x -count $count ./fsm/ | tee "$out/go-fsm.txt"
gotest -bench . -benchtime ${n}x -count $count ./cluster/raftstore/ | tee "$out/go-raftstore.txt"
gotest -bench 'ValidateToken|ValidatedRequest' -benchtime 1s -count $count ./api/ | tee "$out/go-token.txt"
gotest -bench . -benchtime 5x -count $count ./scheduler/ | tee "$out/go-scheduler.txt"

step "HTTP throughput of one controller (wrk)"
scripts/bench-api.sh $([ -z "$quick" ] && echo 10 || echo 2) 50 | tee "$out/wrk.txt"

step "in-process clusters"
gotest -bench Propose -benchtime $((n * 10))x ./cluster/ | tee "$out/go-propose.txt"
gotest -bench LeaderFailover -benchtime $([ -z "$quick" ] && echo 10 || echo 2)x ./cluster/ | tee "$out/go-failover.txt"
gotest -bench ServerCreate -benchtime ${creates}x ./api/ | tee "$out/go-create.txt"
KEEL_BENCH_SERVERS=$page gotest -bench ServerDetailPage -benchtime 30x ./api/ | tee "$out/go-detail.txt"
gotest -bench BootToActive -benchtime ${boots}x ./api/ | tee "$out/go-boot.txt"
gotest -bench Evacuate100 -benchtime 1x -count 3 ./api/ | tee "$out/go-evacuate.txt"

step "keel-bench scenarios on real processes"
for h in 10 100 1000; do
	scripts/bench-cluster.sh "$h" "$out"
	[ -z "$quick" ] || break
done

if [ -n "${BENCH_NOVAREF:-}" ]; then
	step "the same load on Keel and on the reference Nova (../shared/novaref)"
	scripts/bench-compare.sh "$out"
fi

step "controller memory and snapshot"
# shellcheck disable=SC2086
scripts/bench-servers.sh $servers | tee "$out/servers.txt"

step "host-down detection ($trials trials)"
KEEL_DETECTION_TRIALS=$trials go test -count=1 -run 'TestHostDownDetectionAndNoFlap' -v -timeout 20m ./e2e/ |
	grep -E 'detection trial|host-down detection' | tee "$out/detection.txt"

step "BENCHMARKS.md"
rm -f docs/bench/*.svg
cp "$out"/scenario-*.svg "$out"/compare-*.svg docs/bench/ 2>/dev/null || true
go run ./scripts/benchreport "$out" BENCHMARKS.md
step "done in $((SECONDS - start)) s: BENCHMARKS.md rewritten (git diff BENCHMARKS.md)"
