#!/usr/bin/env bash
# The production build as the Dockerfile makes it: from only the paths the Dockerfile copies, release profile, without
# the `sandbox` feature. Fails unless (1) the feature graph holds no kyc-sandbox, (2) the binary holds no sandbox code
# (none of the sandbox crate's strings, which the default build holds), and (3) `serve` with no provider configured
# refuses to start, saying how to configure one; also that jemalloc's options are built in. Run by .ci/run; alone:
# `.ci/production-build.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")/production
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

# The Dockerfile's COPY sources (not those from another stage), laid out as the image build sees them.
mapfile -t sources < <(awk '/^COPY / && !/--from/ { for (i = 2; i < NF; i++) print $i }' Dockerfile | sort -u)
for path in "${sources[@]}"; do
    mkdir -p "$context/$(dirname "$path")"
    cp -r "$root/$path" "$context/$(dirname "$path")/"
done
echo "build context (the Dockerfile's COPY sources): ${sources[*]}"

cd "$context"
build=(--release --locked -p kyc-gateway --no-default-features)
in_graph=$(cargo tree "${build[@]:1}" -e features | grep -c kyc-sandbox || true)
echo "cargo tree -e features -p kyc-gateway --no-default-features: $in_graph lines name kyc-sandbox"
[[ $in_graph -eq 0 ]] || { echo "the sandbox crate is in the production feature graph"; exit 1; }

CARGO_TARGET_DIR=$target cargo build "${build[@]}"
binary=$target/release/kyc-gateway

# Strings only the sandbox crate holds: its module paths (panic locations, type names) and its admin routes.
markers=(kyc_sandbox /_sandbox/)
for marker in "${markers[@]}"; do
    # grep exits 1 when it finds nothing, which pipefail would turn into a failed run.
    count=$({ grep -a -o -F -- "$marker" "$binary" || true; } | wc -l)
    echo "occurrences of \"$marker\" in the production binary: $count"
    [[ $count -eq 0 ]] || { echo "the production binary holds sandbox code"; exit 1; }
done

# The allocator's options (.cargo/config.toml) are built in: without them jemalloc keeps freed pages while idle.
conf=$(grep -a -c -F "background_thread:true,dirty_decay_ms" "$binary" || true)
echo "jemalloc's options (.cargo/config.toml) in the production binary: $conf"
[[ $conf -ge 1 ]] || { echo "the production binary was built without .cargo/config.toml's jemalloc options"; exit 1; }

# With nothing configured it refuses to start, and says why.
set +e
refusal=$(env -i PATH="$PATH" timeout 30 "$binary" serve --listen 127.0.0.1:0 2>&1)
status=$?
set -e
echo "serve with no provider: exit status $status"
if [[ $status -eq 0 || $status -eq 124 ]] || ! grep -q "no provider is configured" <<< "$refusal"; then
    echo "expected a refusal naming the missing provider, got (status $status):"
    echo "$refusal"
    exit 1
fi
grep -o "refusing to start[^\"]*" <<< "$refusal" | head -1
