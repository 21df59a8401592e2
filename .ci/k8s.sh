#!/usr/bin/env bash
# Kubernetes manifests: renders both overlays of k8s/ with kustomize and validates every document offline against the
# Kubernetes schemas of a pinned version (.ci/k8s-validate.py says what is checked). Fails on an overlay that does not
# render or a document that does not validate. Run by .ci/run; alone: `.ci/k8s.sh`.
#
# Renderer: `kubectl kustomize` when kubectl embeds kustomize v5 or later, else PyPI's pykustomize (kustomize v5 built
# into a Python extension; K8S_RENDERER=pykustomize forces it). Validator: PyPI's kubernetes-validate, which bundles
# the JSON schemas of Kubernetes 1.25 to 1.37. Both go into a virtualenv under the build directory, once; the wheels
# are checked against the SHA-256 pinned below before they are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.32.0
OVERLAYS=(sandbox production)
VALIDATE_WHEEL=kubernetes_validate-1.37.0-py3-none-any.whl
VALIDATE_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
KUSTOMIZE_WHEEL=pykustomize-0.1.4-py3-none-any.whl
KUSTOMIZE_SHA256=f8da6be12fb35b56158d2f9043a67d39c1ce84eae9c8f344c7ed934709192467

build="${CARGO_TARGET_DIR:-target}"
venv="$build/k8s-venv"
out="$build/k8s"
mkdir -p "$out"

# Installs a pinned wheel (and its dependencies, from the index) into the venv, unless it is there already.
# $1: wheel file name, $2: its SHA-256, $3...: extra pip options.
install_wheel() {
    local wheel=$1 sha=$2 stamp="$venv/.installed-$1"
    shift 2
    [[ -f $stamp ]] && return 0
    if [[ ! -x $venv/bin/python ]]; then
        if ! python3 -c 'import ensurepip, venv' 2> /dev/null; then
            echo "== installing python3-venv from Debian's packages"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv > /dev/null
        fi
        python3 -m venv "$venv"
    fi
    local name=${wheel%%-*} version
    version=${wheel#*-}
    version=${version%%-*}
    echo "installing ${name//_/-} $version into $venv"
    "$venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: --ignore-requires-python \
        --dest "$venv/wheels" "${name//_/-}==$version"
    echo "$sha  $venv/wheels/$wheel" | sha256sum --check --quiet
    "$venv/bin/python" -m pip install --quiet "$@" "$venv/wheels/$wheel"
    touch "$stamp"
}

render_with_kubectl() { kubectl kustomize "$1"; }
render_with_pykustomize() {
    "$venv/bin/python" -c '
import asyncio, sys
from pykustomize import build
sys.stdout.write(asyncio.run(build(sys.argv[1])).yaml)' "$1"
}

kubectl_kustomize=$(kubectl version --client 2> /dev/null | grep -E '^Kustomize Version: v' || true)
renderer=${K8S_RENDERER:-}
if [[ -z $renderer ]]; then
    renderer=pykustomize
    if [[ $kubectl_kustomize =~ Version:\ v([5-9]|[1-9][0-9])\. ]]; then
        renderer=kubectl
    fi
fi
if [[ $renderer == pykustomize ]]; then
    # It declares Python >= 3.14 but runs on 3.11 (its extension is a Go library built for linux-amd64).
    install_wheel "$KUSTOMIZE_WHEEL" "$KUSTOMIZE_SHA256" --ignore-requires-python
fi
install_wheel "$VALIDATE_WHEEL" "$VALIDATE_SHA256"

case $renderer in
    kubectl) echo "renderer: kubectl kustomize (${kubectl_kustomize:-kustomize version unknown})" ;;
    pykustomize) echo "renderer: $KUSTOMIZE_WHEEL (kustomize v5)" ;;
    *) echo "K8S_RENDERER must be kubectl or pykustomize" >&2; exit 2 ;;
esac

args=()
for overlay in "${OVERLAYS[@]}"; do
    rendered="$out/$overlay.yaml"
    if ! "render_with_$renderer" "k8s/overlays/$overlay" > "$rendered"; then
        echo "k8s/overlays/$overlay does not render" >&2
        exit 1
    fi
    args+=("$overlay=$rendered")
done
"$venv/bin/python" .ci/k8s-validate.py "$KUBERNETES_VERSION" "${args[@]}"
