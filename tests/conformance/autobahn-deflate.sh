#!/usr/bin/env bash
# Autobahn cases 12.* and 13.* (permessage-deflate) against the echo endpoint,
# with the original wstest (autobahntestsuite 25.10.1 under CPython 2.7.18 from
# pyenv). kosoku, which runs cases 1-11 in autobahn.sh, errors in its own code
# on some compression cases ("Strings must be encoded before hashing"), so the
# reference implementation runs these. Fails on any FAILED or NON-STRICT case
# or an unclean close. UNIMPLEMENTED is accepted only for 13.3.* and 13.5.*:
# their offers ask for a 9-bit server window, which picochat declines (its
# compressor uses 15 bits; RFC 7692 lets a server decline), going on uncompressed.
# Reports go to tests/artifacts/autobahn-deflate/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
out="$here/../artifacts/autobahn-deflate"
rm -rf "$out" && mkdir -p "$out"

py27="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/2.7.18/bin/python"
[ -x "$py27" ] || { echo "autobahn-deflate: CPython 2.7.18 under pyenv is needed ($py27)" >&2; exit 1; }
wstest="$(dirname "$py27")/wstest"
if [ ! -x "$wstest" ]; then
  "$py27" -m pip install --quiet --disable-pip-version-check 'autobahntestsuite==25.10.1' 2>&1 \
    | grep -v -e DEPRECATION -e 'pip version' || true
fi

trap stop_picochat EXIT
start_picochat "$out/server.log" --echo-path /echo --log-level warn
cat > "$out/spec.json" <<JSON
{"outdir": "$out", "servers": [{"agent": "picochat", "url": "ws://$PICO_ADDR/echo"}],
 "cases": ["12.*", "13.*"], "exclude-cases": [], "exclude-agent-cases": {}}
JSON
(cd "$out" && "$wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || true
python3 - "$out/index.json" <<'PY'
import collections, fnmatch, json, sys
cases = json.load(open(sys.argv[1]))["picochat"]
counts = collections.Counter(c["behavior"] for c in cases.values())
print("autobahn 12.* and 13.*: %d cases: %s" % (len(cases), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
declined = lambda k: fnmatch.fnmatch(k, "13.3.*") or fnmatch.fnmatch(k, "13.5.*")
bad = sorted(k for k, c in cases.items()
             if c["behavior"] in ("FAILED", "NON-STRICT")
             or c["behaviorClose"] not in ("OK", "INFORMATIONAL")
             or (c["behavior"] == "UNIMPLEMENTED" and not declined(k)))
for k in bad:
    print("  %s: %s / close %s" % (k, cases[k]["behavior"], cases[k]["behaviorClose"]))
if bad or len(cases) < 216:
    sys.exit("autobahn-deflate: failing cases: %s" % (", ".join(bad) or "too few cases ran"))
PY
kill -0 "$PICO_PID" || { echo "picochat died during the suite" >&2; exit 1; }
