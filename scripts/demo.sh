#!/usr/bin/env bash
# Runs Estuary against a local Prosody and InspIRCd, all on 127.0.0.1 only,
# and prints the XMPP accounts to log in with. Ctrl-C stops everything.
#
#   ./scripts/demo.sh
#
# On a fresh Debian/Ubuntu machine run it as root (scripts/setup.sh installs
# the npm dependencies, Prosody and InspIRCd). Rerunning reuses the state in
# the demo directory: same accounts, same passwords, same store.
#
# Environment knobs (defaults in brackets):
#   ESTUARY_DEMO_DIR              state, configs and logs [run/demo]
#   ESTUARY_DEMO_C2S_PORT         XMPP client port [5222, another if taken]
#   ESTUARY_DEMO_COMPONENT_PORT   XEP-0114 component port [5347, another if taken]
#   ESTUARY_DEMO_IRC_PORT         IRC port [6667, another if taken]
#   ESTUARY_DEMO_IRC_ALLOWED      IRC servers the gateway may reach [127.0.0.1,localhost]
#   ESTUARY_DEMO_LOG_LEVEL        Estuary's log level [info]
#   ESTUARY_DEMO_SKIP_SETUP=1     do not run scripts/setup.sh
# A port given explicitly must be free; a default one that is taken is replaced.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NODE=node_modules/.bin/node
START_TIMEOUT=${ESTUARY_DEMO_START_TIMEOUT:-30}

# Never fails: after the terminal closes (SIGHUP), writes fail but the cleanup must go on.
say() { printf '[demo] %s\n' "$*" 2>/dev/null || true; }
die() {
  printf '[demo] ERROR: %s\n' "$*" >&2
  exit 1
}

if [[ "${ESTUARY_DEMO_SKIP_SETUP:-}" != 1 ]]; then
  bash scripts/setup.sh
fi
[[ -x "$NODE" ]] || die "$NODE is missing: run scripts/setup.sh"

DIR_ARG=${ESTUARY_DEMO_DIR:-run/demo}
mkdir -p "$DIR_ARG"
chmod 700 "$DIR_ARG"

# One demo per directory. The lock is held by this shell only (children get
# fd 9 closed), so it is released even if this shell is killed outright.
exec 9>"$DIR_ARG/demo.lock"
flock -n 9 || die "a demo is already running with $DIR_ARG (see $DIR_ARG/demo.pids); stop it first"

