#!/usr/bin/env bash
# make demo: one real incident, end to end, on the incident lab (started by `make lab-up` before this runs).
# Every step prints the command it runs, so you can repeat it by hand (with .venv/bin on your PATH and
# ANSIBLE_CONFIG=ansible.cfg, as the Makefile sets them).
set -euo pipefail
cd "$(dirname "$0")/.."
INV=inventory/lab
STEP=0

quote() {  # a word as you would type it in a shell
  case "$1" in
    *[!A-Za-z0-9_./=:@,+-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
  esac
}

step() {  # step "what" command...
  STEP=$((STEP + 1))
  echo
  echo "### ${STEP}. $1"
  shift
  printf '$'
  for word in "$@"; do printf ' %s' "$(quote "$word")"; done
  echo
  "$@"
}

step "Inject a fault into the lab: a bad release of the backend (app-backend:1.1.0) is deployed" \
  ansible-playbook -i "$INV" tests/lab/playbooks/fault.yml -e lab_fault=bad_deploy -e lab_fault_state=present

incidents() { find incidents -mindepth 1 -maxdepth 1 -name 'INC-*' -printf '%f\n' 2>/dev/null | sort; }
before=$(incidents || true)
step "Triage it (the on-call console: phases, findings not ok, diagnosis, the next command)" \
  ansible-playbook -i "$INV" playbooks/triage.yml
ID=$(comm -13 <(echo "$before") <(incidents) | tail -1)
if [ -z "$ID" ]; then
  echo "demo: triage declared no new incident under incidents/" >&2
  exit 1
fi
echo "demo: the incident is $ID"

step "Show the rollback plan (changes nothing)" \
  ansible-playbook -i "$INV" playbooks/remediate.yml -e incident_id="$ID" -e remediation_action=rollback -e service=backend

step "Apply it with a (demo) approval; the remediation verifies the backend afterwards" \
  ansible-playbook -i "$INV" playbooks/remediate.yml -e incident_id="$ID" -e remediation_action=rollback -e service=backend \
  -e apply=true -e approved_by=demo-approver -e "approval_reason=make demo: errors started at the 1.1.0 deploy"

step "Resolve: the final post-mortem and report.html" \
  ansible-playbook -i "$INV" playbooks/resolve.yml -e incident_id="$ID" -e resolved_by=demo \
  -e "root_cause=release 1.1.0 of the backend fails to serialize orders (KeyError on amount)"

step "Heal the lab (nothing left to do after the rollback; this makes sure)" \
  ansible-playbook -i "$INV" tests/lab/playbooks/fault.yml -e lab_fault=bad_deploy -e lab_fault_state=absent

dir="$PWD/incidents/$ID"
echo
echo "Incident $ID"
echo "  post-mortem: $(find "$dir" -maxdepth 1 -name 'postmortem-*.md' | sort | tail -1)"
echo "  report:      $dir/report.html"
echo "  everything:  $dir/"
