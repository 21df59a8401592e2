#!/usr/bin/env bash
# Conformance to public suites (tests/conformance/), against the built binary:
#   audit    the graphql-http server audit (GraphQL over HTTP): 61 of 61 ok, no warning or notice;
#   compose  @apollo/composition: schema.graphql with a second subgraph extending User, no composition error;
#   fuzz     schemathesis GraphQL fuzzing (50 examples per operation, queries and mutations): no 5xx answer.
#
#   .ci/conformance.sh [audit] [compose] [fuzz]        (all three by default)
#
# Installs what is missing: Node.js (Debian's packages) and the pinned npm packages (`npm ci`,
# tests/conformance/package-lock.json); a Python venv with the pinned schemathesis (tests/conformance/requirements.txt)
# under the build directory, ${CARGO_TARGET_DIR:-target}/conformance/, where the gateway's log and the supergraph go
# too. Builds the gateway when needed (KYC_GATEWAY_BIN names a binary to use instead) and runs it in sandbox mode on
# 127.0.0.1:0, with no KYC_GATEWAY_* setting of the caller's environment. Fails if any suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
started=$SECONDS

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(audit compose fuzz)
for suite in "${suites[@]}"; do
    case "$suite" in audit | compose | fuzz) ;; *) echo "unknown suite: $suite (audit, compose, fuzz)" >&2; exit 2 ;; esac
done
wants() { [[ " ${suites[*]} " == *" $1 "* ]]; }

target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/conformance"
work="$(cd "$target/conformance" && pwd)"

if wants audit || wants compose; then
    if ! command -v node >/dev/null; then
        echo "== installing Node.js from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    echo "== npm ci (tests/conformance: graphql-http, @apollo/composition, graphql)"
    (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
fi

venv="$work/venv"
schemathesis_version="$(sed -n 's/^schemathesis==//p' tests/conformance/requirements.txt)"
if wants fuzz && ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "version $schemathesis_version"; then
    echo "== a Python venv with schemathesis $schemathesis_version ($venv)"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
fi

bin="${KYC_GATEWAY_BIN:-}"
if wants audit || wants fuzz; then
    if [ -z "$bin" ]; then
        echo "== cargo build --locked --bin kyc-gateway"
        cargo build --locked --bin kyc-gateway
        bin="$target/debug/kyc-gateway"
    fi
    bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
fi

# The gateway and its CLI in sandbox mode, whatever KYC_GATEWAY_* the caller's environment holds.
mapfile -t settings < <(compgen -e | grep '^KYC_GATEWAY_' || true)
sandboxed() { env "${settings[@]/#/--unset=}" "$@"; }

gateway_pid=""
stop_gateway() {
    if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
        kill -TERM "$gateway_pid"
        wait "$gateway_pid" 2>/dev/null || true
    fi
    gateway_pid=""
}
trap stop_gateway EXIT

# Starts a sandbox-mode gateway on a free port; sets $url.
start_gateway() {
    rm -f "$work/addr"
    # env itself, not a function's subshell, so that $! is the gateway's pid (env execs it) and stop_gateway ends it.
    env "${settings[@]/#/--unset=}" "$bin" serve --listen 127.0.0.1:0 --addr-file "$work/addr" >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    for _ in $(seq 600); do
        [ -s "$work/addr" ] && break
        if ! kill -0 "$gateway_pid" 2>/dev/null; then
            gateway_pid=""
            echo "the gateway exited while starting:" >&2
            tail -n 20 "$work/gateway.log" >&2
            return 1
        fi
        sleep 0.1
    done
    if [ ! -s "$work/addr" ]; then
        stop_gateway
        echo "the gateway did not start in 60 s" >&2
        return 1
    fi
    url="http://$(cat "$work/addr")/graphql"
    echo "== sandbox-mode gateway at $url (log: $work/gateway.log)"
}

failed=()
run() {
    local name=$1
    shift
    echo "== $name"
    if "$@"; then
        echo "-- $name: passed"
    else
        echo "-- $name: FAILED"
        failed+=("$name")
    fi
}

audit() {
    # The seed person's token with one scope: the audits ask `{ __typename }` and `__type(name:)`.
    local token
    token="$(sandboxed "$bin" token --sub b76ab44d-b71e-4d19-b6f9-f6e88cd73946 --scope uid:read)"
    timeout 120 node tests/conformance/audit.mjs "$url" "$token"
}

compose() {
    timeout 120 node tests/conformance/compose.mjs schema.graphql tests/conformance/loyalty.graphql \
        "$work/supergraph.graphql"
}

fuzz() {
    # A client token with every read scope and the writes, so that fuzzed operations reach the resolvers and the
    # sandbox providers instead of stopping at a denial.
    local scopes="client.users:read client.stats:read uid:read contact:read kyc_application:read \
kyc_application:write review.internal:read audit:read fractal.link:write verification.wallet:read \
verification.basic:read verification.basic.details:read verification.plus:read verification.plus.details:read \
verification.selfie:read verification.selfie.details:read verification.liveness:read verification.ssn:read"
    local token
    token="$(sandboxed "$bin" token --client conformance --scope "$scopes")"
    # From the build directory: schemathesis and hypothesis write nothing into the repository.
    (cd "$work" && SCHEMATHESIS_HOOKS=st_hooks PYTHONPATH="$repo/tests/conformance" timeout 240 \
        "$venv/bin/schemathesis" run "$url" --header "Authorization: Bearer $token" --checks http_not_5xx \
        --phases fuzzing --max-examples 50 --seed 1 --workers 1 --generation-database none --no-color)
}

if wants audit || wants fuzz; then
    start_gateway || failed+=("the sandbox-mode gateway did not start")
fi
if wants audit && [ -n "$gateway_pid" ]; then run "graphql-http audit (GraphQL over HTTP)" audit; fi
if wants compose; then run "Apollo Federation composition (@apollo/composition)" compose; fi
if wants fuzz && [ -n "$gateway_pid" ]; then run "schemathesis fuzzing (no 5xx)" fuzz; fi
stop_gateway

echo "== conformance: ${#suites[@]} suite(s) in $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
