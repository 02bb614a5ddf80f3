# health.sh ID... — runs each container's own health check now (the test its image or Compose file defines), instead
# of waiting for Docker's first one: Engine 20.10 runs it only after a whole `interval` (no `start_interval`
# before Engine 25). Prints `healthy <id>` for each container whose test passes; nothing else changes.
for id in "$@"; do
  set -- # the test's argv: one line per element of .Config.Healthcheck.Test
  while IFS= read -r arg; do set -- "$@" "$arg"; done <<TEST
$(docker inspect -f '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$id" 2>/dev/null)
TEST
  case "${1:-}" in
    CMD) shift; timeout 5 docker exec "$id" "$@" >/dev/null 2>&1 ;;
    CMD-SHELL) timeout 5 docker exec "$id" sh -c "$2" >/dev/null 2>&1 ;;
    *) false ;;
  esac && printf 'healthy\t%s\n' "$id"
done
exit 0
