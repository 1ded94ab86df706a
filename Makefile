# sre.incident_response — developer and demo entry points.
# `make demo` and `make test` are the two commands of README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
COLL := .collections/ansible_collections/sre/incident_response
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_LOCALHOST_WARNING := false
export ANSIBLE_INVENTORY_UNPARSED_WARNING := false
LAB_INV := inventory/lab
FLEET_INV := inventory/fleet
# LAB=fleet sends fault/heal to the fleet lab (tests/lab/fleet) instead of the Docker lab
LAB ?= docker
PLAYBOOK := $(BIN)/ansible-playbook

.PHONY: help setup system venv demo lab-up lab-down alerts-up alerts-down fleet-up fleet-down fault heal test test-full test-unit test-integration test-resolution test-fleet molecule lint sanity sanity-bootstrap bench build clean

help:
	@echo "make demo      set up, start the incident lab, then one incident end to end: bad_deploy, triage, rollback, resolve, report"
	@echo "make test      lint, unit and integration tests (starts both labs; the fleet on a subset)"
	@echo "make test-full everything, every fleet fault and both molecule scenarios"
	@echo "make setup     system packages, .venv, collection link"
	@echo "make lab-up | lab-down | fault NAME=x | heal NAME=x | lint | sanity | bench | build"
	@echo "make sanity    ansible-test sanity, all tests, --venv, on a copy (README.md, Development); make lint runs it"
	@echo "make alerts-up | alerts-down   Prometheus, Alertmanager, exporters and the rulebook on the lab (docs/alerts.md)"
	@echo "make fleet-up | fleet-down | fault NAME=x LAB=fleet | heal NAME=x LAB=fleet   (the SSH + systemd lab)"

setup: system venv $(COLL)

system:
	@scripts/setup-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(COLL):
	@mkdir -p $(dir $(COLL))
	@ln -sfn ../../.. $(COLL)

lab-up: setup
	$(PLAYBOOK) -i $(LAB_INV) tests/lab/playbooks/up.yml

lab-down: setup
	$(PLAYBOOK) -i $(LAB_INV) tests/lab/playbooks/down.yml

alerts-up: lab-up
	$(PLAYBOOK) -i $(LAB_INV) tests/lab/playbooks/alerts.yml -e lab_alerts_state=present

alerts-down: setup
	$(PLAYBOOK) -i $(LAB_INV) tests/lab/playbooks/alerts.yml -e lab_alerts_state=absent

fleet-up: setup
	$(PLAYBOOK) -i $(FLEET_INV) tests/lab/fleet/playbooks/up.yml

fleet-down: setup
	$(PLAYBOOK) -i $(FLEET_INV) tests/lab/fleet/playbooks/down.yml

FAULT_PLAY = $(if $(filter fleet,$(LAB)),-i $(FLEET_INV) tests/lab/fleet/playbooks/fault.yml,-i $(LAB_INV) tests/lab/playbooks/fault.yml)

fault: setup
	@test -n "$(NAME)" || { echo "usage: make fault NAME=<fault> [LAB=fleet]  (see docs/lab.md)"; exit 2; }
	$(PLAYBOOK) $(FAULT_PLAY) -e lab_fault=$(NAME) -e lab_fault_state=present

heal: setup
	@test -n "$(NAME)" || { echo "usage: make heal NAME=<fault> [LAB=fleet]"; exit 2; }
	$(PLAYBOOK) $(FAULT_PLAY) -e lab_fault=$(NAME) -e lab_fault_state=absent

demo: lab-up
	@scripts/demo.sh

lint: setup sanity-bootstrap
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q
	$(MAKE) sanity

# ansible-test sanity --venv as Galaxy / Automation Hub reviewers run it, every test, on a copy laid out as
# ansible_collections/sre/incident_response (scripts/sanity.sh). Its venvs are cached under ~/.ansible/test.
# SANITY_ARGS="--test pylint" runs one test.
SANITY_ARGS ?=
sanity: setup sanity-bootstrap
	scripts/sanity.sh $(SANITY_ARGS)

# ansible-test bootstraps pip in each venv with a get-pip script it caches in ~/.ansible/test/cache; this
# writes one there that uses Python's own ensurepip, so --venv works offline (the machine's pip config does the rest).
sanity-bootstrap: setup
	$(BIN)/python scripts/sanity_bootstrap.py

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: lab-up
	$(BIN)/pytest -q tests/integration

# Every lab fault: inject, triage, apply the printed first action, investigate, heal (~25 min).
test-resolution: lab-up
	RESOLUTION_FAULTS=all $(BIN)/pytest -q -s tests/integration/test_resolution.py

# make test runs both labs: the Docker lab, and the fleet lab (SSH + systemd) on a subset of its faults;
# tests marked fleet_full and the fleet molecule scenario run in make test-full (docs/lab.md).
PYTEST_MARK ?= -m 'not fleet_full'
MOLECULE_SCENARIOS ?= --all

test: setup
	$(MAKE) lint
	$(MAKE) lab-up
	SRE_SANITY_RAN=1 $(BIN)/pytest -q -p no:cacheprovider -ra $(PYTEST_MARK) tests/unit tests/integration
	$(MAKE) molecule MOLECULE_SCENARIOS="$(if $(PYTEST_MARK),-s default,--all)"

test-full: setup
	$(MAKE) test PYTEST_MARK=

test-fleet: fleet-up
	$(BIN)/pytest -q -p no:cacheprovider -ra tests/integration/test_fleet_triage.py tests/integration/test_fleet_remediate.py

molecule: setup
	$(BIN)/molecule test $(MOLECULE_SCENARIOS)

# Speed against the lab in one run (docs/lab.md "Benchmark"): triage vs the practice's shell commands,
# investigate, 100 hosts, and over SSH when the fleet lab is up. e.g. BENCH_ARGS="--runs 3 --only triage"
BENCH_ARGS ?=
bench: lab-up
	$(BIN)/python tests/bench/bench.py $(BENCH_ARGS)

build: setup
	$(BIN)/ansible-galaxy collection build --force --output-path build/

clean:
	rm -rf build/ incidents/ tests/output/
