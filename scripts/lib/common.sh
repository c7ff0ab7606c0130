# shellcheck shell=bash
# Shared helpers for scripts/test.sh (sourced, never executed directly).
#
#   ims_log / ims_warn / ims_die   messages on stderr, prefixed "[ims]"
#   ims_banner TEXT                a visible section line
#   ims_can_root / ims_as_root     run as root (directly, or through sudo)
#   ims_apt_install PKG...         apt-get install, with one `apt-get update` first
#   ims_on_exit FUNC               run FUNC when the script exits (LIFO, once)

ims_log() { printf '[ims] %s\n' "$*" >&2; }
ims_warn() { printf '[ims] WARNING: %s\n' "$*" >&2; }
ims_die() {
    printf '[ims] ERROR: %s\n' "$*" >&2
    exit 1
}
ims_banner() { printf '\n========== %s ==========\n' "$*"; }

# --- root / sudo -------------------------------------------------------------

# True when we are root, or sudo is there (non-interactive when stdin is no tty,
# as in CI: `sudo -n` then fails at once instead of waiting for a password).
ims_can_root() {
    [[ ${EUID} -eq 0 ]] && return 0
    command -v sudo >/dev/null 2>&1 || return 1
    if [[ -t 0 ]]; then return 0; fi
    sudo -n true 2>/dev/null
}

ims_as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    elif [[ -t 0 ]]; then
        sudo "$@"
    else
        sudo -n "$@"
    fi
}

# --- apt ---------------------------------------------------------------------

IMS_APT_UPDATED=0

# Install Debian packages. Only called when something is actually missing.
ims_apt_install() {
    (($# > 0)) || return 0
    command -v apt-get >/dev/null 2>&1 ||
        ims_die "need package(s) '$*' but apt-get is not available; install them by hand"
    ims_can_root ||
        ims_die "need package(s) '$*' but this is not root and sudo is not available; install them by hand"
    if [[ ${IMS_APT_UPDATED} -eq 0 ]]; then
        ims_log "apt-get update"
        ims_as_root apt-get update -q
        IMS_APT_UPDATED=1
    fi
    ims_log "apt-get install $*"
    ims_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
}

# --- exit hooks --------------------------------------------------------------

IMS_EXIT_HOOKS=()
IMS_EXIT_HOOKS_RAN=0

ims_on_exit() { IMS_EXIT_HOOKS+=("$1"); }

ims__run_exit_hooks() {
    local rc=$? i
    [[ ${IMS_EXIT_HOOKS_RAN} -eq 0 ]] || return 0
    IMS_EXIT_HOOKS_RAN=1
    set +e
    for ((i = ${#IMS_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
        "${IMS_EXIT_HOOKS[i]}"
    done
    return "${rc}"
}

trap ims__run_exit_hooks EXIT
# Turn signals into a normal exit so the EXIT trap (cluster teardown) runs.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
