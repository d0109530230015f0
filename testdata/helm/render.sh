#!/bin/sh
# Re-renders the Helm fixtures in this folder (see README.md).
#
#   testdata/helm/render.sh HELM
#
# HELM is helm v3.22.0 (`make helm` installs it into bin/tools). The charts
# are read from the istio.io/istio module source in the Go module cache
# (downloaded with `go mod download` if missing); set ISTIO_1_30_SRC or
# ISTIO_1_31_SRC to a checkout of that commit to use it instead.
#
# Every file is first written to a temporary folder, so a failing helm
# leaves the fixtures as they were.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 HELM" >&2
	exit 2
fi
case $1 in /*) HELM=$1 ;; *) HELM=$PWD/$1 ;; esac
cd "$(dirname "$0")"

got=$("$HELM" version --template '{{.Version}}')
if [ "$got" != v3.22.0 ]; then
	echo "$HELM must be helm v3.22.0, it reports $got" >&2
	exit 1
fi

# src MODULE_VERSION: the folder of that istio.io/istio module version.
# Run outside any module, so that no go.mod or go.sum is touched.
src() {
	json=$(cd / && GOFLAGS= go mod download -json "istio.io/istio@$1") || {
		echo "go mod download istio.io/istio@$1 failed: $json" >&2
		return 1
	}
	echo "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# render REV VERSION SRC: the five charts of SRC, as revision REV, into $out/REV.
render() {
	rev=$1 version=$2 charts=$3/manifests/charts
	pkg=$out/charts-$rev dir=$out/$rev
	mkdir -p "$pkg" "$dir"
	# The charts in the source say version 1.0.0; Istio's release stamps
	# the release version into them. Packaging with it gives the labels
	# (helm.sh/chart, app.kubernetes.io/version) the published charts give.
	for chart in base istio-control/istio-discovery istio-cni ztunnel gateway; do
		"$HELM" package "$charts/$chart" --version "$version" --app-version "$version" -d "$pkg" >/dev/null
	done
	set -- --set revision="$rev" --set global.hub=docker.io/istio --set global.tag="$version"
	# Release names, namespaces and profiles as in Istio's "Install with
	# Helm" (ambient) guide; istiod's release carries the revision, as in
	# its canary upgrade guide, so that two revisions can be installed.
	"$HELM" template istio-base "$pkg/base-$version.tgz" -n istio-system "$@" >"$dir/base.yaml"
	"$HELM" template "istiod-$rev" "$pkg/istiod-$version.tgz" -n istio-system "$@" --set profile=ambient >"$dir/istiod.yaml"
	"$HELM" template istio-cni "$pkg/cni-$version.tgz" -n istio-system "$@" --set profile=ambient >"$dir/cni.yaml"
	"$HELM" template ztunnel "$pkg/ztunnel-$version.tgz" -n istio-system "$@" >"$dir/ztunnel.yaml"
	"$HELM" template istio-ingress "$pkg/gateway-$version.tgz" -n istio-ingress "$@" >"$dir/gateway.yaml"
	# In install order.
	for chart in base istiod cni ztunnel gateway; do
		cat "$dir/$chart.yaml"
	done >"$dir/all.yaml"
}
src_1_30=${ISTIO_1_30_SRC:-$(src v0.0.0-20260423205519-b01690e6db7d)}
src_1_31=${ISTIO_1_31_SRC:-$(src v0.0.0-20260827124520-eed52ebb66ad)}
render 1-30 1.30.2 "$src_1_30"
render 1-31 1.31.0 "$src_1_31"

for rev in 1-30 1-31; do
	mkdir -p "$rev"
	cp "$out/$rev"/*.yaml "$rev/"
done
echo "rendered $(find "$out" -name '*.yaml' | wc -l) files into $(pwd)"
