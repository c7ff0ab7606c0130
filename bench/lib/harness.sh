# shellcheck shell=bash
# What bench/run.sh, bench/soak.sh and bench/production/run.sh share: logging, stopping what the
# script started, and the EXIT trap that stops its servers and load generators, drops the databases
# it created and removes its work directory (kept, with the logs, when the run failed).
#
# Set before sourcing: BENCH_NAME (log prefix and work-directory name), PG_ADMIN_URL and
# STOP_TIMEOUT. Record what you start in SERVER_PIDS / BG_PIDS and what you create in DATABASES.
# Also: free_port, pg_url_for (the admin URL with another database) and server_env (the
# server's clean environment from BENCH_SERVER_ENV). Define trim_failed_work() to delete bulky files from a failed run's work directory.

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$BENCH_NAME" -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ims-$BENCH_NAME.XXXXXX")"
declare -a SERVER_PIDS=() BG_PIDS=() DATABASES=()

stop_pid() { # pid timeout: SIGTERM, wait, then SIGKILL. Only for processes we started.
  local pid="$1" timeout="${2:-$STOP_TIMEOUT}" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid did not stop within ${timeout}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

free_port() { # a port nobody listens on (nothing answers a connect on 127.0.0.1)
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

pg_url_for() { # the admin URL with its database name replaced
  local base="${PG_ADMIN_URL%%\?*}" query=""
  [[ "$PG_ADMIN_URL" == *\?* ]] && query="?${PG_ADMIN_URL#*\?}"
  echo "${base%/*}/$1$query"
}

server_env() { # extra VAR=value ... -> env -i argument list on stdout, NUL-separated
  printf '%s\0' "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=C.UTF-8" \
    "IMS_LOG_FORMAT=json" "RUST_LOG=warn" "$@"
  local extra
  # shellcheck disable=SC2086
  for extra in ${BENCH_SERVER_ENV:-}; do printf '%s\0' "$extra"; done
}

psql_admin() { psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

cleanup() {
  local rc=$? pid db
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" 5; done
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  for db in "${DATABASES[@]}"; do
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
      log "warning: could not drop database $db"
  done
  if ((rc != 0)) && [[ -d "$WORK" ]]; then
    if declare -F trim_failed_work >/dev/null; then trim_failed_work; fi
    log "failed (exit $rc); logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
