#!/usr/bin/env bash
# Prepares a machine to build and test Estuary: Node dependencies (including
# the pinned Node 24 in node_modules/.bin/node) and the real servers the
# integration tests start (Prosody 0.12 + modules, InspIRCd).
#
# Idempotent: run it as often as you like; it only does what is missing.
# Needs root (or sudo) only when Debian packages must be installed.
# The tests start their own server instances on free loopback ports, so the
# system services these packages ship are stopped and disabled.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Prosody and InspIRCd for the core and IRC tests; ejabberd for the second XMPP server;
# redis-server and postgresql for the scale-out store tests; docker-compose (v1) to
# validate docker-compose.yml without a container engine (test/integration/deploy.test.ts);
# atheme-services (IRC services linked to InspIRCd) and openssl for the IRC TLS and SASL
# tests (the package ships no /etc/atheme/atheme.conf, so no system daemon can start).
PACKAGES=(prosody prosody-modules lua-unbound inspircd ejabberd redis-server postgresql docker-compose atheme-services openssl)
LOG="$(mktemp -t estuary-setup.XXXXXX.log)"
trap 'rm -f "$LOG"' EXIT

say() { printf '[setup] %s\n' "$*"; }
die() {
  printf '[setup] ERROR: %s\n' "$*" >&2
  if [[ -s "$LOG" ]]; then
    printf '[setup] last output:\n' >&2
    tail -n 40 "$LOG" >&2
  fi
  exit 1
}

# Run a command quietly; its output is shown only if it fails.
quiet() {
  "$@" >>"$LOG" 2>&1 || die "failed: $*"
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (run this script as root or install sudo)"
  fi
}

# --- Node dependencies -------------------------------------------------------
# npm ci installs exactly package-lock.json, including the `node` package
# that provides Node 24. The machine's own npm may run under an older Node
# and only warns about `engines`; the lock file pins every version.
if [[ -x node_modules/.bin/node ]]; then
  say "node_modules present ($(node_modules/.bin/node --version))"
else
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js and npm first"
  say "installing Node dependencies (npm ci)..."
  quiet npm ci --no-audit --no-fund
  [[ -x node_modules/.bin/node ]] || die "npm ci finished but node_modules/.bin/node is missing"
  say "Node dependencies installed ($(node_modules/.bin/node --version))"
fi

# --- Debian packages ---------------------------------------------------------
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

just_installed=0
missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

# Is the system instance (the one with the package's pidfile) alive? Test
# instances use their own pidfiles in temp dirs and are never matched.
system_instance_pid() {
  local pidfile=$1 pid
  [[ -r "$pidfile" ]] || return 1
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

# Stop a system instance started by the package (init script or systemd),
# and keep it from starting at boot.
stop_system_service() {
  local name=$1 pidfile=$2 pid
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    as_root systemctl disable --now "$name" >>"$LOG" 2>&1 || true
  else
    as_root service "$name" stop >>"$LOG" 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
      as_root update-rc.d "$name" disable >>"$LOG" 2>&1 || true
    fi
  fi
  # Debian 12's prosody init script matches the process name "lua5.2" while
  # prosody runs under lua5.4, so its stop can miss; use the pidfile.
  if pid=$(system_instance_pid "$pidfile"); then
    as_root kill "$pid" 2>/dev/null || true
  fi
  if pid=$(system_instance_pid "$pidfile"); then
    say "warning: system $name (pid $pid) is still running"
  else
    say "system $name service stopped and disabled"
  fi
}

if ((${#missing[@]} > 0)); then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these yourself: ${missing[*]}"
  say "installing Debian packages: ${PACKAGES[*]} (missing: ${missing[*]})..."

  # Debian's invoke-rc.d asks /usr/sbin/policy-rc.d whether a service may
  # start; exit code 101 means "no", so postinst scripts leave the daemons
  # down (see /usr/share/doc/init-system-helpers/README.policy-rc.d).
  # Only add one if there is none, and remove only the one we added.
  policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    policy_added=1
    trap 'rm -f "$LOG"; as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi

  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"

  if ((policy_added)); then
    as_root rm -f /usr/sbin/policy-rc.d
    trap 'rm -f "$LOG"' EXIT
  fi

  for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || die "package $pkg is still not installed"
  done
  say "Debian packages installed"
  just_installed=1
else
  say "Debian packages present: ${PACKAGES[*]}"
fi

# A system Prosody on 5222/5269 or InspIRCd on 6667 must not be left
# running, whether we installed just now or the image came with it running.
for svc in prosody:/run/prosody/prosody.pid inspircd:/run/inspircd/inspircd.pid ejabberd:/run/ejabberd/ejabberd.pid redis-server:/run/redis/redis-server.pid postgresql:/run/postgresql/main.pid; do
  name=${svc%%:*} pidfile=${svc#*:}
  if ((just_installed)) || system_instance_pid "$pidfile" >/dev/null; then
    stop_system_service "$name" "$pidfile"
  fi
done

say "ready: npm test runs unit and integration tests"
