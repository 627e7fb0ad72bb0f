#!/usr/bin/env bash
# Build (once) or find the Pulumi engine yunshang runs, and link it into the venv:
#   .venv/bin/pulumi                       the CLI, github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
#   .venv/bin/pulumi-language-python       yunshang's Python language host (tools/pulumi/engine/langhost)
#   .venv/bin/pulumi-language-python-exec  upstream's executor script, from sdk/v3 v$PULUMI_VERSION
#   .venv/bin/pulumi-resource-openstack    the OpenStack provider v$OPENSTACK_VERSION (tools/pulumi/provider)
# Binaries are built from the wrapper modules beside this script (go.mod/go.sum committed) into a
# cache outside the clone, keyed by the versions and a digest of the wrapper sources; a second run
# only relinks. A `pulumi` already on PATH at v3.259..v3.x (with pulumi-resource-openstack
# $OPENSTACK_VERSION beside it or on PATH) is used instead of building.
# Exit 6 with one line when neither Go nor a usable pulumi is present.
set -euo pipefail

PULUMI_VERSION=3.259.0
OPENSTACK_VERSION=5.5.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
BIN=$VENV/bin
CACHE=${YUNSHANG_PULUMI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yunshang/pulumi}

say() { echo "pulumi: $*" >&2; }
mkdir -p "$BIN"

version_ok() {  # "v3.X.Y" -> 0 when v3.259 <= it < v4
  local maj min
  IFS=. read -r maj min _ <<<"${1#v}"
  [[ $maj == 3 && $min =~ ^[0-9]+$ ]] && (( min >= $(cut -d. -f2 <<<"$PULUMI_VERSION") ))
}

# 1. A compatible pulumi already installed (not our own link).
ambient=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$BIN" | paste -sd: -) command -v pulumi || true)
if [[ -n $ambient ]] && version_ok "$("$ambient" version 2>/dev/null || echo none)"; then
  dir=$(dirname "$(readlink -f "$ambient")")
  prov=$(command -v pulumi-resource-openstack 2>/dev/null || true)
  [[ -x $dir/pulumi-resource-openstack ]] && prov=$dir/pulumi-resource-openstack
  if [[ -n $prov && -x $dir/pulumi-language-python && \
        "$("$prov" -version 2>/dev/null)" == "$OPENSTACK_VERSION" ]]; then
    ln -sfn "$(readlink -f "$ambient")" "$BIN/pulumi"
    ln -sfn "$dir/pulumi-language-python" "$BIN/pulumi-language-python"
    [[ -e $dir/pulumi-language-python-exec ]] && ln -sfn "$dir/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
    ln -sfn "$(readlink -f "$prov")" "$BIN/pulumi-resource-openstack"
    say "using $ambient ($("$ambient" version)) and pulumi-resource-openstack $OPENSTACK_VERSION from PATH"
    exit 0
  fi
fi

# 2. Built here: three parts, each cached under a key of its version and the digest of its sources.
digest() { (cd "$HERE" && cat "$@" | sha256sum | cut -c1-12); }
CLI_DIR=$CACHE/cli-v$PULUMI_VERSION-$(digest engine/go.mod engine/go.sum engine/tools.go)
LANG_DIR=$CACHE/langhost-v$PULUMI_VERSION-$(digest engine/go.mod engine/go.sum engine/langhost/main.go)
PROV_DIR=$CACHE/openstack-v$OPENSTACK_VERSION-$(digest provider/go.mod provider/go.sum provider/main.go provider/tokens.go)
link_parts() {
  ln -sfn "$CLI_DIR/pulumi" "$BIN/pulumi"
  ln -sfn "$LANG_DIR/pulumi-language-python" "$BIN/pulumi-language-python"
  ln -sfn "$LANG_DIR/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  ln -sfn "$PROV_DIR/pulumi-resource-openstack" "$BIN/pulumi-resource-openstack"
}
if [[ -f $CLI_DIR/.complete && -f $LANG_DIR/.complete && -f $PROV_DIR/.complete ]]; then
  link_parts
  say "cached engine: $CLI_DIR, $(basename "$LANG_DIR"), $(basename "$PROV_DIR")"
  exit 0
fi

GO=${GO:-$(command -v go || true)}
[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
if [[ -z $GO || ! -x $GO ]]; then
  echo "yunshang: the Pulumi engine is missing: install Go >= 1.25 (to build it: make pulumi) or pulumi >= v$PULUMI_VERSION with pulumi-resource-openstack $OPENSTACK_VERSION on PATH" >&2
  exit 6
fi
gov=$("$GO" env GOVERSION)
if [[ ! $gov =~ ^go1\.(2[5-9]|[3-9][0-9]) ]]; then
  echo "yunshang: the Pulumi engine needs Go >= 1.25 to build (found $gov at $GO): install a newer Go or pulumi >= v$PULUMI_VERSION on PATH" >&2
  exit 6
fi
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local

part() {  # DIR MODULE-SUBDIR COMMAND...: run COMMAND in the module with $OUT a fresh dir, then publish it as DIR
  local dir=$1 mod=$2; shift 2
  [[ -f $dir/.complete ]] && return 0
  local start; start=$(date +%s)
  OUT=$dir.tmp.$$; rm -rf "$OUT"; mkdir -p "$OUT"
  say "building $(basename "$dir") (once per version)"
  (cd "$HERE/$mod" && "$@") || { rm -rf "$OUT"; exit 1; }
  touch "$OUT/.complete"; rm -rf "$dir"; mv "$OUT" "$dir"
  say "built $(basename "$dir") in $(( $(date +%s) - start ))s, $(du -sh "$dir" | cut -f1)"
}
build_cli() {
  "$GO" build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$OUT/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  [[ $("$OUT/pulumi" version) == "v$PULUMI_VERSION" ]]
}
build_langhost() {
  "$GO" build -trimpath -ldflags "-s -w -X main.Version=$PULUMI_VERSION" -o "$OUT/pulumi-language-python" ./langhost
  install -m 0755 "$("$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" \
    "$OUT/pulumi-language-python-exec"
}
build_provider() {
  "$GO" build -trimpath -ldflags "-s -w -X main.Version=$OPENSTACK_VERSION" -o "$OUT/pulumi-resource-openstack" .
  [[ $("$OUT/pulumi-resource-openstack" -version) == "$OPENSTACK_VERSION" ]]
}
part "$CLI_DIR" engine build_cli
part "$LANG_DIR" engine build_langhost
part "$PROV_DIR" provider build_provider
link_parts
