"""Checks that every operation of the OpenAPI document answered 2xx at least once in a
schemathesis run, from the statuses the hooks recorded; and that the document has no `default`
responses (each status is listed on its own)."""

import collections
import json
import sys
import urllib.parse
import urllib.request

document_url, status_log = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(document_url) as response:
    document = json.load(response)
    document_status = response.status

operations, defaults = [], []
for path, methods in document["paths"].items():
    for method, operation in methods.items():
        name = f"{method.upper()} {path}"
        operations.append(name)
        if "default" in operation.get("responses", {}):
            defaults.append(name)

seen = collections.defaultdict(collections.Counter)
with open(status_log) as f:
    for line in f:
        record = json.loads(line)
        seen[record["operation"]][record["status"]] += 1

# Schemathesis does not call the operation that serves the document it was loaded from; this
# script's own fetch of it above is that operation's call.
seen[f"GET {urllib.parse.urlparse(document_url).path}"][document_status] += 1

missing = [name for name in operations if not any(200 <= s < 300 for s in seen[name])]
for name in operations:
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(seen[name].items()))
    print(f"{name:50} {counts}")
if defaults:
    print(f"operations with a `default` response: {defaults}", file=sys.stderr)
if missing:
    print(f"operations that never answered 2xx: {missing}", file=sys.stderr)
if defaults or missing:
    sys.exit(1)
print(f"every one of {len(operations)} operations answered 2xx at least once")
