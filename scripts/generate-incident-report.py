#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the post-mortem of an incident that was not run through the playbooks.

    generate-incident-report.py --title "Database connection pool exhaustion" --severity SEV2 \\
        --start-time 2024-01-15T14:30:00Z --end-time 2024-01-15T15:15:00Z --output-dir ./post-mortems/

Writes <output-dir>/postmortem-YYYY-MM-DD.md with the same structure (and the same
renderer) as playbooks/resolve.yml; another incident of the same day gets
postmortem-YYYY-MM-DD-<incident id>.md. A file a person edited since it was written
(its .<name>.sha256 sidecar no longer matches) is never replaced: the new draft goes
beside it as <name>.new.md. Times are ISO 8601 (UTC when no offset is given).
Invalid arguments exit with status 2 and a message naming the argument.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import os
import sys


def _import_path():
    """Make `ansible_collections.sre.incident_response` importable from a checkout or an installed collection."""
    here = os.path.dirname(os.path.abspath(__file__))
    collection = os.path.dirname(here)
    parts = collection.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        candidates = [os.sep.join(parts[:-3]) or os.sep]
    else:
        candidates = [os.path.join(collection, '.collections')]
    for path in candidates:
        if path not in sys.path:
            sys.path.insert(0, path)


_import_path()

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files  # noqa: E402
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as severity_mod  # noqa: E402
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import (  # noqa: E402
    IncidentRecord,
    render_postmortem,
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='generate-incident-report.py',
        description='Write postmortem-YYYY-MM-DD.md for an incident from its arguments alone.')
    parser.add_argument('--title', required=True, help='short title of the incident')
    parser.add_argument('--severity', required=True, help='SEV1, SEV2, SEV3 or SEV4 (P1..P4 accepted)')
    parser.add_argument('--start-time', required=True, help='start of the impact, ISO 8601, e.g. 2024-01-15T14:30:00Z')
    parser.add_argument('--end-time', required=True, help='resolution time, ISO 8601, after --start-time')
    parser.add_argument('--output-dir', required=True, help='directory to write the post-mortem into (created)')
    parser.add_argument('--impact', default='', help='what users experienced (and revenue impact)')
    parser.add_argument('--root-cause', default='', help='the root cause, when known')
    parser.add_argument('--commander', default='', help='the incident commander')
    parser.add_argument('--acknowledged-time', default='', help='when the incident was acknowledged (ISO 8601)')
    parser.add_argument('--mitigated-time', default='', help='when the mitigation took effect (ISO 8601)')
    parser.add_argument('--incident-id', default='', help='incident id (default: INC-<start>)')
    parser.add_argument('--owner', default='@oncall', help='owner of the proposed action items (default @oncall)')
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.title.strip():
        parser.error('--title must not be empty')
    try:
        args.severity = severity_mod.normalize(args.severity)
    except ValueError:
        parser.error('--severity %r is unknown: use one of %s' % (args.severity, ', '.join(severity_mod.SEVERITIES)))
    times = {}
    for name in ('start_time', 'end_time'):
        value = getattr(args, name)
        try:
            times[name] = files.parse_ts(value)
        except ValueError:
            parser.error('--%s %r is not an ISO 8601 time (e.g. 2024-01-15T14:30:00Z)' % (name.replace('_', '-'), value))
    if times['end_time'] <= times['start_time']:
        parser.error('--end-time (%s) must be after --start-time (%s)' % (args.end_time, args.start_time))
    args.start = times['start_time']
    args.end = times['end_time']
    for name in ('acknowledged_time', 'mitigated_time'):
        value = getattr(args, name)
        if not value:
            setattr(args, name, None)
            continue
        flag = '--' + name.replace('_', '-')
        try:
            moment = files.parse_ts(value)
        except ValueError:
            parser.error('%s %r is not an ISO 8601 time (e.g. 2024-01-15T14:35:00Z)' % (flag, value))
        if not args.start <= moment <= args.end:
            parser.error('%s (%s) must lie between --start-time and --end-time' % (flag, value))
        setattr(args, name, moment)
    if args.incident_id and not files.valid_incident_id(args.incident_id):
        parser.error('--incident-id %r is malformed: letters, digits, ".", "_" or "-", at most 64' % args.incident_id)
    return args


def record_from_args(args):
    # Two incidents of the same minute get two ids (and two files); the same arguments give the same id.
    suffix = hashlib.sha256(('%s|%s' % (args.title.strip(), files.isoformat(args.start))).encode('utf-8')).hexdigest()[:4]
    incident_id = args.incident_id or 'INC-%s-%s' % (args.start.strftime('%Y%m%d-%H%M'), suffix)
    start = files.isoformat(args.start)
    end = files.isoformat(args.end)
    incident = {'id': incident_id, 'title': args.title.strip(), 'severity': args.severity, 'started_at': start,
                'impact': args.impact or '', 'commander': args.commander or None, 'status': 'Resolved',
                'resolved_at': end,
                'acknowledged_at': files.isoformat(args.acknowledged_time) if args.acknowledged_time else None}
    events = [
        files.make_event(incident_id, 'declared', 'Incident declared: %s' % args.title.strip(), ts=start,
                         data={'source': 'generate-incident-report'}),
        files.make_event(incident_id, 'severity', 'Severity %s' % args.severity, ts=start,
                         data={'severity': args.severity}),
    ]
    if args.mitigated_time:
        events.append(files.make_event(incident_id, 'verify', 'Mitigation in effect', ts=files.isoformat(args.mitigated_time),
                                       data={'ok': True}))
    events += [
        files.make_event(incident_id, 'resolved', 'Incident resolved', ts=end,
                         data={'root_cause': args.root_cause or None}),
    ]
    return IncidentRecord(incident, events, [], [])


def main(argv=None):
    args = parse_args(argv)
    record = record_from_args(args)
    inputs = {'root_cause': args.root_cause, 'impact': args.impact, 'commander': args.commander,
              'default_owner': args.owner, 'root_cause_hint': '`--root-cause`'}
    try:
        outcome = render_postmortem(os.path.abspath(args.output_dir), record, inputs=inputs, final=True,
                                    one_per_incident=True)
    except OSError as exc:
        sys.stderr.write('generate-incident-report.py: cannot write to %s: %s\n' % (args.output_dir, exc))
        return 1
    if outcome['status'] == 'edited':
        print('kept %s (edited since it was rendered); wrote the new draft beside it: %s'
              % (outcome['edited'], outcome['path']))
    else:
        print('%s %s' % ('wrote' if outcome['changed'] else 'unchanged', outcome['path']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
