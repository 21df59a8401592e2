#!/usr/bin/env bash
# Re-vendors the GraphiQL page's third-party files (src/server/assets/vendor/, embedded by src/server/pages.rs) from
# the npm registry with `npm pack`, checks each against the SHA-256 pinned below, and only then replaces the
# committed copies. `--check` checks the committed copies only, without the network.
#
# GraphiQL 4.1.2 is the last release with a UMD bundle (5.x ships none) and React 18.3.1 the last React
# with UMD builds (19 has none), which the page loads as plain scripts. To move to other versions, change the
# versions and the hashes together, then the file names in src/server/pages.rs and src/server/assets/graphiql.html.
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPHIQL_VERSION=4.1.2
REACT_VERSION=18.3.1
VENDOR=src/server/assets/vendor

# `sha256sum --check` format: hash, two spaces, file name in $VENDOR. tests/api/graphiql.rs reads these lines too.
PINNED='867226ba8af5ce7949903fc53932f78dac9f4bfc6cc8da0fd3869b8bc6c5256b  graphiql.min.js
30487e07635d312a63f647b140d37740a73c53332b0975bf4b1fe985ca6ec885  graphiql.min.css
d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd  react.production.min.js
35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d  react-dom.production.min.js'

check() {
    (cd "$1" && printf '%s\n' "$PINNED" | sha256sum --check --strict -)
}

if [ "${1:-}" = "--check" ]; then
    check "$VENDOR"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"

echo "== npm pack graphiql@$GRAPHIQL_VERSION react@$REACT_VERSION react-dom@$REACT_VERSION"
# npm checks each tarball against the registry's integrity (sha512) before writing it.
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null)

tar -xzf "$work/graphiql-$GRAPHIQL_VERSION.tgz" -C "$work/out" --strip-components=1 \
    package/graphiql.min.js package/graphiql.min.css
tar -xzf "$work/react-$REACT_VERSION.tgz" -C "$work/out" --strip-components=2 package/umd/react.production.min.js
tar -xzf "$work/react-dom-$REACT_VERSION.tgz" -C "$work/out" --strip-components=2 \
    package/umd/react-dom.production.min.js

echo "== checking the downloaded files against the pinned SHA-256"
check "$work/out"

mkdir -p "$VENDOR"
for file in graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js; do
    install -m 0644 "$work/out/$file" "$VENDOR/$file"
done
echo "== $VENDOR is up to date"
