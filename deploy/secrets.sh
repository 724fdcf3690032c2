#!/usr/bin/env bash
# Makes the secrets of a compose deployment (deploy/docker-compose.yml), once:
#   DIR/cluster.key       the cluster key (32 random bytes, base64, as
#                         `keelctl keygen` makes): keelctl --cluster-key-file
#   DIR/admin-password    the admin user's password: KEEL_ADMIN_PASSWORD_FILE
#                         for `keelctl openrc`
#   DIR/cluster.env       KEEL_CLUSTER_KEY=... for every controller and agent
#   DIR/controller.env    KEEL_ADMIN_PASSWORD=... for the controllers (used
#                         when the cluster is first bootstrapped only)
# Files that exist are kept (so running it again changes nothing); all are
# mode 0600 in a 0700 directory.
#
# Usage: deploy/secrets.sh [DIR]     (default: deploy/secrets, which git ignores)
set -euo pipefail

dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

random_b64() { head -c "$1" /dev/urandom | base64 -w0; }

if [ ! -s "$dir/cluster.key" ]; then
  random_b64 32 > "$dir/cluster.key"
  echo >> "$dir/cluster.key"
  echo "secrets: made a new cluster key in $dir/cluster.key"
fi
if [ ! -s "$dir/admin-password" ]; then
  # 32 random letters and digits (about 190 bits; no quoting trouble anywhere).
  random_b64 48 | tr -dc 'A-Za-z0-9' | head -c 32 > "$dir/admin-password"
  echo >> "$dir/admin-password"
  echo "secrets: made a new admin password in $dir/admin-password"
fi
# The env files are derived from the two above, every time.
printf 'KEEL_CLUSTER_KEY=%s\n' "$(tr -d '\n' < "$dir/cluster.key")" > "$dir/cluster.env"
printf 'KEEL_ADMIN_PASSWORD=%s\n' "$(tr -d '\n' < "$dir/admin-password")" > "$dir/controller.env"
