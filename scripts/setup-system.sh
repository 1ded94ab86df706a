#!/usr/bin/env bash
# Install the Debian packages the lab and the tests need, when they are missing.
# Uses the machine's own apt configuration; needs root (or sudo).
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Alerts (docs/alerts.md, make alerts-up): promtool, Prometheus, Alertmanager, the exporters; Java for ansible-rulebook.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || need+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null 2>&1 || need+=(prometheus-redis-exporter)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# headless Chromium opens report.html in the tests (tests/integration/test_oncall_report.py)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# the probes' command-line clients, for tests/integration/test_probe_clients.py (client: cli on the lab)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# ansible-test sanity's shellcheck test (make sanity) skips itself without it
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start their services on all interfaces where systemd runs; the lab runs its own on 127.0.0.1.
  if [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter; do
      case " ${need[*]} " in *" $unit "*) $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true ;; esac
    done
  fi
fi
echo "setup: system packages present (docker, mmdebstrap, chromium, prometheus, alertmanager, exporters, java, shellcheck)"
