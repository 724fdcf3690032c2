#!/usr/bin/env bash
# `make run`: an all-in-one Keel on this machine. Installs libvirt and QEMU
# when missing (scripts/install-libvirt.sh), starts one controller with an
# embedded compute agent on qemu:///system, uploads Keel's tiny bootable test
# image once, and prints the openstack commands to boot a server. Ctrl-C
# stops the controller; servers keep their domains until deleted.
#
# Environment: DATA (data directory, default keel-data), KEEL_AGENT_DRIVER
# (libvirt or fake; fake needs no libvirt), KEEL_LISTEN (default 127.0.0.1:8774).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-keel-data}
DRIVER=${KEEL_AGENT_DRIVER:-libvirt}
LISTEN=${KEEL_LISTEN:-127.0.0.1:8774}
URL="http://$LISTEN"
log() { echo "make run: $*" >&2; }

if [ "$DRIVER" = libvirt ]; then
  scripts/install-libvirt.sh
fi

mkdir -p "$DATA"
bin/keel-controller --name "$(hostname)" --data-dir "$DATA" --listen "$LISTEN" --bootstrap-expect 1 \
  --agent --agent-driver "$DRIVER" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM

for _ in $(seq 1 100); do
  curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { log "the controller exited; see its log above"; exit 1; }
  sleep 0.2
done
curl -fsS "$URL/readyz" >/dev/null || { log "the controller is not ready after 20 s; see its log above"; kill $pid; exit 1; }

eval "$(KEEL_ADMIN_PASSWORD_FILE="$DATA/admin-password" bin/keelctl --url "$URL" --cluster-key-file "$DATA/cluster.key" openrc)"
if command -v openstack >/dev/null; then
  if ! openstack image show keel-test >/dev/null 2>&1; then
    bin/keelctl test-image "$DATA/keel-test.img" >/dev/null
    openstack image create --disk-format raw --container-format bare --public --file "$DATA/keel-test.img" keel-test >/dev/null
    log "uploaded the test image keel-test"
  fi
else
  log "the openstack CLI is missing: run 'make deps', then upload the test image with 'bin/keelctl test-image FILE'"
fi

cat >&2 <<MSG

Keel is running (all-in-one, driver $DRIVER) on $URL; data in $DATA.
In another shell:

  eval "\$(bin/keelctl --url $URL openrc)"
  openstack server create --image keel-test --flavor m1.tiny --nic none --wait vm1
  openstack console log show vm1
  openstack server stop vm1; openstack server start vm1
  openstack server delete --wait vm1

Ctrl-C stops the controller.
MSG
wait $pid
