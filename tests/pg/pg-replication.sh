#!/usr/bin/env bash
# pg-replication.sh - a throwaway PostgreSQL 15 primary with a synchronous
# streaming standby on 127.0.0.1, TLS on, for kura's failover tests and for
# trying failover by hand.
#
# usage: pg-replication.sh start DIR         primary + standby, synchronous; prints
#                                            export KURA_PG_DSN='…' (both hosts,
#                                            target_session_attrs=read-write)
#        pg-replication.sh env DIR           prints the export lines again
#        pg-replication.sh kill-primary DIR  kill -9 of the primary's postmaster and
#                                            all its processes (a lost machine, as
#                                            far as clients can tell on one host)
#        pg-replication.sh promote DIR       promotes the standby (pg_ctl promote -w)
#        pg-replication.sh psql DIR primary|standby SQL
#                                            runs SQL as the superuser (unix socket)
#        pg-replication.sh stop DIR          stops whatever still runs (by PID)
#   eval "$(tests/pg/pg-replication.sh start /tmp/kura-ha)"
#
# DIR/primary, DIR/standby   the two clusters (ports in DIR/ports)
# DIR/tls/server.{crt,key}   one certificate for both (SAN 127.0.0.1 and
#                            localhost), also the CA for sslmode=verify-full
# DIR/run                    unix sockets (superuser, trust)
# DIR/password               the kura role's password (0600)
#
# The settings are those docs/operations/postgres.md explains:
# synchronous_commit = on, and synchronous_standby_names = 'FIRST 1 (standby1)'
# set with ALTER SYSTEM only once the standby streams (set earlier, every
# commit — including this script's own CREATE ROLE — would wait for a standby
# that does not exist yet). The standby's own synchronous_standby_names is ''
# so that, once promoted, its commits do not wait for a standby it lacks.
#
# The kura role is granted pg_monitor so kura can show pg_stat_replication.
#
# fsync is off unless KURA_PG_DURABLE=1: the tests kill processes, not the
# machine, so the page cache survives and acknowledged commits stay; the
# synchronous standby still confirms every commit before it returns.
#
# initdb and postgres refuse to run as root: as root, the script runs them as
# the `postgres` OS user and gives it DIR. Processes are stopped by their PID
# files in DIR only.
set -euo pipefail

