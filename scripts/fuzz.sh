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
    # The fuzzer can also stop with "context deadline exceeded" when its
    # time ends while a worker is between inputs, finding nothing: that run
    # is repeated once. A real failure writes its input and fails.
    for try in 1 2; do
      if out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime 100x "$pkg" 2>&1); then
        printf '%s\n' "$out" | tail -n 2
        break
      fi
      printf '%s\n' "$out"
      if [ "$try" = 2 ] || printf '%s\n' "$out" | grep -q 'Failing input written' ||
        ! printf '%s\n' "$out" | grep -q 'context deadline exceeded'; then
        exit 1
      fi
      echo "fuzz $pkg $f: stopped at its deadline without a failing input; once more"
    done
  done
done
