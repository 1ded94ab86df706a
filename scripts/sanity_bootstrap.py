#!/usr/bin/env python
"""Let ``ansible-test sanity --venv`` build its venvs offline.

ansible-test bootstraps pip in each new venv with a get-pip script that it downloads once and caches as
~/.ansible/test/cache/get_pip_<version>.py; when that file exists it is used and nothing is downloaded. This
writes a stand-in there that installs the pip bundled with Python (``ensurepip``); ansible-test then installs
each test's requirements with that pip, through the machine's own pip configuration. An existing file is kept.
"""

import os
import re
import sys

import ansible_test

STAND_IN = '''\
"""Offline stand-in for get-pip.py, written by sre.incident_response scripts/sanity_bootstrap.py."""
import subprocess
import sys

sys.exit(subprocess.call([sys.executable, '-m', 'ensurepip', '--default-pip']))
'''


def pip_version():
    """The pip version this ansible-test bootstraps (python_requirements.get_venv_packages)."""
    path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(path, encoding='utf-8') as handle:
        found = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", handle.read())
    if not found:
        sys.exit('sanity_bootstrap: cannot find the pip version in %s' % path)
    return found.group(1)


def main():
    """Write the stand-in unless a bootstrap script is already cached."""
    cache = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % pip_version().replace('.', '_'))
    if os.path.exists(cache):
        return
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache + '.tmp', 'w', encoding='utf-8') as handle:
        handle.write(STAND_IN)
    os.replace(cache + '.tmp', cache)
    print('sanity_bootstrap: wrote %s' % cache)


if __name__ == '__main__':
    main()
