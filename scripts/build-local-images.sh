#!/usr/bin/env bash
# Builds backend images for machines with Docker but no container registry: Redis, PostgreSQL
# and RabbitMQ from Debian packages (certify-local/{redis,postgres,rabbitmq}:bookworm), a
# Kafka-protocol broker from the installed tansu binary (certify-local/kafka:tansu), and a bare
# Debian base for certify's own image (certify-local/debian:bookworm).
# Point certify at them with
#   CERTIFY_IMAGE_REDIS=certify-local/redis:bookworm CERTIFY_IMAGE_POSTGRES=certify-local/postgres:bookworm
#   CERTIFY_IMAGE_RABBITMQ=certify-local/rabbitmq:bookworm CERTIFY_IMAGE_KAFKA=certify-local/kafka:tansu
# Their entrypoints accept the command lines and environment of the official images, which
# certify uses by default (redis:7.2, postgres:16, rabbitmq:3.13, apache/kafka:3.8.0).
# Idempotent: an image that exists is kept.
set -euo pipefail

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

build() {
  local name=$1 packages=$2 entrypoint=$3 extra=${4:-} labels=${5:-}
  # The recipe's digest is a label: an image built from an older recipe is built again.
  local recipe
  recipe=$(printf '%s\n' "$packages" "$entrypoint" "$labels" | sha256sum | cut -c1-16)
  if [[ $(docker image inspect -f '{{index .Config.Labels "org.certify.recipe"}}' "$name" 2>/dev/null) == "$recipe" ]]; then
    echo "$name: present"
    return
  fi
  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  echo "$name: debootstrap ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null
  install -m 0755 /dev/stdin "$root/usr/local/bin/docker-entrypoint.sh" <<<"$entrypoint"
  [[ -z $extra ]] || install -m 0755 "$extra" "$root/usr/local/bin/"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  local changes=(-c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' -c "LABEL org.certify.recipe=$recipe")
  [[ -z $labels ]] || changes+=(-c "LABEL $labels")
  tar -C "$root" -c . | docker import "${changes[@]}" - "$name" >/dev/null
  echo "$name: built"
}

# The base of certify's own image in CI (docker/Dockerfile.local), standing in for debian:bookworm-slim.
build certify-local/debian:bookworm ca-certificates '#!/bin/sh
exec "$@"'

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

build certify-local/rabbitmq:bookworm rabbitmq-server '#!/bin/sh
# Like the official image: `rabbitmq-server` runs a node configured by RABBITMQ_* variables.
set -e
if [ "$1" = rabbitmq-server ]; then
  shift
  base=${RABBITMQ_MNESIA_BASE:-/var/lib/rabbitmq/mnesia}
  mkdir -p "$base" "${RABBITMQ_LOG_BASE:-/var/log/rabbitmq}"
  export HOME=${HOME:-/var/lib/rabbitmq}
  exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"'

tansu=$(command -v tansu || echo "$HOME/.cargo/bin/tansu")
if [[ -x $tansu ]]; then
  build certify-local/kafka:tansu ca-certificates '#!/bin/sh
# Stands in for apache/kafka: reads the same KAFKA_LISTENERS / KAFKA_ADVERTISED_LISTENERS
# variables and serves the Kafka protocol with tansu (in-memory storage).
set -e
listen=$(echo "${KAFKA_LISTENERS:-PLAINTEXT://0.0.0.0:9092}" | tr , "\n" | sed -n "s|^PLAINTEXT://||p" | head -1)
advertised=$(echo "${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}" | tr , "\n" | sed -n "s|^PLAINTEXT://||p" | head -1)
exec tansu broker --listener-url "tcp://$listen" --advertised-listener-url "tcp://$advertised" --storage-engine memory://tansu/' \
    "$tansu" 'org.certify.keeps-data=false'  # memory storage: certify skips restart scenarios
else
  echo "certify-local/kafka:tansu: skipped (no tansu binary; cargo install tansu --features dynostore)"
fi
