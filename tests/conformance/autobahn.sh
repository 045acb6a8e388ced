#!/usr/bin/env bash
# Autobahn WebSocket conformance (the kosoku runner from PyPI) against the echo
# endpoint, which runs on the same mio loop, connection and framing code as the
# chat. Fails on any FAILED or NON-STRICT case (all 298 non-informational cases
# are OK today); kosoku's reports go to tests/artifacts/autobahn/.
# 12.* and 13.* (permessage-deflate) run in autobahn-deflate.sh with wstest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
out="$here/../artifacts/autobahn"
rm -rf "$out" && mkdir -p "$out"
trap stop_picochat EXIT
start_picochat "$out/server.log" --echo-path /echo --log-level warn
kosoku -m fuzzingclient -x '12.*' -x '13.*' -p 2 -o "$out" "ws://$PICO_ADDR/echo" > "$out/kosoku.log" 2>&1 || true
python3 - "$out/index.json" <<'PY'
import collections, json, sys
cases = next(iter(json.load(open(sys.argv[1])).values()))
counts = collections.Counter(c["behavior"] for c in cases.values())
bad = sorted(k for k, c in cases.items()
             if c["behavior"] in ("FAILED", "NON-STRICT") or c["behaviorClose"] in ("FAILED", "NON-STRICT"))
print("autobahn: %d cases: %s" % (len(cases), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
for k, c in sorted(cases.items()):
    if c["behavior"] != "OK":
        print("  %s: %s / close %s" % (k, c["behavior"], c["behaviorClose"]))
if bad or len(cases) < 290:
    sys.exit("autobahn: FAILED or NON-STRICT cases: %s" % (", ".join(bad) or "too few cases ran"))
PY
kill -0 "$PICO_PID" || { echo "picochat died during the suite" >&2; exit 1; }
