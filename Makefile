# vpskit: the commands users and CI rely on.
PY := .venv/bin/python
DISTRO ?= ubuntu2404

.PHONY: test unit e2e demo demo-clean bench setup

# Everything: set up this machine (packages, dockerd, venv, images), then every test.
test: setup
	./scripts/test.sh

setup:
	./scripts/test-host-setup.sh

unit: setup
	.venv/bin/pytest -ra tests/unit

e2e: setup
	./scripts/test.sh tests/e2e

# Deploy examples/vpskit.toml into a systemd container and leave it running: vpskit-demo for
# Ubuntu 24.04, vpskit-demo-$(DISTRO) for the others (or $VPSKIT_DEMO_NAME), each with its own folder.
demo:
	./scripts/test-host-setup.sh $(DISTRO)
	$(PY) -m tests.demo $(DISTRO)

demo-clean:
	$(PY) -m tests.demo --remove $(DISTRO)

# Deploy speed, re-run cost, throughput and an Ansible baseline on fresh targets (about 15 min on 2 cores).
bench: setup
	.venv/bin/pip install -q -r bench/requirements.txt
	$(PY) -m bench.run
