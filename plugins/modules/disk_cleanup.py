#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: disk_cleanup
short_description: Free disk space by removing rotated logs and temp files under configured paths only
version_added: 0.1.0
description:
  - Under each of O(paths) only (no symlinks followed, no other file system entered), deletes rotated log files
    and temp files older than O(older_than_days).
  - A file that a process holds open (found through C(/proc/*/fd)) is truncated, not deleted, because deleting it
    would free nothing; an active log file (O(active_patterns)) held open and larger than O(truncate_over) is
    truncated so the writer keeps writing to it. Active logs are never deleted.
  - Files already deleted but still held open by a process (what C(lsof +L1) lists), on the file systems of
    O(paths), are found through C(/proc/*/fd) (processes of the host and of its containers); a log or temp
    file by name is truncated through C(/proc/PID/fd/N); any other file is listed in RV(recommendations) with
    its holder to restart, never truncated. Only files that belong to O(paths) are touched - every file when a
    path is the top of its own file system (a volume, a tmpfs), otherwise only a host process's file whose path
    was inside O(paths); others on a shared file system are listed in RV(recommendations), never touched.
  - Reports every file with its size and whether it is held open, the bytes freed and the file system usage
    before and after. Check mode reports and changes nothing.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
options:
  paths:
    description:
      - Directories to clean (the service's log and temp directories). System and shared directories (C(/), C(/tmp),
        C(/var/log), C(/var/lib/docker/volumes), ...) are refused.
    type: list
    elements: path
    required: true
  allowed_paths:
    description:
      - The directories the inventory declares for the service (its C(disk_paths)). Every one of O(paths), resolved
        on the host (symlinks and C(..)), must be one of them or inside one; otherwise the module fails before it
        lists or changes anything, naming the allowed directories. The role always passes them.
      - Empty means O(paths) are the declared directories themselves.
    type: list
    elements: path
    default: []
  older_than_days:
    description: Rotated and temp files must be older (mtime) than this many days; 0 means any age.
    type: float
    default: 1
  rotated_patterns:
    description: File name patterns of rotated logs.
    type: list
    elements: str
    default: ['*.log.[0-9]*', '*.log.gz', '*.log.*.gz', '*.[0-9].gz', '*.old']
  temp_patterns:
    description: File name patterns of temp files.
    type: list
    elements: str
    default: ['*.tmp', 'tmp*', '*.temp', '*.swp', 'core.[0-9]*']
  active_patterns:
    description: File name patterns of active log files (truncated when held open and large, never deleted).
    type: list
    elements: str
    default: ['*.log']
  truncate_active:
    description: Truncate active log files held open that are larger than O(truncate_over).
    type: bool
    default: true
  truncate_over:
    description: Size in bytes above which an active log is truncated.
    type: int
    default: 1048576
  deleted_open:
    description: Also find and truncate deleted files still held open (see the description).
    type: bool
    default: true
  planned:
    description:
      - With O(state=absent), act only on these - the C(path) of each file and the C(fd_path) of each deleted file
        held open that a plan listed in RV(files). What a fresh scan finds on top (a rotated log that became old
        enough since the plan) is left and named in RV(not_planned).
      - Omitted, the apply acts on what its own scan finds.
    type: list
    elements: str
  state:
    description:
      - C(plan) only lists, C(absent) deletes or truncates.
      - C(list) is the former name of C(plan); the action still accepts it, with a deprecation warning.
    type: str
    default: plan
    choices: [plan, absent]
attributes:
  check_mode:
    support: full
    details: Lists what would be freed; changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds nothing old enough or large enough.
notes:
  - Run it as a user that can read C(/proc/*/fd) of the writers (root), or held-open files are not recognised.
'''

EXAMPLES = r'''
- name: Free the log volume
  sre.incident_response.disk_cleanup:
    paths: [/var/log/app]
    older_than_days: 1
    state: absent

- name: Only the upload directory, within what the inventory declares for the service
  sre.incident_response.disk_cleanup:
    paths: [/var/log/app/uploads]
    allowed_paths: [/var/log/app]
    state: plan
'''

RETURN = r'''
files:
  description: Every file acted on (or to act on in a plan).
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/log/app/app.log.1, size: 8388608, age_days: 2.1, kind: rotated, held_by: [], action: delete}]
bytes:
  description: Bytes the files hold (what the plan would free).
  returned: always
  type: int
  sample: 62914560
bytes_freed:
  description: Free space after minus before, summed over the file systems.
  returned: always
  type: int
  sample: 62914560
deleted:
  description: Paths deleted.
  returned: always
  type: list
  elements: str
  sample: [/var/log/app/app.log.1]
truncated:
  description: Paths truncated (held open).
  returned: always
  type: list
  elements: str
  sample: [/var/log/app/app.log]
disk_before:
  description: Usage of each path's file system before.
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/log/app, total: 67108864, used: 67108864, free: 0, used_percent: 100.0}]
disk_after:
  description: Usage after (equal to before in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/log/app, total: 67108864, used: 1048576, free: 66060288, used_percent: 1.6}]
deleted_open:
  description:
    - Deleted files still held open on the cleaned file systems, with the holder and the action - C(truncate),
      C(restart_holder) (not a log or temp file by name) or C(outside) (not under the paths, so not touched).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4242, fd: 3, fd_path: /proc/4242/fd/3, process: python3, container: 0f3c2a1b9d8e,
            path: /var/log/app/debug-trace.log, size: 65011712, kind: active, action: truncate}]
recommendations:
  description: What the module will not do itself, for people (restart the holder of a deleted non-log file).
  returned: always
  type: list
  elements: str
  sample: ["restart pid 4242 (postgres, container 0f3c2a1b9d8e): it holds the deleted /data/x.db (1.0 GiB)"]
not_planned:
  description: What the scan found that O(planned) did not list, so was left (empty without O(planned)).
  returned: always
  type: list
  elements: str
  sample: [/var/log/app/app.log.3]
plan:
  description: One line per file, for people.
  returned: always
  type: list
  elements: str
  sample: ["delete /var/log/app/app.log.1 (8.0 MiB, 2.1 days old, not open)"]
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as common
from ansible_collections.sre.incident_response.plugins.module_utils import remediation_disk as logic


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            allowed_paths=dict(type='list', elements='path', default=[]),
            older_than_days=dict(type='float', default=1.0),
            rotated_patterns=dict(type='list', elements='str', default=list(logic.DEFAULT_ROTATED)),
            temp_patterns=dict(type='list', elements='str', default=list(logic.DEFAULT_TEMP)),
            active_patterns=dict(type='list', elements='str', default=list(logic.DEFAULT_ACTIVE)),
            truncate_active=dict(type='bool', default=True),
            truncate_over=dict(type='int', default=1048576),
            deleted_open=dict(type='bool', default=True),
            planned=dict(type='list', elements='str'),
            state=dict(type='str', default='plan', choices=['plan', 'absent']),
        ),
        supports_check_mode=True,
    )
    p = module.params
    allowed = p['allowed_paths'] or p['paths']
    errors = logic.scope_errors(p['paths'], allowed)
    if errors:
        module.fail_json(msg='refusing to clean, nothing was listed or changed: %s. Allowed: %s (disk_paths of the service '
                             'in the inventory, or inside them)' % ('; '.join(errors), ', '.join(allowed) or 'none'),
                         allowed_paths=allowed)
    roots = sorted(set(os.path.realpath(x) for x in p['paths']))
    held = logic.open_files()
    now = time.time()
    active = p['active_patterns'] if p['truncate_active'] else []
    files = []
    for root in roots:
        files.extend(logic.walk(root, p['rotated_patterns'], p['temp_patterns'], active,
                                p['older_than_days'] * 86400.0, p['truncate_over'], now, held))
    deleted = []
    if p['deleted_open']:
        deleted = logic.deleted_open(set(os.lstat(r).st_dev for r in roots), p['rotated_patterns'], p['temp_patterns'],
                                     p['active_patterns'])
        for d in deleted:
            if not logic.attributable(d, roots):
                d['action'] = 'outside'
            d.pop('dev', None)
    fixable = [d for d in deleted if d['action'] == 'truncate']
    files, fixable, not_planned = logic.pin(files, fixable, p['planned'] if p['state'] == 'absent' else None)
    before = [logic.usage(r) for r in roots]
    result = dict(changed=bool(files or fixable) and p['state'] == 'absent', files=files + fixable,
                  bytes=sum(f['size'] for f in files + fixable), bytes_freed=0, deleted=[], truncated=[], failed=[],
                  disk_before=before, disk_after=before, plan=[], deleted_open=deleted, recommendations=[],
                  not_planned=not_planned)
    for f in files:
        result['plan'].append('%s %s (%s, %.2f days old, %s)' % (
            f['action'], f['path'], common.human_bytes(f['size']), f['age_days'],
            ('held open by pid %s' % ','.join(str(x) for x in f['held_by'])) if f['held_by'] else 'not open'))
    for d in deleted:
        if d['action'] == 'truncate' and d not in fixable:
            continue  # found again but not planned: named in not_planned
        holder = 'pid %d (%s%s)' % (d['pid'], d['process'], (', container %s' % d['container']) if d['container'] else ', host')
        if d['action'] == 'truncate':
            result['plan'].append('truncate %s (deleted, still open: %s, held by %s) through %s' % (
                d['path'], common.human_bytes(d['size']), holder, d['fd_path']))
        elif d['action'] == 'outside':
            line = ('%s holds the deleted %s (%s) on the same file system, outside the directories to clean: not touched'
                    % (holder, d['path'], common.human_bytes(d['size'])))
            result['recommendations'].append(line)
            result['plan'].append('NOT freed: ' + line)
        else:
            line = ('restart %s: it holds the deleted %s (%s); not a log or temp file by name, so it is not truncated'
                    % (holder, d['path'], common.human_bytes(d['size'])))
            result['recommendations'].append(line)
            result['plan'].append('NOT freed: ' + line)
    if p['state'] == 'absent' and not module.check_mode:
        for f in files:
            try:
                if f['action'] == 'delete':
                    os.unlink(f['path'])
                    result['deleted'].append(f['path'])
                else:
                    with open(f['path'], 'r+b') as handle:
                        handle.truncate(0)
                    result['truncated'].append(f['path'])
            except OSError as exc:
                result['failed'].append({'path': f['path'], 'error': str(exc)})
        for d in fixable:
            try:
                st = os.stat(d['fd_path'])  # the same descriptor still points at an unlinked file
                if os.readlink(d['fd_path']) != d['path'] + ' (deleted)' or st.st_nlink != 0:
                    continue
                with open(d['fd_path'], 'r+b') as handle:
                    handle.truncate(0)
                result['truncated'].append('%s (deleted, %s)' % (d['path'], d['fd_path']))
            except OSError as exc:
                if os.path.exists(os.path.join('/proc', str(d['pid']))):
                    result['failed'].append({'path': d['fd_path'], 'error': str(exc)})
        result['disk_after'] = [logic.usage(r) for r in roots]
        result['bytes_freed'] = max(0, sum(a['free'] for a in result['disk_after']) - sum(b['free'] for b in before))
        if result['failed']:
            module.fail_json(msg='disk_cleanup could not clean %d file(s)' % len(result['failed']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
