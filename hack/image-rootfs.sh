#!/usr/bin/env bash
# Lays out the image's root file system, the same for `make image` (FROM
# scratch, from the host-built binary) and the Dockerfile (from its build
# stage):
#
#   hack/image-rootfs.sh OUT BINARY LICENSE
#
# OUT holds exactly: /etc/passwd and /etc/group with root, nobody (kpt and
# kustomize run functions as --user nobody) and nonroot (the image's
# USER, 65532), /tmp (1777), /LICENSE and /usr/local/bin/istio-gitops.
set -euo pipefail
out=${1:?usage: $0 OUT BINARY LICENSE}
binary=${2:?binary}
license=${3:?license}

rm -rf "$out"
mkdir -p "$out/etc" "$out/tmp" "$out/usr/local/bin"
chmod 0755 "$out" "$out/etc" "$out/usr" "$out/usr/local" "$out/usr/local/bin"
chmod 1777 "$out/tmp"
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
chmod 0644 "$out/etc/passwd" "$out/etc/group"
install -m 0644 "$license" "$out/LICENSE"
install -m 0755 "$binary" "$out/usr/local/bin/istio-gitops"
