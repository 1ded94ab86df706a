# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changes area: recent changes: deployments (container image, start time, previous image, release links) and host changes.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.changes_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import time

from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    parse_docker_time, one_line, utcnow, window_seconds)
from ansible_collections.sre.incident_response.plugins.module_utils.remediation import version_key


PREVIOUS_IMAGE_LABELS = ('sre.incident_response.previous_image', 'previous_image', 'org.opencontainers.image.previous')


def repo_of(ref):
    """Repository part of an image reference (registry:port/name:tag@digest -> registry:port/name)."""
    ref = (ref or '').split('@', 1)[0]
    last = ref.rsplit('/', 1)[-1]
    if ':' in last:
        ref = ref[:len(ref) - len(last)] + last.split(':', 1)[0]
    return ref


ROLLED_BACK_FROM_LABEL = 'sre.incident_response.rolled_back_from'


def previous_image(current_ref, current_id, container_labels, images, current_created=None, history=None,
                   created_of=None):
    """(previous image reference, how it was found, other local tags of the repository).

    In order: a label of the container naming the previous image; the rollback role's own record
    (the container was rolled back from an image); the engine's events (the image the container of
    that name ran before, newest first: history = [(time_ns, image_ref)]); the version order of the
    repository's local tags; their creation time at full precision (created_of(image id) -> datetime,
    or current_created / the images' whole seconds when it is not given).
    """
    labels = container_labels or {}
    for key in PREVIOUS_IMAGE_LABELS:
        if labels.get(key):
            return labels[key], 'label %s' % key, []
    repo = repo_of(current_ref)
    others = []
    for img in images or []:
        if img.get('Id') == current_id:
            continue
        for tag in img.get('RepoTags') or []:
            if repo_of(tag) == repo:
                others.append((img.get('Created') or 0, tag, img.get('Id')))
    others.sort(reverse=True)
    tags = [o[1] for o in others]
    if labels.get(ROLLED_BACK_FROM_LABEL):
        return labels[ROLLED_BACK_FROM_LABEL], 'the rollback record (label %s)' % ROLLED_BACK_FROM_LABEL, tags
    for dummy, ref in sorted(history or [], key=lambda h: -h[0]):
        if ref and ref not in (current_ref, current_id) and not str(ref).startswith('sha256:'):
            return ref, 'engine events (the image the container ran before)', tags

    def tag_of(ref):
        return tag_in(repo, ref)
    current_tag = tag_of(current_ref or '')
    if version_key(current_tag)[0] == 1:
        lower = [o for o in others if version_key(tag_of(o[1]))[0] == 1 and version_key(tag_of(o[1])) < version_key(current_tag)]
        if lower:
            best = max(lower, key=lambda o: version_key(tag_of(o[1])))
            same = current_created is not None and best[0] == current_created  # image lists have whole seconds
            return best[1], 'version order of the local tags of %s%s' % (repo, ' (built in the same second)' if same else ''), tags
    if created_of is not None:
        mine = created_of(current_id)
        dated = [(created_of(o[2]), o[1]) for o in others]
        older = [d for d in dated if d[0] is not None and mine is not None and d[0] < mine]
        if older:
            return max(older)[1], 'creation time (full precision) of the local tags of %s' % repo, tags
        return None, 'no local tag of %s created before the current image' % repo, tags
    older = [o for o in others if current_created is None or o[0] < current_created]
    if older:
        return older[0][1], 'newest older local tag of %s' % repo, tags
    return None, 'no older local tag of %s' % repo, tags


def tag_in(repo, ref):
    """The tag of an image reference of the repository ('app:1.2@sha256:..' -> '1.2'), '' for another repository."""
    return ref.split('@', 1)[0][len(repo) + 1:] if ref.startswith(repo + ':') else ''


def is_downgrade(current_ref, previous_ref):
    """The deploy went from a higher version tag of the repository to a lower one (a rollback by hand)."""
    if not current_ref or not previous_ref or repo_of(current_ref) != repo_of(previous_ref):
        return False
    repo = repo_of(current_ref)
    cur, prev = version_key(tag_in(repo, current_ref)), version_key(tag_in(repo, previous_ref))
    return cur[0] == 1 and prev[0] == 1 and cur < prev


