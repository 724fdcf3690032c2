#!/usr/bin/env bash
# End-to-end test of the compose deployment (make deploy-test):
#   1. builds the images (deploy/build-images.sh; nothing is pulled);
#   2. starts deploy/docker-compose.yml as a project of its own
#      (keel-deploy-test-<random>, on a free private /24 and a free port on
#      127.0.0.1), with fresh secrets;
#   3. waits until haproxy has a ready controller and the cluster a leader;
#   4. takes the admin's OS_* from `keelctl openrc` THROUGH HAPROXY (keelctl
#      runs from its image), uploads a tiny image and creates a server with
#      `openstack server create --wait` through haproxy: it must be ACTIVE;
#      shows `openstack compute service list`;
#   5. kills the Raft leader's container (docker kill), waits for a new
#      leader, and creates a second server through haproxy: ACTIVE too;
#   6. always removes everything it made (docker-compose down -v, its
#      keelctl containers, its temporary directory), also on failure or
#      Ctrl-C; on failure it first prints every container's log.
# It touches no other container, network or volume, and sends traffic only
# to the containers it started. Every wait is bounded.
#
# Environment:
#   KEEL_DEPLOY_SKIP_BUILD=1   use the images already built (keel/*:$KEEL_IMAGE_TAG)
#   KEEL_IMAGE_TAG             image tag (default dev)
#   KEEL_COMPOSE               the compose command (default: "docker compose" when
#                              that plugin exists, else docker-compose)
#   KEEL_DEPLOY_KEEP=1         on failure, leave the project running to inspect it
#                              (prints how to remove it)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
compose_file=$root/deploy/docker-compose.yml
tag=${KEEL_IMAGE_TAG:-dev}
start=$SECONDS

log() { printf '[deploy-test +%3ds] %s\n' "$((SECONDS - start))" "$*"; }
die() { printf '[deploy-test +%3ds] FAILED: %s\n' "$((SECONDS - start))" "$*" >&2; exit 1; }

# --- prerequisites -------------------------------------------------------------------
for cmd in docker python3 curl timeout; do
  command -v "$cmd" >/dev/null || die "$cmd is missing"
done
command -v openstack >/dev/null || die "the openstack CLI is missing: run 'make deps' (installs python3-openstackclient)"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (is dockerd running, and may this user use it?)"
if [ -n "${KEEL_COMPOSE:-}" ]; then
  read -r -a compose_cmd <<< "$KEEL_COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  die "neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)"
fi

# --- a project of our own --------------------------------------------------------------
project=keel-deploy-test-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$project.XXXXXX")
compose() { timeout "${COMPOSE_TIMEOUT:-180}" "${compose_cmd[@]}" -p "$project" -f "$compose_file" "$@"; }
started=false
failed=true

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if $started && $failed; then
    echo "---------------- containers of $project ----------------" >&2
    compose ps >&2
    echo "---------------- their logs (last 150 lines each) ----------------" >&2
    compose logs --no-color --tail=150 >&2
    echo "------------------------------------------------------------------" >&2
  fi
  # keelctl containers started by this run (killed by a timeout, they may
  # outlive their docker run).
  ids=$(docker ps -aq --filter "label=keel-deploy-test=$project")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  if $started; then
    if $failed && [ "${KEEL_DEPLOY_KEEP:-}" = 1 ]; then
      echo "KEEL_DEPLOY_KEEP=1: left $project running; remove it with:" >&2
      echo "  KEEL_DEPLOY_SECRETS=$tmp/secrets ${compose_cmd[*]} -p $project -f $compose_file down -v" >&2
      exit "$rc"
    fi
    log "removing $project (containers, network, volumes)"
    COMPOSE_TIMEOUT=120 compose down -v --remove-orphans -t 10 >/dev/null 2>&1 ||
      echo "deploy-test: 'down' of $project failed: remove its containers, network and volumes by hand" >&2
  fi
  rm -rf "$tmp"
  if [ "$rc" = 0 ]; then
    log "PASSED in $((SECONDS - start))s"
  else
    log "FAILED after $((SECONDS - start))s (exit $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A /24 under 10.199.0.0/16 that overlaps no Docker network and no route of
# this machine, and a free port on 127.0.0.1.
net=$(python3 - <<'EOF'
import ipaddress, json, random, socket, struct, subprocess
used = []
ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True, check=True).stdout.split()
if ids:
    out = subprocess.run(["docker", "network", "inspect", *ids], capture_output=True, text=True, check=True).stdout
    for n in json.loads(out):
        for c in (n.get("IPAM") or {}).get("Config") or []:
            if c.get("Subnet"):
                used.append(ipaddress.ip_network(c["Subnet"], strict=False))
with open("/proc/net/route") as f:
    next(f)
    for line in f:
        p = line.split()
        dest, mask = (socket.inet_ntoa(struct.pack("<I", int(x, 16))) for x in (p[1], p[7]))
        n = ipaddress.ip_network(f"{dest}/{mask}", strict=False)
        if n.prefixlen > 0:  # the default route overlaps everything
            used.append(n)
third = list(range(256))
random.shuffle(third)
for t in third:
    cand = ipaddress.ip_network(f"10.199.{t}.0/24")
    if not any(cand.version == u.version and cand.overlaps(u) for u in used):
        print(f"10.199.{t}")
        break
EOF
)
[ -n "$net" ] || die "no free /24 in 10.199.0.0/16 (every one overlaps a Docker network or a route)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

