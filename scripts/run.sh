#!/usr/bin/env bash
# Runs IMS on its embedded defaults: SQLite, documents and mail under ./ims-data/, keys generated
# on first start (owner-only files), the web app at http://127.0.0.1:8080/. Installs the C
# compiler and Node.js it needs to build when missing.
# A database without production data first gets the demo factory (`ims demo`): its users'
# passwords are printed once, on that first start.
#
#   ./scripts/run.sh            # serve on http://127.0.0.1:8080
#   IMS_LISTEN=0.0.0.0:9000 ./scripts/run.sh
#
# Any IMS_* variable of the README's configuration table is honoured.
set -euo pipefail

IMS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${IMS_ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${IMS_ROOT}/scripts/lib/common.sh"

if ! command -v cargo >/dev/null 2>&1; then
    cargo_bin=${CARGO_HOME:-${HOME}/.cargo}/bin
    [[ -x ${cargo_bin}/cargo ]] ||
        ims_die "cargo not found: install the Rust toolchain (rustup, stable) first"
    export PATH="${cargo_bin}:${PATH}"
fi
command -v cc >/dev/null 2>&1 || ims_apt_install gcc libc6-dev

cargo build --release --locked --bin ims
# The web app (served at / from web/dist): rebuilt when its sources are newer than the build.
command -v npm >/dev/null 2>&1 || ims_apt_install nodejs npm
if [[ ! -f web/dist/index.html ]] || [[ -n $(find web/src web/index.html web/package-lock.json -newer web/dist/index.html -print -quit) ]]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)
fi
# Exit status 3: the database already has production data, so there is nothing to load (and its
# message is not worth showing on every start).
demo_log=$(mktemp)
demo_status=0
"${IMS_ROOT}/target/release/ims" demo 2>"${demo_log}" || demo_status=$?
((demo_status == 3)) || cat "${demo_log}" >&2
rm -f "${demo_log}"
((demo_status == 0 || demo_status == 3)) || ims_die "loading the demo factory failed (exit ${demo_status})"
exec "${IMS_ROOT}/target/release/ims" serve
