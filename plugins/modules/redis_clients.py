#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_clients
short_description: End selected Redis client connections, also when every client slot is taken
version_added: 0.2.0
description:
  - Selects Redis client connections by client name (O(names)), by the process that holds them on the Redis
    host (O(processes), O(pids); read from this host's own sockets) and, when the server reports idle times, only
    the ones idle for O(min_idle) seconds or more. Every selector kind given must match; without a selector the
    module fails (it never ends every client). The connections of a process not selected, replication links,
    C(MONITOR) and pub/sub connections and the module's own connection are never ended.
  - When the server answers, C(CLIENT LIST) is read and each selected connection is ended with C(CLIENT KILL ID).
  - When the server refuses new connections (C(max number of clients reached)), the server-side TCP sockets of the
    selected connections are closed with C(ss -K) (an argument list, no shell; the filter is built from the Redis
    port and the peers' parsed addresses and ports only); once a connection is free again, the selected connections
    still there are ended with C(CLIENT KILL ID).
  - O(state=plan) and check mode change nothing and report what would be ended. A run that selects nothing reports
    C(changed=false).
  - Client names and process names are data, compared and never put in a command or a shell string.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.redis_connection
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_redis
options:
  state:
    description: C(plan) only lists the selected connections, C(absent) ends them.
    type: str
    default: plan
    choices: [plan, absent]
  names:
    description: Client names (C(CLIENT SETNAME)) whose connections are selected. Needs a server that answers.
    type: list
    elements: str
    default: []
  processes:
    description:
      - Names of the processes on the Redis host whose connections are selected, matched against the program's
        name, the basename of each argument of its command line and C(/proc/<pid>/comm) (e.g. C(batch-report)).
    type: list
    elements: str
    default: []
  pids:
    description: Process ids on the Redis host whose connections are selected.
    type: list
    elements: int
    default: []
  min_idle:
    description: When the server reports idle times, only connections idle for at least this many seconds.
    type: float
    default: 30
  reset_stats:
    description:
      - After connections were ended, run C(CONFIG RESETSTAT) so that C(rejected_connections) (counted since the
        last reset) stops reporting the exhaustion that is over; the count before the reset is returned.
    type: bool
    default: false
  settle_timeout:
    description: Seconds to wait for the server to free the closed connections and answer again.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    details: Lists the connections it would end; ends nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run selects nothing and reports no change.
requirements:
  - redis (redis-py)
  - ss (iproute2) on the Redis host, when the server refuses new connections
notes:
  - Closing sockets with C(ss -K) needs root (CAP_NET_ADMIN) and a kernel with C(CONFIG_INET_DIAG_DESTROY); it
    only reaches the sockets of the network namespace the module runs in (the Redis host's).
'''

EXAMPLES = r'''
- name: Plan - which idle batch-report connections would be ended
  sre.incident_response.redis_clients:
    login_port: 6379
    login_password: "{{ lookup('ansible.builtin.vars', 'vault_redis_password') }}"
    names: [batch-report]
    state: plan

- name: End the connections of the process 2684 (the server refuses new connections)
  sre.incident_response.redis_clients:
    login_port: 6379
    login_password: "{{ lookup('ansible.builtin.vars', 'vault_redis_password') }}"
    pids: [2684]
    state: absent
'''

RETURN = r'''
server:
  description: C(answers) when the server accepted the module's connection, C(refuses) when every client slot was taken.
  returned: always
  type: str
  sample: refuses
selected:
  description: The connections selected (to end, or ended), at most 200.
  returned: always
  type: list
  elements: dict
  sample: [{id: null, addr: "127.0.0.1:49502", name: null, idle: null, pid: 2684, process: "python3 /lab/fault_redis.py batch-report"}]
selected_count:
  description: How many connections were selected.
  returned: always
  type: int
  sample: 24
kept_count:
  description: How many other connections were seen and left alone.
  returned: always
  type: int
  sample: 3
kept_reasons:
  description: Why the other connections are kept (reason -> count).
  returned: always
  type: dict
  sample: {"process 812 not selected": 3}
plan:
  description: What would be ended (or was), for people.
  returned: always
  type: list
  elements: str
  sample: ["24 connection(s) (no name) of python3 /lab/fault_redis.py batch-report (pid 2684), idle time unknown"]
closed_sockets:
  description: Server-side sockets closed with C(ss -K) (peers).
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1:49502"]
killed_ids:
  description: Client ids ended with C(CLIENT KILL ID).
  returned: always
  type: list
  elements: int
  sample: [12, 13]
commands:
  description: The C(ss -K) argument lists run.
  returned: always
  type: list
  elements: list
  sample: [["ss", "-K", "-t", "-n", "state", "established", "(", "sport", "=", ":6379", ")", "and", "(", "dst", "127.0.0.1:49502", ")"]]
remaining:
  description: Selected connections still there after the apply (empty when all were ended, or in plan state).
  returned: always
  type: list
  elements: str
  sample: []
server_after:
  description: C(answers) or C(refuses) after the apply (equal to RV(server) in plan state).
  returned: always
  type: str
  sample: answers
rejected_connections_before_reset:
  description: C(rejected_connections) read just before C(CONFIG RESETSTAT) (null when no reset ran).
  returned: always
  type: int
  sample: 57
note:
  description: What could not be seen or done (e.g. names selected while the server refuses new connections).
  returned: always
  type: str
  sample: ""
'''

import ipaddress
import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import host_sockets
from ansible_collections.sre.incident_response.plugins.module_utils import redis_common
from ansible_collections.sre.incident_response.plugins.module_utils import redis_clients as logic

MAX_RETURNED = 200
MAX_CLIENTS_TEXT = 'max number of clients reached'


def _norm(ip):
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return str(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _comm(pid):
    try:
        with open(os.path.join('/proc', str(pid), 'comm'), 'r') as handle:
            return handle.read(64).strip()
    except (IOError, OSError):
        return None


def local_view(port):
    """(server ends of the established connections to port, {(ip, port) of a client end: holder}) of this host."""
    sockets = host_sockets.read_sockets()
    dummy, server, client = host_sockets.connections_to(sockets, port)
    owners = host_sockets.socket_owners([s['inode'] for s in client])
    cmdlines = dict((pid, host_sockets.cmdline_of(pid)) for pid in set(owners.values()))
    holders = {}
    for sock in client:
        pid = owners.get(sock['inode'])
        if pid is not None:
            holders[(_norm(sock['local'][0]), int(sock['local'][1]))] = {
                'pid': pid, 'process': cmdlines.get(pid), 'comm': _comm(pid)}
    server = [dict(s, remote=(_norm(s['remote'][0]), int(s['remote'][1]))) for s in server]
    return server, holders


def refused(exc):
    return MAX_CLIENTS_TEXT in str(exc or '').lower()


def connect(params):
    """(client, None) when the server answers, (None, error text) when it refuses new connections; raises otherwise."""
    client = redis_common.redis_connect(params)
    try:
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        try:
            client.close()
        except Exception:  # pylint: disable=broad-except
            pass
        if refused(exc):
            return None, str(exc)
        raise
    return client, None


def view(params, port):
    """(client or None, connections, note)."""
    try:
        server, holders = local_view(port)
        note = ''
    except Exception as exc:  # pylint: disable=broad-except
        server, holders, note = [], {}, 'host sockets unreadable: %s' % exc
    client, error = connect(params)
    if client is None:
        return None, logic.from_sockets(server, holders), note
    own_id = client.client_id()
    rows = client.client_list()
    return client, logic.from_client_list(rows, holders, own_id), note


def public(conn):
    return dict((k, conn.get(k)) for k in ('id', 'addr', 'name', 'idle', 'pid', 'process', 'why'))


def main():
    spec = redis_common.redis_argument_spec()
    spec.update(
        state=dict(type='str', default='plan', choices=['plan', 'absent']),
        names=dict(type='list', elements='str', default=[]),
        processes=dict(type='list', elements='str', default=[]),
        pids=dict(type='list', elements='int', default=[]),
        min_idle=dict(type='float', default=30.0),
        reset_stats=dict(type='bool', default=False),
        settle_timeout=dict(type='float', default=5.0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not redis_common.HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis'), exception=redis_common.REDIS_IMPORT_ERROR)
    if not logic.has_selector(p['names'], p['processes'], p['pids']):
        module.fail_json(msg='redis_clients needs names, processes or pids: it never ends every client')
    if p['min_idle'] < 0:
        module.fail_json(msg='min_idle must be 0 or more')
    port = int(p['login_port'])
    secrets = [p.get('login_password')]
    sel = dict(names=p['names'], processes=p['processes'], pids=p['pids'], min_idle=p['min_idle'])
    result = dict(changed=False, server='', selected=[], selected_count=0, kept_count=0, kept_reasons={}, plan=[],
                  closed_sockets=[], killed_ids=[], commands=[], remaining=[], server_after='',
                  rejected_connections_before_reset=None, note='')
    try:
        client, conns, note = view(p, port)
        result['server'] = result['server_after'] = 'answers' if client is not None else 'refuses'
        chosen, kept = logic.select(conns, **sel)
        notes = [note] if note else []
        if client is None and p['names']:
            notes.append('the server refuses new connections: client names cannot be read (select by processes or '
                         'pids, or wait for a free slot)')
        for conn in kept:
            result['kept_reasons'][conn['why']] = result['kept_reasons'].get(conn['why'], 0) + 1
        result.update(selected=[public(c) for c in chosen[:MAX_RETURNED]], selected_count=len(chosen),
                      kept_count=len(kept))
        result['plan'] = logic.summarize(chosen) or ['no connection selected (%s)' % (
            '; '.join('%s x%d' % kv for kv in sorted(result['kept_reasons'].items())[:5]) or 'none seen')]
        if result['server'] == 'refuses':
            result['plan'].insert(0, 'the server refuses new connections (max number of clients reached): close the '
                                     'selected connections\' sockets with ss -K, then CLIENT KILL ID the rest')
        if p['state'] == 'plan' or module.check_mode or not chosen:
            result['note'] = '; '.join(notes)
            if client is not None:
                client.close()
            module.exit_json(**result)
        if client is not None:
            for conn in chosen:
                if client.client_kill_filter(_id=str(conn['id'])):
                    result['killed_ids'].append(conn['id'])
            client.close()
        else:
            peers = [(c['ip'], c['port']) for c in chosen if c.get('ip') and c.get('port')]
            ss = module.get_bin_path('ss', required=True)
            for argv in logic.ss_argv(port, peers, ss=ss):
                rc, out, err = module.run_command(argv)
                result['commands'].append(argv)
                if rc != 0:
                    module.fail_json(msg='ss -K failed (rc %d): %s' % (rc, (err or out).strip()[:300]), **result)
            result['closed_sockets'] = ['%s:%d' % peer for peer in peers]
        # settle: the server frees the closed connections; end the selected ones still there by id
        wanted_ids = set(c['id'] for c in chosen if c.get('id') is not None)
        wanted_peers = set((c['ip'], c['port']) for c in chosen if c.get('ip'))
        deadline = time.time() + max(0.0, p['settle_timeout'])
        remaining = chosen
        while True:
            client, conns, dummy = view(p, port)
            result['server_after'] = 'answers' if client is not None else 'refuses'
            if client is not None:
                again, dummy = logic.select(conns, names=p['names'], processes=p['processes'], pids=p['pids'], min_idle=0)
                again = [c for c in again if c['id'] in wanted_ids or (c['ip'], c['port']) in wanted_peers]
                for conn in again:
                    if conn['id'] not in result['killed_ids'] and client.client_kill_filter(_id=str(conn['id'])):
                        result['killed_ids'].append(conn['id'])
                client.close()
                client, conns, dummy = view(p, port)
                if client is not None:
                    client.close()
            answered = client is not None
            ids = set(c['id'] for c in conns if c.get('id') is not None)
            peers = set((c['ip'], c['port']) for c in conns if c.get('ip'))
            remaining = [c for c in chosen if (c['id'] in ids if answered and c.get('id') is not None
                                               else (c.get('ip'), c.get('port')) in peers)]
            if not remaining or time.time() >= deadline:
                break
            time.sleep(0.5)
        result['remaining'] = [logic.describe(c) for c in remaining[:MAX_RETURNED]]
        result['changed'] = len(remaining) < len(chosen)
        if result['changed'] and p['reset_stats'] and result['server_after'] == 'answers':
            client, dummy = connect(p)
            if client is not None:
                try:
                    result['rejected_connections_before_reset'] = int(client.info('stats').get('rejected_connections', 0))
                    client.config_resetstat()
                except Exception as exc:  # pylint: disable=broad-except
                    notes.append('CONFIG RESETSTAT failed: %s' % redis_common.describe_error(exc, secrets))
                client.close()
        if remaining:
            notes.append('%d selected connection(s) still there' % len(remaining))
        result['note'] = '; '.join(notes)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='redis_clients failed: %s' % redis_common.describe_error(exc, secrets), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
