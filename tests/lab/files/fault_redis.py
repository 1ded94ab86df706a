"""Hold Redis client slots for the lab's redis_maxclients fault until killed.

A 'batch-report' job opens connections (AUTH, CLIENT SETNAME batch-report) and leaves them idle until the
server refuses new ones ("max number of clients reached"). The backend's own pooled connections are then
closed with CLIENT KILL so that its next request needs a new connection, which the server refuses.
Standard library only (raw RESP over a socket), loopback only.
"""
import os
import socket
import sys
import time

HOST, PORT = "127.0.0.1", int(os.environ["REDIS_PORT"])
PASSWORD = os.environ["REDIS_PASSWORD"]
NAME = sys.argv[1] if len(sys.argv) > 1 else "batch-report"  # in the command line too: ps and /proc show it


def command(sock, *args):
    data = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg.encode() if isinstance(arg, str) else arg
        data += b"$%d\r\n%s\r\n" % (len(arg), arg)
    sock.sendall(data)
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        reply += chunk
    if reply.startswith(b"$"):  # a bulk string: read until the announced length
        head, dummy, rest = reply.partition(b"\r\n")
        size = int(head[1:])
        while size >= 0 and len(rest) < size + 2:
            rest += sock.recv(65536)
        return rest[:size].decode("utf-8", "replace")
    if reply.startswith(b"-"):
        raise ConnectionError(reply[1:].strip().decode())
    return reply.strip().decode()


def open_one():
    sock = socket.create_connection((HOST, PORT), timeout=5)
    try:
        command(sock, "AUTH", PASSWORD)
        command(sock, "CLIENT", "SETNAME", NAME)
    except Exception:
        sock.close()
        raise
    return sock


def fill(held):
    while True:
        try:
            held.append(open_one())
        except Exception as exc:  # out of slots: hold what we have
            return str(exc)


def main():
    held = []
    for dummy in range(5):  # the backend reconnects between rounds: close its connections until it cannot
        reason = fill(held)
        if not held:
            time.sleep(1)
            continue
        others = [line.split(" ", 1)[0][3:] for line in command(held[0], "CLIENT", "LIST", "TYPE", "normal").splitlines()
                  if " name=%s " % NAME not in line and line.startswith("id=")]
        for client_id in others:
            try:
                command(held[0], "CLIENT", "KILL", "ID", client_id)
            except Exception:  # gone already
                pass
        if not others:
            break
        time.sleep(0.3)
    reason = fill(held)
    print("holding %d connections named %s (%s)" % (len(held), NAME, reason), flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
