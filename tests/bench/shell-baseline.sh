#!/usr/bin/env bash
# The practice's own investigation commands, run one after another, as an on-call
# engineer would paste them: the baseline that triage.yml is measured against.
# Usage: [REDISCLI_AUTH=pw] shell-baseline.sh BACKEND_URL PG_PORT REDIS_PORT [TLS_HOSTPORT] [DNS_NAME]
# Services are the lab's containers app-backend, app-db, app-redis (host network).
# Copied from the practice's bench kit (/work/shared/bench/shell-baseline.sh) so the repository is
# self-contained; the commands are unchanged. Only addition: the container names come from
# BACKEND_CONTAINER, DB_CONTAINER, REDIS_CONTAINER (defaults app-backend, app-db, app-redis), so the
# script also runs against a LAB_INSTANCE=N lab (containers labN-app-*), as tests/bench/bench.py does.
set -u
url=$1 pgp=$2 rp=$3 tls=${4:-} name=${5:-localhost}
backend=${BACKEND_CONTAINER:-app-backend} db=${DB_CONTAINER:-app-db} redis=${REDIS_CONTAINER:-app-redis}
out=$(mktemp -d)
sock=$(docker exec "$db" sh -c 'ls /var/run/postgresql/.s.PGSQL.* /tmp/.s.PGSQL.* /run/postgresql/.s.PGSQL.* 2>/dev/null' | grep -v lock | head -1)
sdir=${sock%/.s.PGSQL.*}
psqlq() { docker exec -u postgres "$db" psql -h "$sdir" -p "$pgp" -c "$1"; }
{
# health
curl -s -m 5 "$url/health/ready"
# application errors
docker logs "$backend" --since 15m > "$out/backend.log" 2>&1
docker logs "$backend" --since 15m 2>&1 | grep -c "ERROR"
docker logs "$backend" --since 15m 2>&1 | grep "ERROR" | grep -oP '"path": ?"[^"]*"' | sort | uniq -c | sort -rn
docker exec "$backend" ps aux
docker exec "$backend" python3 -c "import sys; print(sys.version)"
# postgres
docker exec "$db" pg_isready -h "$sdir" -p "$pgp"
psqlq "SELECT count(*), state FROM pg_stat_activity GROUP BY state ORDER BY count DESC;"
psqlq "SELECT pid, now() - query_start AS duration, query, state FROM pg_stat_activity WHERE (now() - query_start) > interval '30 seconds' AND state != 'idle' ORDER BY duration DESC;"
psqlq "SELECT bl.pid AS blocked_pid, kl.pid AS blocking_pid, ba.query AS blocked_query FROM pg_catalog.pg_locks bl JOIN pg_catalog.pg_stat_activity ba ON ba.pid = bl.pid JOIN pg_catalog.pg_locks kl ON kl.locktype = bl.locktype AND kl.relation = bl.relation AND kl.pid != bl.pid JOIN pg_catalog.pg_stat_activity ka ON ka.pid = kl.pid WHERE NOT bl.granted;"
docker exec "$db" df -h /
# redis
docker exec -e REDISCLI_AUTH="${REDISCLI_AUTH:-}" "$redis" redis-cli -p "$rp" ping
docker exec -e REDISCLI_AUTH="${REDISCLI_AUTH:-}" "$redis" redis-cli -p "$rp" info memory | grep used_memory_human
docker exec -e REDISCLI_AUTH="${REDISCLI_AUTH:-}" "$redis" redis-cli -p "$rp" info clients | grep connected_clients
docker exec -e REDISCLI_AUTH="${REDISCLI_AUTH:-}" "$redis" redis-cli -p "$rp" slowlog get 10
docker exec -e REDISCLI_AUTH="${REDISCLI_AUTH:-}" "$redis" redis-cli -p "$rp" info keyspace
# network and infrastructure
getent hosts "$name" || echo "DNS failed"
[ -n "$tls" ] && echo | openssl s_client -servername "${tls%:*}" -connect "$tls" 2>/dev/null | openssl x509 -noout -dates
docker stats --no-stream --format "table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.NetIO}}"
df -h /
curl -sf -m 5 "$url/health" || echo "External API unreachable"
} > "$out/all.txt" 2>&1
rm -rf "$out"
