# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Redis client connections kill_clients ends, and how (pure functions, unit-tested).

A connection is described by one dict: {id, addr, ip, port, name, idle, kind, pid, process}. ``id``, ``name``,
``idle`` and ``kind`` come from CLIENT LIST when the server answers (None when it refuses new connections);
``pid`` and ``process`` come from this host's own sockets (host_sockets) when the client runs on this host.

Selection (select): every selector kind that is given must match (names AND processes AND pids; within a kind,
any value). A process or pid selector therefore never reaches the connections of a process not selected, and
nothing is selected without a selector: never every client. Replication links, MONITOR and pub/sub connections and
the module's own connection are never selected; with idle times known, only connections idle for min_idle seconds
or more.

When the server refuses new connections, the server-side sockets of the selected connections are closed with
``ss -K`` (ss_argv): an argv list, no shell, its filter built from integers and parsed addresses only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os

SS_BATCH = 64            # peers per ss -K call (its filter stays short)
SPECIAL_FLAGS = (('S', 'replica'), ('M', 'master'), ('O', 'monitor'), ('P', 'pubsub'))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def split_addr(addr):
    """(ip, port) of a CLIENT LIST addr ('127.0.0.1:50212', '[::1]:50212', '::1:50212'); None when not an address."""
    text = str(addr or '').strip()
    host, sep, port = text.rpartition(':')
    if not sep or not port.isdigit():
        return None
    host = host[1:-1] if host.startswith('[') and host.endswith(']') else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    port = int(port)
    if not 0 < port < 65536:
        return None
    return str(ip), port


def kind_of(flags):
    flags = str(flags or '')
    for flag, kind in SPECIAL_FLAGS:
        if flag in flags:
            return kind
    return 'normal'


def process_words(process, comm=None):
    """The words a process selector matches: the program's name, the basename of each plain argument of its
    command line (as host_sockets.describe_cmdline shows it) and /proc/<pid>/comm."""
    words = set()
    for index, word in enumerate(str(process or '').split()):
        if word == '***' or (index and word.startswith('-')):
            continue
        words.add(os.path.basename(word.rstrip('/')) or word)
    if comm:
        words.add(str(comm).strip())
    words.discard('')
    return words


def from_client_list(rows, owners=None, own_id=None):
    """The connections of CLIENT LIST rows, each with the process that holds its client end on this host when
    known (owners: {(ip, port): {pid, process, comm}}); the module's own connection left out."""
    owners = owners or {}
    out = []
    for row in rows or []:
        if not isinstance(row, dict):
            continue
        cid = _int(row.get('id'))
        if cid is None or (own_id is not None and str(cid) == str(own_id)):
            continue
        peer = split_addr(row.get('addr'))
        holder = (owners.get(peer) or {}) if peer else {}
        out.append({'id': cid, 'addr': str(row.get('addr') or ''), 'ip': peer[0] if peer else None,
                    'port': peer[1] if peer else None, 'name': str(row.get('name') or '') or None,
                    'idle': _int(row.get('idle')), 'kind': kind_of(row.get('flags')),
                    'pid': holder.get('pid'), 'process': holder.get('process'), 'comm': holder.get('comm')})
    return out


def from_sockets(server_ends, owners=None):
    """The connections seen from this host's sockets alone (the server refuses new connections: no CLIENT LIST):
    the server ends of the established connections to the Redis port; no id, name or idle time."""
    owners = owners or {}
    out = []
    for sock in server_ends or []:
        peer = (sock['remote'][0], int(sock['remote'][1]))
        holder = owners.get(peer) or {}
        out.append({'id': None, 'addr': '%s:%d' % peer, 'ip': peer[0], 'port': peer[1], 'name': None, 'idle': None,
                    'kind': 'normal', 'pid': holder.get('pid'), 'process': holder.get('process'),
                    'comm': holder.get('comm')})
    return out


def has_selector(names=None, processes=None, pids=None):
    return bool(names or processes or pids)


