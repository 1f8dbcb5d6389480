#!/usr/bin/env bash
# Starts a throwaway red set up for the collection (embedded store and TI simulators' state in a
# temp dir, a fresh tenant "postman", a second tenant "othertenant", a 1 MiB body limit), runs the
# Postman collection against it with the project's own newman, and stops the server. For the role
# rules two more servers of the same tenant and store run beside it, logged in as its assistant
# "mfa" (requiring API tokens) and its physician "doc".
#
# Usage: postman/run.sh [--keep] path/to/red
#   --keep  serve on RED's port 29221 (a free one when it is taken) and keep red running after the
#           run, with what the collection stored, until Ctrl-C: for looking around and re-running
#           single requests in the Postman app (make postman-demo)
set -euo pipefail
keep=""
if [ "${1:-}" = "--keep" ]; then
  keep=1
  shift
fi
red=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server=""
others=() # the servers of the assistant and the physician
rc=""
cleanup() {
  for pid in "${others[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true # Ctrl-C may have stopped it already
    wait "$server" 2>/dev/null || true
    [ -z "$keep" ] || tail -n 1 "$work/out" >&2 # red's farewell
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit "${rc:-130}"' INT TERM

export RED_PASSWORD="postman-$RANDOM-$RANDOM"
unset RED_DATABASE_URL
data="$work/data" # red.db; the simulators' state lies apart from it, in $work/ti-sim
export RED_NEW_PASSWORD="$RED_PASSWORD"
cheap=(--data-dir "$data" --kdf-memory 8192 --kdf-time 1)
# the collection's user practises and dispenses (the TI simulators hold a practice's and a
# pharmacy's cards); an assistant and a physician are there for the role rules (folder Roles)
"$red" "${cheap[@]}" init --tenant postman --user postman --role physician,pharmacist,admin >/dev/null
"$red" "${cheap[@]}" init --tenant othertenant --user other >/dev/null
"$red" "${cheap[@]}" user add --tenant postman --user postman --new-user mfa --role assistant >/dev/null
"$red" "${cheap[@]}" user add --tenant postman --user postman --new-user doc --role physician >/dev/null
token=$("$red" "${cheap[@]}" token add --tenant postman --user postman --name postman 2>/dev/null)
# the user group the folder User groups puts data into (doc is no member)
"$red" "${cheap[@]}" group add --tenant postman --user postman gruppe-kardiologie --name Kardiologie >/dev/null

# start serves on port $1 and sets base to red's URL once it listens; it fails when red ends first.
# red prints its TI simulators' URLs first ("red: Konnektor simulator at http://…"), then
# "… listening on http://127.0.0.1:PORT/tenant" once the port is open.
start() {
  "$red" --data-dir "$data" serve --tenant postman --user postman --port "$1" --max-body 1048576 \
    --ti-sim-dir "$work/ti-sim" >"$work/out" 2>"$work/log" &
  server=$!
  base=""
  for _ in $(seq 1 100); do
    base=$(sed -n 's|.*listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" 2>/dev/null | head -n1 || true)
    [ -n "$base" ] && return 0
    if ! kill -0 "$server" 2>/dev/null; then
      wait "$server" 2>/dev/null || true
      server=""
      return 1
    fi
    sleep 0.1
  done
  echo "red did not start" >&2
  cat "$work/log" >&2
  exit 1
}
port=0
[ -n "$keep" ] && port=29221
if ! start "$port"; then
  if [ "$port" != 0 ] && grep -q "is taken" "$work/log"; then
    echo "port $port is taken (make run?): red takes a free one" >&2
    start 0 || { cat "$work/log" >&2; exit 1; }
  else
    cat "$work/log" >&2
    exit 1
  fi
fi
# The TI folder queues PIN entries at the Konnektor simulator's PIN pad (POST {konnektorURL}/sim/pinpad).
konnektor=$(sed -n 's|.*Konnektor simulator at \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" | head -n1)
# The Pharmacy messages folder seeds an insured person's message at the E-Rezept-Fachdienst simulator.
fachdienst=$(sed -n 's|.*E-Rezept-Fachdienst simulator at \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" | head -n1)
epa=$(sed -n 's|.*ePA simulator at \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/out" | head -n1)

# other NAME ARGS… serves the tenant as user NAME on a free port, another workstation of the same
# store with the first server's TI simulators, and prints its URL once it listens.
other() {
  local name=$1
  shift
  "$red" --data-dir "$data" serve --tenant postman --user "$name" --port 0 --workstation "postman-$name" --notify-off \
    --konnektor-url "$konnektor" --fachdienst-url "$fachdienst" --epa-url "$epa" "$@" >"$work/$name.out" 2>"$work/$name.log" &
  others+=($!)
  for _ in $(seq 1 100); do
    url=$(sed -n 's|.*listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/$name.out" 2>/dev/null | head -n1 || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "red did not start for $name" >&2
  cat "$work/$name.log" >&2
  exit 1
}
other mfa --require-token
assistant=$url
other doc
physician=$url

rc=0
"$here/node_modules/.bin/newman" run "$here/red.postman_collection.json" \
  -e "$here/red.postman_environment.json" \
  --env-var "baseURL=$base" --env-var "tenant=postman" --env-var "konnektorURL=$konnektor" --env-var "fachdienstURL=$fachdienst" \
  --env-var "assistantURL=$assistant" --env-var "physicianURL=$physician" --env-var "apiToken=$token" \
  --working-dir "$here" --color off || rc=$?
[ -n "$keep" ] || exit "$rc"

cat <<EOF

red keeps running with what the collection stored (Ctrl-C stops it and removes its data):
  baseURL       $base
  tenant        postman
  konnektorURL  $konnektor
  fachdienstURL $fachdienst
  assistantURL  $assistant
  physicianURL  $physician
  apiToken      $token
In the Postman app, import postman/red.postman_collection.json and the environment
postman/red.postman_environment.json, and set the variables (and baseURL, if it differs) as above.
The collection checks exact totals, versions and deletions: for a second full run, start again.
EOF
wait "$server" || true # until Ctrl-C; cleanup shows red's farewell
exit "$rc"
