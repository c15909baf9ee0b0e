#!/usr/bin/env bash
# Orchestrate a change on a fresh copy of the bundled example, as a user would on their repo:
#   bash examples/run.sh [DEST] [COMMAND] [PYTEST OPTIONS...]
# DEST defaults to a new temporary directory; the copy is made a git repository first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-"$(mktemp -d)/wheel"}
command=${2:-"Rename calculate_position_size to position_size, test at scale, post PR"}
shift $(( $# < 2 ? $# : 2 ))

mkdir -p "$(dirname "$dest")"
cp -R "$here/wheel" "$dest"
cd "$dest"
git init -q -b main
git add -A
git -c user.name="wheel example" -c user.email="wheel@example.invalid" commit -q -m "wheel-sizing example"
echo "example repository: $dest"
exec python -m pytest --orchestrate="$command" "$@"