export KEEL_IMAGE_TAG=$tag KEEL_DEPLOY_NET=$net KEEL_DEPLOY_PORT=$port KEEL_DEPLOY_BIND=127.0.0.1
export KEEL_DEPLOY_PUBLIC_URL=$url KEEL_DEPLOY_SECRETS=$tmp/secrets KEEL_DEPLOY_RESTART=no
# Talk to 127.0.0.1 directly, whatever proxy the environment names.
export NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY} no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}
# The openstack CLI gets only what keelctl openrc prints.
for v in $(compgen -v OS_ || true); do unset "$v"; done

# --- 1. images -------------------------------------------------------------------------
if [ "${KEEL_DEPLOY_SKIP_BUILD:-}" = 1 ]; then
  log "using the images already built (keel/*:$tag)"
  for i in keel-controller keel-agent keelctl haproxy; do
    docker image inspect "keel/$i:$tag" >/dev/null 2>&1 || die "image keel/$i:$tag is missing: run make images"
  done
else
  log "building the images"
  timeout 900 "$root/deploy/build-images.sh" || die "building the images failed"
fi
build_done=$SECONDS

# keelctl from its image, on the host's network so it reaches haproxy on
# 127.0.0.1, as this user so it can read the secrets (mode 0600).
keelctl() {
  timeout "${KEELCTL_TIMEOUT:-30}" docker run --rm --network host --label "keel-deploy-test=$project" \
    --user "$(id -u):$(id -g)" -v "$tmp:/work" -w /work \
    -e KEEL_URL="$url" -e KEEL_CLUSTER_KEY_FILE=/work/secrets/cluster.key \
    -e KEEL_ADMIN_PASSWORD_FILE=/work/secrets/admin-password \
    "keel/keelctl:$tag" "$@"
}
osc() { timeout "${OSC_TIMEOUT:-60}" openstack "$@"; }

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every second until it
# succeeds; fails the test after SECONDS.
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >"$tmp/wait.out" 2>&1; do
    if [ $((SECONDS - t0)) -ge "$limit" ]; then
      cat "$tmp/wait.out" >&2
      die "$what: not after ${limit}s (last output above)"
    fi
    sleep 1
  done
  log "$what ($((SECONDS - t0))s)"
}

# --- 2. the cluster ----------------------------------------------------------------------
"$root/deploy/secrets.sh" "$tmp/secrets" >/dev/null
log "starting $project: network $net.0/24, haproxy on $url (${compose_cmd[*]})"
started=true
compose up -d >"$tmp/up.out" 2>&1 || { cat "$tmp/up.out" >&2; die "${compose_cmd[*]} up failed"; }
up_done=$SECONDS

# --- 3. healthy through haproxy -----------------------------------------------------------
readyz() { curl -fsS --max-time 3 "$url/readyz"; }
wait_for 90 "haproxy answers /readyz with a ready controller" readyz
wait_for 60 "keelctl cluster status (through haproxy): a leader and a quorum" keelctl cluster status
keelctl cluster status
ready_done=$SECONDS

# --- 4. a server through haproxy ------------------------------------------------------------
keelctl openrc > "$tmp/openrc" || die "keelctl openrc through haproxy failed"
# shellcheck disable=SC1091
. "$tmp/openrc"
[ "$OS_AUTH_URL" = "$url/identity/v3" ] || die "openrc gave OS_AUTH_URL=$OS_AUTH_URL, want $url/identity/v3"

computes_up() {
  local n
  n=$(osc compute service list --service nova-compute -f value -c Host -c State | grep -c ' up$')
  [ "$n" = 2 ]
}
wait_for 90 "both compute hosts are up" computes_up

keelctl test-image /work/tiny.img >/dev/null
osc image create --disk-format raw --container-format bare --public --file "$tmp/tiny.img" tiny >/dev/null ||
  die "image upload through haproxy failed"
log "uploaded the image tiny"

# create_server NAME: openstack server create --wait through haproxy; ACTIVE.
create_server() {
  local name=$1 t0=$SECONDS status host
  OSC_TIMEOUT=180 osc server create --image tiny --flavor m1.tiny --nic none --wait "$name" >/dev/null ||
    die "openstack server create --wait $name failed"
  status=$(osc server show "$name" -f value -c status)
  host=$(osc server show "$name" -f value -c OS-EXT-SRV-ATTR:host)
  [ "$status" = ACTIVE ] || die "server $name is $status, want ACTIVE"
  log "server $name is ACTIVE on $host ($((SECONDS - t0))s from create to ACTIVE)"
}
create_server vm1
osc compute service list
first_done=$SECONDS

# --- 5. the leader killed ----------------------------------------------------------------------
leader=$(keelctl cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
case "$leader" in ctl-1|ctl-2|ctl-3) ;; *) die "cannot tell the leader (got '$leader')" ;; esac
cid=$(compose ps -q "$leader")
[ -n "$cid" ] || die "no container for $leader"
log "killing the leader $leader (docker kill ${cid:0:12})"
docker kill "$cid" >/dev/null
killed_at=$SECONDS
new_leader() {
  keelctl cluster status --json >"$tmp/status.json" 2>/dev/null || return 1
  python3 - "$leader" "$tmp/status.json" <<'EOF'
import json, sys
st = json.load(open(sys.argv[2]))
sys.exit(0 if st.get("healthy") and st.get("leader") not in ("", sys.argv[1]) else 1)
EOF
}
wait_for 60 "a new leader was elected" new_leader
keelctl cluster status || true
[ "$(docker inspect -f '{{.State.Running}}' "$cid")" = false ] || die "$leader is running again (restart policy?)"
create_server vm2
log "the second create succeeded $((SECONDS - killed_at))s after the leader was killed"
osc server list

failed=false
log "timings: build $((build_done - start))s, up $((up_done - build_done))s, ready $((ready_done - up_done))s, first server $((first_done - ready_done))s, failover and second server $((SECONDS - first_done))s"
