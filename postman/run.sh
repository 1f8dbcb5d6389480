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

# red prints its TI simulators' URLs first ("red: Konnektor simulator at http://…"), then
# "… listening on http://127.0.0.1:PORT/tenant" once the port is open.
base=""
for _ in $(seq 1 100); do
  base=$(sed -n 's|.*listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" 2>/dev/null | head -n1 || true)
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "red did not start" >&2; cat "$work/log" >&2; exit 1; }
# The TI folder queues PIN entries at the Konnektor simulator's PIN pad (POST {konnektorURL}/sim/pinpad).
konnektor=$(sed -n 's|.*Konnektor simulator at \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" | head -n1)

"$here/node_modules/.bin/newman" run "$here/red.postman_collection.json" \
  -e "$here/red.postman_environment.json" \
  --env-var "baseURL=$base" --env-var "tenant=postman" --env-var "konnektorURL=$konnektor" \
  --working-dir "$here" --color off
