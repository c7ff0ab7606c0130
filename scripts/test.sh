#!/usr/bin/env bash
# The single command that runs IMS's whole test suite, on a fresh Debian 12
# machine too (it installs what it needs; .ci/run just execs it).
#
#   ./scripts/test.sh [NEXTEST-ARGS...]
#
# Steps (every step runs even if an earlier one failed; the exit status is
# non-zero if any failed, and a summary lists which):
#   1. tools: cargo (must exist: Rust can't be installed offline), rustfmt and
#      clippy components, a C compiler (apt), cargo-nextest (cargo install).
#   2. cargo fmt --all -- --check; cargo clippy --all-targets --locked -- -D warnings
#   3. PostgreSQL: scripts/lib/pg.sh (ims_pg_setup) finds or starts one and
#      exports IMS_TEST_PG_URL. IMS_TEST_PG_FORCE_PRIVATE=1 forces a private
#      throwaway cluster; see that file for all switches. Then the stand-ins the
#      tests start themselves: Python's aiosmtpd (SMTP) and moto[server] (AWS,
#      for the Cognito tests), installed with pip when missing.
#   4. cargo nextest run --all-targets --no-fail-fast, twice:
#      IMS_TEST_BACKEND=sqlite, then IMS_TEST_BACKEND=postgres.
#      NEXTEST-ARGS (e.g. a test filter) are passed to both runs.
#   5. without NEXTEST-ARGS: the web app (web/: npm ci, build, vitest, bundle
#      scan, end-to-end journeys in Debian's chromium), the deployment
#      checks (deploy/check.sh: cfn-lint, checkov, parliament, template tests),
#      schemathesis against the served OpenAPI document as every role
#      (bench/schemathesis/run.sh), and the secrets scan of the committed files,
#      the web bundle and the image's files (scripts/secret_scan/scan.py).
#
# With CI=true the only difference is nextest's profile `ci`
# (NEXTEST_PROFILE=ci, see .config/nextest.toml).
# apt-get is used only when something is missing, and only as root or via sudo.
set -euo pipefail

IMS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${IMS_ROOT}"

# shellcheck source=scripts/lib/common.sh
source "${IMS_ROOT}/scripts/lib/common.sh"
# shellcheck source=scripts/lib/pg.sh
source "${IMS_ROOT}/scripts/lib/pg.sh"

FAILED_STEPS=()

# run_step NAME CMD...: banner, run, record failure without stopping.
run_step() {
    local name=$1
    shift
    ims_banner "${name}"
    if "$@"; then
        ims_log "${name}: ok"
    else
        local rc=$?
        ims_log "${name}: FAILED (exit ${rc})"
        FAILED_STEPS+=("${name}")
    fi
}

# --- 1. tools ----------------------------------------------------------------

ensure_tools() {
    ims_banner "tools"
    if ! command -v cargo >/dev/null 2>&1; then
        # A rustup install whose env was not sourced (e.g. a non-login shell).
        local cargo_bin=${CARGO_HOME:-${HOME}/.cargo}/bin
        if [[ -x ${cargo_bin}/cargo ]]; then
            export PATH="${cargo_bin}:${PATH}"
        else
            ims_die "cargo not found. Install the Rust toolchain (rustup, stable) first: it cannot be installed offline by this script."
        fi
    fi
    ims_log "$(cargo --version)"

    cargo fmt --version >/dev/null 2>&1 ||
        ims_die "rustfmt is missing: run 'rustup component add rustfmt' (needs the Rust download server)"
    cargo clippy --version >/dev/null 2>&1 ||
        ims_die "clippy is missing: run 'rustup component add clippy' (needs the Rust download server)"

    # C toolchain for crates with C/asm parts (ring, bundled SQLite) and for
    # building cargo-nextest.
    if ! command -v cc >/dev/null 2>&1; then
        ims_apt_install gcc libc6-dev
    fi

    if ! cargo nextest --version >/dev/null 2>&1; then
        ims_log "cargo-nextest missing: cargo install cargo-nextest --locked"
        cargo install cargo-nextest --locked ||
            ims_die "could not install cargo-nextest from crates.io"
        if ! cargo nextest --version >/dev/null 2>&1; then
            export PATH="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-${HOME}/.cargo}}/bin:${PATH}"
        fi
        cargo nextest --version >/dev/null 2>&1 ||
            ims_die "cargo-nextest was installed but 'cargo nextest' still does not run; is cargo's bin directory on PATH?"
    fi
    ims_log "$(cargo nextest --version 2>/dev/null | head -n 1)"
}

# --- 2. lint -----------------------------------------------------------------

LOCKED=()
if [[ -f Cargo.lock ]]; then LOCKED=(--locked); fi

lint() {
    run_step "cargo fmt --check" cargo fmt --all -- --check
    run_step "cargo clippy" cargo clippy --all-targets "${LOCKED[@]}" -- -D warnings
}

# --- 4. tests ----------------------------------------------------------------

# run_nextest BACKEND [ARGS...]
run_nextest() {
    local backend=$1
    shift
    run_step "nextest: IMS_TEST_BACKEND=${backend}${NEXTEST_PROFILE:+ (profile ${NEXTEST_PROFILE})}" \
        env IMS_TEST_BACKEND="${backend}" IMS_TEST_PG_URL="${IMS_TEST_PG_URL:-}" \
        cargo nextest run --all-targets --no-fail-fast "${LOCKED[@]}" "$@"
}

