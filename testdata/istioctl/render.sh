#!/bin/sh
# Re-renders every istioctl fixture in this folder (see README.md).
#
#   testdata/istioctl/render.sh ISTIOCTL_1_30 ISTIOCTL_1_31
#
# ISTIOCTL_1_30 and ISTIOCTL_1_31 are istioctl binaries built from the
# istio.io/istio pseudo-versions named in README.md (`make istioctl-fixtures`
# builds both into bin/tools), stamped with their release versions: the
# script refuses any other version, "unknown" (an unstamped build) included,
# since two builds of different lines cannot be told apart otherwise.
#
# Every file is first written to a temporary folder, so a failing istioctl
# leaves the fixtures as they were.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 ISTIOCTL_1_30 ISTIOCTL_1_31" >&2
	exit 2
fi
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
ISTIOCTL_1_30=$(abs "$1")
ISTIOCTL_1_31=$(abs "$2")
cd "$(dirname "$0")"

# check BIN VERSION: BIN must report VERSION.
check() {
	got=$("$1" version --remote=false -o json | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -n 1)
	if [ "$got" != "$2" ]; then
		echo "$1 must be istioctl $2, it reports ${got:-nothing}" >&2
		exit 1
	fi
}
check "$ISTIOCTL_1_30" 1.30.2
check "$ISTIOCTL_1_31" 1.31.0

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# render BIN REV VERSION: every per-revision fixture of REV into $out/REV.
render() {
	bin=$1 rev=$2 version=$3
	set -- --set hub=docker.io/istio --set tag="$version" --set revision="$rev"
	mkdir -p "$out/$rev"
	"$bin" manifest generate "$@" >"$out/$rev/default.yaml"
	"$bin" manifest generate "$@" --set profile=demo >"$out/$rev/demo.yaml"
	"$bin" manifest generate "$@" --set values.defaultRevision="$rev" >"$out/$rev/default-revision.yaml"
	"$bin" manifest generate "$@" -f istio-operator-tags.yaml >"$out/$rev/tags.yaml"
	"$bin" manifest generate "$@" -f istio-operator-tag-default.yaml >"$out/$rev/tag-default.yaml"
	"$bin" manifest generate "$@" --set profile=ambient >"$out/$rev/ambient.yaml"
}
render "$ISTIOCTL_1_30" 1-30 1.30.2
render "$ISTIOCTL_1_31" 1-31 1.31.0
mkdir -p "$out/norev"
"$ISTIOCTL_1_31" manifest generate --set hub=docker.io/istio --set tag=1.31.0 >"$out/norev/default.yaml"

for dir in 1-30 1-31 norev; do
	mkdir -p "$dir"
	cp "$out/$dir"/*.yaml "$dir/"
done
echo "rendered $(find "$out" -name '*.yaml' | wc -l) files into $(pwd)"