def deploy_item(container, info, image_info, images, now, window_s, history=None, created_of=None):
    """One container's deployment record and whether it falls inside the window."""
    config = info.get('Config') or {}
    state = info.get('State') or {}
    ref = config.get('Image')
    image_id = info.get('Image')
    digests = (image_info or {}).get('RepoDigests') or []
    created = parse_docker_time(info.get('Created'))
    started = parse_docker_time(state.get('StartedAt'))
    img_created = parse_docker_time((image_info or {}).get('Created'))
    img_created_epoch = int(img_created.timestamp()) if img_created else None
    prev, prev_how, tags = previous_image(ref, image_id, config.get('Labels'), images, img_created_epoch, history, created_of)
    created_age = (now - created).total_seconds() if created else None
    started_age = (now - started).total_seconds() if started else None
    return {
        'container': container, 'image': ref, 'image_id': image_id, 'digest': digests[0] if digests else None,
        'image_version': (((image_info or {}).get('Config') or {}).get('Labels') or {}).get('org.opencontainers.image.version'),
        'image_created': (image_info or {}).get('Created'), 'container_created': info.get('Created'),
        'started_at': state.get('StartedAt'), 'created_age_s': round(created_age, 1) if created_age is not None else None,
        'started_age_s': round(started_age, 1) if started_age is not None else None,
        'deployed_in_window': created_age is not None and created_age <= window_s,
        'restarted_in_window': started_age is not None and started_age <= window_s and not (created_age is not None and created_age <= window_s),
        'previous_image': prev, 'previous_image_source': prev_how, 'local_tags': tags,
        # deployed by a rollback: this collection's docker_rollback (its label) ...
        # or by hand, to a lower version tag: a known-good image came back, not new code
        'rollback': bool((config.get('Labels') or {}).get(ROLLED_BACK_FROM_LABEL)) or is_downgrade(ref, prev),
    }


def release_item(link, now, window_s):
    """A non-Docker release marker: the symlink's target and when it changed."""
    target = os.readlink(link)
    mtime = datetime.datetime.fromtimestamp(os.lstat(link).st_mtime, datetime.timezone.utc)
    age = (now - mtime).total_seconds()
    parent = os.path.dirname(os.path.abspath(os.path.join(os.path.dirname(link), target)))
    releases = []
    try:
        releases = sorted((e for e in os.listdir(parent)), reverse=True)[:10]
    except OSError:
        pass
    current = os.path.basename(target.rstrip('/'))
    previous = next((r for r in releases if r < current), None)
    return {'release_link': link, 'target': target, 'changed_at': mtime.isoformat(), 'created_age_s': round(age, 1),
            'deployed_in_window': age <= window_s, 'previous_release': previous, 'releases': releases}


def evaluate_deploys(host, items, window, errors=None):
    """deploy.recent for a host's services: warn when one was deployed inside the window."""
    errors = errors or []
    in_window = [(svc, it) for svc, it in items if it.get('deployed_in_window')]
    restarts = [(svc, it) for svc, it in items if it.get('restarted_in_window')]
    evidence = {'window': window, 'deploys': [dict(it, service=svc) for svc, it in items], 'errors': dict(errors),
                'deploy_in_window': bool(in_window)}
    parts = []
    for svc, it in in_window:
        what = it.get('image') or it.get('target')
        digest = (it.get('digest') or it.get('image_id') or '')
        short = digest.split('@')[-1][:19] if digest else ''
        prev = it.get('previous_image') or it.get('previous_release')
        source = it.get('previous_image_source') if it.get('previous_image') else None
        parts.append('%s: %s%s %s %s ago, inside the %s window; previous %s%s' % (
            svc, what, ' (%s)' % short if short else '', 'rolled back to' if it.get('rollback') else 'deployed',
            timefmt.duration(it.get('created_age_s')), window, prev or 'unknown',
            ' (from %s)' % source if source else ''))
    status = 'warn' if in_window else 'ok'
    if errors:
        status = worst([status, 'unknown'])
    if not parts:
        latest = sorted(items, key=lambda x: x[1].get('created_age_s') or 0)
        if latest:
            svc, it = latest[0]
            parts.append('no deploy in the last %s; newest %s: %s deployed %s ago' % (
                window, svc, it.get('image') or it.get('target'), timefmt.duration(it.get('created_age_s'))))
        else:
            parts.append('no deployments found')
    for svc, it in restarts[:2]:
        parts.append('%s restarted %s ago (same container)' % (svc, timefmt.duration(it.get('started_age_s'))))
    for path, err in errors[:2]:
        parts.append('%s: %s' % (path, err))
    service = in_window[0][0] if in_window else (items[0][0] if len(items) == 1 else None)
    return finding('deploy.recent', host, service, status, '; '.join(parts), evidence)


_DPKG_RE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (install|upgrade|remove|purge) (\S+) (\S+) (\S+)')


