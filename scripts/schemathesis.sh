#!/usr/bin/env bash
# Property-based tests of the participant API from its OpenAPI document (schemathesis, from PyPI),
# against a real `proglab serve` on a fresh SQLite database. Fails on any 5xx, any status or body
# the document does not list, and any operation that never answered 2xx.
#
# Usage: scripts/schemathesis.sh [PROGLAB_BINARY] [MAX_EXAMPLES]
# SCHEMATHESIS_EXTRA adds options to `schemathesis run` (for example `--phases examples`).
# The served experiment is the bundled one with no skip delay, so that a skip can succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-target/debug/proglab}"
if [[ $# -eq 0 ]]; then
    cargo build --quiet -p server --bin proglab
fi
max_examples="${2:-40}"

if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cp server/experiments/tutorial-levels.json "$work/"
sed 's/^skip_delay_seconds = .*/skip_delay_seconds = 0/' server/experiments/correa2025.toml >"$work/correa2025.toml"
grep -q '^skip_delay_seconds = 0$' "$work/correa2025.toml"

"$binary" serve --database-url "sqlite://$work/api.db" --listen 127.0.0.1:0 \
    --experiment "$work/correa2025.toml" >"$work/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 1 100); do
    base="$(sed -n 's/^proglab: listening on //p' "$work/server.log" | head -n 1)"
    [[ -n "$base" ]] && break
    sleep 0.1
done
if [[ -z "$base" ]]; then
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

export PROGLAB_API_BASE="$base"
export PROGLAB_STATUS_LOG="$work/statuses.jsonl"
export SCHEMATHESIS_HOOKS=scripts/schemathesis/hooks.py
schemathesis run "$base/api/v1/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --workers 2 \
    --seed 1 ${SCHEMATHESIS_EXTRA:-} \
    --suppress-health-check all

python3 scripts/schemathesis/every_operation_2xx.py "$base/api/v1/openapi.json" "$PROGLAB_STATUS_LOG"
if grep -q 'panicked' "$work/server.log"; then
    echo "the server panicked:" >&2
    grep -n 'panicked' "$work/server.log" >&2
    exit 1
fi
