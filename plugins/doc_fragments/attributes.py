# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The attributes every module of the collection declares; each module adds its own `support` and `details`.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Runs in check mode and reports what would change without changing it.
  diff_mode:
    description: With C(--diff), returns what changed (or would change, in check mode).
  platform:
    description: Where the module runs. Modules without code of their own are actions and run on the controller.
    support: full
    platforms: posix
'''

    # For the modules that declare `idempotent` (the ones that change something).
    IDEMPOTENT = r'''
options: {}
attributes:
  idempotent:
    description: A second run with the same options changes nothing more and reports C(changed=false).
'''

    # Members of the action groups of meta/runtime.yml (set shared options once with module_defaults).
    ACTIONGROUP_POSTGRESQL = r'''
options: {}
attributes:
  action_group:
    description: Set its connection options for every member at once with C(module_defaults) and
      C(group/sre.incident_response.postgresql).
    support: full
    membership:
      - sre.incident_response.postgresql
'''

    ACTIONGROUP_REDIS = r'''
options: {}
attributes:
  action_group:
    description: Set its connection options for every member at once with C(module_defaults) and
      C(group/sre.incident_response.redis).
    support: full
    membership:
      - sre.incident_response.redis
'''

    ACTIONGROUP_DOCKER = r'''
options: {}
attributes:
  action_group:
    description: Set C(docker_host) for every member at once with C(module_defaults) and
      C(group/sre.incident_response.docker).
    support: full
    membership:
      - sre.incident_response.docker
'''
