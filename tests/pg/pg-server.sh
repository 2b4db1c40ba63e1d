#!/usr/bin/env bash
# pg-server.sh - a throwaway single PostgreSQL 15 server on 127.0.0.1 for the
# store tests: TLS on (self-signed EC certificate, verified by the client with
# sslmode=verify-full), password authentication over TCP only.
#
# usage: pg-server.sh start DIR   initdb (first time) + start; prints
#                                 export KURA_TEST_PG_DSN='…'
#        pg-server.sh env DIR     prints the export line again
#        pg-server.sh stop DIR    stops the server by its PID (fast shutdown)
#        pg-server.sh linger DIR [SECONDS]
#                                 stops it once, for SECONDS (default 15) in a
#                                 row, no process listed in DIR.users/<pid> is
#                                 alive (checked under the lock DIR.lock). The
#                                 store tests (src/store/pg_test_env.cc) run one
#                                 test per process: lingering keeps one server
#                                 for the whole run instead of one per test.
#   eval "$(tests/pg/pg-server.sh start /tmp/kura-pg)"
#
# DIR/data    the cluster            DIR/tls/server.{crt,key}  certificate (also the CA)
# DIR/run     unix socket (superuser only, trust)
# DIR/port, DIR/password           the chosen port and the kura role's password
# DIR/server.log
#
# Functional tests do not need crash safety: unless KURA_PG_DURABLE=1 at the
# first start (initdb), the server runs with fsync=off (see below).
#
# Roles: postgres (superuser, unix socket only), kura (LOGIN, owner of db kura,
# hostssl + scram-sha-256 from 127.0.0.1 only). The superuser DSN for tests
# that need one (pg_terminate_backend) is printed as KURA_TEST_PG_ADMIN_DSN.
#
# Kerberos (GSSAPI) instead of passwords: with KURA_PG_GSS_KEYTAB (the
# service keytab, e.g. postgres/localhost@REALM) and KRB5_CONFIG set at the
# first start, the cluster copies both into DIR (DIR/krb5.keytab,
# DIR/krb5.conf), sets krb_server_keyfile and log_connections, and pg_hba.conf
# lets role kura in over TCP ONLY with `hostssl … gss include_realm=0
# krb_realm=$KURA_PG_GSS_REALM` (default KURA.TEST): its password no longer
# works. The printed DSN then carries no password. Used by
# tests/postgres_gss_test.cc with the realm of tests/krb/kdc.sh.
#
# initdb and postgres refuse to run as root: as root, the script runs them as
# the `postgres` OS user (from the postgresql-common package) and gives it DIR.
set -euo pipefail

cmd=${1:-}; DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|env|stop|linger DIR" >&2; exit 2
fi
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGCONNECT_TIMEOUT=5

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

gss_mode() { [ -f "$DIR/krb5.keytab" ]; }

print_env() {
  local port pw
  port=$(cat "$DIR/port"); pw=$(cat "$DIR/password")
  # GSSAPI: no password in the DSN; libpq asks for postgres/localhost (the
  # DSN's host), and TLS still verifies the certificate's name localhost.
  if gss_mode; then pw=""; else pw="password=$pw "; fi
  echo "export KURA_TEST_PG_DSN='host=localhost hostaddr=127.0.0.1 port=$port dbname=kura user=kura ${pw}sslmode=verify-full sslrootcert=$DIR/tls/server.crt connect_timeout=5'"
  echo "export KURA_TEST_PG_ADMIN_DSN='host=$DIR/run port=$port dbname=kura user=postgres'"
}