# Processes left by a previous run that was killed outright (SIGKILL): they
# are ours only if their command line names a file of this demo directory.
ABS_DIR=$(cd "$DIR_ARG" && pwd)
stop_stale() {
  local pid=$1
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$ABS_DIR/"; then
    printf '[demo] stopping pid %s, left by a previous run\n' "$pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}
for pidfile in "$ABS_DIR/demo.pids" "$ABS_DIR/prosody/prosody.pid" "$ABS_DIR/inspircd/inspircd.pid"; do
  [[ -r "$pidfile" ]] || continue
  # demo.pids holds "name pid" lines, the servers' pidfiles a bare pid.
  while read -r a b; do stop_stale "${b:-$a}"; done <"$pidfile"
  rm -f "$pidfile"
done

# Secrets (kept), configs and ports (re-checked) -> $DIR/demo.env.
ESTUARY_DEMO_DIR="$ABS_DIR" "$NODE" scripts/demo-config.ts
# shellcheck source=/dev/null
source "$ABS_DIR/demo.env"
DIR=$DEMO_DIR
PROSODY_CFG="$DIR/prosody/prosody.cfg.lua"
INSPIRCD_CFG="$DIR/inspircd/inspircd.conf"

# Accounts: `prosodyctl register` sets the password whether or not the
# account exists, so this is idempotent. Prosody need not be running.
for account in $DEMO_ACCOUNTS; do
  user=${account%%:*} pass=${account#*:}
  prosodyctl --config "$PROSODY_CFG" register "$user" "$DEMO_XMPP_DOMAIN" "$pass" >/dev/null ||
    die "prosodyctl could not create $user@$DEMO_XMPP_DOMAIN"
done

PROSODY_PID="" INSPIRCD_PID="" ESTUARY_PID=""

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds for pid $1 to exit, then kills it.
stop_pid() {
  local pid=$1 grace=$2 signal=$3 i
  alive "$pid" || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    say "pid $pid did not stop in ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

STOPPED=0
ESTUARY_STATUS=0
cleanup() {
  ((STOPPED)) && return 0
  STOPPED=1
  trap '' INT TERM HUP
  # Estuary first, so it can tell users and rooms it is leaving through a live Prosody.
  if alive "$ESTUARY_PID"; then
    say "stopping Estuary..."
    kill -INT "$ESTUARY_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
      alive "$ESTUARY_PID" || break
      sleep 0.1
    done
    if alive "$ESTUARY_PID"; then
      say "Estuary did not stop in 15s; killing it"
      kill -KILL "$ESTUARY_PID" 2>/dev/null || true
    fi
    wait "$ESTUARY_PID" 2>/dev/null || ESTUARY_STATUS=$?
  fi
  [[ -n "$INSPIRCD_PID" || -n "$PROSODY_PID" ]] && say "stopping InspIRCd and Prosody..."
  stop_pid "$INSPIRCD_PID" 10 TERM
  stop_pid "$PROSODY_PID" 10 TERM
  rm -f "$DIR/demo.pids"
  say "stopped"
}
trap cleanup EXIT
# Ctrl-C, SIGTERM, or the terminal closing: a requested stop; success if Estuary stopped cleanly.
trap 'cleanup; exit $((ESTUARY_STATUS == 0 ? 0 : 1))' INT TERM HUP

# Each process runs in its own session (setsid, which execs in place here, so
# $! is the server's pid), so a Ctrl-C in the terminal reaches only this
# script, which then stops them in order.
prosody_log_start=0
[[ -f "$DIR/prosody/prosody.log" ]] && prosody_log_start=$(stat -c %s "$DIR/prosody/prosody.log")
prosody_log() { tail -c "+$((prosody_log_start + 1))" "$DIR/prosody/prosody.log" 2>/dev/null || true; }

say "starting Prosody on $DEMO_XMPP_DOMAIN (c2s 127.0.0.1:$DEMO_C2S_PORT, components 127.0.0.1:$DEMO_COMPONENT_PORT)"
(cd "$DIR/prosody" && exec setsid prosody --config "$PROSODY_CFG" -F) \
  9>&- </dev/null >>"$DIR/prosody/prosody.out" 2>&1 &
PROSODY_PID=$!

say "starting InspIRCd on 127.0.0.1:$DEMO_IRC_PORT"
(cd "$DIR/inspircd" && exec setsid /usr/sbin/inspircd --config "$INSPIRCD_CFG" --nofork --runasroot) \
  9>&- </dev/null >>"$DIR/inspircd/inspircd.out" 2>&1 &
INSPIRCD_PID=$!
printf 'prosody %s\ninspircd %s\n' "$PROSODY_PID" "$INSPIRCD_PID" >"$DIR/demo.pids"

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Polls `$2` (a command) until it succeeds, failing if pid $3 exits or time runs out.
await() {
  local what=$1 check=$2 pid=$3 deadline=$((SECONDS + START_TIMEOUT))
  until eval "$check"; do
    alive "$pid" || die "$what exited during start-up; see its log in $DIR"
    ((SECONDS < deadline)) || die "$what was not ready within ${START_TIMEOUT}s; see its log in $DIR"
    sleep 0.1
  done
}
# Prosody logs a port it cannot bind but keeps running, so readiness is read from its log.
prosody_ready() {
  local log
  log=$(prosody_log)
  grep -q "Failed to open server port" <<<"$log" && die "Prosody could not bind its ports; see $DIR/prosody/prosody.log"
  grep -qF "Activated service 'c2s' on [127.0.0.1]:$DEMO_C2S_PORT" <<<"$log" &&
    grep -qF "Activated service 'component' on [127.0.0.1]:$DEMO_COMPONENT_PORT" <<<"$log"
}
await Prosody prosody_ready "$PROSODY_PID"
await InspIRCd "tcp_open $DEMO_IRC_PORT" "$INSPIRCD_PID"

say "starting Estuary (IRC gateway $DEMO_IRC_COMPONENT)"
[[ -t 1 ]] && export ESTUARY_DEMO_PRETTY=true
setsid "$NODE" --max-semi-space-size=2 bin/estuary.js --config "$DIR/estuary.yaml" 9>&- </dev/null &
ESTUARY_PID=$!
printf 'estuary %s\n' "$ESTUARY_PID" >>"$DIR/demo.pids"
# Ready once Prosody has accepted the component's XEP-0114 handshake.
component_ready() {
  local log
  log=$(prosody_log)
  [[ "$log" == *"$DEMO_IRC_COMPONENT:component"$'\t'info$'\t'"External component successfully authenticated"* ]]
}
await Estuary component_ready "$ESTUARY_PID"

first=${DEMO_ACCOUNTS%% *}
cat <<EOF

==================================================================
 Estuary demo is running (loopback only: nothing listens outside
 127.0.0.1). Ctrl-C stops Estuary, Prosody and InspIRCd.

 XMPP server : 127.0.0.1 port $DEMO_C2S_PORT, domain $DEMO_XMPP_DOMAIN
               PLAIN password, NO TLS: fine on loopback, never expose it.
               In your client, set the host/port by hand and allow
               plain-text connections.
 Accounts    :
$(for a in $DEMO_ACCOUNTS; do printf '   %-20s password: %s\n' "${a%%:*}@$DEMO_XMPP_DOMAIN" "${a#*:}"; done)
 IRC server  : 127.0.0.1 port $DEMO_IRC_PORT (plain), any IRC client
 Gateway     : $DEMO_IRC_COMPONENT     Rooms service: $DEMO_MUC_DOMAIN

 Try:
  - Join the MUC  #estuary%127.0.0.1@$DEMO_IRC_COMPONENT  with any nick;
    connect an IRC client to 127.0.0.1:$DEMO_IRC_PORT, /join #estuary and talk.
  - Chat with an IRC user: open a chat with  nick%127.0.0.1@$DEMO_IRC_COMPONENT
  - Service discovery on $DEMO_IRC_COMPONENT: register with the gateway,
    ad-hoc commands (${first%%:*}@$DEMO_XMPP_DOMAIN is the gateway admin).

 State and logs: $DIR
==================================================================
[demo] ready
EOF

# Foreground until Ctrl-C (the trap) or until one of the three exits.
set +e
wait -n "$ESTUARY_PID" "$PROSODY_PID" "$INSPIRCD_PID"
set -e
if ! alive "$ESTUARY_PID"; then
  wait "$ESTUARY_PID" 2>/dev/null
  say "Estuary exited (status $?); stopping the servers"
else
  say "a server exited unexpectedly; see the logs in $DIR"
fi
exit 1
