# Shared by the benchmark scripts (bench/run.sh, bench/cpu.sh, bench/reencrypt.sh,
# bench/pg_baseline.sh); sourced, not run. Expects $work (a temp directory the caller removes) and sets
# kura_pid, which the caller's EXIT trap stops.

require_tools() {  # require_tools NAME…: exits unless every one is on PATH
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/install-deps)" >&2; exit 1; }
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_kura() {  # start_kura LABEL BINARY [ENV…] [-- SERVE_ARG…]: serve --dev in $work/LABEL, load its dev.env
  local label=$1 binary=$2
  shift 2
  local vars=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  env "${vars[@]}" "$binary" serve --dev --data "$work/$label" --listen 127.0.0.1:0 "$@" >"$work/$label.log" 2>&1 &
  kura_pid=$!
  for _ in $(seq 300); do
    if [ -f "$work/$label/dev.env" ] && grep -q '^KURA_TOKEN=' "$work/$label/dev.env"; then break; fi
    kill -0 "$kura_pid" 2>/dev/null || { echo "bench: kura ($label) exited" >&2; cat "$work/$label.log" >&2; exit 1; }
    sleep 0.1
  done
  set -a
  # shellcheck disable=SC1090
  . "$work/$label/dev.env"
  set +a
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KURA_CACERT" "$KURA_ADDR/v1/sys/health")" = 200 ] && break
    sleep 0.1
  done
}
stop_kura() {
  kill "$kura_pid"
  wait "$kura_pid" 2>/dev/null || true
  kura_pid=""
}

api() {  # api TOKEN METHOD PATH [BODY]
  local args=(-sS --fail-with-body --cacert "$KURA_CACERT" -H "Authorization: Bearer $1" -X "$2")
  if [ $# -ge 4 ]; then args+=(-H 'Content-Type: application/json' --data-binary "$4"); fi
  curl "${args[@]}" "$KURA_ADDR$3"
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

sign_in() {  # sign_in TENANT USERNAME PASSWORD: prints the session token
  curl -sS --fail-with-body --cacert "$KURA_CACERT" -H 'Content-Type: application/json' \
    --data-binary "{\"username\":\"$2\",\"password\":\"$3\",\"tenant\":\"$1\"}" \
    "$KURA_ADDR/v1/auth/login" | json_field token
}

setup_tenant() {  # needs BENCH_BODY_FILE; sets BENCH_ADMIN_SESSION, BENCH_KEY, record_id, get_bytes
  # The operator's part (root here): the tenant and its first admin. The
  # rest is the tenant admin's, signed in with a password.
  local admin_password=Orchid-Lantern-Quarry-58
  api "$KURA_TOKEN" POST /v1/tenants \
    "{\"id\":\"bench\",\"name\":\"Bench KK\",\"admin\":{\"username\":\"admin\",\"password\":\"$admin_password\"}}" >/dev/null
  BENCH_ADMIN_SESSION=$(sign_in bench admin "$admin_password")
  api "$BENCH_ADMIN_SESSION" PUT /v1/t/bench/collections/customers '{
    "fields": {
      "email": {"type":"string","class":"personal","index":true,"mask":"email"},
      "phone": {"type":"string","class":"personal","mask":"last4"},
      "name":  {"type":"string","class":"personal","mask":"partial"},
      "note":  {"type":"string","class":"internal"}},
    "required": ["email"], "retention_days": 365}' >/dev/null
  api "$BENCH_ADMIN_SESSION" PUT /v1/t/bench/roles/app '{"permissions":[
    {"action":"record.read","collections":["customers"],"view":"full"},
    {"action":"record.write","collections":["customers"],"view":"full"}]}' >/dev/null
  BENCH_KEY=$(api "$BENCH_ADMIN_SESSION" POST /v1/t/bench/apikeys '{"name":"bench","role":"app","expires_at":null}' | json_field key)
  export BENCH_KEY
  record_id=$(api "$BENCH_KEY" POST /v1/t/bench/collections/customers/records "$(cat "$BENCH_BODY_FILE")" | json_field id)
  get_bytes=$(api "$BENCH_KEY" GET "/v1/t/bench/collections/customers/records/$record_id" | wc -c)
}

setup_user() {  # after setup_tenant: a tenant user of role app and its session: sets BENCH_USER, BENCH_PASSWORD, BENCH_SESSION
  export BENCH_USER=bench-user BENCH_PASSWORD=Vermilion-Teapot-Harbour-42
  api "$BENCH_ADMIN_SESSION" POST /v1/t/bench/users \
    "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\",\"roles\":[\"app\"]}" >/dev/null
  BENCH_SESSION=$(sign_in bench "$BENCH_USER" "$BENCH_PASSWORD")
  export BENCH_SESSION
}

write_record_body() {  # write_record_body FILE: a record body of exactly 300 bytes
  python3 - "$1" <<'PY'
import json, sys
def body(n):
    return json.dumps({"data": {"email": "bench.user@example.com", "phone": "+81-90-1234-5678",
                                "name": "Bench User", "note": "x" * n}}, separators=(",", ":"))
b = body(300 - len(body(0)))
assert len(b) == 300, len(b)
open(sys.argv[1], "w").write(b)
PY
}