def selected_reason(conn, names=None, processes=None, pids=None, min_idle=30.0):
    """(selected, why): why a connection is (or is not) ended."""
    if not has_selector(names, processes, pids):
        return False, 'no selector: never every client'
    if conn.get('kind', 'normal') != 'normal':
        return False, '%s connection: never ended' % conn.get('kind')
    why = []
    if names:
        if conn.get('name') is None and conn.get('id') is None:
            return False, 'client name unknown (the server refuses new connections)'
        if conn.get('name') not in names:
            return False, 'name %s not selected' % (conn.get('name') or '(none)')
        why.append('name %s' % conn['name'])
    if pids:
        if conn.get('pid') is None or int(conn['pid']) not in pids:
            return False, 'process %s not selected' % (conn.get('pid') if conn.get('pid') is not None else 'unknown')
        why.append('pid %s' % conn['pid'])
    if processes:
        words = process_words(conn.get('process'), conn.get('comm'))
        hit = sorted(words & set(processes))
        if conn.get('pid') is None or not hit:
            return False, 'process %s not selected' % (conn.get('process') or 'unknown')
        why.append('process %s' % hit[0])
    if conn.get('idle') is not None and min_idle is not None and conn['idle'] < float(min_idle):
        return False, 'idle %d s < %s s' % (conn['idle'], min_idle)
    return True, ', '.join(why)


def select(conns, names=None, processes=None, pids=None, min_idle=30.0):
    """(selected, kept): the connections to end, and the others each with the reason it is kept."""
    names = [str(n) for n in names or [] if str(n)]
    processes = [str(n) for n in processes or [] if str(n)]
    pids = [int(p) for p in pids or []]
    chosen, kept = [], []
    for conn in conns or []:
        ok, why = selected_reason(conn, names, processes, pids, min_idle)
        (chosen if ok else kept).append(dict(conn, why=why))
    return chosen, kept


def describe(conn):
    return '%s%s from %s%s%s' % (
        ('id %s ' % conn['id']) if conn.get('id') is not None else '', conn.get('name') or '(no name)',
        conn.get('addr') or '?',
        (' (%s, pid %s)' % (conn.get('process') or '?', conn['pid'])) if conn.get('pid') is not None else '',
        (', idle %d s' % conn['idle']) if conn.get('idle') is not None else '')


def summarize(conns, limit=5):
    """Plan lines: one per (name, process) group with its count and idle range."""
    groups = {}
    for conn in conns:
        key = (conn.get('name'), conn.get('process'), conn.get('pid'))
        group = groups.setdefault(key, {'count': 0, 'idle': [], 'example': conn})
        group['count'] += 1
        if conn.get('idle') is not None:
            group['idle'].append(conn['idle'])
    rows = sorted(groups.items(), key=lambda kv: -kv[1]['count'])
    lines = []
    for (name, process, pid), group in rows[:limit]:
        lines.append('%d connection(s) %s%s%s' % (
            group['count'], name or '(no name)',
            (' of %s (pid %s)' % (process or '?', pid)) if pid is not None else '',
            (', idle %d-%d s' % (min(group['idle']), max(group['idle']))) if group['idle'] else ', idle time unknown'))
    if len(rows) > limit:
        lines.append('... and %d more group(s)' % (len(rows) - limit))
    return lines


def ss_peer(ip, port):
    """One ss filter address ('127.0.0.1:50212', '[::1]:50212') from a parsed address and an integer port;
    ValueError for anything else."""
    addr = ipaddress.ip_address(str(ip))
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError('bad port %r' % port)
    return ('[%s]:%d' if addr.version == 6 else '%s:%d') % (addr, port)


def ss_argv(redis_port, peers, ss='ss', batch=SS_BATCH):
    """argv lists of ``ss -K`` closing the server-side sockets of Redis (local port redis_port) whose peer is one
    of peers [(ip, port)], at most ``batch`` peers per call. Integers and parsed addresses only: no shell."""
    redis_port = int(redis_port)
    if not 0 < redis_port < 65536:
        raise ValueError('bad port %r' % redis_port)
    addrs = sorted(set(ss_peer(ip, port) for ip, port in peers or []))
    out = []
    for start in range(0, len(addrs), max(1, int(batch))):
        chunk = addrs[start:start + max(1, int(batch))]
        expr = []
        for index, addr in enumerate(chunk):
            if index:
                expr.append('or')
            expr.extend(['dst', addr])
        out.append([ss, '-K', '-t', '-n', 'state', 'established', '(', 'sport', '=', ':%d' % redis_port, ')', 'and',
                    '('] + expr + [')'])
    return out
