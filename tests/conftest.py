"""Shared pytest setup: import paths for the collection's plugins (unit tests use them without Ansible)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

import pytest  # noqa: E402

UNIT = os.path.join(ROOT, 'tests', 'unit') + os.sep
# Unit-test modules of the probes: every finding they build must conform to the findings contract.
PROBE_TEST_MODULES = ('test_probe_health_net_changes', 'test_probe_logs', 'test_probe_pg_redis', 'test_prom_trend',
                      'test_first_action_fixes')


@pytest.fixture(autouse=True)
def findings_contract(request):
    """Unit tests run with the findings contract enforced (plugins/module_utils/findings.py).

    STRICT: the diagnosis and the classification raise ContractError when they read an evidence key the
    contract does not declare for the check. In the probes' unit tests, every finding make_finding builds
    is validated once the test is over (after later additions to its evidence, e.g. Redis' top prefixes).
    """
    if not str(request.path).startswith(UNIT):
        yield
        return
    from ansible_collections.sre.incident_response.plugins.module_utils import findings
    module = request.node.module.__name__.rsplit('.', 1)[-1]
    findings.STRICT = True
    try:
        with findings.recording() as built:
            yield
    finally:
        findings.STRICT = False
    if module in PROBE_TEST_MODULES:
        problems = [p for item in built for p in findings.validate(item)]
        assert not problems, 'findings outside the contract: %s' % '; '.join(problems)
