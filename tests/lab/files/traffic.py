"""Send a bounded burst of requests to the lab backend (loopback only), so its logs hold real traffic.

Usage: traffic.py BASE_URL COUNT   (at most 500 requests, 4 at a time, at most 60 seconds)
"""
import sys
import threading
import time
import urllib.error
import urllib.request

PATHS = [("GET", "/api/orders"), ("GET", "/api/products"), ("POST", "/api/sessions"), ("GET", "/api/payments"),
         ("GET", "/health/ready")]


def main():
    base, count = sys.argv[1].rstrip("/"), min(int(sys.argv[2]), 500)
    if not (base.startswith("http://127.") or base.startswith("http://localhost")):
        sys.exit("traffic.py only sends to loopback addresses")
    deadline = time.monotonic() + 60
    codes = {}
    lock = threading.Lock()
    jobs = list(range(count))

    def worker():
        while True:
            with lock:
                if not jobs or time.monotonic() > deadline:
                    return
                i = jobs.pop(0)
            code = one(base, *PATHS[i % len(PATHS)])
            with lock:
                codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=worker) for dummy in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(" ".join("%s=%d" % kv for kv in sorted(codes.items())))


def one(base, method, path):
    req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:
        return 0


if __name__ == "__main__":
    main()
