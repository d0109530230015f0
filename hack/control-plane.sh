#!/usr/bin/env bash
# Builds the control plane the API server tests start (fn/apiserver) from
# Go modules, through a throw-away wrapper module generated here:
#
#   hack/control-plane.sh etcd v3.6.13 OUT
#   hack/control-plane.sh kube-apiserver v1.37.2 OUT
#
# etcd: `go install` refuses go.etcd.io/etcd/server/v3 (its go.mod has
# replace directives), so a wrapper module requires and builds it.
# kube-apiserver: k8s.io/kubernetes requires its staging modules at v0.0.0
# and replaces them with ./staging/src/...; the wrapper replaces each of
# them with the published v0.<minor>.<patch> instead.
set -euo pipefail

name=${1:?usage: $0 etcd|kube-apiserver VERSION OUT}
version=${2:?version}
out=${3:?output file}

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
go=${GO:-go}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
$go mod init wrapper >/dev/null 2>&1

case $name in
etcd)
	$go get "go.etcd.io/etcd/server/v3@$version"
	pkg=go.etcd.io/etcd/server/v3
	ldflags=
	;;
kube-apiserver)
	minor=${version#v1.}
	minor=${minor%%.*}
	# k8s.io/kubernetes v1.X.Y publishes its staging modules as v0.X.Y.
	staging=v0.${version#v1.}
	modfile=$($go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	# Every module k8s.io/kubernetes replaces with a staging folder, but
	# the samples it neither serves nor needs.
	for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$modfile"); do
		case $m in k8s.io/sample-cli-plugin | k8s.io/sample-controller) continue ;; esac
		$go mod edit -replace "$m=$m@$staging"
	done
	$go get "k8s.io/kubernetes/cmd/kube-apiserver@$version"
	pkg=k8s.io/kubernetes/cmd/kube-apiserver
	v=k8s.io/component-base/version
	# Without these the server reports v0.0.0-master.
	ldflags="-X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=$minor"
	;;
*)
	echo "$0: unknown component $name" >&2
	exit 1
	;;
esac

start=$(date +%s)
$go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"
mv "$out.tmp" "$out"
echo "built $name $version into $out in $(($(date +%s) - start))s"
