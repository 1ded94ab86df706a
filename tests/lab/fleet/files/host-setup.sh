#!/usr/bin/env bash
# Configure one fleet lab host (run by fleet-up with docker exec, as root, once systemd is up).
#   host-setup.sh ssh|db|cache|web    settings: /lab-host/setup.env (tests/lab/fleet/templates/setup.env.j2)
# /lab is the instance's state directory (key, certificates, rendered files), /lab-src the lab's sources.
# Idempotent: a second run changes nothing and leaves running services alone.
set -euo pipefail
role="$1"
changed=0
# shellcheck disable=SC1091  # ports and credentials of this host, rendered by fleet-up
. /lab-host/setup.env

install_file() {  # install_file SRC DEST MODE [OWNER]: copy only when different
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" -o "${4:-root}" -g "${4:-root}" "$1" "$2"
    changed=1
  fi
}

case "$role" in
ssh)
  [ -f /etc/ssh/ssh_host_ed25519_key ] || { ssh-keygen -A >/dev/null; changed=1; }
  # MaxStartups: the bench's aliases (make bench, --ssh-hosts 100) are many connections to this one sshd at once
  printf 'Port %s\nListenAddress 127.0.0.1\nPasswordAuthentication no\nPermitRootLogin no\nUseDNS no\nMaxStartups 200:30:400\n' \
    "$SSH_PORT" > /tmp/lab-sshd.conf
  install_file /tmp/lab-sshd.conf /etc/ssh/sshd_config.d/lab.conf 0644
  install_file /lab/id_ed25519.pub /home/ansible/.ssh/authorized_keys 0600 ansible
  chown ansible:ansible /home/ansible/.ssh && chmod 0700 /home/ansible/.ssh
  systemctl enable --quiet ssh.service
  if [ "$changed" = 1 ] || ! systemctl is-active --quiet ssh.service; then systemctl restart ssh.service; fi
  ;;
db)
  if [ ! -d /etc/postgresql/15/main ]; then
    pg_createcluster 15 main --port "$PG_PORT" -- --auth-local=peer --auth-host=scram-sha-256 --locale=C.UTF-8 >/dev/null
    cat >> /etc/postgresql/15/main/postgresql.conf <<CONF
listen_addresses = '127.0.0.1'
max_connections = 40
client_connection_check_interval = 1000
log_min_duration_statement = 1000
shared_buffers = 64MB
CONF
    systemctl enable --quiet postgresql@15-main.service
    systemctl start postgresql@15-main.service
    runuser -u postgres -- psql -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 \
      -v app_password="$APP_DB_PASSWORD" -v analyst_password="$ANALYST_DB_PASSWORD" -f /lab-src/files/db-init.sql
    changed=1
  fi
  systemctl is-active --quiet postgresql@15-main.service || { systemctl start postgresql@15-main.service; changed=1; }
  ;;
cache)
  install_file /lab/tls/redis.crt /etc/redis/tls/redis.crt 0644 redis
  install_file /lab/tls/redis.key /etc/redis/tls/redis.key 0600 redis
  install_file /lab/tls/ca.crt /etc/redis/tls/ca.crt 0644 redis
  install_file /lab-host/redis.conf /etc/redis/redis.conf 0640 redis
  # Lab image only: the Debian unit's sandboxing (ProtectSystem, PrivateTmp, ...) needs mount namespaces
  # that an unprivileged container cannot set up, so redis-server fails with status 217/USER there.
  install_file /lab-src/fleet/files/redis-sandbox-off.conf /etc/systemd/system/redis-server.service.d/lab-no-sandbox.conf 0644
  systemctl daemon-reload
  systemctl enable --quiet redis-server.service
  if [ "$changed" = 1 ] || ! systemctl is-active --quiet redis-server.service; then systemctl restart redis-server.service; fi
  ;;
web)
  for version in 1.0.0 1.1.0; do
    rel=/opt/app/releases/$version
    if [ ! -d "$rel/vendor" ]; then
      mkdir -p "$rel"
      cp -r /lab/vendor "$rel/vendor"
      printf 'APP_VERSION=%s\n' "$version" > "$rel/release.env"
      changed=1
    fi
    install_file /lab-src/backend/app.py "$rel/app.py" 0644
  done
  # the deploy 1.1.0 is the bad_deploy fault's; a fresh host runs 1.0.0
  [ -L /opt/app/current ] || { ln -sfn /opt/app/releases/1.0.0 /opt/app/current; changed=1; }
  mkdir -p /var/log/app && chown www-data:www-data /var/log/app
  install_file /lab/tls/ca.crt /etc/app/ca.crt 0644
  install_file /lab-host/backend.env /etc/app/backend.env 0600
  install_file /lab-src/fleet/files/app-backend.service /etc/systemd/system/app-backend.service 0644
  install_file /lab-host/nginx.conf /etc/nginx/sites-enabled/default 0644
  install_file /lab/tls/server.crt /etc/nginx/tls/server.crt 0644
  install_file /lab/tls/server.key /etc/nginx/tls/server.key 0600
  if [ "${PAYMENTS:-0}" = 1 ]; then
    install_file /lab-src/files/payments.py /opt/payments/payments.py 0644
    install_file /lab-host/payments.env /etc/app/payments.env 0644
    install_file /lab-src/fleet/files/app-payments.service /etc/systemd/system/app-payments.service 0644
  fi
  systemctl daemon-reload
  units="app-backend.service nginx.service"
  [ "${PAYMENTS:-0}" = 1 ] && units="app-payments.service $units"
  for unit in $units; do
    systemctl enable --quiet "$unit"
    if [ "$changed" = 1 ] || ! systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi
  done
  ;;
*)
  echo "usage: $0 ssh|db|cache|web" >&2; exit 2 ;;
esac
# The lab stands for hosts provisioned days ago: what the image and this script wrote is backdated, so
# deploy.recent and host.changes report only what happens afterwards (a fault, a remediation).
find /etc /opt/app -xdev -mmin -240 -exec touch -h -d '2 days ago' {} + 2>/dev/null || true
echo "changed=$changed"
