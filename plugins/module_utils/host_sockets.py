# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds the connections to a local TCP port, from the host's own sockets (no server needed).

When a server refuses new connections (Redis: "max number of clients reached") it cannot be asked who its
clients are. The kernel can: /proc/net/tcp and /proc/net/tcp6 list every socket of this network namespace
(the server's end of each connection and, for clients on the same host, the client's end), and
/proc/<pid>/fd links each socket inode to the process that holds it (/proc/<pid>/cmdline names it).

Standard library only; every loop is bounded (lines, processes, descriptors), so any input ends.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

ESTABLISHED = '01'
LISTEN = '0A'
MAX_LINES = 200000      # sockets read per table
MAX_PIDS = 20000        # processes scanned for the sockets' owners
MAX_FDS = 100000        # descriptors read over all processes
MAX_HOLDERS = 10
MAX_PEERS = 5
_SOCKET_RE = re.compile(r'^socket:\[(\d{1,20})\]$')
_WORD_RE = re.compile(r'^[A-Za-z0-9_./:@+-]{1,80}$')
# an argument after one of these options is a secret, never shown
_SECRET_OPTION_RE = re.compile(r'^-{1,2}(a|p(ass(word)?)?|auth|token|secret|pw|key|user)$', re.I)


def _hex_ip(text):
    """The printable address of /proc/net/tcp{,6}'s hex form (each 32-bit word in host byte order, little-endian)."""
    if len(text) == 8:
        raw = bytes.fromhex(text)[::-1]
        return '.'.join(str(b) for b in raw)
    if len(text) == 32:
        raw = b''.join(bytes.fromhex(text[i:i + 8])[::-1] for i in range(0, 32, 8))
        if raw[:12] == b'\x00' * 10 + b'\xff\xff':  # IPv4-mapped
            return '.'.join(str(b) for b in raw[12:])
        words = ['%x' % int.from_bytes(raw[i:i + 2], 'big') for i in range(0, 16, 2)]
        return ':'.join(words)
    raise ValueError('bad address %r' % text[:40])


def _endpoint(text):
    addr, dummy, port = text.partition(':')
    return _hex_ip(addr), int(port, 16)


def parse_proc_net_tcp(text, limit=MAX_LINES):
    """The sockets of one /proc/net/tcp{,6} table: [{local: (ip, port), remote: (ip, port), state, inode}].

    Malformed lines are skipped; at most ``limit`` lines are read."""
    out = []
    for number, line in enumerate(str(text or '').splitlines()):
        if number > limit:
            break
        parts = line.split()
        if len(parts) < 10 or not parts[0].endswith(':') or not parts[0][:-1].isdigit():
            continue
        try:
            local, remote = _endpoint(parts[1]), _endpoint(parts[2])
            inode = int(parts[9])
        except ValueError:
            continue
        out.append({'local': local, 'remote': remote, 'state': parts[3].upper(), 'inode': inode})
    return out


def read_sockets(proc='/proc'):
    """Every TCP socket of this network namespace (IPv4 and IPv6); unreadable tables are skipped."""
    out = []
    for name in ('tcp', 'tcp6'):
        try:
            with open(os.path.join(proc, 'net', name), 'r') as handle:
                out.extend(parse_proc_net_tcp(handle.read(16 * 1024 * 1024)))
        except (IOError, OSError):
            continue
    return out


def connections_to(sockets, port):
    """(listening here?, the server ends of established connections to ``port``, the client ends on this host)."""
    listening = any(s['local'][1] == port and s['state'] == LISTEN for s in sockets)
    server = [s for s in sockets if s['local'][1] == port and s['state'] == ESTABLISHED]
    ends = set((s['remote'][0], s['remote'][1]) for s in server)
    client = [s for s in sockets if s['state'] == ESTABLISHED and s['remote'][1] == port
              and (s['local'][0], s['local'][1]) in ends]
    return listening, server, client


