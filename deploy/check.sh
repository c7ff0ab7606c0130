#!/usr/bin/env bash
# Proves the deployment's security claims offline (no AWS account needed):
#   1. cfn-lint      every template is valid CloudFormation (no error, no warning);
#   2. checkov       no failed check on the templates and the Dockerfile (each suppression is
#                    inline in the template with its reason, and listed below);
#   3. parliament    no finding on any IAM policy document (identity and resource policies);
#   4. our own tests the security-group graph, no wildcard, encryption, the task role exactly,
#                    the app's contract (only known IMS_* variables, filters on real log lines),
#                    and that every one of those checks fails on a deliberately broken template.
# Usage (from anywhere):  deploy/check.sh
# The tools live in a virtual environment (IMS_DEPLOY_VENV, default ~/.cache/ims-deploy-venv),
# created from deploy/requirements.txt + constraints.txt on first use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${IMS_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ims-deploy-venv}"
stamp="$venv/.ims-requirements"
wanted="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)"
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    step "installing cfn-lint, checkov and parliament into $venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 needs python3-venv for `python3 -m venv`.
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        else
            echo "deploy/check.sh: python3 cannot create virtual environments; install python3-venv" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements.txt" -c "$here/constraints.txt"
    echo "$wanted" > "$stamp"
fi
py="$venv/bin/python"
templates=("$here"/cloudformation/*.yaml)

step "cfn-lint ($("$venv/bin/cfn-lint" --version))"
"$venv/bin/cfn-lint" --format parseable -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} templates, no errors, no warnings"

step "checkov (cloudformation + dockerfile)"
# --skip-download: offline, no platform guidelines. Suppressions are Metadata.checkov.skip
# entries with a comment in the templates (the tests require the comment).
(cd "$root" && BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" -d deploy --framework cloudformation dockerfile \
    --skip-download --quiet --compact)
"$py" "$here/tools/checkov_skips.py"

step "parliament (every IAM policy document)"
(cd "$here/tools" && "$py" parliament_check.py)

step "deploy/tests"
(cd "$root" && "$py" -m unittest discover -s deploy/tests -v)

printf '\ndeploy/check.sh: all green in %ss\n' "$((SECONDS - started))"
