"""The incident lab's backend: a small FastAPI service with PostgreSQL, Redis and an external dependency.

JSON log lines (ts, level, method, path, status, latency_ms, msg) go to stdout
and to /var/log/app/app.log. APP_VERSION 1.1.0 carries the bad deploy: the core
endpoint /api/orders fails with a 500. Lab-only fault hooks live under /admin
and exist only when LAB_FAULTS=1.
"""
import datetime
import json
import logging
import os
import resource
import socket
import sys
import threading
import time
import urllib.request
import uuid

import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from psycopg_pool import ConnectionPool, PoolTimeout

VERSION = os.environ.get("APP_VERSION", "1.0.0")
DB_DSN = "host={h} port={p} dbname={d} user={u} password={pw} application_name=app-backend connect_timeout=3 options='-c statement_timeout=3000'".format(
    h=os.environ.get("DB_HOST", "127.0.0.1"), p=os.environ.get("DB_PORT", "5432"),
    d=os.environ.get("DB_NAME", "app"), u=os.environ.get("DB_USER", "app"),
    pw=os.environ.get("DB_PASSWORD", ""))
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "5"))
PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:18081")
LOG_FILE = os.environ.get("LOG_FILE", "/var/log/app/app.log")
FAULTS = os.environ.get("LAB_FAULTS", "0") == "1"


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "ts": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line)


class TextFormatter(logging.Formatter):
    """Plain-text lines: `<ts> <LEVEL> key=value ... msg="..."` (the fleet lab, LOG_FORMAT=text)."""

    def format(self, record):
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        fields = " ".join("%s=%s" % (k, v) for k, v in getattr(record, "fields", {}).items())
        return "%s %s %s%smsg=%s" % (ts, record.levelname, fields, " " if fields else "", json.dumps(record.getMessage()))


FORMATTER = TextFormatter() if os.environ.get("LOG_FORMAT", "json") == "text" else JsonFormatter()
log = logging.getLogger("app")
log.setLevel(logging.INFO)
_stdout = logging.StreamHandler(sys.stdout)
_stdout.setFormatter(FORMATTER)
log.addHandler(_stdout)
try:
    os.makedirs(os.path.dirname(LOG_FILE), exist_ok=True)
    _file = logging.FileHandler(LOG_FILE)
    _file.setFormatter(FORMATTER)
    log.addHandler(_file)
except OSError as exc:  # a full or read-only log volume must not stop the service
    log.warning("file logging disabled: %s", exc)

pool = ConnectionPool(DB_DSN, min_size=1, max_size=POOL_SIZE, timeout=2, open=False)
cache = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"), port=int(os.environ.get("REDIS_PORT", "6379")),
                    password=os.environ.get("REDIS_PASSWORD") or None, socket_timeout=2, socket_connect_timeout=2,
                    **({"ssl": True, "ssl_ca_certs": os.environ.get("REDIS_CA") or None}
                       if os.environ.get("REDIS_TLS", "0") == "1" else {}))
app = FastAPI(title="incident-lab backend", version=VERSION)
_leaked = []  # connections and memory the lab's faults hold on purpose
_leaked_fds = []  # files and sockets (fd_leak)


@app.on_event("startup")
def _startup():
    pool.open(wait=False)
    log.info("backend %s started", VERSION, extra={"fields": {"version": VERSION}})


# Prometheus metrics (text format 0.0.4) without a client library: requests by method, path and status,
# latency histogram by path, resident memory. Unknown paths count as "other" (bounded label values).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_requests, _latency, _metrics_lock = {}, {}, threading.Lock()


def _observe(method, path, status, seconds):
    known = {r.path for r in app.routes}
    path = path if path in known else "other"
    with _metrics_lock:
        key = (method, path, str(status))
        _requests[key] = _requests.get(key, 0) + 1
        hist = _latency.setdefault(path, [[0] * len(_BUCKETS), 0, 0.0])
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                hist[0][i] += 1
        hist[1] += 1
        hist[2] += seconds


@app.get("/metrics")
def metrics():
    out = ["# HELP http_requests_total HTTP requests by method, path and status.", "# TYPE http_requests_total counter"]
    with _metrics_lock:
        for (method, path, status), count in sorted(_requests.items()):
            out.append('http_requests_total{method="%s",path="%s",status="%s"} %d' % (method, path, status, count))
        out += ["# HELP http_request_duration_seconds HTTP request latency by path.",
                "# TYPE http_request_duration_seconds histogram"]
        for path, (counts, total, seconds) in sorted(_latency.items()):
            for bound, count in zip(_BUCKETS, counts):
                out.append('http_request_duration_seconds_bucket{path="%s",le="%s"} %d' % (path, bound, count))
            out.append('http_request_duration_seconds_bucket{path="%s",le="+Inf"} %d' % (path, total))
            out.append('http_request_duration_seconds_sum{path="%s"} %.6f' % (path, seconds))
            out.append('http_request_duration_seconds_count{path="%s"} %d' % (path, total))
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    out += ["# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge", "process_resident_memory_bytes %d" % rss,
            'app_info{version="%s"} 1' % VERSION]
    return PlainTextResponse("\n".join(out) + "\n", media_type="text/plain; version=0.0.4")


@app.middleware("http")
async def access_log(request: Request, call_next):
    if request.url.path == "/metrics":  # scrapes are neither logged nor counted
        return await call_next(request)
    started = time.monotonic()
    status, msg = 500, "unhandled error"
    try:
        response = await call_next(request)
        status, msg = response.status_code, "request"
        return response
    except Exception as exc:  # logged below, re-raised to uvicorn as a 500
        msg = "%s: %s" % (type(exc).__name__, exc)
        raise
    finally:
        fields = {"method": request.method, "path": request.url.path, "status": status,
                  "latency_ms": round((time.monotonic() - started) * 1000, 1)}
        _observe(request.method, request.url.path, status, time.monotonic() - started)
        level = logging.ERROR if status >= 500 else logging.INFO
        if status >= 500 and msg == "request":
            msg = getattr(request.state, "error", "request failed")
        log.log(level, msg, extra={"fields": fields})


