#!/usr/bin/env bash
# Installs what the deployment test (tests/deploy.rs) starts for real: Caddy (Debian package
# `caddy`) and systemd-analyze (package `systemd`), unless they are already there. The package's
# own Caddy service is stopped: the test runs its own instance on free ports.
set -euo pipefail

missing=()
[[ -x /usr/bin/caddy ]] || missing+=(caddy)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deploy-tools: $(caddy version | head -n1) and systemd-analyze already installed"
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
        echo "install-deploy-tools: run as root (apt-get needs it)" >&2
        exit 1
    fi
fi
echo "install-deploy-tools: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# Where an init system started the packaged Caddy, stop it; the tests need no system-wide one.
if command -v systemctl >/dev/null && systemctl is-active --quiet caddy 2>/dev/null; then
    $sudo systemctl disable --now caddy >/dev/null 2>&1 || true
fi
caddy version
