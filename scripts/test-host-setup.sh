#!/usr/bin/env bash
# Prepare this machine to run vpskit's tests: system packages, a Docker engine, the venv.
# Usage: test-host-setup.sh [DISTRO...]   (default: every test image)
# Safe to run again: it only does what is missing. Needs root (or sudo) for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
command -v docker >/dev/null || need+=(docker.io)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "==> starting dockerd"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker
  else
    $SUDO sh -c 'nohup dockerd >/var/log/vpskit-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
    sleep 1
  done
  docker version --format 'docker engine {{.Server.Version}}' || { echo "dockerd did not start" >&2; exit 1; }
fi

if [ ! -x .venv/bin/pytest ] || [ setup.cfg -nt .venv/.installed ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

echo "==> building test images (reused when their recipe is unchanged)"
.venv/bin/python -m tests.images "$@"

# A cache for the targets' .deb and PyPI downloads (tests/pkgcache.py); without it they download
# from the archives, so it never fails the setup.
echo "==> package cache for the test targets (reused when running)"
.venv/bin/python -m tests.pkgcache || echo "==> package cache not available (tests.pkgcache exited $?): targets download from the archives"