def describe_cmdline(raw, limit=120):
    """A process as a person reads it, without secrets: the program's name and its plain-word arguments
    (an argument with '=' or after a password-like option is dropped)."""
    args = [a for a in (raw or b'').split(b'\0') if a][:32]
    words, skip = [], False
    for index, arg in enumerate(args):
        text = arg.decode('utf-8', 'replace')
        if index == 0:
            words.append(os.path.basename(text)[:40] or '?')
            continue
        if skip:
            skip = False
            words.append('***')
            continue
        if _SECRET_OPTION_RE.match(text):
            skip = True
            words.append(text)
            continue
        if '=' in text or not _WORD_RE.match(text):
            continue
        words.append(text)
    line = ' '.join(words)
    return line if len(line) <= limit else line[:limit - 3] + '...'


def socket_owners(inodes, proc='/proc', max_pids=MAX_PIDS, max_fds=MAX_FDS):
    """{inode: pid} for the wanted socket inodes, from /proc/<pid>/fd (unreadable processes are skipped)."""
    wanted, found, fds_read = set(inodes), {}, 0
    if not wanted:
        return found
    try:
        pids = sorted((int(p) for p in os.listdir(proc) if p.isdigit()), reverse=True)[:max_pids]
    except OSError:
        return found
    for pid in pids:
        fd_dir = os.path.join(proc, str(pid), 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            fds_read += 1
            if fds_read > max_fds:
                return found
            try:
                match = _SOCKET_RE.match(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                continue
            if match and int(match.group(1)) in wanted:
                found.setdefault(int(match.group(1)), pid)
        if len(found) >= len(wanted):
            break
    return found


def cmdline_of(pid, proc='/proc'):
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            return describe_cmdline(handle.read(8192))
    except (IOError, OSError):
        return '?'


def group_holders(client_ends, owners, cmdlines, limit=MAX_HOLDERS):
    """[{process, pid, connections, peers}] of the client ends, most connections first; ends without a known
    process are grouped under process None."""
    groups = {}
    for sock in client_ends:
        pid = owners.get(sock['inode'])
        row = groups.setdefault(pid, {'process': cmdlines.get(pid) if pid is not None else None, 'pid': pid,
                                      'connections': 0, 'peers': []})
        row['connections'] += 1
        if len(row['peers']) < MAX_PEERS:
            row['peers'].append('%s:%d' % sock['local'])
    rows = sorted(groups.values(), key=lambda r: (-r['connections'], r['pid'] is None, r['pid'] or 0))
    return rows[:limit]


def holders_of_port(port, proc='/proc', sockets=None):
    """Who holds the connections to a local port, as evidence:
    {port, listening, connections, holders: [{process, pid, connections, peers}], remote_peers: {ip: count},
     note}. ``note`` says honestly what could not be seen."""
    port = int(port)
    if sockets is None:
        sockets = read_sockets(proc)
    listening, server, client = connections_to(sockets, port)
    out = {'port': port, 'listening': listening, 'connections': len(server), 'holders': [], 'remote_peers': {}}
    if not sockets:
        out['note'] = 'no socket table readable under %s/net: the holders cannot be seen from this host' % proc
        return out
    if not listening and not server:
        out['note'] = ('nothing listens on port %d in this host\'s network namespace: the server runs elsewhere, '
                       'its holders cannot be seen from here' % port)
        return out
    local_ends = set((s['local'][0], s['local'][1]) for s in client)
    for sock in server:
        if (sock['remote'][0], sock['remote'][1]) not in local_ends:
            out['remote_peers'][sock['remote'][0]] = out['remote_peers'].get(sock['remote'][0], 0) + 1
    owners = socket_owners([s['inode'] for s in client], proc)
    cmdlines = dict((pid, cmdline_of(pid, proc)) for pid in set(owners.values()))
    out['holders'] = group_holders(client, owners, cmdlines)
    unknown = sum(r['connections'] for r in out['holders'] if r['pid'] is None)
    notes = []
    if out['remote_peers']:
        notes.append('%d connections come from other hosts (remote_peers): their processes are not visible here'
                     % sum(out['remote_peers'].values()))
    if unknown:
        notes.append('%d client sockets on this host have no process this user can read (another PID namespace '
                     'or not root)' % unknown)
    if notes:
        out['note'] = '; '.join(notes)
    return out
