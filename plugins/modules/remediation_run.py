# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: remediation_run
short_description: Plan, approve, apply, record and verify one remediation in one task
version_added: 0.2.0
description:
  - The engine of the remediation roles C(pg_terminate) (kill_query), C(restart), C(redis_evict) (flush_keys) and
    C(tls_cert) (apply_cert), C(rollback), C(redis_maxmemory) (raise_maxmemory), C(disk_cleanup) (clean_disk),
    C(redis_kill_clients) (kill_clients).
    Action plugin. The controller
    decides and records. The action's modules run on the target host through the task's connection.
  - B(plan) runs the action's module in its read-only form (C(pg_sessions) with C(state=plan), C(docker_restart) in
    check mode, C(systemctl show), C(redis_evict), C(redis_maxmemory), C(disk_cleanup) or C(redis_clients) with
    C(state=plan), C(tls_cert_install) in check mode with the certificate served now read from the controller,
    C(docker_rollback) in check mode, or C(stat) and C(find) of a release symlink) and records the C(plan) event.
  - A plan that cannot help refuses the apply before the gate (a certificate pair that fails a check, keys that
    cannot free enough, a maxmemory increase that does not fit in the host's available memory, a disk cleanup that
    cannot get below the limit, no previous image or release or the previous one running, no connection selected).
    A clean_disk run first checks the paths against the service's C(disk_paths) and refuses before the plan.
  - B(gate) is the decision of M(sre.incident_response.remediation_gate) (approval, four eyes, budget, the intent
    under the incident's lock).
  - B(apply) runs the module once, with what the plan saw. Those are the planned PIDs, the container's start
    time, or the rollback's target image or release. Then the C(action) event settles the intent (C(done), or
    C(failed) when the apply fails).
  - B(verify) judges the action's own symptom. That is the re-listed sessions and the PostgreSQL findings of
    the C(verify_checks) of O(options), or the container running and its health endpoints, or the certificate the
    TLS endpoint serves and the triage's TLS check (C(net.tls_expiry)). For rollback, the
    container (or the link and the unit) on the target, health, the critical paths without 5xx and the C(app_logs)
    checks on the log lines since the switch. For clean_disk, the planned files gone, nothing else touched, each file
    system below C(max_used_percent) and C(host.disk). It also re-runs the symptom checks
    of the hypothesis (the gate's C(evidence)) with the probe areas and the same settings and connection options
    as triage, TLS included. The C(verify) event follows. When the own symptom is gone but the services are still
    unhealthy, the action is VERIFIED and the result names the next action of the diagnosis (C(next_action)).
  - A symptom check of another host (a backend restart that frees the database's connections) is left to
    O(stage=verify), delegated to that host (C(verify_on)).
  - The result's C(msg) holds the plan, the decision and the verification, printed by any callback. A refusal, a
    failed apply or a failed verification fails the task once it is recorded, with C(failure) in C(msg).
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
options:
  action:
    description: The remediation action.
    type: str
    required: true
    choices: [kill_query, restart, flush_keys, apply_cert, rollback, raise_maxmemory, clean_disk, kill_clients]
  service:
    description: The service (C(incident_services) name) the action targets; scopes the budget.
    type: str
    default: ''
  apply:
    description: Apply (true) or only plan (false).
    type: bool
    default: false
  approved_by:
    description: Who approved the change (for AWX workflows, the approval node's approver).
    type: str
    default: ''
  approval_reason:
    description: Why the change is approved.
    type: str
    default: ''
  change_ref:
    description: A change or ticket reference, accepted instead of O(approval_reason).
    type: str
    default: ''
  launcher:
    description: Who launched the run; empty means detect it.
    type: str
    default: ''
  allow_self_approval:
    description: Policy switch that lifts the four-eyes rule for destructive classes.
    type: bool
    default: false
  budget:
    description: Maximum number of changing actions of this kind per incident and service; default per action.
    type: int
  lock_timeout:
    description: Seconds an apply waits for other runs acting on the same incident (their open intents) and for the lock.
    type: int
    default: 300
  incident_id:
    description: The incident whose timeline holds the budget; defaults to the C(incident_id) variable.
    type: str
    default: ''
  incident_dir:
    description: Root of the incident directories; defaults to the directory of the C(incident_path) fact, else the C(incident_dir) variable, else C(incidents).
    type: path
  options:
    description:
      - The role's settings for the action.
      - For kill_query, the pg_sessions filters (C(roles), C(databases), C(states), C(min_age), C(application_names),
        C(exclude_application_names), C(pids), C(include_blockers), C(allow_superuser)), C(grace_period),
        C(verify_health), C(health_retries) and C(verify_checks).
      - For restart, C(stop_timeout), C(health_retries) and C(force).
      - For flush_keys, the redis_evict settings (C(patterns), C(protected_patterns), C(batch_size), C(max_keys),
        C(max_used_percent)), C(allow_partial) (apply even when the plan says the keys cannot free enough; otherwise
        the apply is refused before the gate), C(verify_health), C(health_retries) and C(verify_checks).
      - For apply_cert, the tls_cert settings (C(src), C(key_src) - both empty looks for the renewed pair in the
        endpoint's C(renewal_dir) on the host -, C(dest), C(key_dest), C(hostnames), C(endpoint), C(reload_command),
        C(min_days_valid), C(backup_dir)), C(allow_older) (install a certificate that is not newer than the one in
        place; otherwise the apply is refused before the gate), C(health_retries) and C(verify_checks).
      - For rollback, C(image) (Docker target C(repo:tag)), C(release) (release-symlink target directory),
        C(health_timeout), C(keep_previous), C(verify_critical_paths), C(verify_checks) (the C(app_logs) checks
        judged on the log lines since the switch) and C(health_retries) (0 means C(health_timeout) / 2).
      - For raise_maxmemory, the redis_maxmemory settings (C(target_used_percent), C(max_free_fraction), C(persist)),
        C(verify_health), C(health_retries) and C(verify_checks). One raise per approval; the verification needs
        the planned C(maxmemory) in effect.
      - For clean_disk, the disk_cleanup settings (C(paths), within the service's C(disk_paths); C(older_than_days),
        C(rotated_patterns), C(temp_patterns), C(active_patterns), C(truncate_active), C(truncate_over)),
        C(max_used_percent), C(allow_partial) (apply even when the plan cannot get each file system below
        C(max_used_percent); otherwise the apply is refused before the gate), C(verify_health), C(health_retries) and
        C(verify_checks).
      - For kill_clients, the redis_clients selectors (C(names), C(processes), C(pids); at least one, never every
        client), C(min_idle), C(reset_stats), C(verify_health), C(health_retries) and C(verify_checks). A plan that
        selects no connection refuses the apply before the gate.
    type: dict
    default: {}
  stage:
    description: C(run) for plan to verify; C(verify) settles a verification whose symptom checks are on another host.
    type: str
    default: run
    choices: [run, verify]
  previous:
    description: With O(stage=verify), the registered result of the C(run) stage.
    type: dict
    default: {}
  verify_host:
    description: With O(stage=verify), the host the task is delegated to (the C(verify_on) of the run stage).
    type: str
    default: ''
attributes:
  check_mode:
    support: full
    details: In check mode the run only plans. The plan reads and changes nothing.
  diff_mode:
    support: none
notes:
  - Action plugin; the decisions and the incident files are on the controller.
'''

EXAMPLES = r'''
- name: Kill the blocking sessions of db (plan only without apply)
  sre.incident_response.remediation_run:
    action: kill_query
    service: db
    apply: "{{ remediation_apply }}"
    approved_by: "{{ remediation_approved_by }}"
    approval_reason: "{{ remediation_approval_reason }}"
    options:
      pids: [4242]
      min_age: 10
  register: __run
'''

RETURN = r'''
lines:
  description: What the console prints. That is the plan, the mode, the apply and the verification (with the next action).
  returned: always
  type: list
  elements: str
  sample: ["PLAN kill_query on db (app-db):", "pid 4242 user=app ...", "mode: plan only"]
plan:
  description: The plan's data (the targets and filters, or the container or unit before the restart).
  returned: always
  type: dict
gate:
  description: The decision of the gate (see M(sre.incident_response.remediation_gate)).
  returned: always
  type: dict
failure:
  description: Empty, or why the task failed (refused, apply failed, verification failed).
  returned: always
  type: str
  sample: ""
verified:
  description: The verification's outcome; null when nothing was applied.
  returned: always
  type: bool
next_action:
  description: The next action of the diagnosis when the action worked but the services are still unhealthy.
  returned: when verified
  type: str
  sample: ansible-playbook playbooks/remediate.yml -e remediation_action=restart -e service=redis
verify_on:
  description: The host whose symptom checks the O(stage=verify) task re-runs; absent when all ran here.
  returned: when a symptom check is on another host
  type: str
'''
