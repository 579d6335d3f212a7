#!/usr/bin/env bash
# Proves that the repository stands alone: clones the committed HEAD into a fresh temporary folder with
# nothing beside it, then runs the README's two commands there (`npm ci`, `npm test`) and prints how long
# each took. Uncommitted changes are not part of the clone: commit first.
#
#   scripts/check-clean-clone.sh            clone, install, test, delete the clone
#   KEEP_CLONE=1 scripts/check-clean-clone.sh   keep the clone (its path is printed)
#
# .ci/run runs this script after installing Chromium.
set -euo pipefail

root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$root" rev-parse HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "== note: uncommitted changes in $root are not tested (the clone is of $commit)"
fi

parent=$(mktemp -d)
clone="$parent/remotemedia"
if [ "${KEEP_CLONE:-}" != "1" ]; then
  trap 'rm -rf "$parent"' EXIT
fi

start=$(date +%s)
echo "== git clone of $commit into $clone (nothing else in $parent)"
git clone -q --no-checkout "$root" "$clone"
git -C "$clone" fetch -q "$root" "$commit"
git -C "$clone" checkout -q --detach "$commit"
cd "$clone"
echo "== node $(node --version), npm $(npm --version), $(cargo --version)"

t=$(date +%s)
echo "== npm ci (builds the native addon in release mode and the TypeScript)"
npm ci
ci_s=$(( $(date +%s) - t ))
echo "== npm ci took ${ci_s} s"

t=$(date +%s)
echo "== npm test"
npm test
test_s=$(( $(date +%s) - t ))
echo "== npm test took ${test_s} s"
echo "== fresh clone: npm ci ${ci_s} s, npm test ${test_s} s, total $(( $(date +%s) - start )) s"
if [ "${KEEP_CLONE:-}" = "1" ]; then echo "== the clone stays at $clone"; fi
