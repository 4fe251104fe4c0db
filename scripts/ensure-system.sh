#!/usr/bin/env bash
# Make sure the machine has what podscribe's tests and demo need beyond Python packages:
# Debian packages (espeak-ng makes test speech, chromium runs the web app's browser tests),
# a PostgreSQL and a Redis answering on loopback. Idempotent: it installs or starts only what is missing.
set -euo pipefail

log() { printf 'ensure-system: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_apt=()
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v chromium >/dev/null || need_apt+=(chromium)
# nginx -t checks the k3s front end's config (tests/unit/test_nginx_config.py); Debian puts
# nginx in /usr/sbin, outside a plain user's PATH.
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null || command -v initdb >/dev/null || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${need_apt[*]} (run as root, or: sudo apt-get install ${need_apt[*]})"
    exit 1
  fi
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v gcloud >/dev/null; then
  log "the gcloud CLI (with the Pub/Sub emulator component) is required for the Pub/Sub emulator"
  exit 1
fi

if ! port_open 5432; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  else
    log "no PostgreSQL cluster to start on 127.0.0.1:5432"; exit 1
  fi
fi

if ! port_open 6379; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/podscribe.log
fi

for _ in $(seq 1 50); do
  port_open 5432 && port_open 6379 && exit 0
  sleep 0.2
done
log "PostgreSQL (5432) or Redis (6379) did not come up on 127.0.0.1"
exit 1
