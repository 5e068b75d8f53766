#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages `chromium` and `chromium-driver`)
# for the browser tests (tests/browser), unless both are already there. CI calls this before
# `cargo test`; run it as root (or with sudo) on Debian or Ubuntu.
#
# The browser tests look for /usr/bin/chromium and /usr/bin/chromedriver (override with
# PROGLAB_CHROMIUM and PROGLAB_CHROMEDRIVER). Without them they print a notice and pass, unless
# PROGLAB_REQUIRE_BROWSER=1, which CI sets so that a missing browser fails the build.
set -euo pipefail

chromium="${PROGLAB_CHROMIUM:-/usr/bin/chromium}"
chromedriver="${PROGLAB_CHROMEDRIVER:-/usr/bin/chromedriver}"

if [[ -x "$chromium" && -x "$chromedriver" ]]; then
    echo "install-browser: $("$chromium" --version 2>/dev/null | head -n1) and $("$chromedriver" --version | head -n1) already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "install-browser: no apt-get here; install Chromium and ChromeDriver by hand" >&2
    exit 1
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "install-browser: run as root (apt-get needs it)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# fonts-dejavu-core: a font for page text, so screenshots do not depend on what else is installed.
$sudo apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core

"$chromium" --version 2>/dev/null | head -n1
"$chromedriver" --version | head -n1
