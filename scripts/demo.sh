#!/usr/bin/env bash
# make demo: load the example files into a local cdpemu, show what arrived and what was
# rejected, and stop the emulator whatever happens. Run from the repository root after
# `make build`. Every run starts fresh.
set -uo pipefail

work=.demo
rm -rf "$work"
mkdir -p "$work"
cp examples/profiles.csv examples/crm_export.csv "$work"/

bin/cdpemu --addr 127.0.0.1:0 --addr-file "$work/url" >"$work/cdpemu.log" 2>&1 &
emu=$!
trap 'kill "$emu" 2>/dev/null; wait "$emu" 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  [ -s "$work/url" ] && break
  kill -0 "$emu" 2>/dev/null || { echo "cdpemu did not start:"; cat "$work/cdpemu.log"; exit 1; }
  sleep 0.1
done
url=$(cat "$work/url")
[ -n "$url" ] || { echo "cdpemu did not start in 10s"; exit 1; }
export CDP_TOKEN=demo-token # cdpemu's default demo token

# get PATH: an HTTP GET on the emulator, with curl if present, else bash's /dev/tcp.
hostport=${url#http://}; hostport=${hostport%%/*}
get() {
  if command -v curl >/dev/null; then curl -s "http://$hostport$1"; echo; return; fi
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$hostport" >&3
  sed '1,/^\r$/d' <&3; echo
  exec 3<&-
}

echo "== cdpemu is listening on $url"
echo
echo "== 1. cdpload load $work/profiles.csv (300 profiles, a few updated twice, 7 deliberately bad rows)"
bin/cdpload load --base-url "$url" --rate 500 --workers 8 "$work/profiles.csv"
echo "   exit code $? (3: finished, some rows rejected)"
echo
echo "== 2. cdpload load --mapping examples/mapping.yaml $work/crm_export.csv (a CRM export with its own headers)"
bin/cdpload load --base-url "$url" --rate 500 --mapping examples/mapping.yaml "$work/crm_export.csv"
echo "   exit code $?"
echo
echo "== 3. a second run of the first file: the checkpoint says it is done"
bin/cdpload load --base-url "$url" --progress none "$work/profiles.csv"
echo "   exit code $?"
echo
echo "== profiles read back from the emulator"
for key in customer_id/C000005 customer_id/C000017 email/jane.doe@mail.example.org; do
  echo "-- $key"
  get "/_emulator/profiles/$key"
done
echo
echo "== the rejects of the deliberately bad rows, ready to fix and load again"
for f in "$work"/*.rejects.*; do
  case "$f" in *.log.jsonl) continue ;; esac
  echo "-- $f (rows as in the input)"
  cat "$f"
  echo "-- $f.log.jsonl (why)"
  cat "$f.log.jsonl"
done
echo
echo "== emulator stats"
get /_emulator/stats
