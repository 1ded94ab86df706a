# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret values a play can see, for the callbacks (the timeline and the on-call console).

A callback gets no task variables: it asks the play's variable manager. PlaySecrets scans the
extra variables, the play's variables and the variables of at most `max_hosts` of its hosts
(each host once per run) with a SecretCollector (plugin_utils/incident/timeline.py: secret-looking
names, variables named by a `password_var`), templating each value with the scanned variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import SecretCollector

try:
    from ansible.template import Templar
except ImportError:  # pragma: no cover
    Templar = None


def native(value):
    """Plain Python types (2.19 hands tagged strings and lazy containers to callbacks)."""
    if isinstance(value, dict):
        return dict((str(k), native(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [native(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def resolver(loader, variables):
    """A callable templating one value with `variables` (the value unchanged without a loader)."""
    if Templar is None or loader is None:
        return lambda value: value
    templar = Templar(loader=loader, variables=variables)

    def resolve(value):
        return native(templar.template(value))
    return resolve


class PlaySecrets(object):
    """Secret literals visible to plays, scanned once per host and run."""

    def __init__(self, name_patterns=None, max_hosts=50):
        self.collector = SecretCollector(name_patterns=name_patterns)
        self.max_hosts = max(int(max_hosts), 1)
        self.scanned = set()

    def scan(self, play, on_host=None):
        """(literals, extra_vars) of a play; on_host(variables, resolve) is called for each host scanned now."""
        literals = set()
        try:
            vm = play.get_variable_manager()
        except Exception:  # pylint: disable=broad-except
            return literals, {}
        if vm is None:
            return literals, {}
        try:
            extra = native(dict(vm.extra_vars or {}))
        except Exception:  # pylint: disable=broad-except
            extra = {}
        loader = getattr(vm, '_loader', None)
        literals |= self.collector.collect(extra)
        try:
            play_vars = dict(play.get_vars() or {})
        except Exception:  # pylint: disable=broad-except
            play_vars = {}
        if play_vars:
            literals |= self.collector.collect(play_vars, resolve=resolver(loader, dict(extra, **play_vars)))
        try:
            hosts = vm._inventory.get_hosts(play.hosts)  # pylint: disable=protected-access
        except Exception:  # pylint: disable=broad-except
            hosts = []
        for host in hosts[:self.max_hosts]:
            if host.name in self.scanned:
                continue
            self.scanned.add(host.name)
            try:
                variables = vm.get_vars(play=play, host=host, include_hostvars=False)
            except Exception:  # pylint: disable=broad-except
                continue
            resolve = resolver(loader, variables)
            literals |= self.collector.collect(variables, resolve=resolve)
            if on_host is not None:
                on_host(variables, resolve)
        return literals, extra
