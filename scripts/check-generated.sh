#!/usr/bin/env bash
# Regenerates every avo-generated assembly file (the go:generate lines under
# kernels/) in a scratch copy of kernels/ and fails when one differs from
# the committed file: the .s files are generated, never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r kernels "$tmp/kernels"
grep -rl --include='*.go' '^//go:generate sh -c "cd ' kernels | sort | while read -r file; do
	dir=$(dirname "$file")
	grep '^//go:generate sh -c "cd ' "$file" | while read -r line; do
		cmd=${line#//go:generate sh -c \"}
		cmd=${cmd%\"}
		(cd "$tmp/$dir" && sh -c "$cmd")
	done
done
if ! diff -rq kernels "$tmp/kernels" >"$tmp/diff"; then
	echo "stale generated files (run go generate ./kernels/... and commit):" >&2
	cat "$tmp/diff" >&2
	exit 1
fi
echo "generated assembly matches its generators"
