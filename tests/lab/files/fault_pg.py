"""Hold PostgreSQL sessions for the lab's lock fault until killed.

lock:  one 'report-job' session of the app role takes an ACCESS EXCLUSIVE lock on
       orders and runs a long query; two app sessions queue behind it (blocked);
       one analyst session runs an unrelated long query (must survive pg_terminate).
chain: a lock chain of three app sessions: 'chain-holder-a' holds orders (ACCESS EXCLUSIVE) and sleeps;
       'chain-holder-b' holds products in an open transaction and waits for orders (then sleeps, still
       holding products); 'chain-waiter-c' waits for products.
snapshot: one 'report-export' session of the app role opens a REPEATABLE READ transaction, reads, and stays
       idle in transaction holding its snapshot (the xmin horizon): vacuum cannot remove dead tuples made after it.
foreign: FOREIGN_SESSIONS sessions of the app role, application_name 'batch-exporter', each
       BEGIN; SELECT 1 and then idle in transaction (connection slots held by another client).
"""
import os
import sys
import threading
import time

import psycopg

BASE = "host=127.0.0.1 port=%s dbname=app connect_timeout=5" % os.environ["PGPORT"]


def session(user, password, name, statements, autocommit=False):
    conn = psycopg.connect(BASE + " user=%s password=%s application_name=%s" % (user, password, name),
                           autocommit=autocommit)
    for sql in statements:
        try:
            conn.execute(sql)
        except Exception as exc:  # terminated by a remediation: that is the point
            print("%s ended: %s" % (name, exc), flush=True)
            return


def foreign():
    conns = []
    for dummy in range(int(os.environ.get("FOREIGN_SESSIONS", "30"))):
        try:
            conn = psycopg.connect(BASE + " user=app password=%s application_name=batch-exporter"
                                   % os.environ["APP_DB_PASSWORD"])
            conn.execute("SELECT 1")  # psycopg opens the transaction: idle in transaction from here on
        except Exception as exc:  # out of slots: hold what we have
            print("stopped opening sessions: %s" % exc, flush=True)
            break
        conns.append(conn)
    print("fault holding %d foreign sessions" % len(conns), flush=True)
    while True:
        time.sleep(60)


def snapshot():
    conn = psycopg.connect(BASE + " user=app password=%s application_name=report-export" % os.environ["APP_DB_PASSWORD"])
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    conn.execute("SELECT count(*) FROM orders")  # the snapshot is taken here and held until the transaction ends
    print("fault holding a snapshot", flush=True)
    while True:
        time.sleep(60)


def chain(app_pw):
    steps = [("chain-holder-a", ["BEGIN", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "SELECT pg_sleep(3600)"], False),
             ("chain-holder-b", ["BEGIN", "LOCK TABLE products IN ACCESS EXCLUSIVE MODE",
                                 "SELECT count(*) FROM orders", "SELECT pg_sleep(3600)"], False),
             ("chain-waiter-c", ["UPDATE products SET price = price WHERE id = 1"], True)]
    for name, statements, autocommit in steps:
        threading.Thread(target=session, daemon=True, args=("app", app_pw, name, statements, autocommit)).start()
        time.sleep(1.0)
    print("fault holding a lock chain", flush=True)
    while True:
        time.sleep(60)


def main():
    if sys.argv[1:] == ["foreign"]:
        return foreign()
    if sys.argv[1:] == ["snapshot"]:
        return snapshot()
    if sys.argv[1:] == ["chain"]:
        return chain(os.environ["APP_DB_PASSWORD"])
    app_pw, analyst_pw = os.environ["APP_DB_PASSWORD"], os.environ["ANALYST_DB_PASSWORD"]
    threads = [threading.Thread(target=session, daemon=True, args=(
        "app", app_pw, "report-job",
        ["BEGIN", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "SELECT pg_sleep(3600)"]))]
    threads[0].start()
    time.sleep(1.0)
    for n in (1, 2):
        threads.append(threading.Thread(target=session, daemon=True, args=(
            "app", app_pw, "checkout-worker-%d" % n, ["UPDATE orders SET note = 'paid' WHERE id = %d" % n], True)))
    threads.append(threading.Thread(target=session, daemon=True, args=(
        "analyst", analyst_pw, "analytics-nightly", ["SELECT pg_sleep(3600)"], True)))
    for t in threads[1:]:
        t.start()
    print("fault holding sessions", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main())
