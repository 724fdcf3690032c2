#!/usr/bin/env bash
# Installs libvirt and QEMU from Debian's packages (only what is missing) and
# makes sure libvirtd answers on qemu:///system. Idempotent: a second run
# installs nothing and starts nothing that already runs.
#
# On a host booted with systemd the packages' units start the daemons; in a
# container (no systemd as PID 1: CI, developer machines) this script starts
# virtlogd and libvirtd itself, as daemons, and they keep running after it
# exits. keel-agent and the libvirt driver tests need this before they run.
#
# Usage: scripts/install-libvirt.sh        (as root, or with sudo available)
# Environment: KEEL_LIBVIRT_WAIT (seconds to wait for libvirtd, default 30).
set -euo pipefail

log() { echo "install-libvirt: $*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# --- packages -----------------------------------------------------------------
# libvirt-daemon-system brings the daemons' configuration (the qemu:///system
# socket, the libvirt-qemu user); libvirt-daemon-driver-qemu the QEMU driver;
# libvirt-clients virsh; qemu-system-x86 the emulator; qemu-utils qemu-img.
PKGS=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  # Without recommends the install stays small; the policy-rc.d trick is not
  # needed: without systemd the packages' scripts just fail to start daemons,
  # which they tolerate, and we start them below.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages already installed: ${PKGS[*]}"
fi

# --- /dev/kvm -----------------------------------------------------------------
# QEMU runs as libvirt-qemu (group kvm). udev gives /dev/kvm group kvm and
# mode 0660 on a normal host; in a container or a VM without udev the node
# may be root-only, and a KVM domain then fails with "Permission denied".
# Give it udev's permissions (the driver falls back to TCG only when
# libvirt offers no KVM at all).
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  if [ "$(stat -c %G /dev/kvm)" != kvm ] || [ $((0$(stat -c %a /dev/kvm) & 060)) -ne 48 ]; then
    log "giving /dev/kvm group kvm and mode 0660 (as udev does)"
    $SUDO chgrp kvm /dev/kvm
    $SUDO chmod 0660 /dev/kvm
  fi
fi

# --- daemons ------------------------------------------------------------------
answers() { $SUDO virsh -c qemu:///system version >/dev/null 2>&1; }

start_daemons() {
  # virtlogd collects QEMU's output and the serial console logs; libvirtd
  # refuses to start a QEMU domain without it.
  if ! pgrep -x virtlogd >/dev/null; then
    log "starting virtlogd -d"
    $SUDO virtlogd -d
  fi
  if ! pgrep -x libvirtd >/dev/null; then
    log "starting libvirtd -d"
    $SUDO libvirtd -d
  fi
}

if answers; then
  log "libvirtd already answers on qemu:///system"
else
  systemd=false
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    systemd=true
    log "systemd is PID 1: starting the virtlogd and libvirtd units"
    $SUDO systemctl start virtlogd.socket libvirtd.socket libvirtd.service || true
  else
    log "no systemd as PID 1: starting the daemons directly"
  fi
  wait=${KEEL_LIBVIRT_WAIT:-30}
  for _ in $(seq $((wait * 5))); do
    answers && break
    # Checked on every round: a daemon that was still exiting when we
    # looked first is started once it is gone.
    $systemd || start_daemons
    sleep 0.2
  done
  if ! answers; then
    echo "install-libvirt: libvirtd does not answer on qemu:///system after ${wait}s" >&2
    $SUDO virsh -c qemu:///system version >&2 || true
    exit 1
  fi
  log "libvirtd answers on qemu:///system"
fi

$SUDO virsh -c qemu:///system version | sed -e "/^\s*$/d" -e "s/^/install-libvirt:   /"
if [ -c /dev/kvm ]; then
  log "/dev/kvm is present ($(stat -c '%A %U:%G' /dev/kvm)): domains use KVM"
else
  log "/dev/kvm is missing: domains use QEMU's TCG emulation (slower, but works)"
fi
