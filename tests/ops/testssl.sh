#!/usr/bin/env bash
# picochat's native TLS (--tls-cert) audited by Debian's testssl.sh: protocols,
# ciphers and their order, the certificate, known vulnerabilities (Heartbleed,
# ROBOT, renegotiation, CRIME, BREACH, ...) and the HTTP headers, against a
# certificate from a CA made here (given to testssl with --add-ca, so the
# chain of trust is checked too). Fails on any finding rated HIGH or
# CRITICAL, and when the scan itself did not get through (so a scan that saw
# nothing cannot pass).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
if ! command -v testssl >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh openssl bsdextrautils dnsutils >/dev/null
fi
work="$(mktemp -d)"
trap 'stop_picochat; rm -rf "$work"' EXIT
cd "$work"

# A certificate shaped like a public CA's (a CRL distribution point, 90 days
# left like a fresh Let's Encrypt one), so what testssl rates is picochat,
# not the test certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 365 -subj "/CN=picochat testssl CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.csr \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\ncrlDistributionPoints=URI:http://localhost/ca.crl\n' > ext
openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 90 \
  -extfile ext 2>/dev/null

start_picochat "$work/picochat.log" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
port="${PICO_ADDR##*:}"

testssl --quiet --warnings off --color 0 --add-ca "$work/ca.pem" --ip 127.0.0.1 \
  --jsonfile "$work/testssl.json" "https://localhost:$port/" > testssl.out 2>&1 || true

python3 - "$work/testssl.json" <<'PY'
import json, sys
try:
    findings = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    sys.exit(f"testssl: no JSON report: {e}")
by_id = {f["id"]: f for f in findings}
problems = [f for f in findings if f["severity"] in ("FATAL", "ERROR") or f["id"] == "scanProblem"]
bad = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
for f in problems + bad:
    print(f'testssl: {f["severity"]} {f["id"]}: {f["finding"]}', file=sys.stderr)
# The scan reached the server and saw what is there.
want = {"TLS1_3": "offered", "TLS1_2": "offered", "TLS1_1": "not offered", "SSLv3": "not offered"}
for id, text in want.items():
    got = by_id.get(id, {}).get("finding", "missing")
    if not got.startswith(text):
        print(f"testssl: {id} is '{got}', expected '{text}'", file=sys.stderr)
        problems.append(id)
if problems or bad:
    sys.exit(1)
counts = {}
for f in findings:
    counts[f["severity"]] = counts.get(f["severity"], 0) + 1
print("testssl: %d findings (%s), none HIGH or CRITICAL; TLS 1.2 and 1.3 offered, 1.1 and SSLv3 not"
      % (len(findings), ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))
for f in findings:
    if f["severity"] in ("LOW", "MEDIUM", "WARN"):
        print(f'  {f["severity"]} {f["id"]}: {f["finding"]}')
PY
kill -0 "$PICO_PID" || { echo "testssl: picochat exited during the scan" >&2; exit 1; }