def _fail(request, status, message):
    request.state.error = message
    raise HTTPException(status_code=status, detail=message)


def _db_query(request, sql, params=None):
    try:
        with pool.connection() as conn:
            return conn.execute(sql, params).fetchall()
    except PoolTimeout:
        _fail(request, 503, "database pool exhausted: no connection within 2s (size %d)" % POOL_SIZE)
    except Exception as exc:
        _fail(request, 500, "database error: %s" % str(exc).splitlines()[0])


@app.get("/health")
def health():
    return {"status": "ok", "version": VERSION}


@app.get("/health/ready")
def ready():
    checks, critical_ok = {}, True
    started = time.monotonic()
    try:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["database"] = {"ok": True, "critical": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "critical": True, "error": type(exc).__name__ + ": " + str(exc).splitlines()[0]}
        critical_ok = False
    try:
        cache.ping()
        checks["cache"] = {"ok": True, "critical": True}
    except Exception as exc:
        checks["cache"] = {"ok": False, "critical": True, "error": type(exc).__name__ + ": " + str(exc)}
        critical_ok = False
    try:
        urllib.request.urlopen(PAYMENTS_URL + "/health", timeout=1).read()
        checks["payments"] = {"ok": True, "critical": False}
    except Exception as exc:
        checks["payments"] = {"ok": False, "critical": False, "error": type(exc).__name__ + ": " + str(exc)}
    degraded = not all(c["ok"] for c in checks.values())
    body = {"status": "ok" if not degraded else ("degraded" if critical_ok else "fail"), "version": VERSION,
            "checks": checks, "latency_ms": round((time.monotonic() - started) * 1000, 1)}
    return JSONResponse(body, status_code=200 if critical_ok else 503)


@app.get("/api/orders")
def orders(request: Request):
    rows = _db_query(request, "SELECT id, customer, total, note FROM orders ORDER BY id LIMIT 20")
    if VERSION == "1.1.0":
        # the bad deploy: 1.1.0 renamed the column it reads, every request fails
        _fail(request, 500, "KeyError: 'amount' in serialize_order (release 1.1.0)")
    return {"orders": [{"id": r[0], "customer": r[1], "total": float(r[2]), "note": r[3]} for r in rows]}


@app.get("/api/products")
def products(request: Request):
    rows = _db_query(request, "SELECT id, name, price FROM products ORDER BY id")
    try:
        pipe = cache.pipeline()
        for r in rows:
            pipe.setex("cache:product:%d" % r[0], 3600, json.dumps({"name": r[1], "price": float(r[2])}))
        pipe.execute()
    except redis.RedisError as exc:
        _fail(request, 500, "cache error: %s" % exc)
    return {"products": [{"id": r[0], "name": r[1], "price": float(r[2])} for r in rows]}


@app.post("/api/sessions")
def new_session(request: Request):
    sid = uuid.uuid4().hex
    try:
        cache.setex("session:" + sid, 86400, json.dumps({"created": time.time()}))
    except redis.RedisError as exc:
        _fail(request, 500, "cache error: %s" % exc)
    return {"session": sid}


@app.get("/api/payments")
def payments(request: Request):
    try:
        body = urllib.request.urlopen(PAYMENTS_URL + "/status", timeout=2).read()
    except Exception as exc:
        _fail(request, 502, "payments dependency unavailable: %s" % exc)
    return json.loads(body)


if FAULTS:
    @app.post("/admin/leak-connection")
    def leak_connection():
        """A connection taken from the pool and never given back, idle in transaction."""
        conn = pool.getconn(timeout=2)
        conn.execute("SELECT count(*) FROM orders")
        _leaked.append(conn)
        return {"leaked_connections": sum(1 for x in _leaked if not isinstance(x, bytearray))}

    @app.post("/admin/memory-leak")
    def memory_leak(mb: int = 64):
        """Grow the heap by `mb` MiB and keep it (a leak)."""
        for dummy in range(mb):
            _leaked.append(bytearray(os.urandom(1) * (1024 * 1024)))
        return {"leaked_mb": sum(len(x) for x in _leaked if isinstance(x, bytearray)) // (1024 * 1024)}

    @app.post("/admin/fd-leak")
    def fd_leak(free: int = 1):
        """Open files and sockets and keep them (a descriptor leak) until `free` are left of the process' own
        RLIMIT_NOFILE: new connections and files then fail with EMFILE (Too many open files). Bounded by the limit."""
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY or soft > 65536:
            raise HTTPException(status_code=400, detail="RLIMIT_NOFILE %s: too high to fill in the lab" % soft)
        # the listing's own descriptor is closed again: not one of those open
        wanted = soft - max(1, free) - (len(os.listdir("/proc/self/fd")) - 1)
        opened = 0
        while opened < wanted:
            if opened % 16 == 0 and wanted - opened >= 2:
                _leaked_fds.extend(socket.socketpair())  # sockets as well as files, as a real leak holds both
                opened += 2
            else:
                _leaked_fds.append(open(os.devnull, "rb"))
                opened += 1
        log.warning("lab fault: %d descriptors leaked", opened, extra={"fields": {"fd_limit": soft}})
        return {"opened": opened, "open_fds": len(os.listdir("/proc/self/fd")) - 1, "fd_limit": soft}
