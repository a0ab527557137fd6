#!/usr/bin/env bash
# make image / make image-test: build the container image from the binaries `make build`
# made, with docker if a Docker engine answers, else with buildah (no daemon: vfs storage,
# chroot isolation, which works as root). `image.sh test` then runs the image: `cdpload
# version`, and a load of examples/profiles.csv from inside the container against a cdpemu
# on the host's loopback, checking the exit code and the summary.
#
# Exit 0 when built (and tested); 1 on a failure; 3 when neither docker nor buildah can
# build here, so that CI can say it skipped.
#
# Usage: scripts/image.sh build|test|probe IMAGE VERSION
set -uo pipefail

what=${1:?build or test}
image=${2:?image name}
version=${3:-dev}

engine=
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v buildah >/dev/null; then
  engine=buildah
else
  echo "image: neither a Docker engine nor buildah is available (apt-get install buildah)" >&2
  exit 3
fi
bah() { buildah --storage-driver vfs "$@"; }

# The source label: SOURCE (make image SOURCE=https://...), else the clone's origin without
# any credentials in it.
source=${SOURCE:-$(git config --get remote.origin.url 2>/dev/null | sed -E 's#//[^@/]*@#//#' || true)}

# buildah may be installed where it cannot work (an unprivileged container): that is no
# engine either.
if [ "$engine" = buildah ]; then
  if ! probe=$(bah from scratch 2>/dev/null); then
    echo "image: buildah is installed but cannot create a container here (it needs root or user namespaces)" >&2
    exit 3
  fi
  bah rm "$probe" >/dev/null
fi

build() {
  mkdir -p bin/image
  cp /etc/ssl/certs/ca-certificates.crt bin/image/ 2>/dev/null ||
    { echo "image: no CA bundle at /etc/ssl/certs/ca-certificates.crt (install ca-certificates)" >&2; return 1; }
  local args=(--build-arg "VERSION=$version"
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || true)"
    --build-arg "SOURCE=$source"
    -t "$image" -f Dockerfile .)
  echo "image: building $image with $engine"
  if [ "$engine" = docker ]; then
    docker build "${args[@]}"
  else
    bah bud --isolation chroot "${args[@]}"
  fi
}

# run ARGS...: cdpload ARGS inside the image, host network, the work dir's folders mounted.
run() {
  if [ "$engine" = docker ]; then
    docker run --rm --network host \
      -v "$work/in:/in:ro" -v "$work/state:/state" -v "$work/secret:/var/run/secrets/cdp:ro" \
      "$image" "$@"
  else
    bah run --isolation chroot --network host \
      -v "$work/in:/in:ro" -v "$work/state:/state" -v "$work/secret:/var/run/secrets/cdp:ro" \
      "$ctr" -- /cdpload "$@"
  fi
}

test_image() {
  work=$(mktemp -d)
  ctr=
  emu=
  cleanup() {
    [ -n "$emu" ] && kill "$emu" 2>/dev/null && wait "$emu" 2>/dev/null
    [ -n "$ctr" ] && bah rm "$ctr" >/dev/null 2>&1
    rm -rf "$work"
  }
  trap cleanup EXIT
  mkdir -p "$work/in" "$work/state" "$work/secret"
  cp examples/profiles.csv "$work/in/"
  printf 'demo-token\n' >"$work/secret/token"
  # The image runs as 65532, as a Kubernetes pod with fsGroup would let it write.
  chmod 0777 "$work/state"
  chmod 0755 "$work" "$work/in" "$work/secret"
  chmod 0644 "$work/in/profiles.csv" "$work/secret/token"
  [ "$engine" = buildah ] && { ctr=$(bah from "$image") || return 1; }

  # What a pod's spec relies on: the non-root user, cdpload as the entrypoint (PID 1), and
  # the labels a registry shows.
  local config # the image's inspection as JSON, blanks removed
  if [ "$engine" = docker ]; then
    config=$(docker image inspect "$image")
  else
    config=$(bah inspect --type image "$image")
  fi || { echo "image: cannot inspect $image" >&2; return 1; }
  config=$(printf '%s' "$config" | tr -d ' \t\n')
  for want in '"User":"65532:65532"' '"Entrypoint":["/cdpload"]' \
    "\"org.opencontainers.image.version\":\"$version\"" '"org.opencontainers.image.licenses":"NOASSERTION"' \
    "\"org.opencontainers.image.source\":\"$source\""; do
    case "$config" in *"$want"*) ;; *)
      echo "image: the image's config lacks $want: $config" >&2
      return 1 ;;
    esac
  done
  echo "image: runs as 65532:65532, entrypoint /cdpload, labels version $version, source ${source:-(none)}"

  echo "image: cdpload version"
  local out
  out=$(run version) || { echo "image: cdpload version failed" >&2; return 1; }
  echo "  $out"
  case "$out" in *"$version"*) ;; *) echo "image: version says \"$out\", want $version" >&2; return 1 ;; esac

  bin/cdpemu --addr 127.0.0.1:0 --addr-file "$work/url" >"$work/cdpemu.log" 2>&1 &
  emu=$!
  for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.1; done
  local url
  url=$(cat "$work/url") || { cat "$work/cdpemu.log"; return 1; }

  echo "image: cdpload load /in/profiles.csv against $url"
  out=$(run load --base-url "$url" --token-file /var/run/secrets/cdp/token --state-dir /state \
    --rate 500 --progress none --log-format json --summary - /in/profiles.csv 2>"$work/load.log")
  local code=$?
  echo "  $(wc -l <"$work/load.log") JSON log lines on standard error, e.g.:"
  head -n 1 "$work/load.log" | sed 's/^/  /'
  if [ "$code" -ne 3 ]; then cat "$work/load.log" >&2; fi
  # examples/profiles.csv has 303 records, 7 of them bad: exit 3, finished with rejects.
  if [ "$code" -ne 3 ]; then
    echo "image: load exited $code, want 3 (finished, 7 rows rejected)" >&2
    return 1
  fi
  local summary
  summary=$(printf '%s\n' "$out" | tail -n 1)
  for want in '"status":"finished"' '"accepted":296' '"rejected":7'; do
    case "$summary" in *"$want"*) ;; *)
      echo "image: the summary lacks $want: $summary" >&2
      return 1 ;;
    esac
  done
  [ -s "$work/state/profiles.rejects.csv" ] || { echo "image: no rejects file in the state volume" >&2; return 1; }
  echo "image: load exited 3 as it should; summary: $summary"
}

case "$what" in
  probe) ;; # an engine is there: exit 0
  build) build ;;
  test) build && test_image ;;
  *) echo "usage: $0 build|test IMAGE VERSION" >&2; exit 2 ;;
esac
