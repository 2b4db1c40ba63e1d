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
# BENCH_ROUNDS rounds (default 3) of: insert/create, then select/get, the two
# sides in turn (baseline first in odd rounds, kura first in even ones); each
# read phase after a 3 s warm-up (as bench/run.sh) and after settle() (below),
# for both sides alike. Ratios are taken within a round; the report gives their
# median and every round: this machine's speed moves by a third within minutes.
# Prints a markdown table. Environment: BENCH_DURATION (15s), BENCH_ROUNDS (3),
# BENCH_CLIENTS (16), KURA_BINARY (build/release/bin/kura), BENCH_KEEP=1 keeps
# the work dir.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
duration=${BENCH_DURATION:-15s}
seconds=${duration%s}
clients=${BENCH_CLIENTS:-16}
rounds=${BENCH_ROUNDS:-3}
kura=${KURA_BINARY:-$repo/build/release/bin/kura}
[ -x "$kura" ] || { echo "bench: no kura binary at $kura (cmake --build --preset release)" >&2; exit 1; }
PATH=/usr/lib/postgresql/15/bin:$PATH
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
require_tools wrk pgbench psql curl python3

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
# Before every read phase, for both sides alike: the dirty pages of the write
# phases flushed, the tables vacuumed and analysed. Without it a read phase
# paid for the checkpoint and autovacuum of whatever writes ran before it
# (kura's creates write several times the baseline's rows: versions, index
# entries, audit entries), and its figure moved with the order of the phases.
settle() {
  admin "VACUUM (ANALYZE)" 2>/dev/null
  admin "CHECKPOINT"
}
admin "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS pgaudit;"
admin "CREATE TABLE baseline (id bigserial PRIMARY KEY, data bytea NOT NULL); ALTER TABLE baseline OWNER TO kura;"

# --- the two sides -----------------------------------------------------------------
payload=$(python3 -c 'print("x" * 300)')
cat >"$work/insert.sql" <<SQL
INSERT INTO baseline (data) VALUES (pgp_sym_encrypt('$payload', 'baseline-key'));
SQL

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

baseline_writes() {  # baseline_writes ROUND
  echo "bench: round $1: baseline insert ($duration, $clients clients)…" >&2
  pgbench "$KURA_TEST_PG_DSN" -n -c "$clients" -j 2 -T "$seconds" -f "$work/insert.sql" >"$work/insert-$1.txt" 2>&1
}
baseline_reads() {
  local rows
  rows=$(psql "$KURA_TEST_PG_DSN" -qAt -c "SELECT max(id) FROM baseline")
  cat >"$work/select.sql" <<SQL
\set id random(1, $rows)
SELECT pgp_sym_decrypt(data, 'baseline-key') FROM baseline WHERE id = :id;
SQL
  settle
  pgbench "$KURA_TEST_PG_DSN" -n -c "$clients" -j 2 -T 3 -f "$work/select.sql" >/dev/null 2>&1  # warm-up
  echo "bench: round $1: baseline select ($duration, $clients clients)…" >&2
  pgbench "$KURA_TEST_PG_DSN" -n -c "$clients" -j 2 -T "$seconds" -f "$work/select.sql" >"$work/select-$1.txt" 2>&1
}
kura_writes() {
  echo "bench: round $1: kura create ($duration)…" >&2
  wrk -t2 -c64 -d"$duration" --latency -s bench/wrk/create.lua "$url" >"$work/kura-create-$1.txt"
}
kura_reads() {
  settle
  wrk -t2 -c64 -d3s -s bench/wrk/get.lua "$url/$record_id" >/dev/null  # warm-up
  echo "bench: round $1: kura get ($duration)…" >&2
  wrk -t2 -c64 -d"$duration" --latency -s bench/wrk/get.lua "$url/$record_id" >"$work/kura-get-$1.txt"
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    baseline_writes "$round"; kura_writes "$round"; baseline_reads "$round"; kura_reads "$round"
  else
    kura_writes "$round"; baseline_writes "$round"; kura_reads "$round"; baseline_reads "$round"
  fi
done
key_in_log=$(grep -c "baseline-key" "$work/pg/server.log" || true)

python3 - "$work" "$clients" "$duration" "$key_in_log" "$rounds" <<'PY'
import os, re, statistics, sys
work, clients, duration, key_in_log, rounds = sys.argv[1:]
rounds = range(1, int(rounds) + 1)
def tps(name):
    t = open(os.path.join(work, name)).read()
    return float(re.search(r"tps = ([\d.]+)", t).group(1)), float(re.search(r"latency average = ([\d.]+) ms", t).group(1))
def wrk(name):
    t = open(os.path.join(work, name)).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    return rps, p99_ms, int(non2xx.group(1)) if non2xx else 0
ins = [tps(f"insert-{r}.txt") for r in rounds]
sel = [tps(f"select-{r}.txt") for r in rounds]
create = [wrk(f"kura-create-{r}.txt") for r in rounds]
get = [wrk(f"kura-get-{r}.txt") for r in rounds]
med = statistics.median
create_ratio = med(c[0] / i[0] for c, i in zip(create, ins))
get_ratio = med(g[0] / s[0] for g, s in zip(get, sel))
print(f"PostgreSQL 15 (TLS, fsync on, synchronous_commit on), {duration} per run, {len(rounds)} rounds, on this machine")
print()
print("Median of the rounds (ratios taken within each round, then the median):")
print()
print("| workload | rate/s | vs baseline | notes |")
print("| --- | ---: | ---: | --- |")
print(f"| baseline insert (pgbench, {clients} clients, pgp_sym_encrypt, pgaudit write log) | {med(i[0] for i in ins):,.0f} | 100 % | latency avg {med(i[1] for i in ins):.2f} ms |")
print(f"| kura create (wrk -c64, durable, audited, envelope-encrypted) | {med(c[0] for c in create):,.0f} | {100 * create_ratio:.0f} % | p99 {med(c[1] for c in create):.2f} ms, non-2xx {sum(c[2] for c in create)} |")
print(f"| baseline select + decrypt (pgbench, {clients} clients) | {med(s[0] for s in sel):,.0f} | 100 % | latency avg {med(s[1] for s in sel):.2f} ms |")
print(f"| kura get (wrk -c64, audited) | {med(g[0] for g in get):,.0f} | {100 * get_ratio:.0f} % | p99 {med(g[1] for g in get):.2f} ms, non-2xx {sum(g[2] for g in get)} |")
print()
print("Every round (rate/s; kura as % of the baseline in the same round):")
print()
print("| round | baseline insert | kura create | baseline select | kura get |")
print("| --- | ---: | ---: | ---: | ---: |")
for r, i, c, s, g in zip(rounds, ins, create, sel, get):
    print(f"| {r} | {i[0]:,.0f} | {c[0]:,.0f} ({100 * c[0] / i[0]:.0f} %) | {s[0]:,.0f} | {g[0]:,.0f} ({100 * g[0] / s[0]:.0f} %) |")
print()
print(f"Baseline: lines of the PostgreSQL log holding the literal encryption key: {key_in_log}")
PY
