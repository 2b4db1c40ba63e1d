#!/usr/bin/env bash
# kura on PostgreSQL versus the do-it-yourself baseline (issue 7's benchmark).
#
# One throwaway PostgreSQL 15 (tests/pg/pg-server.sh, durable: fsync and
# synchronous_commit on, TLS) serves both sides in turn:
#   baseline  pgbench, 16 clients over TLS, inserting 300-byte rows encrypted
#             with pgcrypto's pgp_sym_encrypt, then selecting and decrypting
#             them by id, with pgaudit logging writes (pgaudit.log = 'write');
#   kura      `kura serve --dev` on the same database (engine postgres), wrk
#             create (durable, audited) and get of a 300-byte record, as
#             bench/run.sh does.
# Prints a markdown table. Environment: BENCH_DURATION (15s), BENCH_CLIENTS
# (16), KURA_BINARY (build/release/bin/kura), BENCH_KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
duration=${BENCH_DURATION:-15s}
seconds=${duration%s}
clients=${BENCH_CLIENTS:-16}
kura=${KURA_BINARY:-$repo/build/release/bin/kura}
[ -x "$kura" ] || { echo "bench: no kura binary at $kura (cmake --build --preset release)" >&2; exit 1; }
for tool in wrk pgbench psql curl python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/lib/postgresql/15/bin/$tool" ] ||
    { echo "bench: $tool missing (scripts/install-deps)" >&2; exit 1; }
done
PATH=/usr/lib/postgresql/15/bin:$PATH
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

work=$(mktemp -d /tmp/kura-pgbench.XXXXXX)
chmod 755 "$work"
kura_pid=""
cleanup() {
  if [ -n "$kura_pid" ] && kill -0 "$kura_pid" 2>/dev/null; then kill "$kura_pid"; wait "$kura_pid" 2>/dev/null || true; fi
  tests/pg/pg-server.sh stop "$work/pg" >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- PostgreSQL with pgaudit -------------------------------------------------------
KURA_PG_DURABLE=1 tests/pg/pg-server.sh start "$work/pg" >"$work/pg.env"
cat >>"$work/pg/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pgaudit'
pgaudit.log = 'write'
CONF
tests/pg/pg-server.sh stop "$work/pg" >/dev/null
tests/pg/pg-server.sh start "$work/pg" >"$work/pg.env"
# shellcheck disable=SC1091
. "$work/pg.env"
admin() { psql "$KURA_TEST_PG_ADMIN_DSN" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
admin "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS pgaudit;"
admin "CREATE TABLE baseline (id bigserial PRIMARY KEY, data bytea NOT NULL); ALTER TABLE baseline OWNER TO kura;"

# --- baseline: pgbench ------------------------------------------------------------
payload=$(python3 -c 'print("x" * 300)')
cat >"$work/insert.sql" <<SQL
INSERT INTO baseline (data) VALUES (pgp_sym_encrypt('$payload', 'baseline-key'));
SQL
echo "bench: baseline insert ($duration, $clients clients)…" >&2
pgbench "$KURA_TEST_PG_DSN" -n -c "$clients" -j 2 -T "$seconds" -f "$work/insert.sql" >"$work/insert.txt" 2>&1
rows=$(psql "$KURA_TEST_PG_DSN" -qAt -c "SELECT max(id) FROM baseline")
cat >"$work/select.sql" <<SQL
\set id random(1, $rows)
SELECT pgp_sym_decrypt(data, 'baseline-key') FROM baseline WHERE id = :id;
SQL
echo "bench: baseline select ($duration, $clients clients)…" >&2
pgbench "$KURA_TEST_PG_DSN" -n -c "$clients" -j 2 -T "$seconds" -f "$work/select.sql" >"$work/select.txt" 2>&1
key_in_log=$(grep -c "baseline-key" "$work/pg/server.log" || true)

# --- kura on the same database ----------------------------------------------------------
dsn_no_password=$(python3 -c 'import sys; print(" ".join(p for p in sys.argv[1].split() if not p.startswith("password=")))' "$KURA_TEST_PG_DSN")
password=$(python3 -c 'import sys; print([p for p in sys.argv[1].split() if p.startswith("password=")][0].split("=",1)[1])' "$KURA_TEST_PG_DSN")
umask 077
printf '%s\n' "$password" >"$work/pg-password"
cat >"$work/kura-pg.toml" <<TOML
[storage]
engine = "postgres"
dsn = "$dsn_no_password"
password_file = "$work/pg-password"
pool_size = 16
TOML
# The same tenant, collection, role, API key and 300-byte record as bench/run.sh.
start_kura kura "$kura" -- --config "$work/kura-pg.toml"
export BENCH_BODY_FILE="$work/record.json"
write_record_body "$BENCH_BODY_FILE"
setup_tenant
url="$KURA_ADDR/v1/t/bench/collections/customers/records"
echo "bench: kura create ($duration)…" >&2
wrk -t2 -c64 -d"$duration" --latency -s bench/wrk/create.lua "$url" >"$work/kura-create.txt"
echo "bench: kura get ($duration)…" >&2
wrk -t2 -c64 -d"$duration" --latency -s bench/wrk/get.lua "$url/$record_id" >"$work/kura-get.txt"

python3 - "$work" "$clients" "$duration" "$key_in_log" <<'PY'
import os, re, sys
work, clients, duration, key_in_log = sys.argv[1:]
def tps(name):
    t = open(os.path.join(work, name)).read()
    return float(re.search(r"tps = ([\d.]+)", t).group(1)), float(re.search(r"latency average = ([\d.]+) ms", t).group(1))
def wrk(name):
    t = open(os.path.join(work, name)).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    return rps, int(non2xx.group(1)) if non2xx else 0
ins, ins_lat = tps("insert.txt")
sel, sel_lat = tps("select.txt")
create, create_bad = wrk("kura-create.txt")
get, get_bad = wrk("kura-get.txt")
print(f"PostgreSQL 15 (TLS, fsync on, synchronous_commit on), {duration} per run, on this machine")
print()
print("| workload | rate/s | vs baseline | notes |")
print("| --- | ---: | ---: | --- |")
print(f"| baseline insert (pgbench, {clients} clients, pgp_sym_encrypt, pgaudit write log) | {ins:,.0f} | 100 % | latency avg {ins_lat:.2f} ms |")
print(f"| kura create (wrk -c64, durable, audited, envelope-encrypted) | {create:,.0f} | {100 * create / ins:.0f} % | non-2xx {create_bad} |")
print(f"| baseline select + decrypt (pgbench, {clients} clients) | {sel:,.0f} | 100 % | latency avg {sel_lat:.2f} ms |")
print(f"| kura get (wrk -c64, audited) | {get:,.0f} | {100 * get / sel:.0f} % | non-2xx {get_bad} |")
print()
print(f"Baseline: lines of the PostgreSQL log holding the literal encryption key: {key_in_log}")
PY
