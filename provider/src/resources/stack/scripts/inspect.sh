#!/bin/sh
# inspect.sh DIR — everything cloudcode needs to know about a host, in one round trip (Read runs only this).
# Output, one fact per line, tab-separated:
#   os       <ID> <VERSION_ID>
#   docker   <server version> | stopped (client present, daemon not answering) | missing
#   compose  <version> | missing
#   file     <sha256> <path relative to DIR>      (secrets/, .previous/ and .images/ are never read)
#   secret   <name>                               (non-empty files in DIR/secrets; their content is never read)
#   image    <archive sha256>                     (image archives already loaded)
#   service  <service> <state> <health> <container id>   (containers of Compose project `cloudcode`)
set -u
dir="$1"
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
find . \( -path ./secrets -o -path ./.previous -o -path ./.images \) -prune -o -type f -print0 2>/dev/null \
  | xargs -0 -r sha256sum | sed 's|^\([0-9a-f]*\)  \./|file\t\1\t|'
for s in secrets/*; do
  [ -s "$s" ] && printf 'secret\t%s\n' "${s#secrets/}"
done
for m in .images/*.loaded; do
  [ -e "$m" ] && { m=${m#.images/}; printf 'image\t%s\n' "${m%.loaded}"; }
done
# The Docker CLI's own templates (stable across versions, unlike `docker compose ps --format`); health is the
# parenthesised part of the status: "Up 2 minutes (healthy)", "(health: starting)", "(unhealthy)".
if [ -n "$server" ]; then
  docker ps -a --filter label=com.docker.compose.project=cloudcode \
    --format '{{.Label "com.docker.compose.service"}}	{{.State}}	{{.Status}}	{{.ID}}' 2>/dev/null \
    | while IFS='	' read -r svc state status id; do
        case "$status" in
          *"(healthy)"*) health=healthy ;;
          *"(unhealthy)"*) health=unhealthy ;;
          *"health: starting"*) health=starting ;;
          *) health="" ;;
        esac
        printf 'service\t%s\t%s\t%s\t%s\n' "$svc" "$state" "$health" "$id"
      done
fi
exit 0