cmd=${1:-}; DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|env|kill-primary|promote|psql|stop DIR" >&2; exit 2
fi
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning"
REPL_PW=repl-$$-$RANDOM

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_of() { . "$DIR/ports"; if [ "$1" = primary ]; then echo "$PRIMARY_PORT"; else echo "$STANDBY_PORT"; fi; }
pid_of() {  # postmaster PID of node $1, empty if not running
  local f="$DIR/$1/postmaster.pid" pid
  [ -f "$f" ] || return 0
  pid=$(head -n 1 "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}
su_psql() {  # su_psql primary|standby args…
  local port; port=$(port_of "$1"); shift
  as_pg "$PGBIN/psql" -X -q -A -t -h "$DIR/run" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

print_env() {
  . "$DIR/ports"
  local pw ca; pw=$(cat "$DIR/password"); ca=$DIR/tls/server.crt
  local common="dbname=kura user=kura sslmode=verify-full sslrootcert=$ca"
  echo "export KURA_PG_PRIMARY_PORT=$PRIMARY_PORT"
  echo "export KURA_PG_STANDBY_PORT=$STANDBY_PORT"
  echo "export KURA_PG_PASSWORD='$pw'"
  echo "export KURA_PG_CA='$ca'"
  # Both hosts; libpq keeps only a connection to the one accepting writes.
  echo "export KURA_PG_DSN='host=127.0.0.1,127.0.0.1 port=$PRIMARY_PORT,$STANDBY_PORT $common target_session_attrs=read-write connect_timeout=2'"
  echo "export KURA_PG_DSN_PRIMARY='host=127.0.0.1 port=$PRIMARY_PORT $common password=$pw'"
  echo "export KURA_PG_DSN_STANDBY='host=127.0.0.1 port=$STANDBY_PORT $common password=$pw'"
}

init_primary() {
  mkdir -p "$DIR/run" "$DIR/tls"
  { echo "PRIMARY_PORT=$(free_port)"; echo "STANDBY_PORT=$(free_port)"; } > "$DIR/ports"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DIR/tls/server.key" -out "$DIR/tls/server.crt" 2>/dev/null
  chmod 600 "$DIR/tls/server.key"
  (umask 077; openssl rand -hex 16 > "$DIR/password")
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$DIR"; chmod o+rx "$DIR"; fi
  as_pg "$PGBIN/initdb" -D "$DIR/primary" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --no-locale -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1
  . "$DIR/ports"
  cat >> "$DIR/primary/postgresql.conf" <<CONF
# ---- kura failover test ----
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$DIR/run'
ssl = on
ssl_cert_file = '$DIR/tls/server.crt'
ssl_key_file = '$DIR/tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 100
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
synchronous_commit = on
wal_sender_timeout = '5s'
CONF
  if [ "${KURA_PG_DURABLE:-0}" != 1 ]; then echo "fsync = off" >> "$DIR/primary/postgresql.conf"; fi
  cat > "$DIR/primary/pg_hba.conf" <<CONF
local   all          all                       trust
hostssl replication  replicator  127.0.0.1/32  scram-sha-256
hostssl all          all         127.0.0.1/32  scram-sha-256
CONF
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR/primary/postgresql.conf" "$DIR/primary/pg_hba.conf"; fi
}

start_node() {
  if [ -z "$(pid_of "$1")" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$DIR/$1" -l "$DIR/$1.log" -w -t 60 start >/dev/null
  fi
}

start() {
  if [ -f "$DIR/failed_over" ]; then
    echo "pg-replication.sh: $DIR was failed over; restarting its old primary would make two primaries" >&2
    exit 1
  fi
  [ -f "$DIR/primary/PG_VERSION" ] || init_primary
  start_node primary
  if [ ! -f "$DIR/standby/PG_VERSION" ]; then
    local pw; pw=$(cat "$DIR/password")
    su_psql primary <<SQL
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$REPL_PW';
CREATE ROLE kura LOGIN PASSWORD '$pw';
GRANT pg_monitor TO kura;
CREATE DATABASE kura OWNER kura;
SQL
    echo "127.0.0.1:*:replication:replicator:$REPL_PW" > "$DIR/pgpass"
    chmod 600 "$DIR/pgpass"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR/pgpass"; fi
    . "$DIR/ports"
    # -R: standby.signal + primary_conninfo; -C -S: a slot keeps the WAL the
    # standby still needs; -c fast: no spread checkpoint (seconds, not minutes).
    as_pg env PGPASSFILE="$DIR/pgpass" "$PGBIN/pg_basebackup" \
      -d "host=127.0.0.1 port=$PRIMARY_PORT user=replicator sslmode=verify-full sslrootcert=$DIR/tls/server.crt" \
      -D "$DIR/standby" -R -X stream -C -S standby1 -c fast --no-sync
    cat >> "$DIR/standby/postgresql.auto.conf" <<CONF
port = $STANDBY_PORT
# the walreceiver's application_name: what synchronous_standby_names names
cluster_name = 'standby1'
# once promoted, this node has no standby of its own: do not wait for one
synchronous_standby_names = ''
CONF
  fi
  start_node standby
  su_psql primary -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  for _ in $(seq 200); do
    [ "$(su_psql primary -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")" = sync ] \
      && { print_env; return 0; }
    sleep 0.05
  done
  echo "pg-replication.sh: the standby did not become synchronous; see $DIR/*.log" >&2
  exit 1
}

kill_primary() {
  local pid; pid=$(pid_of primary)
  [ -n "$pid" ] || { echo "pg-replication.sh: the primary is not running" >&2; exit 1; }
  touch "$DIR/failed_over"
  # The postmaster and every process it started (backends, walsender, …),
  # all by PID: nothing gets to say goodbye to its clients cleanly.
  local kids; kids=$(ps -o pid= --ppid "$pid" || true)
  kill -KILL "$pid" $kids 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
}

promote() {
  as_pg "$PGBIN/pg_ctl" -D "$DIR/standby" -w -t 60 promote >/dev/null
}

stop() {
  local n pid
  for n in standby primary; do
    pid=$(pid_of "$n")
    [ -n "$pid" ] || continue
    as_pg "$PGBIN/pg_ctl" -D "$DIR/$n" -m immediate -w -t 20 stop >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
  done
}

case "$cmd" in
  start) start ;;
  env) print_env ;;
  kill-primary) kill_primary ;;
  promote) promote ;;
  psql) node=${3:?primary|standby}; shift 3; su_psql "$node" -c "$*" ;;
  stop) stop ;;
  *) echo "pg-replication.sh: unknown command $cmd" >&2; exit 2 ;;
esac
