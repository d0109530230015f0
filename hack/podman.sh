#!/usr/bin/env bash
# Installs the container engine the image tests drive (podman, from Debian
# packages, pinned) and writes its containers.conf:
#
#   hack/podman.sh            # as root, on Debian 12
#
# runc, not crun: crun refuses some machines' cgroups. nofile is capped at
# the hard limit (podman's default asks for more than some machines allow)
# and nproc at 32768. kpt runs it with KPT_FN_RUNTIME=podman; kustomize
# calls `docker`, which the tests point at podman themselves.
set -euo pipefail

packages=(
	podman=4.3.1+ds1-8+deb12u1+b3
	buildah=1.28.2+ds1-3+deb12u1+b3
	runc=1.1.5+ds1-1+deb12u1
	fuse-overlayfs=1.10-1
	uidmap=1:4.13+dfsg1-1+deb12u2
	catatonit=0.1.7-1+b2
	containernetworking-plugins=1.1.1+ds1-3+b5
)

if ! command -v podman >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

conf=${CONTAINERS_CONF:-/etc/containers/containers.conf}
mkdir -p "$(dirname "$conf")"
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
cat >"$conf" <<CONF
# Written by hack/podman.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
podman version --format 'podman {{.Client.Version}}'
