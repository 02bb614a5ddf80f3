#!/bin/sh
# devbox.sh DIR OLD NEW BUILD OPENCODE_PORT TTYD_PORT HEALTH_S IDLE_S DRAIN_S FILE — a blue/green devbox switch (run by
# apply.sh). Caddy keeps sending requests to OLD (a container id, or "-" when none serves) until NEW (a Compose
# service, `devbox_blue` or `devbox_green`) is healthy; then, once OpenCode in OLD has no busy session,
# caddy/devbox.caddy names NEW (FILE's content), Caddy reloads in place, OLD drains and is removed.
#   BUILD 1: build NEW's image first (`devbox_build`). TTYD_PORT 0: no terminal to check.
# Output: `switched <container id>` on success, else `failed <why>` (and on stderr the new container's last log
# lines); before it, `steps <step>=<seconds>...`: where the time went (created, healthy, idle, reloaded, drained,
# stopped). Exit codes (nothing changed for users on any of them: OLD serves):
#   10 NEW could not be created; 20 NEW never became healthy (NEW is removed); 30 OpenCode stayed busy for
#   IDLE_S (NEW is removed); 40 Caddy refused the reload (the old file is put back).
set -u
dir=$1 old=$2 new=$3 build=$4 port=$5 ttyd=$6 health_s=$7 idle_s=$8 drain_s=$9
cd "$dir" || exit 10
file=${10}
compose() { COMPOSE_PROFILES=blue,green docker compose -f docker-compose.yml "$@"; }
now() { date +%s; }
t0=$(now) steps=""
step() { steps="$steps $1=$(($(now) - t0))"; }
running() { [ "$(docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null)" = running ]; }
give_up() { # CODE MESSAGE: remove NEW (OLD keeps serving) and fail
  compose rm -sf "$new" >/dev/null 2>&1
  printf 'failed\t%s\n' "$2"
  exit "$1"
}

flags="--no-deps"
[ "$build" = 1 ] && flags="$flags --build"
# shellcheck disable=SC2086
out=$(compose up -d $flags "$new" 2>&1) || give_up 10 "the new devbox ($new) could not be created: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
id=$(compose ps -q "$new")
[ -n "$id" ] || give_up 10 "the new devbox ($new) has no container after docker compose up"
step created

# Health, polled tightly (Docker's own check runs every 5 s): OpenCode answers, and ttyd when the terminal is on.
deadline=$(($(now) + health_s))
until docker exec "$id" curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/global/health" 2>/dev/null &&
  { [ "$ttyd" = 0 ] || docker exec "$id" curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ttyd/terminal/" 2>/dev/null; }; do
  if ! running "$id" || [ "$(now)" -ge "$deadline" ]; then
    why="not healthy after ${health_s}s"
    running "$id" || why="stopped ($(docker inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}' "$id" 2>/dev/null))"
    docker logs --tail 30 "$id" >&2 2>&1
    give_up 20 "the new devbox ($new) is $why; the old one keeps serving"
  fi
  sleep 0.25
done
step healthy

# OpenCode work in progress is not cut: wait until the serving OpenCode has no busy (or retrying) session.
if [ "$old" != - ] && running "$old"; then
  deadline=$(($(now) + idle_s))
  while docker exec "$old" curl -fsS --max-time 2 "http://127.0.0.1:$port/session/status" 2>/dev/null |
    grep -q '"busy"\|"retry"'; do
    [ "$(now)" -ge "$deadline" ] &&
      give_up 30 "OpenCode in the serving devbox still had a busy session after ${idle_s}s; nothing was switched (apply again when it is idle)"
    sleep 0.5
  done
fi
step idle

# The switch: one in-place reload. Streams to OLD (SSE, terminal WebSockets) are closed by it and reconnect to NEW.
cp -p caddy/devbox.caddy caddy/.devbox.caddy.before 2>/dev/null || : >caddy/.devbox.caddy.before
cp "$file" caddy/.devbox.caddy.new && mv caddy/.devbox.caddy.new caddy/devbox.caddy
if ! out=$(compose exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile 2>&1); then
  if [ -s caddy/.devbox.caddy.before ]; then mv caddy/.devbox.caddy.before caddy/devbox.caddy; fi
  give_up 40 "Caddy refused the configuration naming $new: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
fi
rm -f caddy/.devbox.caddy.before
step reloaded

# Drain: until OLD holds no connection from outside its container on OpenCode's or ttyd's port (Caddy closes the
# old configuration's idle connections once it is unloaded), capped at DRAIN_S like Kamal's drain timeout.
if [ "$old" != - ] && running "$old"; then
  hex=$(printf '%04X' "$port")
  hex_t=$(printf '%04X' "$ttyd")
  deadline=$(($(now) + drain_s))
  while [ "$(now)" -lt "$deadline" ]; do
    held=$(docker exec "$old" cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v a=":$hex" -v b=":$hex_t" '
      $4 == "01" && (substr($2, length($2) - 4) == a || substr($2, length($2) - 4) == b) &&
        $3 !~ /^0100007F:/ && $3 !~ /^0000000000000000FFFF00000100007F:/ && $3 !~ /^00000000000000000000000001000000:/ {
        n++; peers = peers "," $3 ">" substr($2, length($2) - 3) }
      END { print n + 0 peers }')
    [ "${held%%,*}" = 0 ] && break
    sleep 0.25
  done
  # Still held at the cap: which peers (hex address:port > local port), for the steps line.
  [ "${held%%,*}" = 0 ] || steps="$steps held=$held"
fi
step drained
if [ "$old" != - ]; then
  docker stop -t 10 "$old" >/dev/null 2>&1
  docker rm -f "$old" >/dev/null 2>&1
fi
step stopped
printf 'steps\t%s\n' "${steps# }"
printf 'switched\t%s\n' "$(printf '%.12s' "$id")"
