#!/usr/bin/env bash
# Fuzz the whole JSON API with Schemathesis (`--checks all`) against a local demo server, in
# three roles: unauthenticated, a signed-in customer (cookie) and an all-scopes admin token.
# Prints, per role, Schemathesis's own summary and the counts read from its JUnit report
# (operations tested, operations with a failure, failures per check).
#
#   bench/fuzz_api.sh                       # all three roles, 25 examples per operation
#   ROLES=anonymous MAX_EXAMPLES=10 bench/fuzz_api.sh
#
# Settings (environment):
#   ROLES          any of: anonymous customer admin          (default: all three)
#   MAX_EXAMPLES   examples per operation                     (default: 25)
#   MAX_TIME       seconds per role, 0 = no limit             (default: 0)
#   PYTHON         the project's Python                       (default: .venv/bin/python)
#   SCHEMATHESIS   the Schemathesis CLI (kept out of requirements.lock: install it where you
#                  like, e.g. `python -m venv /tmp/st && /tmp/st/bin/pip install schemathesis`)
#                                                            (default: st on PATH)
#   PORT           where the demo server listens on 127.0.0.1 (default: 8765)
#   REPORT_DIR     keep each role's Schemathesis log and JUnit report here (default: dropped)
#   DROPLINE_DATABASE_URL  an existing database to fuzz; default: a fresh SQLite demo in a
#                  temporary directory (PostgreSQL: give an empty database, it is migrated)
#
# Text with NUL or lone surrogates is refused on purpose (no engine stores both alike:
# dropline.schemas.refuse_unstorable_text), so it is not generated.
# The server runs without its background worker, so nothing the fuzzer registers (webhooks,
# say) is ever sent anywhere; every request goes to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROLES=${ROLES:-"anonymous customer admin"}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
MAX_TIME=${MAX_TIME:-0}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
SCHEMATHESIS=${SCHEMATHESIS:-st}
PORT=${PORT:-8765}
BASE="http://127.0.0.1:$PORT"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
REPORT_DIR=${REPORT_DIR:-$WORK}
mkdir -p "$REPORT_DIR"
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export DROPLINE_DATABASE_URL=${DROPLINE_DATABASE_URL:-"sqlite:///$WORK/fuzz.db"}
export DROPLINE_RUN_SCHEDULER=false
export DROPLINE_SECRET_KEY=${DROPLINE_SECRET_KEY:-"fuzz-$(date +%s)-$$"}
# The shop's mail goes to a folder here: the customer role reads its sign-up link from it.
export DROPLINE_EMAIL_DIR="$WORK/mail"
unset DROPLINE_SMTP_URL
dropline() { "$PYTHON" -c 'from dropline.cli import app; app()' "$@"; }

echo "==> demo shop in $DROPLINE_DATABASE_URL"
dropline demo --customers 40 >"$WORK/demo.log" 2>&1 || { cat "$WORK/demo.log"; exit 1; }
ADMIN_TOKEN=$(dropline admin token fuzz --scope '*' | grep -o 'dl_[A-Za-z0-9_-]*' | head -n 1)

if curl -sS -o /dev/null "$BASE/" 2>/dev/null; then
  echo "something already answers on $BASE: choose another PORT" >&2; exit 2
fi
echo "==> serving on $BASE"
# The interpreter itself in the background (not the shell function), so $! is the server's PID
# and the cleanup stops it.
"$PYTHON" -c 'from dropline.cli import app; app()' serve --port "$PORT" --no-migrate \
  --log-level warning >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do  # up to 2 minutes on a busy machine
  if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.2
done
curl -fsS "$BASE/healthz" >/dev/null
# Build the OpenAPI document once (the app caches it): Schemathesis gives its load 10 seconds.
curl -fsS --max-time 300 -o "$WORK/openapi.json" "$BASE/openapi.json"

customer_cookie() {  # sign up, then spend the emailed link (it creates the account, signed in)
  local email="fuzz-$RANDOM$RANDOM@example.com" token
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"fuzz password 1\"}" "$BASE/api/v1/customers"
  token=$("$PYTHON" - "$WORK/mail" "$email" <<'EOF'
import email.policy, pathlib, re, sys
for path in pathlib.Path(sys.argv[1]).glob("*.eml"):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    found = re.search(r"sign-up/confirm\?token=([A-Za-z0-9_-]+)", message.get_content())
    if message["To"] == sys.argv[2] and found:
        print(found.group(1))
EOF
)
  curl -fsS -o /dev/null -c "$WORK/cookies.txt" -H 'content-type: application/json' \
    -d "{\"token\":\"$token\"}" "$BASE/api/v1/customers/confirmations"
  awk '$6 == "dl_session" { print "dl_session=" $7 }' "$WORK/cookies.txt"
}

counts() {  # operations, operations with a failure, failures per check, from the JUnit report
  "$PYTHON" - "$1" <<'EOF'
import collections, re, sys
import xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
operations = failed = 0
checks = collections.Counter()
where = collections.defaultdict(list)
for case in cases:
    operations += 1
    problems = case.findall("failure") + case.findall("error")
    if problems:
        failed += 1
    for problem in problems:
        text = (problem.get("message") or "") + "\n" + (problem.text or "")
        for title in re.findall(r"^\s*-\s+(.+?)\s*$", text, re.M):
            checks[title] += 1
            where[title].append(case.get("name", "?"))
print(f"operations tested: {operations}; with a failure: {failed}")
for title, n in checks.most_common():
    print(f"  {n:5d}  {title}" + ("" if n > 5 else "  (" + "; ".join(where[title]) + ")"))
EOF
}

status=0
for role in $ROLES; do
  headers=()
  case "$role" in
    anonymous) ;;
    customer) headers=(-H "Cookie: $(customer_cookie)") ;;
    admin) headers=(-H "Authorization: Bearer $ADMIN_TOKEN") ;;
    *) echo "unknown role $role" >&2; exit 2 ;;
  esac
  limit=()
  if [ "$MAX_TIME" != 0 ]; then limit=(--max-time "$MAX_TIME"); fi
  echo "==> role: $role (max $MAX_EXAMPLES examples per operation)"
  # Run from the temporary directory: Schemathesis keeps a .schemathesis/ cache where it runs.
  (cd "$WORK" && "$SCHEMATHESIS" run "$BASE/openapi.json" --checks all --max-examples "$MAX_EXAMPLES" \
    --generation-allow-x00 false --generation-codec utf-8 \
    --seed 20 --no-color --report junit --report-junit-path "$REPORT_DIR/$role.xml" \
    --request-timeout 30 "${limit[@]}" "${headers[@]}" >"$REPORT_DIR/$role.log" 2>&1) || status=1
  sed -n '/SUMMARY/,$p' "$REPORT_DIR/$role.log"
  echo "--- $role: counts"
  counts "$REPORT_DIR/$role.xml" || true
done
exit $status
