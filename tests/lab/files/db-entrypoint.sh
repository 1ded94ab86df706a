#!/bin/sh
# PostgreSQL 15 for the incident lab: initialise once, then run in the foreground.
set -eu
if [ "$(id -u)" = 0 ]; then
  mkdir -p "${PGDATA:-/var/lib/postgresql/data}"
  chown -R postgres:postgres "${PGDATA:-/var/lib/postgresql/data}"
  chmod 700 "${PGDATA:-/var/lib/postgresql/data}"
  exec runuser -u postgres -- "$0" "$@"
fi
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -f "$PGDATA/.lab-initialized" ]; then
  rm -rf "${PGDATA:?}"/* "$PGDATA"/.[!.]* 2>/dev/null || true
  printf '%s\n' "$POSTGRES_SUPERUSER_PASSWORD" > /tmp/pwfile
  "$PGBIN/initdb" -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f /tmp/pwfile
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${PGPORT}
max_connections = ${PG_MAX_CONNECTIONS:-40}
unix_socket_directories = '/tmp'
client_connection_check_interval = 1000
log_min_duration_statement = 1000
shared_buffers = 64MB
CONF
  "$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -h /tmp -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -q \
       -v app_password="$APP_DB_PASSWORD" -v analyst_password="$ANALYST_DB_PASSWORD" -f /lab/db-init.sql
  "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  touch "$PGDATA/.lab-initialized"
fi
exec "$PGBIN/postgres" -D "$PGDATA"
