# shellcheck shell=bash
# PostgreSQL for the test suite (sourced by scripts/test.sh, after common.sh).
#
# ims_pg_setup makes a PostgreSQL server available and exports IMS_TEST_PG_URL:
# a URL to a database as a superuser, so tests may CREATE DATABASE per test.
# It tries, in order:
#   1. IMS_TEST_PG_URL, if already set and it answers `select 1`;
#   2. the system server on 127.0.0.1:5432, if user postgres gets in with
#      trust auth (no password);
#   3. a Debian cluster that is installed but stopped: start it
#      (pg_ctlcluster --skip-systemctl-redirect VERSION main start), retry 2;
#   4. a PRIVATE throwaway cluster: installs Debian's `postgresql` if missing,
#      initdb (as the `postgres` OS user when we are root, as initdb refuses
#      root) into a fresh /tmp/ims-test-pg.XXXXXX, --auth=trust -U postgres,
#      listening only on 127.0.0.1 on a free port from 55432 up, started with
#      pg_ctl and stopped and removed when the script exits.
# No password is used or stored anywhere.
#
# Switches (environment):
#   IMS_TEST_PG_FORCE_PRIVATE=1  skip 1-3 and always use a private cluster
#                                (to exercise that path, or to keep the system
#                                server untouched).
#   IMS_TEST_PG_PORT=N           first port tried for the private cluster
#                                (default 55432).
#   IMS_TEST_PG_KEEP=1           keep the private cluster's directory (data and
#                                server.log) after exit; the server is still stopped.

IMS_PG_PRIVATE_DIR=""
IMS_PG_BINDIR=""
IMS_PG_RUNAS=()

# URL with any password replaced by ***, for printing.
ims_pg_redact() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"; }

# Does URL answer `select 1`? With no password prompt and no libpq password
# sources unless asked (so "works" means trust auth for the system check).
ims_pg_try() {
    local url=$1 mode=${2:-any}
    local -a envx=(env)
    if [[ ${mode} == trust ]]; then
        envx+=(-u PGPASSWORD PGPASSFILE=/nonexistent/ims-no-pgpass)
    fi
    "${envx[@]}" PGCONNECT_TIMEOUT=5 psql -X -w -q -At -d "${url}" -c 'select 1' >/dev/null 2>&1
}

ims_pg_isready() { pg_isready -q -t 5 -h "$1" -p "$2" >/dev/null 2>&1; }

ims_pg_ensure_client() {
    if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
        ims_apt_install postgresql-client
    fi
}

# Directory with initdb/pg_ctl: the PATH's initdb, else Debian's newest
# /usr/lib/postgresql/VERSION/bin. Sets IMS_PG_BINDIR.
ims_pg_find_bindir() {
    local p d
    if p=$(command -v initdb 2>/dev/null) && [[ -x $(dirname "$(readlink -f "${p}")")/pg_ctl ]]; then
        IMS_PG_BINDIR=$(dirname "$(readlink -f "${p}")")
        return 0
    fi
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -x ${d}/initdb && -x ${d}/pg_ctl ]]; then
        IMS_PG_BINDIR=${d}
        return 0
    fi
    return 1
}

