# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deprecated name of ``docker_api`` (the collection's one Docker client), kept so that existing imports work.

Import from ``plugins.module_utils.docker_api``; this alias goes away in a later release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (  # noqa: F401 pylint: disable=unused-import
    API_VERSION, DEFAULT_SOCKET, DockerClient, DockerError, demux, safe_inspect_summary, socket_path)
