#!/usr/bin/env bash
# Point the README's Binder badge at your fork: scripts/binder-owner.sh YOUR-GITHUB-OWNER [REPO]
# (REPO defaults to the name already in the link). `llamalab workshop check` reports the owner.
set -euo pipefail
cd "$(dirname "$0")/.."
owner=${1:?usage: scripts/binder-owner.sh GITHUB-OWNER [REPO]}
[[ "$owner" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,38})$ ]] || { echo "not a GitHub owner: $owner" >&2; exit 2; }
repo=${2:-}
[[ -z "$repo" || "$repo" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "not a repository name: $repo" >&2; exit 2; }
grep -q 'mybinder.org/v2/gh/' README.md || { echo "README.md has no mybinder.org link" >&2; exit 1; }
if [ -n "$repo" ]; then
  sed -i -E "s#(mybinder\.org/v2/gh/)[^/]+/[^/]+/#\1${owner}/${repo}/#g" README.md
else
  sed -i -E "s#(mybinder\.org/v2/gh/)[^/]+/#\1${owner}/#g" README.md
fi
grep -o 'mybinder.org/v2/gh/[^)]*' README.md
