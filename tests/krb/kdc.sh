#!/usr/bin/env bash
# kdc.sh - a throwaway MIT Kerberos realm KURA.TEST on 127.0.0.1 (TCP only)
# for the Kerberos sign-in tests (src/auth/kerberos_test.cc) and the
# end-to-end tests of `kura serve`.
#
# Debian packages: krb5-kdc krb5-admin-server krb5-user python3
# (scripts/install-deps installs them).
#
# usage: kdc.sh start DIR                       create the realm (first time), start
#                                               the KDC, print export lines
#        kdc.sh env DIR                         print the export lines again
#        kdc.sh kinit DIR PRINCIPAL [LIFETIME]  get a TGT into DIR's ccache
#                                               (LIFETIME as for `kinit -l`, e.g. 1s)
#        kdc.sh keytab DIR PRINCIPAL FILE       create PRINCIPAL (random key) unless it
#                                               exists; write its keys to FILE (0600)
#        kdc.sh stop DIR                        stop the KDC, by its PID
#
#   DIR=$(mktemp -d /tmp/kura-krb.XXXXXX); eval "$(tests/krb/kdc.sh start "$DIR")"
#
# Everything lives in DIR. Nothing in /etc is touched: the tools and the
# acceptor find the realm through KRB5_CONFIG / KRB5_KDC_PROFILE, and the
# replay cache lives in DIR/rcache (KRB5RCACHEDIR), so the printed export lines
# are all a client or a `kura serve` under test needs.
#
# Principals (realm KURA.TEST):
#   alice           password $KURA_KRB_ALICE_PW  (the staff user's principal)
#   bob             password $KURA_KRB_BOB_PW    (a valid principal mapped to no one)
#   HTTP/localhost  random key, keytab DIR/http.keytab   (kura's service principal)
#   HTTP/otherhost  random key, keytab DIR/other.keytab  (another service)
# `keytab` adds more on demand (e.g. postgres/localhost and a client principal
# for kura's GSSAPI login to PostgreSQL, tests/postgres_gss_test.cc).
#
# Expired tickets: the realm sets `clockskew = 3` (seconds; krb5's default is
# 300, and every acceptor forgives expiry by that much). The KDC issues
# lifetimes down to one second (`kdc.sh kinit DIR alice 4s`). MIT's client
# never builds a request from an expired ticket, so a test builds the Negotiate
# token while the ticket is valid and presents it once the ticket's end time
# plus 3 seconds has passed: the acceptor checks the ticket's times before the
# authenticator's clock skew and answers "Ticket expired". (`kinit -s` would
# make a postdated, not-yet-valid ticket instead; that is a different error.)
set -euo pipefail

REALM=KURA.TEST
ALICE_PW=${KURA_KRB_ALICE_PW:-alice-pw-not-secret}
BOB_PW=${KURA_KRB_BOB_PW:-bob-pw-not-secret}
MASTER_PW=master-pw-not-secret

cmd=${1:-}; DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|env|kinit|keytab|stop DIR [PRINCIPAL [LIFETIME|FILE]]" >&2; exit 2
fi
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)

