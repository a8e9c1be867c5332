#!/usr/bin/env bash
# Builds Redis and PostgreSQL images from Debian packages, for machines with Docker but no
# container registry: certify-local/redis:bookworm and certify-local/postgres:bookworm.
# Point certify at them with
#   CERTIFY_IMAGE_REDIS=certify-local/redis:bookworm CERTIFY_IMAGE_POSTGRES=certify-local/postgres:bookworm
# Their entrypoints accept the same command lines as the official images, which certify uses
# by default (redis:7.2, postgres:16). Idempotent: an image that exists is kept.
set -euo pipefail

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

build() {
  local name=$1 packages=$2 entrypoint=$3
  if docker image inspect "$name" >/dev/null 2>&1; then
    echo "$name: present"
    return
  fi
  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  echo "$name: debootstrap ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null
  install -m 0755 /dev/stdin "$root/usr/local/bin/docker-entrypoint.sh" <<<"$entrypoint"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  tar -C "$root" -c . | docker import -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' - "$name" >/dev/null
  echo "$name: built"
}

build certify-local/redis:bookworm redis-server '#!/bin/sh
exec "$@"'

build certify-local/postgres:bookworm postgresql '#!/bin/sh
# Like the official image: `postgres ARGS` initialises the data directory (trust auth), then
# runs the server as the postgres user.
set -e
PATH="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1):$PATH"
if [ "$1" = postgres ]; then
  PGDATA=${PGDATA:-/var/lib/postgresql/data}
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@" -D "$PGDATA"
fi
exec "$@"'
