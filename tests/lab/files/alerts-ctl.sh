#!/usr/bin/env bash
# Start or stop one host process of the alerts lab (Prometheus, Alertmanager, exporters, ansible-rulebook).
#   alerts-ctl.sh start DIR NAME HASH -- COMMAND...   start unless running with the same HASH (config); restart otherwise
#   alerts-ctl.sh stop DIR NAME                       stop it (TERM, then KILL after 10 s)
# DIR holds NAME.pid, NAME.hash and NAME.log. Prints "started", "running" or "stopped" (Ansible's changed_when).
set -euo pipefail
action=$1 dir=$2 name=$3
pidfile=$dir/$name.pid
alive() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
stop() {
  if alive; then
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo stopped
  else
    rm -f "$pidfile"
    echo absent
  fi
}
case $action in
  start)
    hash=$4; shift 5
    if alive && [ "$(cat "$dir/$name.hash" 2>/dev/null)" = "$hash" ]; then echo running; exit 0; fi
    stop >/dev/null
    mkdir -p "$dir"
    # its own session (process group), so stop ends its children too (ansible-rulebook's playbooks)
    setsid "$@" >>"$dir/$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    echo "$hash" >"$dir/$name.hash"
    sleep 0.5
    alive || { echo "$name exited at once; last lines of $dir/$name.log:" >&2; tail -20 "$dir/$name.log" >&2; exit 1; }
    echo started ;;
  stop) stop ;;
  *) echo "usage: $0 start DIR NAME HASH -- COMMAND... | stop DIR NAME" >&2; exit 2 ;;
esac