# Start every installed-but-stopped Debian cluster named main.
ims_pg_start_debian_cluster() {
    local conf ver started=1 i
    command -v pg_ctlcluster >/dev/null 2>&1 || return 1
    ims_can_root || return 1
    for conf in /etc/postgresql/*/main; do
        [[ -d ${conf} ]] || continue
        ver=$(basename "$(dirname "${conf}")")
        ims_log "starting stopped Debian cluster ${ver}/main"
        if ims_as_root pg_ctlcluster --skip-systemctl-redirect "${ver}" main start; then
            started=0
        fi
    done
    ((started == 0)) || return 1
    for ((i = 0; i < 30; i++)); do
        ims_pg_isready 127.0.0.1 5432 && return 0
        sleep 1
    done
    return 1
}

ims_pg_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ims_pg_free_port() {
    local port=$1 last=$(($1 + 100))
    while ((port <= last)); do
        if ! ims_pg_port_in_use "${port}"; then
            echo "${port}"
            return 0
        fi
        port=$((port + 1))
    done
    return 1
}

ims_pg_stop_private() {
    local dir=${IMS_PG_PRIVATE_DIR}
    [[ -n ${dir} ]] || return 0
    IMS_PG_PRIVATE_DIR=""
    if [[ -f ${dir}/data/postmaster.pid ]]; then
        (cd / && "${IMS_PG_RUNAS[@]}" "${IMS_PG_BINDIR}/pg_ctl" -D "${dir}/data" -m fast -w -t 30 stop) >/dev/null 2>&1 ||
            (cd / && "${IMS_PG_RUNAS[@]}" "${IMS_PG_BINDIR}/pg_ctl" -D "${dir}/data" -m immediate -w -t 30 stop) >/dev/null 2>&1 ||
            ims_warn "could not stop the private PostgreSQL in ${dir}"
    fi
    if [[ ${IMS_TEST_PG_KEEP:-0} == 1 ]]; then
        ims_log "PostgreSQL: private cluster stopped; kept ${dir} (IMS_TEST_PG_KEEP=1)"
    else
        rm -rf "${dir}"
        ims_log "PostgreSQL: private cluster stopped and ${dir} removed"
    fi
}

ims_pg_start_private() {
    local dir port attempt
    ims_pg_find_bindir || {
        ims_apt_install postgresql
        ims_pg_find_bindir || ims_die "PostgreSQL server binaries (initdb, pg_ctl) not found even after installing postgresql"
    }
    IMS_PG_RUNAS=()
    if [[ ${EUID} -eq 0 ]]; then
        # initdb and postgres refuse to run as root.
        id postgres >/dev/null 2>&1 ||
            ims_die "running as root but there is no 'postgres' OS user to run initdb as (install Debian's postgresql package)"
        IMS_PG_RUNAS=(runuser -u postgres --)
    fi

    dir=$(mktemp -d /tmp/ims-test-pg.XXXXXX)
    IMS_PG_PRIVATE_DIR=${dir}
    ims_on_exit ims_pg_stop_private
    chmod 700 "${dir}"
    if [[ ${EUID} -eq 0 ]]; then chown postgres: "${dir}"; fi

    ims_log "initdb private cluster in ${dir}/data (${IMS_PG_BINDIR})"
    if ! (cd / && "${IMS_PG_RUNAS[@]}" "${IMS_PG_BINDIR}/initdb" -D "${dir}/data" \
        --auth=trust -U postgres -E UTF8 --no-locale --no-sync) >"${dir}/initdb.log" 2>&1; then
        cat "${dir}/initdb.log" >&2
        ims_die "initdb failed"
    fi
    # Throwaway cluster: durability off for speed; only 127.0.0.1, socket in
    # our own directory (not /var/run/postgresql).
    cat >>"${dir}/data/postgresql.conf" <<EOF

# --- added by scripts/lib/pg.sh (throwaway test cluster) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '${dir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    port=${IMS_TEST_PG_PORT:-55432}
    for attempt in 1 2 3; do
        port=$(ims_pg_free_port "${port}") || ims_die "no free TCP port for the private PostgreSQL"
        ims_log "starting private PostgreSQL on 127.0.0.1:${port} (attempt ${attempt})"
        if (cd / && "${IMS_PG_RUNAS[@]}" "${IMS_PG_BINDIR}/pg_ctl" -D "${dir}/data" \
            -l "${dir}/server.log" -w -t 60 -o "-p ${port}" start) >/dev/null 2>&1; then
            IMS_TEST_PG_URL="postgres://postgres@127.0.0.1:${port}/postgres"
            if ims_pg_try "${IMS_TEST_PG_URL}" trust; then
                return 0
            fi
            (cd / && "${IMS_PG_RUNAS[@]}" "${IMS_PG_BINDIR}/pg_ctl" -D "${dir}/data" -m immediate -w stop) >/dev/null 2>&1 || true
        fi
        tail -n 20 "${dir}/server.log" >&2 2>/dev/null || true
        port=$((port + 1))
    done
    ims_die "could not start the private PostgreSQL (log above)"
}

ims_pg_setup() {
    local sys_url="postgres://postgres@127.0.0.1:5432/postgres" how=""
    ims_pg_ensure_client

    if [[ ${IMS_TEST_PG_FORCE_PRIVATE:-0} == 1 ]]; then
        ims_log "IMS_TEST_PG_FORCE_PRIVATE=1: skipping any existing PostgreSQL"
    else
        if [[ -n ${IMS_TEST_PG_URL:-} ]]; then
            if ims_pg_try "${IMS_TEST_PG_URL}"; then
                how="given IMS_TEST_PG_URL"
            else
                ims_warn "IMS_TEST_PG_URL=$(ims_pg_redact "${IMS_TEST_PG_URL}") does not answer; looking for another PostgreSQL"
            fi
        fi
        if [[ -z ${how} ]] && ims_pg_isready 127.0.0.1 5432 && ims_pg_try "${sys_url}" trust; then
            how="system server on 127.0.0.1:5432 (trust)"
        fi
        if [[ -z ${how} ]] && ! ims_pg_isready 127.0.0.1 5432 && ims_pg_start_debian_cluster &&
            ims_pg_try "${sys_url}" trust; then
            how="system Debian cluster on 127.0.0.1:5432, started by this script (trust)"
        fi
        if [[ ${how} == system* ]]; then IMS_TEST_PG_URL=${sys_url}; fi
    fi

    if [[ -z ${how} ]]; then
        ims_pg_start_private
        how="private throwaway cluster in ${IMS_PG_PRIVATE_DIR} (removed on exit)"
    fi
    export IMS_TEST_PG_URL
    ims_log "PostgreSQL: using ${how}"
    ims_log "PostgreSQL: IMS_TEST_PG_URL=$(ims_pg_redact "${IMS_TEST_PG_URL}")"
    ims_log "PostgreSQL: $(psql -X -w -q -At -d "${IMS_TEST_PG_URL}" -c 'select version()' 2>/dev/null || echo '?')"
}
