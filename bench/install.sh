#!/usr/bin/env bash
# Installs the peers of `kyc-bench --peers` (Hive Gateway with GraphQL Mesh compose, and Tailcall's Linux binary)
# from the npm registry with bench/package-lock.json: `npm ci` when bench/node_modules is missing or was installed
# from another lock file. kyc-bench --peers runs it first; it may also be run by hand. node_modules is never
# committed (.gitignore).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "bench/install.sh: Node.js 20 or newer with npm is needed for the peers (Hive Gateway 2 asks for Node >= 20)" >&2
    echo "and was not found on PATH. Install it (e.g. from nodejs.org or your distribution), then run again." >&2
    exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    echo "bench/install.sh: Node.js $(node --version) found; Hive Gateway 2 asks for Node.js 20 or newer." >&2
    exit 1
fi

# What the installed tree was made from: npm ci again when the lock file or package.json changed.
stamp=node_modules/.kyc-bench-installed
wanted="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "== npm ci (bench/: Hive Gateway, GraphQL Mesh compose, Tailcall)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$wanted" > "$stamp"
fi

# Tailcall 1.6's Linux binary needs glibc 2.38 or newer (it links GLIBC_2.38/2.39 symbols); 1.0.0, the one
# package.json pins, needs 2.34. Say so plainly rather than let kyc-bench fail on a loader error.
tailcall=node_modules/@tailcallhq/core-linux-x64-gnu/bin/tailcall
if ! version="$(TAILCALL_TRACKER=false "$tailcall" --version 2>&1)"; then
    echo "bench/install.sh: Tailcall's binary does not run here:" >&2
    echo "$version" >&2
    echo "(glibc here: $(ldd --version 2>/dev/null | head -1))" >&2
    exit 1
fi
echo "== peers installed: Hive Gateway $(node -p 'require("./node_modules/@graphql-hive/gateway/package.json").version'), $version" >&2
