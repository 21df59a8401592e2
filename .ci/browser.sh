#!/usr/bin/env bash
# The browser test: GraphiQL in Debian's Chromium, headless, against a sandbox-mode gateway and a production-mode one
# (signing in at an OpenID provider inside the test, tests/browser/openid.mjs), with the network to anything but the
# gateway (and that provider) blocked (tests/browser/graphiql.mjs). Installs Chromium from Debian's packages when
# /usr/bin/chromium is missing, installs playwright-core from tests/browser/package-lock.json (it downloads no
# browser), builds the gateway when needed (KYC_GATEWAY_BIN names a binary to use instead), and saves screenshots
# under the build directory: ${CARGO_TARGET_DIR:-target}/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v node >/dev/null; then
    echo "== installing Node.js from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

echo "== npm ci (tests/browser: playwright-core)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

target="${CARGO_TARGET_DIR:-target}"
if [ -z "${KYC_GATEWAY_BIN:-}" ]; then
    echo "== cargo build --locked --bin kyc-gateway"
    cargo build --locked --bin kyc-gateway
    KYC_GATEWAY_BIN="$target/debug/kyc-gateway"
fi

echo "== GraphiQL in headless Chromium (tests/browser/graphiql.mjs)"
BROWSER_SCREENSHOTS="$target/browser" node tests/browser/graphiql.mjs "$KYC_GATEWAY_BIN"