def package_changes(path, since_epoch, max_bytes=2 * 1024 * 1024):
    """install/upgrade/remove lines of a dpkg.log since a time (dpkg logs local time)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode('utf-8', 'replace')
    for line in text.splitlines():
        match = _DPKG_RE.match(line)
        if not match:
            continue
        ts = datetime.datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S')
        epoch = ts.timestamp()  # naive: local time, as dpkg writes it
        if epoch >= since_epoch:
            out.append({'ts': match.group(1), 'action': match.group(2), 'package': match.group(3),
                        'from': match.group(4), 'to': match.group(5)})
    return out


def modified_files(paths, since_epoch, limit=50, depth=1):
    """Regular files under paths (to a small depth) modified since a time; cheap, capped."""
    found = []

    def scan(directory, level_left):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            if len(found) >= limit:
                return
            try:
                if entry.is_symlink():
                    continue
                if entry.is_file():
                    mtime = entry.stat().st_mtime
                    if mtime >= since_epoch:
                        found.append({'path': entry.path, 'mtime': datetime.datetime.fromtimestamp(
                            mtime, datetime.timezone.utc).isoformat()})
                elif entry.is_dir() and level_left > 0:
                    scan(entry.path, level_left - 1)
            except OSError:
                continue

    for path in paths or []:
        if os.path.isfile(path):
            mtime = os.stat(path).st_mtime
            if mtime >= since_epoch:
                found.append({'path': path, 'mtime': datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).isoformat()})
        else:
            scan(path, depth)
    return found[:limit]


def evaluate_host_changes(host, packages, files, window, watched):
    evidence = {'window': window, 'packages': packages, 'files': files, 'watched_paths': watched}
    if not packages and not files:
        return finding('host.changes', host, None, 'ok', 'no package or watched file changes in the last %s (%s)' % (
            window, ', '.join(watched) or 'nothing watched'), evidence)
    parts = []
    if packages:
        names = sorted({p['package'].split(':')[0] for p in packages})
        parts.append('%d package change%s in the last %s (%s%s)' % (
            len(packages), '' if len(packages) == 1 else 's', window, ', '.join(names[:5]), ', ...' if len(names) > 5 else ''))
    if files:
        parts.append('%d watched file%s modified (%s%s)' % (
            len(files), '' if len(files) == 1 else 's', ', '.join(f['path'] for f in files[:3]), ', ...' if len(files) > 3 else ''))
    return finding('host.changes', host, None, 'warn', '; '.join(parts), evidence)


HISTORY_SECONDS = 7 * 86400  # how far back engine events are asked for (the engine keeps fewer anyway)


SPEC = dict(
    report_host=dict(type='str', required=True),
    services=dict(type='list', elements='dict', default=[]),
    window=dict(type='str', default='15m'),
    host_changes=dict(type='bool', default=True),
    package_logs=dict(type='list', elements='path', default=['/var/log/dpkg.log']),
    watch_paths=dict(type='list', elements='path', default=['/etc']),
    docker_host=dict(type='str'),
)


def run(module):
    p = module.params
    window_s = window_seconds(module)
    host = p['report_host']
    now = utcnow()
    since = time.time() - window_s
    items, errors = [], []
    client = DockerClient(p['docker_host'])
    image_cache = {}
    created_cache = {}

    def created_of(image_id):
        if image_id not in created_cache:
            try:
                created_cache[image_id] = parse_docker_time(client.image(image_id).get('Created'))
            except DockerError:
                created_cache[image_id] = None
        return created_cache[image_id]

    for service in p['services']:
        if not isinstance(service, dict):
            continue
        deploy = service.get('deploy') or {}
        name = service.get('name') or 'unnamed'
        try:
            if deploy.get('type', 'docker') == 'docker' and deploy.get('container'):
                info = client.inspect(deploy['container'])
                ref = (info.get('Config') or {}).get('Image')
                image_info = client.image(info.get('Image'))
                repo = repo_of(ref)
                if repo not in image_cache:
                    image_cache[repo] = client.images(repo)
                try:  # the engine's record of what the container of this name ran before (bounded in-memory history)
                    history = client.image_history(deploy['container'], time.time() - HISTORY_SECONDS, time.time())
                except DockerError:
                    history = []
                items.append((name, deploy_item(deploy['container'], info, image_info, image_cache[repo], now,
                                                window_s, history, created_of)))
            elif deploy.get('release_link'):
                items.append((name, release_item(deploy['release_link'], now, window_s)))
        except (DockerError, OSError) as exc:
            errors.append((deploy.get('container') or deploy.get('release_link') or name, one_line(str(exc))))
    findings = []
    if items or errors:
        findings.append(evaluate_deploys(host, items, p['window'], errors))
    if p['host_changes']:
        packages = []
        for log in p['package_logs']:
            try:
                packages.extend(package_changes(log, since))
            except (OSError, ValueError):
                continue
        files = modified_files(p['watch_paths'], since)
        findings.append(evaluate_host_changes(host, packages, files, p['window'], p['watch_paths']))
    return dict(changed=False, findings=findings)
