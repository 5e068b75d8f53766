#!/usr/bin/env bash
# Installs what the loader tests (tests/loaders.rs) run the documented snippets with: pandas for
# `python3` (from PyPI) and R's `Rscript` (Debian package `r-base-core`), unless they are already
# there, so a second run returns at once. CI calls this before `cargo test`; the R half needs
# root (or sudo) on Debian or Ubuntu.
#
# Without them the loader tests print a notice and pass, unless PROGLAB_REQUIRE_LOADERS=1, which
# CI sets so that a missing loader fails the build.
set -euo pipefail

python="${PROGLAB_PYTHON:-python3}"
rscript="${PROGLAB_RSCRIPT:-Rscript}"

if ! command -v "$python" >/dev/null; then
    echo "install-loaders: no $python here; install Python 3 first" >&2
    exit 1
fi

if "$python" -c 'import pandas' 2>/dev/null; then
    echo "install-loaders: pandas $("$python" -c 'import pandas; print(pandas.__version__)') already installed"
else
    "$python" -m pip install --quiet pandas
    echo "install-loaders: installed pandas $("$python" -c 'import pandas; print(pandas.__version__)')"
fi

if command -v "$rscript" >/dev/null; then
    echo "install-loaders: $("$rscript" --version 2>&1 | head -n1) already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "install-loaders: no apt-get here; install R (Rscript) by hand" >&2
    exit 1
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        sudo="sudo"
    else
        echo "install-loaders: run as root (apt-get needs it)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# r-base-core alone: read.csv is in base R's utils, so no recommended packages are needed.
$sudo apt-get install -y -q --no-install-recommends r-base-core

"$rscript" --version 2>&1 | head -n1
