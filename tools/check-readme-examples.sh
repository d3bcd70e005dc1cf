#!/usr/bin/env bash
# Runs every curl example of README.md, as printed, against a running service (npm start) and
# fails on any non-2xx answer. Usage: bash tools/check-readme-examples.sh
# FLOWSERVE_URL (default localhost:8080) points the examples at another address (the test does).
set -uo pipefail
cd "$(dirname "$0")/.."
fails=0; n=0
# Join continuation lines, keep the curl commands of the "API by example" block.
while IFS= read -r cmd; do
  n=$((n + 1))
  # -w appends the status; the pipe to grep in one example is kept as printed
  run=${cmd%%|*}
  run=${run//localhost:8080/${FLOWSERVE_URL:-localhost:8080}}
  out=$(bash -c "$run -o /tmp/readme-example.out -w '%{http_code}'" 2>&1)
  status=${out: -3}
  if [[ "$status" =~ ^2 ]]; then
    printf 'ok   %s  %s\n' "$status" "$(echo "$cmd" | cut -c1-110)"
  else
    printf 'FAIL %s  %s\n     %s\n' "$status" "$cmd" "$(head -c 300 /tmp/readme-example.out)"
    fails=$((fails + 1))
  fi
done < <(sed -n '/^## API by example/,/^Endpoints/p' README.md | sed -e ':a' -e '/\\$/N; s/\\\n\s*/ /; ta' | grep '^curl ' | sed 's/ *#.*$//')
echo "$n examples, $fails failed"
[ "$fails" -eq 0 ]
