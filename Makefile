# vpskit: the commands users and CI rely on.
PY := .venv/bin/python
DISTRO ?= ubuntu2404

.PHONY: test lint unit e2e demo demo-clean bench setup docs

# Everything: set up this machine (packages, dockerd, venv, images), lint, then every test.
test: setup lint
	./scripts/test.sh

# Style: ruff's lint rules and its formatting (settings in pyproject.toml); `ruff format .` fixes the latter.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

setup:
	./scripts/test-host-setup.sh

unit: setup
	.venv/bin/pytest -ra tests/unit

e2e: setup
	./scripts/test.sh --e2e

# docs/config.md, the config reference, generated from the field declarations in operations/config/.
docs:
	$(PY) -m operations.config.reference

# Deploy examples/vpskit.toml into a systemd container and leave it running: vpskit-demo for
# Ubuntu 24.04, vpskit-demo-$(DISTRO) for the others (or $VPSKIT_DEMO_NAME), each with its own folder.
demo:
	./scripts/test-host-setup.sh $(DISTRO)
	$(PY) -m tests.demo $(DISTRO)

demo-clean:
	$(PY) -m tests.demo --remove $(DISTRO)

# Deploy speed, re-run cost, throughput and an Ansible baseline on fresh targets (about 15 min on 2 cores).
# BENCH= picks phases (comma-separated: first,rerun,change,baseline,served,scaling,curve; default all
# but curve), e.g. `make bench BENCH=rerun,scaling`; DISTRO= the target (ubuntu2404, debian13, ...).
# bench/results.json keeps the figures of earlier runs that this one did not measure.
BENCH ?=
bench:
	./scripts/test-host-setup.sh $(DISTRO)
	.venv/bin/pip install -q -r bench/requirements.txt
	BENCH_PHASES=$(BENCH) $(PY) -m bench.run $(DISTRO)