free_port() {  # ask the kernel for a free loopback TCP port
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_port() {  # wait_port PORT SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "kdc.sh: port $1 did not open (see $DIR/kdc.log)" >&2; return 1
}

use_realm() {
  export KRB5_CONFIG=$DIR/krb5.conf KRB5_KDC_PROFILE=$DIR/kdc.conf
  export KRB5CCNAME=FILE:$DIR/ccache KRB5RCACHEDIR=$DIR/rcache
}

print_env() {
  local port; port=$(cat "$DIR/port")
  cat <<EOF
export KRB5_CONFIG=$DIR/krb5.conf
export KRB5_KDC_PROFILE=$DIR/kdc.conf
export KRB5CCNAME=FILE:$DIR/ccache
export KRB5_KTNAME=FILE:$DIR/http.keytab
export KRB5RCACHEDIR=$DIR/rcache
export KRB5RCACHENAME=file2:$DIR/rcache/kura.rcache2
export KURA_KRB_REALM=$REALM
export KURA_KRB_KDC_PORT=$port
export KURA_KRB_ALICE_PW=$ALICE_PW
export KURA_KRB_BOB_PW=$BOB_PW
EOF
}

setup_realm() {
  # The port is chosen once and remembered, so a second `start` reuses it.
  [ -f "$DIR/port" ] || echo "${KURA_KRB_KDC_PORT:-$(free_port)}" > "$DIR/port"
  local port; port=$(cat "$DIR/port")
  [ -f "$DIR/principal" ] && return 0
  mkdir -p "$DIR/rcache"; chmod 700 "$DIR/rcache"

  # Client and acceptor config. udp_preference_limit = 1: always TCP.
  # rdns/dns_canonicalize_hostname off: HTTP@localhost means exactly
  # HTTP/localhost, whatever /etc/hosts says. clockskew: see the header.
  cat > "$DIR/krb5.conf" <<EOF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    ticket_lifetime = 1h
    clockskew = 3
[realms]
    $REALM = {
        kdc = 127.0.0.1:$port
    }
[domain_realm]
    localhost = $REALM
    otherhost = $REALM
    127.0.0.1 = $REALM
EOF
  # KDC config: database, stash and log inside DIR; TCP on loopback only
  # (an empty kdc_listen turns UDP off).
  cat > "$DIR/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = ""
    kdc_tcp_listen = 127.0.0.1:$port
[realms]
    $REALM = {
        database_name = $DIR/principal
        key_stash_file = $DIR/stash
        acl_file = $DIR/kadm5.acl
        kdc_listen = ""
        kdc_tcp_listen = 127.0.0.1:$port
        max_life = 10h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$DIR/kdc.log
EOF
  echo "*/admin@$REALM *" > "$DIR/kadm5.acl"
  use_realm
  local q=(kadmin.local -r "$REALM" -q)
  # -s writes the stash file, so krb5kdc starts without asking for the master key
  kdb5_util create -s -r "$REALM" -P "$MASTER_PW" >>"$DIR/kadmin.log" 2>&1 ||
    { cat "$DIR/kadmin.log" >&2; return 1; }
  "${q[@]}" "addprinc -pw $ALICE_PW alice" >>"$DIR/kadmin.log" 2>&1
  "${q[@]}" "addprinc -pw $BOB_PW bob" >>"$DIR/kadmin.log" 2>&1
  "${q[@]}" "addprinc -randkey HTTP/localhost" >>"$DIR/kadmin.log" 2>&1
  "${q[@]}" "addprinc -randkey HTTP/otherhost" >>"$DIR/kadmin.log" 2>&1
  "${q[@]}" "ktadd -k $DIR/http.keytab HTTP/localhost" >>"$DIR/kadmin.log" 2>&1
  "${q[@]}" "ktadd -k $DIR/other.keytab HTTP/otherhost" >>"$DIR/kadmin.log" 2>&1
  [ -s "$DIR/http.keytab" ] && [ -s "$DIR/other.keytab" ] ||
    { echo "kdc.sh: realm set-up failed (see $DIR/kadmin.log)" >&2; return 1; }
}

start_kdc() {
  command -v krb5kdc >/dev/null || [ -x /usr/sbin/krb5kdc ] ||
    { echo "kdc.sh: krb5kdc not found (install krb5-kdc: scripts/install-deps)" >&2; exit 1; }
  export PATH=$PATH:/usr/sbin
  setup_realm
  use_realm
  if ! alive "$DIR/kdc.pid"; then
    # krb5kdc daemonizes and writes its PID with -P; the port opens (in the
    # parent) before the child writes the PID file: wait for both, so `stop`
    # always finds the PID.
    rm -f "$DIR/kdc.pid"
    krb5kdc -r "$REALM" -P "$DIR/kdc.pid"
    wait_port "$(cat "$DIR/port")" 10
    for _ in $(seq 100); do [ -s "$DIR/kdc.pid" ] && break; sleep 0.05; done
    [ -s "$DIR/kdc.pid" ] || { echo "kdc.sh: krb5kdc wrote no PID file" >&2; exit 1; }
  fi
  print_env
}

do_kinit() {  # do_kinit PRINCIPAL [LIFETIME]
  local principal=${1:?principal} lifetime=${2:-} pw
  case "${principal%@*}" in
    alice) pw=$ALICE_PW ;;
    bob) pw=$BOB_PW ;;
    *) echo "kdc.sh: no password known for $principal" >&2; exit 2 ;;
  esac
  use_realm
  local args=()
  [ -n "$lifetime" ] && args=(-l "$lifetime")
  # the password comes on stdin: never on a command line (ps shows those)
  echo "$pw" | kinit "${args[@]}" "${principal%@*}@$REALM" >/dev/null
}

do_keytab() {  # do_keytab PRINCIPAL FILE
  local principal=${1:?principal} file=${2:?keytab file}
  export PATH=$PATH:/usr/sbin
  use_realm
  local q=(kadmin.local -r "$REALM" -q)
  # getprinc fails for an unknown principal: create it only then, so a second
  # call exports the same key (-norandkey) instead of replacing it.
  if ! "${q[@]}" "getprinc $principal" 2>/dev/null | grep -q '^Principal:'; then
    "${q[@]}" "addprinc -randkey $principal" >>"$DIR/kadmin.log" 2>&1
  fi
  (umask 077; "${q[@]}" "ktadd -norandkey -k $file $principal" >>"$DIR/kadmin.log" 2>&1)
  [ -s "$file" ] || { echo "kdc.sh: cannot write a keytab for $principal (see $DIR/kadmin.log)" >&2; exit 1; }
  chmod 600 "$file"
}

stop_kdc() {
  if alive "$DIR/kdc.pid"; then
    local pid; pid=$(cat "$DIR/kdc.pid")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$DIR/kdc.pid"
}

case "$cmd" in
  start) start_kdc ;;
  env) print_env ;;
  kinit) do_kinit "${3:-}" "${4:-}" ;;
  keytab) do_keytab "${3:-}" "${4:-}" ;;
  stop) stop_kdc ;;
  *) echo "kdc.sh: unknown command $cmd" >&2; exit 2 ;;
esac