pid_of() {  # the postmaster's PID, empty if none is running
  local f="$DIR/data/postmaster.pid" pid
  [ -f "$f" ] || return 0
  pid=$(head -n 1 "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

init_cluster() {
  [ -f "$DIR/data/PG_VERSION" ] && return 0
  mkdir -p "$DIR/run" "$DIR/tls"
  # The server checks that its key is 0600 and owned by the server user.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DIR/tls/server.key" -out "$DIR/tls/server.crt" 2>/dev/null
  chmod 600 "$DIR/tls/server.key"
  # A fresh random password per cluster; only this script and the tests read it.
  (umask 077; openssl rand -hex 16 > "$DIR/password")
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$DIR"; fi
  # --no-sync: a throwaway cluster; the server itself still fsyncs commits.
  as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --no-locale -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1
  cat >> "$DIR/data/postgresql.conf" <<CONF
# ---- kura test server ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/run'
ssl = on
ssl_cert_file = '$DIR/tls/server.crt'
ssl_key_file = '$DIR/tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 200
CONF
  # A throwaway server for functional tests: by default skip fsync, as the
  # SQLite conformance runs do (durable=false). KURA_PG_DURABLE=1 keeps
  # PostgreSQL's durable defaults (fsync, synchronous_commit=on).
  if [ "${KURA_PG_DURABLE:-0}" != 1 ]; then
    cat >> "$DIR/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  # TCP only with TLS; the unix socket (in DIR/run) is for the superuser.
  if [ -n "${KURA_PG_GSS_KEYTAB:-}" ]; then
    [ -n "${KRB5_CONFIG:-}" ] || { echo "pg-server.sh: KURA_PG_GSS_KEYTAB needs KRB5_CONFIG" >&2; exit 2; }
    # Copies the server user can read (the originals may sit in a 0700
    # directory of another user); the replay cache is the server's own.
    cp "$KURA_PG_GSS_KEYTAB" "$DIR/krb5.keytab"; chmod 600 "$DIR/krb5.keytab"
    cp "$KRB5_CONFIG" "$DIR/krb5.conf"
    mkdir -p "$DIR/rcache"; chmod 700 "$DIR/rcache"
    cat >> "$DIR/data/postgresql.conf" <<CONF
krb_server_keyfile = 'FILE:$DIR/krb5.keytab'
log_connections = on
CONF
    cat > "$DIR/data/pg_hba.conf" <<CONF
local   all  all                 trust
hostssl all  kura 127.0.0.1/32   gss include_realm=0 krb_realm=${KURA_PG_GSS_REALM:-KURA.TEST}
CONF
  else
    cat > "$DIR/data/pg_hba.conf" <<CONF
local   all  all                 trust
hostssl all  all  127.0.0.1/32   scram-sha-256
CONF
  fi
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$DIR"; fi
}

su_psql() {
  as_pg "$PGBIN/psql" -X -q -h "$DIR/run" -p "$(cat "$DIR/port")" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

start() {
  mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
  init_cluster
  if [ -z "$(pid_of)" ]; then
    local tries=0 krb_env=()
    # The server's Kerberos environment: the realm's configuration and a
    # replay cache of its own; nothing from the caller's ticket caches.
    if gss_mode; then
      krb_env=(env -u KRB5CCNAME -u KRB5_CLIENT_KTNAME -u KRB5_KTNAME -u KRB5RCACHEDIR
               KRB5_CONFIG="$DIR/krb5.conf" KRB5RCACHENAME="file2:$DIR/rcache/postgres.rcache2")
    fi
    until
      # A new free port on every try: another process may take ours between
      # the check and the server's bind.
      free_port > "$DIR/port"
      as_pg "${krb_env[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -o "-p $(cat "$DIR/port")" -w -t 60 \
        start >/dev/null 2>&1
    do
      tries=$((tries + 1))
      if [ "$tries" -ge 3 ]; then
        echo "pg-server.sh: postgres did not start; see $DIR/server.log" >&2; exit 1
      fi
    done
  fi
  if [ ! -f "$DIR/provisioned" ]; then
    local pw; pw=$(cat "$DIR/password")
    su_psql <<SQL
CREATE ROLE kura LOGIN PASSWORD '$pw';
CREATE DATABASE kura OWNER kura;
SQL
    touch "$DIR/provisioned"
  fi
  print_env
}

stop() {
  DIR=$(cd "$DIR" 2>/dev/null && pwd) || exit 0
  local pid; pid=$(pid_of)
  [ -n "$pid" ] || return 0
  kill -INT "$pid"   # fast shutdown: roll back open transactions, checkpoint, exit
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -QUIT "$pid" 2>/dev/null || true   # immediate shutdown
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

linger() {
  DIR=$(cd "$DIR" 2>/dev/null && pwd) || exit 0
  local secs=${1:-15} idle=0 live f
  # One lingerer per server.
  exec 9>"$DIR.linger"
  flock -n 9 || exit 0
  while :; do
    sleep 1
    exec 8>"$DIR.lock"
    flock 8
    live=0
    for f in "$DIR.users"/*; do
      [ -e "$f" ] || continue
      if kill -0 "${f##*/}" 2>/dev/null; then live=1; else rm -f "$f"; fi
    done
    if [ "$live" = 1 ]; then idle=0; else idle=$((idle + 1)); fi
    if [ "$idle" -ge "$secs" ] || [ -z "$(pid_of)" ]; then
      stop
      exit 0
    fi
    exec 8>&-
  done
}

case "$cmd" in
  start) start ;;
  linger) linger "${3:-15}" ;;
  env)   DIR=$(cd "$DIR" && pwd); print_env ;;
  stop)  stop ;;
  *) echo "pg-server.sh: unknown command $cmd" >&2; exit 2 ;;
esac
