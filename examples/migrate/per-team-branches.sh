#!/usr/bin/env bash
# Move the namespaces of a repository of Namespace manifests to a new Istio
# revision, one git branch and one commit per owning team, each carrying
# that team's changes, with the team's report as the commit message and as
# the body of its pull request.
#
# Usage: bash examples/migrate/per-team-branches.sh [WORKDIR]
#
# WORKDIR (default: a new temporary directory) receives:
#   namespaces/      a git repository made from examples/migrate/sample
#   reports/<team>.md  the pull-request body of each team
#   bin/istio-gitops   the binary, when built here
#
# Environment:
#   ISTIO_GITOPS  the istio-gitops binary; else built from this repository
#   FROM, TO      the revisions (or tags) to move from and to: 1-30, 1-31
#   OWNER_KEY     the Namespace label or annotation naming its team: team
#   WORKLOADS     set to 1 to move pod-template istio.io/rev labels too
#
# Everything is local: pushing the branches and opening the pull requests is
# left to your forge's CLI (see the commands printed at the end).
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

bin=${ISTIO_GITOPS:-}
if [[ -z $bin ]]; then
  bin=$work/bin/istio-gitops
  (cd "$root" && go build -o "$bin" ./fn/istio-gitops)
fi

repo=$work/namespaces
reports=$work/reports
if [[ -e $repo ]]; then
  echo "$repo already exists: give an empty WORKDIR" >&2
  exit 1
fi
mkdir -p "$reports"

# The repository as the teams keep it.
cp -R "$here/sample" "$repo"
git -C "$repo" init -q -b main
git -C "$repo" config user.name "${GIT_AUTHOR_NAME:-istio-gitops example}"
git -C "$repo" config user.email "${GIT_AUTHOR_EMAIL:-istio-gitops@example.com}"
git -C "$repo" add -A
git -C "$repo" commit -q -m "Namespaces of every team"

# A dry run over a copy finds the teams: the report has one
# "## Team `<team>`" section per team that owns a namespace.
dry=$work/dry-run
rm -rf "$dry"
cp -R "$here/sample" "$dry"
"$bin" migrate "$dry" --from "$from" --to "$to" --owner-key "$key" ${extra[@]+"${extra[@]}"} \
  --report "$reports/all.md" >"$reports/all.log"
rm -rf "$dry"
teams=()
while IFS= read -r team; do
  teams+=("$team")
done < <(sed -n 's/^## Team `\(.*\)`$/\1/p' "$reports/all.md")

branches=()
for team in ${teams[@]+"${teams[@]}"}; do
  safe=$(printf '%s' "$team" | tr -c 'A-Za-z0-9._-' '-')
  branch="istio-$to/$safe"
  report="$reports/$safe.md"
  git -C "$repo" switch -q -c "$branch" main
  "$bin" migrate "$repo" --from "$from" --to "$to" --owner-key "$key" --owner "$team" ${extra[@]+"${extra[@]}"} \
    --report "$report" >"$reports/$safe.log"
  if git -C "$repo" diff --quiet; then
    echo "$team: nothing to move"
    git -C "$repo" switch -q main
    git -C "$repo" branch -q -D "$branch"
    continue
  fi
  {
    printf 'istio: move the %s namespaces from %s to %s\n\n' "$team" "$from" "$to"
    cat "$report"
  } | git -C "$repo" commit -q -a --cleanup=whitespace -F -
  git -C "$repo" switch -q main
  branches+=("$branch")
  echo "$team: $(git -C "$repo" diff --name-only main "$branch" | tr '\n' ' ')-> branch $branch"
done

echo
echo "Repository: $repo"
echo "Open one pull request per branch with your forge's CLI, e.g.:"
for branch in ${branches[@]+"${branches[@]}"}; do
  safe=${branch#istio-"$to"/}
  # git -C "$repo" push origin "$branch"
  # gh pr create --base main --head "$branch" --title "istio: move the $safe namespaces to $to" --body-file "$reports/$safe.md"
  echo "  # git -C $repo push origin $branch"
  echo "  # gh pr create --base main --head $branch --title 'istio: move the $safe namespaces to $to' --body-file $reports/$safe.md"
done
