#!/usr/bin/env bash
# Runs OpenStack's own Tempest (Debian's package) against a three-controller
# Keel cluster on loopback, and summarises the results.
#
#   conformance/run.sh full     compute + identity (v3) + image (v2) API tests;
#                               rewrites conformance/RESULTS.md; exits 0 unless
#                               the harness itself failed
#   conformance/run.sh smoke    Tempest's smoke tests of the same groups (a few
#                               minutes); summary on stdout and in
#                               conformance/RESULTS-smoke.md; exits 1 when a test
#                               fails that conformance/expected-failures.txt
#                               does not list
#   conformance/run.sh cluster  start and prepare the cluster, write tempest.conf,
#                               print how to run tempest by hand, wait for Ctrl-C
#
# Environment:
#   CONFORMANCE_TIMEOUT   wall-clock bound of `tempest run` (timeout(1) syntax;
#                         default 25m for full, 8m for smoke)
#   CONFORMANCE_WORKERS   tempest workers (default 2)
#   CONFORMANCE_REGEX     run these tests instead of the mode's selection (a
#                         tempest --regex; smoke keeps only the smoke-tagged ones)
#   CONFORMANCE_KEEP=1    keep the temporary directory (cluster data, workspace)
#   CONFORMANCE_LOG_LEVEL controllers' log level (default info: one line per request)
#
# Exit status: 0 success, 1 unexpected test failures (smoke), 2 usage,
# 3 harness failure (build, cluster, setup, tempest did not run or timed out).
set -Eeuo pipefail

# Everything is in main, which bash parses whole before running it: editing
# this file during a run cannot derail the run.
main() {

mode=${1:-smoke}
case $mode in
full | smoke | cluster) ;;
-h | --help | help)
	sed -n '2,/^set -E/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [full|smoke|cluster]" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"

# Debian's python3 (Tempest, stestr, subunit, the openstack CLI) must win over
# any other python3 on the PATH (pyenv, virtualenvs): stestr starts its workers
# with whatever "python3" it finds.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PYTHON=/usr/bin/python3
unset PYTHONPATH VIRTUAL_ENV PYENV_VERSION
# No OS_* or KEEL_* settings of the developer may leak into the run.
while IFS='=' read -r name _; do
	case $name in OS_* | KEEL_*) unset "$name" ;; esac
done < <(env)

workers=${CONFORMANCE_WORKERS:-2}
case $mode in
full) bound=${CONFORMANCE_TIMEOUT:-25m} ;;
*) bound=${CONFORMANCE_TIMEOUT:-8m} ;;
esac
loglevel=${CONFORMANCE_LOG_LEVEL:-info}
admin_password=conformance-admin-secret
member_password=conformance-member-secret

log() { printf '[conformance %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "HARNESS FAILURE: $*"
	exit 3
}

# ---------------------------------------------------------------- packages
need=()
for p in tempest python3-openstackclient; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
	log "installing ${need[*]} (apt)"
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi
for c in tempest openstack subunit2csv subunit-stats; do
	command -v "$c" >/dev/null || die "$c is missing after installing tempest and python3-openstackclient"
done

# ---------------------------------------------------------------- build
log "building Keel (make build)"
make -s build >&2 || die "make build failed"
# What was built (git describe of the tree at build time), for the report.
keel_version=$(bin/keelctl version 2>/dev/null | awk '{print $NF}')

# ---------------------------------------------------------------- cluster
tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-conformance.XXXXXX")
logdir=$here/logs/$mode
rm -rf "$logdir"
mkdir -p "$logdir"
pids=()
tpid=
names=(n1 n2 n3)
started=$(date +%s)

show_logs() {
	for n in "${names[@]}"; do
		[ -f "$logdir/$n.log" ] || continue
		echo "==== $n: last 40 lines of $logdir/$n.log ====" >&2
		tail -n 40 "$logdir/$n.log" >&2
	done
}

