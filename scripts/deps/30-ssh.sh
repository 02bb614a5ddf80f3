#!/usr/bin/env bash
# Test dependencies of the SSH transport (provider/ssh): a real OpenSSH server (sshd on loopback) and the
# OpenSSH client tools (ssh-keygen for test keys, ssh-agent/ssh-add for agent auth).
# Idempotent and fast when everything is already there.
set -euo pipefail
if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null && command -v ssh-agent >/dev/null \
   && command -v ssh-add >/dev/null && command -v sudo >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# sudo: the non-root-user tests run commands through `sudo -n`.
$SUDO apt-get install -y -q --no-install-recommends openssh-server openssh-client sudo
