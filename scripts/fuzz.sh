#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a bounded time each.
set -euo pipefail
t=${1:-10s}
cd "$(dirname "$0")/.."
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for f in $targets; do
    echo "fuzz $pkg $f ($t)"
    # Minimising a new input runs past the fuzzing time and then fails
    # with "context deadline exceeded": keep it short.
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime 100x "$pkg"
  done
done