stop_cluster() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "${tpid:-}" ]; then
		kill -TERM "$tpid" 2>/dev/null || true
		wait "$tpid" 2>/dev/null || true
	fi
	stop_cluster
	# The controllers' last lines when the harness failed (not for test
	# failures, usage errors or Ctrl-C).
	case $rc in 0 | 1 | 2 | 130 | 143) ;; *) show_logs ;; esac
	if [ -n "${CONFORMANCE_KEEP:-}" ]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	log "controller logs: $logdir"
	exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# Ten distinct free loopback ports: API, Raft, gossip (TCP and UDP) per node,
# and the simulated compute hosts' agent API.
read -r -a ports < <(/usr/bin/python3 - <<'EOF'
import socket
got = []
while len(got) < 10:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    ok = port not in got
    if ok and len(got) < 9 and len(got) % 3 == 2:  # gossip needs UDP on the same port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            ok = False
        u.close()
    s.close()
    if ok:
        got.append(port)
print(*got)
EOF
)
((${#ports[@]} == 10)) || die "could not find free loopback ports"

cluster_key=$(bin/keelctl keygen) || die "keelctl keygen failed"
api1=${ports[0]}
gossip1=${ports[2]}
base=http://127.0.0.1:$api1
for i in 0 1 2; do
	n=${names[$i]}
	api=${ports[$((3 * i))]} raft=${ports[$((3 * i + 1))]} gossip=${ports[$((3 * i + 2))]}
	args=(--name "$n" --data-dir "$tmp/$n" --listen "127.0.0.1:$api" --raft-addr "127.0.0.1:$raft"
		--gossip-addr "127.0.0.1:$gossip" --bootstrap-expect 3 --cluster-key "$cluster_key"
		--admin-password "$admin_password" --public-url "http://127.0.0.1:$api" --log-level "$loglevel")
	[ "$i" = 0 ] || args+=(--join "127.0.0.1:$gossip1")
	mkdir -p "$tmp/$n"
	bin/keel-controller "${args[@]}" >"$logdir/$n.log" 2>&1 &
	pids+=($!)
	echo "$n api=127.0.0.1:$api raft=127.0.0.1:$raft gossip=127.0.0.1:$gossip pid=$!" >>"$logdir/cluster.txt"
done
log "started n1 n2 n3 (APIs on 127.0.0.1:$api1, :${ports[3]}, :${ports[6]}); logs in $logdir"

check_alive() {
	local i
	for i in 0 1 2; do
		kill -0 "${pids[$i]}" 2>/dev/null || die "controller ${names[$i]} exited"
	done
}

deadline=$((SECONDS + 60))
until bin/keelctl --url "$base" --cluster-key "$cluster_key" --timeout 3s cluster status >"$tmp/status.txt" 2>&1; do
	check_alive
	((SECONDS < deadline)) || {
		cat "$tmp/status.txt" >&2
		die "cluster not healthy after 60s"
	}
	sleep 0.5
done
cat "$tmp/status.txt" >"$logdir/cluster-status.txt"

export OS_AUTH_URL=$base/identity/v3 OS_IDENTITY_API_VERSION=3 OS_AUTH_TYPE=password \
	OS_USERNAME=admin OS_PASSWORD=$admin_password OS_USER_DOMAIN_NAME=Default \
	OS_PROJECT_NAME=admin OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne OS_INTERFACE=public

auth_body='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'$admin_password'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$auth_body" "$OS_AUTH_URL/auth/tokens")" = 201 ]; do
	check_alive
	((SECONDS < deadline)) || die "identity not bootstrapped after 60s (no admin token)"
	sleep 0.5
done
log "cluster healthy and identity bootstrapped after $(($(date +%s) - started))s"

# Three simulated compute hosts (keel-agent with the fake driver, in one
# process): servers are scheduled, built and driven through their actions.
bin/keel-agent --name compute --driver fake --fake-hosts 3 --listen "127.0.0.1:${ports[9]}" \
	--controllers "$base,http://127.0.0.1:${ports[3]},http://127.0.0.1:${ports[6]}" --cluster-key "$cluster_key" \
	--log-level "$loglevel" >"$logdir/agent.log" 2>&1 &
pids+=($!)
echo "agent (3 fake hosts) api=127.0.0.1:${ports[9]} pid=$!" >>"$logdir/cluster.txt"
deadline=$((SECONDS + 60))
until [ "$(openstack availability zone list --compute --long -f value 2>/dev/null | grep -c nova-compute)" = 3 ]; do
	kill -0 "${pids[3]}" 2>/dev/null || die "keel-agent exited (see $logdir/agent.log)"
	((SECONDS < deadline)) || die "the 3 simulated hosts did not register within 60s (see $logdir/agent.log)"
	sleep 0.5
done
log "3 simulated compute hosts registered"

# ---------------------------------------------------------------- cloud setup
os() {
	local out
	if ! out=$(openstack "$@" 2>&1); then
		echo "$out" >&2
		die "openstack $* failed"
	fi
	printf '%s\n' "$out"
}
log "creating projects, users, images and flavors with the openstack CLI"
for i in 1 2; do
	os project create --domain default --description "Tempest tenant $i" "tempest-project-$i" -f value -c id >/dev/null
	os user create --domain default --project "tempest-project-$i" --password "$member_password" "tempest-user-$i" -f value -c id >/dev/null
	os role add --project "tempest-project-$i" --user "tempest-user-$i" member >/dev/null
done
# A second admin account, for tests that want admin credentials of their own.
os project create --domain default --description "Tempest admin tenant" tempest-admin-project -f value -c id >/dev/null
os user create --domain default --project tempest-admin-project --password "$member_password" tempest-admin -f value -c id >/dev/null
os role add --project tempest-admin-project --user tempest-admin admin >/dev/null

# A tiny raw disk: 16 KiB with a recognisable first sector.
disk=$tmp/keel-tiny.img
{ printf 'keel conformance tiny disk\n'; head -c 16358 /dev/zero; } >"$disk"
image_ref=$(os image create --disk-format raw --container-format bare --public --file "$disk" keel-tiny -f value -c id)
image_ref_alt=$(os image create --disk-format raw --container-format bare --public --file "$disk" keel-tiny-alt -f value -c id)
# Flavors with the ids devstack gives its m1.nano and m1.micro.
os flavor create --id 42 --ram 64 --vcpus 1 --disk 1 m1.nano >/dev/null
os flavor create --id 84 --ram 128 --vcpus 1 --disk 1 m1.micro >/dev/null

# ---------------------------------------------------------------- tempest workspace
ws=$tmp/tempest
# From $tmp: tempest init reads /etc/tempest's logging.conf, which writes a
# tempest.log into the current directory.
(cd "$tmp" && tempest init --workspace-path "$tmp/workspace.yaml" --name "keel-$mode-$$" "$ws") >"$tmp/tempest-init.log" 2>&1 ||
	{ cat "$tmp/tempest-init.log" >&2; die "tempest init failed"; }
# Debian's etc/logging.conf opens tempest.log with mode w+ in every worker,
# which then truncate each other's log: without it, oslo.log appends to
# logs/tempest.log ([DEFAULT] log_dir, log_file).
rm -f "$ws/etc/logging.conf"
cat >"$ws/etc/accounts.yaml" <<EOF
# Pre-provisioned credentials (used when [auth] use_dynamic_credentials = false).
- username: tempest-user-1
  project_name: tempest-project-1
  password: $member_password
  roles: [member]
- username: tempest-user-2
  project_name: tempest-project-2
  password: $member_password
  roles: [member]
- username: tempest-admin
  project_name: tempest-admin-project
  password: $member_password
  types: [admin]
EOF
sed -e "s|@WORKSPACE@|$ws|g" -e "s|@BASE@|$base|g" -e "s|@ADMIN_PASSWORD@|$admin_password|g" \
	-e "s|@IMAGE_REF@|$image_ref|g" -e "s|@IMAGE_REF_ALT@|$image_ref_alt|g" \
	"$here/tempest.conf.in" >"$ws/etc/tempest.conf"
cp "$ws/etc/tempest.conf" "$ws/etc/accounts.yaml" "$logdir/"

regex=${CONFORMANCE_REGEX:-'^tempest\.api\.(compute|identity\.(v3|admin\.v3)|image\.v2)\.'}
# Smoke: the same selection restricted to tests tagged smoke ("[id-...,smoke]";
# tempest run refuses --smoke together with --regex).
[ "$mode" = full ] || regex="(?=.*[[,]smoke[],])$regex"
run_args=(--concurrency "$workers" --regex "$regex")

if [ "$mode" = cluster ]; then
	cat <<EOF
Keel cluster ready: $base (admin password $admin_password, cluster key $cluster_key)
  export OS_AUTH_URL=$OS_AUTH_URL OS_USERNAME=admin OS_PASSWORD=$admin_password OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3
Tempest workspace: $ws   (tempest.conf in $ws/etc, its log in $ws/logs/tempest.log)
  cd $ws && PATH=/usr/bin:\$PATH tempest run --concurrency $workers --regex 'tempest.api.compute.flavors'
Controller logs: $logdir.  Ctrl-C stops the cluster.
EOF
	while true; do
		check_alive
		sleep 2
	done
fi

# ---------------------------------------------------------------- run
log "tempest run ${run_args[*]} (bounded to $bound)"
(cd "$ws" && tempest run --list-tests "${run_args[@]}" 2>/dev/null | grep -E '^tempest\.' >"$tmp/listed.txt") || true
cp "$tmp/listed.txt" "$logdir/listed-tests.txt" 2>/dev/null || true
run_start=$(date +%s)
# In the background, so that Ctrl-C reaches the trap at once (timeout runs the
# run in a process group of its own; cleanup sends it SIGTERM, which timeout
# passes on to tempest and its workers).
(cd "$ws" && exec timeout -k 30s "$bound" tempest run --subunit "${run_args[@]}") \
	>"$tmp/run.subunit" 2>"$logdir/tempest-run.stderr" &
tpid=$!
# Progress while the stream is written: one line per test.
tail -f --pid="$tpid" -c +0 "$tmp/run.subunit" 2>/dev/null | subunit-trace --no-summary --no-failure-debug 2>&1 |
	tee "$logdir/tempest-trace.txt" >&2 &
trace_pid=$!
set +e
wait "$tpid"
rc=$?
tpid=
wait "$trace_pid" 2>/dev/null
set -e
run_secs=$(($(date +%s) - run_start))
log "tempest run ended with status $rc after ${run_secs}s"
# Every request of the run, with headers and bodies.
cp "$ws/logs/tempest.log" "$logdir/tempest.log" 2>/dev/null || log "no tempest.log in $ws/logs"

timed_out=
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then timed_out=1; fi
# The stream stestr stored for this run (`stestr last --subunit` in the
# workspace; Tempest 33 has no `tempest last`); if the run was cut off before
# stestr stored it, the stream captured above.
stream=$tmp/last.subunit
if ! (cd "$ws" && stestr last --subunit >"$stream" 2>/dev/null) || [ ! -s "$stream" ]; then
	log "stestr last --subunit has no stored run; using the captured stream"
	stream=$tmp/run.subunit
fi
[ -s "$stream" ] || die "tempest produced no results (status $rc); see $logdir/tempest-run.stderr"
cp "$stream" "$logdir/tempest.subunit"

report_args=(--stream "$stream" --expected "$here/expected-failures.txt" --listed "$tmp/listed.txt"
	--tempest-log "$logdir/tempest.log"
	--mode "$mode" --regex "$regex" --workers "$workers" --seconds "$run_secs" --bound "$bound"
	--tempest-status "$rc" --commit "${keel_version:-?}")
[ -z "$timed_out" ] || report_args+=(--timed-out)
case $mode in
full)
	/usr/bin/python3 "$here/report.py" "${report_args[@]}" --out "$here/RESULTS.md" --summary-only
	log "wrote $here/RESULTS.md"
	[ -z "$timed_out" ] || die "tempest run cut off after $bound (partial results in RESULTS.md)"
	exit 0
	;;
smoke)
	set +e
	/usr/bin/python3 "$here/report.py" "${report_args[@]}" --out "$here/RESULTS-smoke.md" --check
	verdict=$?
	set -e
	[ -z "$timed_out" ] || die "tempest run cut off after $bound"
	exit "$verdict"
	;;
esac
}

main "$@"
