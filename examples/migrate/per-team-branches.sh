#!/usr/bin/env bash
# Move the namespaces of a repository of Namespace manifests to a new Istio
# revision with one pull request per owning team: `istio-gitops migrate
# --branches` makes, off HEAD, one local branch per team with one commit
# changing only that team's files, its message the pull request (title,
# what moves, the team's report, the deadline, how to roll back), and
# prints the commands that push each branch and open its pull request.
# --patches writes the same commits as `git format-patch` files, for a
# repository you cannot push to.
#
# Usage: bash examples/migrate/per-team-branches.sh [WORKDIR]
#
# WORKDIR (default: a new temporary directory) receives:
#   namespaces/        a git repository made from examples/migrate/sample,
#                      with the branches istio-<TO>/<team>
#   patches/<team>.patch  the same commits, for `git am`
#   bin/istio-gitops   the binary, when built here
#
# Environment:
#   ISTIO_GITOPS  the istio-gitops binary; else built from this repository
#   FROM, TO      the revisions (or tags) to move from and to: 1-30, 1-31
#   OWNER_KEY     the Namespace label or annotation naming its team: team
#   DEADLINE      the date each pull request asks to be merged by
#   WORKLOADS     set to 1 to move pod-template istio.io/rev labels too
#
# Everything is local: push the branches and open the pull requests with
# the commands printed (git push, gh pr create --fill).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/istio-gitops-migrate.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
from=${FROM:-1-30}
to=${TO:-1-31}
key=${OWNER_KEY:-team}
extra=()
if [[ ${WORKLOADS:-} == 1 ]]; then
  extra+=(--workloads)
fi
if [[ -n ${DEADLINE:-} ]]; then
  extra+=(--deadline "$DEADLINE")
fi

bin=${ISTIO_GITOPS:-}
if [[ -z $bin ]]; then
  bin=$work/bin/istio-gitops
  (cd "$root" && go build -o "$bin" ./fn/istio-gitops)
fi

repo=$work/namespaces
if [[ -e $repo ]]; then
  echo "$repo already exists: give an empty WORKDIR" >&2
  exit 1
fi

# The repository as the teams keep it.
cp -R "$here/sample" "$repo"
git -C "$repo" init -q -b main
git -C "$repo" config user.name "${GIT_AUTHOR_NAME:-istio-gitops example}"
git -C "$repo" config user.email "${GIT_AUTHOR_EMAIL:-istio-gitops@example.com}"
git -C "$repo" add -A
git -C "$repo" commit -q -m "Namespaces of every team"

# One branch and one patch per team; main, the index and the working tree
# stay as they are. Run it again after main moved: each branch is made
# anew off the new HEAD, and a branch whose change is the same is left.
cd "$repo"
"$bin" migrate . --from "$from" --to "$to" --owner-key "$key" ${extra[@]+"${extra[@]}"} \
  --branches --patches "$work/patches"

echo
echo "Repository: $repo"
git -C "$repo" branch --list "istio-$to/*"