# The SMTP server the mail tests start as a child process (python3 -m aiosmtpd):
# pip first (it serves the python3 on PATH, e.g. a pyenv one), then Debian's
# python3-aiosmtpd (pip may be missing, or refuse a system Python under PEP 668).
# apt runs in a subshell: its ims_die must fail this step, not end the script.
ensure_aiosmtpd() {
    if python3 -c 'import aiosmtpd' >/dev/null 2>&1; then return 0; fi
    if ! command -v python3 >/dev/null 2>&1; then
        (ims_apt_install python3 python3-aiosmtpd) || true
    else
        ims_log "aiosmtpd missing: python3 -m pip install aiosmtpd"
        python3 -m pip install --quiet aiosmtpd ||
            ims_warn "pip could not install aiosmtpd; trying Debian's package"
        if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
            (ims_apt_install python3-aiosmtpd) || true
        fi
    fi
    python3 -c 'import aiosmtpd' >/dev/null 2>&1 || {
        ims_warn "aiosmtpd is still not importable by python3: the mail tests will fail"
        return 1
    }
}

# The AWS stand-in the OIDC tests start as a child process (moto_server, with
# boto3 and joserfc, which the Cognito setup script uses): pip only, as Debian
# does not package moto.
ensure_moto() {
    if command -v moto_server >/dev/null 2>&1 && python3 -c 'import moto, boto3, joserfc' >/dev/null 2>&1; then
        return 0
    fi
    ims_log "moto missing: python3 -m pip install 'moto[server]'"
    python3 -m pip install --quiet 'moto[server]' || {
        ims_warn "pip could not install moto[server]: the OIDC tests will fail"
        return 1
    }
    if ! command -v moto_server >/dev/null 2>&1; then
        hash -r
        command -v moto_server >/dev/null 2>&1 || {
            ims_warn "moto_server is not on PATH after installing moto: the OIDC tests will fail"
            return 1
        }
    fi
}

# --- 5. the web app and the deployment ---------------------------------------

# The SPA in web/: install (npm ci), type-check and build, unit tests (vitest),
# the bundle scan (no secrets, no inline code, first load under 250 KB gzipped),
# then the end-to-end journeys in Debian's chromium (installed when missing)
# against the ims binary nextest built, with axe on every page.
run_web_tests() {
    if [[ ! -x /usr/bin/chromium ]]; then
        ims_apt_install chromium || return 1
    fi
    command -v npm >/dev/null 2>&1 || ims_apt_install nodejs npm || return 1
    # The binary the Rust tests just built (same features; a plain `cargo build` would
    # rebuild the dependency tree without the dev-dependencies' features).
    [[ -x target/debug/ims ]] || cargo build --locked --bin ims || return 1
    (
        cd web &&
            npm ci --no-audit --no-fund --loglevel=error &&
            npm run build &&
            npm run test:unit &&
            npm run scan &&
            IMS_BIN="${IMS_ROOT}/target/debug/ims" npm run e2e
    )
}

# --- 6. hostile input and secrets ---------------------------------------------
# schemathesis (bench/schemathesis/run.sh) against the served OpenAPI document, as
# every role, on SQLite with the debug binary: no 5xx, no response outside the
# document. ST_* variables (e.g. ST_MAX_EXAMPLES) pass through.
run_schemathesis() {
    [[ -x target/debug/ims ]] || cargo build --locked --bin ims || return 1
    ST_IMS_BIN="${IMS_ROOT}/target/debug/ims" ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}" \
        bash bench/schemathesis/run.sh
}

# The secrets scan: its self-test (every rule finds its planted secret), then the
# committed files, the built web bundle and what the container image holds (the
# binary: the debug build here, whose strings include the release build's).
run_secret_scan() {
    python3 scripts/secret_scan/scan.py --self-test &&
        python3 scripts/secret_scan/scan.py --repo "${IMS_ROOT}" --require-bundle \
            --binary "${IMS_ROOT}/target/debug/ims"
}

# --- main --------------------------------------------------------------------

main() {
    if [[ ${CI:-} == true ]]; then
        export NEXTEST_PROFILE=${NEXTEST_PROFILE:-ci}
    fi

    ensure_tools
    lint

    ims_banner "PostgreSQL"
    ims_pg_setup

    run_step "aiosmtpd (SMTP server for the mail tests)" ensure_aiosmtpd
    run_step "moto (AWS stand-in for the AWS adapter tests)" ensure_moto

    run_nextest sqlite "$@"
    run_nextest postgres "$@"

    # A filter narrows the Rust tests only; the web and deployment checks run on full runs.
    if (($# == 0)); then
        run_step "web app (build, unit, bundle scan, browser end-to-end)" run_web_tests
        run_step "deployment (cfn-lint, checkov, parliament, template tests)" bash deploy/check.sh
        run_step "API fuzzing (schemathesis against /api/openapi.json, every role)" run_schemathesis
        run_step "secrets scan (committed files, web bundle, image files)" run_secret_scan
    fi

    ims_banner "summary"
    if ((${#FAILED_STEPS[@]} > 0)); then
        ims_log "FAILED steps (${#FAILED_STEPS[@]}):"
        local step
        for step in "${FAILED_STEPS[@]}"; do ims_log "  - ${step}"; done
        return 1
    fi
    ims_log "all steps passed"
}

main "$@"
