#!/usr/bin/env bash
# Starts a throwaway red (embedded store in a temp dir, port chosen by the system), runs the
# Postman collection against it with the project's own newman, and stops the server.
# Usage: postman/run.sh path/to/red
set -euo pipefail
red=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export RED_PASSWORD="postman-$RANDOM-$RANDOM"
unset RED_DATABASE_URL
"$red" --data-dir "$work" --kdf-memory 8192 --kdf-time 1 init --tenant postman --user postman >/dev/null
"$red" --data-dir "$work" --kdf-memory 8192 --kdf-time 1 init --tenant othertenant --user other >/dev/null
"$red" --data-dir "$work" serve --tenant postman --user postman --port 0 --max-body 1048576 >"$work/out" 2>"$work/log" &
server=$!

base=""
for _ in $(seq 1 100); do
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out" 2>/dev/null | head -n1 || true)
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "red did not start" >&2; cat "$work/log" >&2; exit 1; }

"$here/node_modules/.bin/newman" run "$here/red.postman_collection.json" \
  -e "$here/red.postman_environment.json" \
  --env-var "baseURL=$base" --env-var "tenant=postman" \
  --working-dir "$here" --color off
