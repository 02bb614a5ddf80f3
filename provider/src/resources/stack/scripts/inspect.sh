#!/bin/sh
# inspect.sh DIR [--check-starting] [--no-files] [IMAGE...] — everything cloudcode needs to know about a host, in one round trip
# (Read runs only this). --check-starting: run the health check of containers Docker reports "starting" now.
# --no-files: no `file` lines (the deploy's health loop looks at containers only).
# Output, one fact per line, tab-separated:
#   os       <ID> <VERSION_ID>
#   docker   <server version> | stopped (client present, daemon not answering) | missing
#   compose  <version> | missing
#   file     <sha256> <path relative to DIR>      (secrets/, .previous/, .images/, .incoming/ and .lock are never read)
#   secret   <name>                               (non-empty files in DIR/secrets; their content is never read)
#   image    <archive sha256>                     (image archives already loaded)
#   service  <service> <state> <health> <container id> <image id> <config-hash label>
#                                                 (containers of Compose project `cloudcode`; with
#                                                 --check-starting, a container whose first health check Docker
#                                                 has not run yet gets it run now)
#   active   <devbox service>                     (the devbox colour caddy/devbox.caddy names)
#   imageid  <image> <id>                         (for each IMAGE argument the host has)
set -u
dir="$1"
shift
check_starting=0
files=1
if [ "${1:-}" = --check-starting ]; then check_starting=1; shift; fi
if [ "${1:-}" = --no-files ]; then files=0; shift; fi
# Runs container $1's own health check now (the test its image or Compose file defines), as Docker would: Engine
# 20.10 runs the first one only a whole `interval` after the start (`start_interval` needs Engine 25), so a
# deploy would wait for it and a plan right after one would see "starting" as drift. 1 s at most: a service that
# accepts connections but does not answer yet (OpenCode starting) would hold every look for the test's timeout.
check_now() {
  set -- "$1" # then the test's argv: one line per element of .Config.Healthcheck.Test
  while IFS= read -r arg; do set -- "$@" "$arg"; done <<TEST
$(docker inspect -f '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$1" 2>/dev/null)
TEST
  cid=$1
  shift
  case "${1:-}" in
    CMD) shift; timeout 1 docker exec "$cid" "$@" >/dev/null 2>&1 ;;
    CMD-SHELL) timeout 1 docker exec "$cid" sh -c "$2" >/dev/null 2>&1 ;;
    *) false ;;
  esac
}
(. /etc/os-release 2>/dev/null; printf 'os\t%s\t%s\n' "${ID:-unknown}" "${VERSION_ID:-}")
server=""
if command -v docker >/dev/null 2>&1; then
  server=$(docker version --format '{{.Server.Version}}' 2>/dev/null) || server=""
  printf 'docker\t%s\n' "${server:-stopped}"
  compose=$(docker compose version --short 2>/dev/null) || compose=""
  printf 'compose\t%s\n' "${compose:-missing}"
else
  printf 'docker\tmissing\ncompose\tmissing\n'
fi
[ -d "$dir" ] || exit 0
cd "$dir" || exit 0
[ "$files" = 0 ] || find . \( -path ./secrets -o -path ./.previous -o -path ./.images -o -path ./.incoming -o -path ./.lock \) -prune -o -type f -print0 2>/dev/null \
  | xargs -0 -r sha256sum | sed 's|^\([0-9a-f]*\)  \./|file\t\1\t|'
for s in secrets/*; do
  [ -s "$s" ] && printf 'secret\t%s\n' "${s#secrets/}"
done
for m in .images/*.loaded; do
  [ -e "$m" ] && { m=${m#.images/}; printf 'image\t%s\n' "${m%.loaded}"; }
done
active=$(sed -n 's/^# active: //p' caddy/devbox.caddy 2>/dev/null)
[ -n "$active" ] && printf 'active\t%s\n' "$active"
if [ -n "$server" ]; then
  for ref in "$@"; do
    id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null) && printf 'imageid\t%s\t%s\n' "$ref" "$id"
  done
  # The Docker CLI's own templates (stable across versions, unlike `docker compose ps --format`); health is the
  # parenthesised part of the status: "Up 2 minutes (healthy)", "(health: starting)", "(unhealthy)". Image id
  # and label come from one `docker inspect` of them all (its templates fail on a missing health block).
  ids=$(docker ps -aq --filter label=com.docker.compose.project=cloudcode 2>/dev/null)
  meta=""
  [ -n "$ids" ] && meta=$(docker inspect --type container --format \
    '{{printf "%.12s" .Id}}	{{.Image}}	{{index .Config.Labels "dev.cloudcode.config-hash"}}' $ids 2>/dev/null)
  docker ps -a --filter label=com.docker.compose.project=cloudcode \
    --format '{{.Label "com.docker.compose.service"}}	{{.State}}	{{.Status}}	{{.ID}}' 2>/dev/null \
    | while IFS='	' read -r svc state status id; do
        case "$status" in
          *"(healthy)"*) health=healthy ;;
          *"(unhealthy)"*) health=unhealthy ;;
          *"health: starting"*) if [ "$check_starting" = 1 ] && [ "$state" = running ] && check_now "$id" </dev/null; then health=healthy; else health=starting; fi ;;
          *) health="" ;;
        esac
        m=$(printf '%s\n' "$meta" | grep "^$id	" | cut -f2-)
        image=${m%%	*}
        label=${m#*	}
        [ "$label" = "<no value>" ] && label=""
        printf 'service\t%s\t%s\t%s\t%s\t%s\t%s\n' "$svc" "$state" "$health" "$id" "$image" "$label"
      done
fi
exit 0
