#!/bin/sh
# apply.sh DIR IN — the host's side of a deploy, in one round trip: what the provider decided from one inspect.sh
# look is in IN (the upload, extracted by the command that runs this script):
#   IN/plan           shell assignments (below), written by the provider
#   IN/files/PATH     the changed files, each to become DIR/PATH (secrets/ at 0600)
#   IN/manifest       the generation's manifest, when it changed (installed last: it marks a complete generation)
#   IN/devbox.caddy   the run-time Caddy file naming the serving devbox before Compose runs (IN/devbox.caddy.new:
#                     the one naming the new colour, for a switch)
#   IN/inspect.sh, IN/devbox.sh
# Steps: previous generation kept, files moved into place (each by rename), Authelia's secrets, Compose for every
# service but a serving devbox, Caddy reloaded in place when its files changed, the devbox switched blue/green
# (devbox.sh), health (a tight look, each starting container's own check run at once), the site through Caddy,
# leftover containers and retired files removed, the manifest. On failure the previous generation is put back.
# Output (stdout), one line each: `steps <step>=<seconds since the start>...`, `reloaded` when Caddy reloaded,
# `switch <devbox.sh's steps>` after a switch, then either `ok` followed by inspect.sh's facts of the healthy host,
# or `failed <step> <why>` and `restore <what went wrong putting the previous generation back>` (empty when it
# went well). stderr: the last log lines of the services that were not healthy.
set -u
umask 022
dir=$1 in=$2
# Set by IN/plan: services (health set, `devbox` = the serving colour), up (Compose services to bring up), build
# (1: build the devbox image), caddyfile_changed (1/0), switch_old/switch_new (a container id and a colour; empty:
# no switch), target (the colour serving at the end), opencode_port, ttyd_port (0: no terminal), health_s, grace_s,
# drain_s, domain, retired (paths), log_lines, ensure_secrets and manifest (paths in DIR).
. "$in/plan"
cd "$dir" || exit 1
now() { date +%s; }
t0=$(now) steps="" reloaded=0
step() { steps="$steps $1=$(($(now) - t0))"; }
compose() { COMPOSE_PROFILES=blue,green docker compose -f docker-compose.yml "$@"; }
oneline() { tail -n "${1:-3}" | tr '\n\t' '  '; }
reload_caddy() {
  out=$(compose exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile 2>&1) ||
    fail "reloading Caddy" "$(printf '%s' "$out" | oneline)"
  reloaded=1
}

# The previous generation, put back on failure: changed files restored, new ones removed, Compose restarted on it
# for every service but the devbox (the serving colour is never recreated in place; a failed switch already left
# the old one serving).
restore() {
  if [ -d .previous ]; then
    (cd .previous && find . -type f ! -name .created -print | while IFS= read -r f; do
      mkdir -p "../$(dirname "$f")" && cp -a "$f" "../$f"
    done) || return 1
    while IFS= read -r f; do [ -n "$f" ] && rm -f "$f"; done <.previous/.created
  fi
  # Only services the restored Compose file defines: a service this deploy added (an app) is not in it, and
  # naming it would make Compose refuse the whole command; its container goes.
  known=" $(compose config --services 2>/dev/null | tr '\n' ' ') "
  others=""
  for s in $up; do
    case $s in
      devbox*) ;;
      *) case $known in *" $s "*) others="$others $s" ;; *) docker rm -f $(compose ps -aq "$s" 2>/dev/null) >/dev/null 2>&1 ;; esac ;;
    esac
  done
  [ ! -f docker-compose.yml ] || compose up -d $others >/dev/null 2>&1
}

# The last log lines of every service not running healthy, on stderr.
logs_of_unhealthy() {
  sh "$in/inspect.sh" "$dir" --no-files >"$in/facts.fail" 2>/dev/null
  for s in $services; do
    state=$(service_status "$s" "$in/facts.fail")
    [ "$state" = running ] && continue
    name=$s
    [ "$s" = devbox ] && name=$(serving "$in/facts.fail")
    printf '%s\n' "--- last $log_lines log lines of $s:" >&2
    compose logs --no-color --tail "$log_lines" "$name" >&2 2>&1
  done
}

fail() { # STEP WHY
  printf 'steps\t%s\n' "${steps# }"
  [ "$reloaded" = 1 ] && printf 'reloaded\n'
  printf 'failed\t%s\t%s\n' "$1" "$2"
  logs_of_unhealthy
  if restore; then printf 'restore\t\n'; else printf 'restore\t (restoring failed too)\n'; fi
  exit 1
}

# The colour devbox.caddy names in inspect.sh output FILE (a host from before blue/green: `devbox`).
serving() { awk -F'\t' '$1 == "active" { a = $2 } END { print (a == "" ? "devbox" : a) }' "$1"; }
# Service.status() of the provider: `running`, `running (unhealthy)`, `exited`, or `missing`.
service_status() {
  name=$1
  [ "$name" = devbox ] && name=$(serving "$2")
  awk -F'\t' -v s="$name" '$1 == "service" && $2 == s {
      st = $3; if (st == "running" && $4 != "" && $4 != "healthy") st = st " (" $4 ")"; print st; found = 1 }
    END { if (!found) print "missing" }' "$2"
}

# 1. The previous generation of what is about to change.
rm -rf .previous && mkdir -p .previous && : >.previous/.created
(cd "$in/files" && find . -type f -print) | sed 's|^\./||' | while IFS= read -r f; do
  if [ -e "$f" ]; then cp -a --parents "$f" .previous/; else printf '%s\n' "$f" >>.previous/.created; fi
done
# 2. Files into place, each by rename (a reader sees the old file or the new one, never a part).
(cd "$in/files" && find . -type f -print) | sed 's|^\./||' | while IFS= read -r f; do
  mkdir -p "$(dirname "$f")" && cp -p "$in/files/$f" "$f.cloudcode-new" && mv -f "$f.cloudcode-new" "$f" ||
    exit 1
done || fail "uploading files" "could not move the uploaded files into $dir"
step files
# 3. Authelia's secrets, created once.
out=$(sh "$ensure_secrets" "$dir" 2>&1) || fail "creating Authelia's secrets" "$(printf '%s' "$out" | oneline)"

# 3b. The Docker daemon's settings (`mirrors`: registry mirrors, insecure registries) before Compose pulls
#     anything: /etc/docker/daemon.json is written only when absent or the one a deploy wrote before, and removed
#     again with the setting. The daemon reloads them on SIGHUP (no container restarts); .daemon.json.applied, the
#     copy that marks the file as ours, is written only once the daemon took it, so a failed reload is retried.
insecure_hosts() { # the insecure registries of daemon.json FILE that are hosts (CIDRs are listed elsewhere)
  awk '/"insecure-registries"/ { f = 1; next } f && /\]/ { f = 0 } f { gsub(/[ ",]/, ""); print }' "$1" |
    grep -v / || true
}
reload_dockerd() { # FILE (empty: the settings were removed)
  pid=$(cat /run/docker.pid 2>/dev/null || pidof dockerd 2>/dev/null || true)
  [ -n "$pid" ] && kill -HUP $pid 2>/dev/null || return 1
  hosts=""
  [ -z "$1" ] || hosts=$(insecure_hosts "$1")
  i=0
  while [ $i -lt 50 ]; do
    reg=$(docker info --format '{{json .RegistryConfig.IndexConfigs}}' 2>/dev/null) || reg=""
    ok=1
    for r in $hosts; do case $reg in *"\"$r\""*) ;; *) ok=0 ;; esac; done
    [ "$ok" = 1 ] && return 0
    i=$((i + 1)); sleep 0.2
  done
  return 1
}
sync_daemon_json() {
  want=docker/daemon.json cur=/etc/docker/daemon.json ours=.daemon.json.applied
  case " $retired " in *" $want "*) want="" ;; esac
  [ -f "$want" ] || want=""
  if [ -n "$want" ]; then
    cmp -s "$want" "$cur" && cmp -s "$want" "$ours" && return 0
    if [ -e "$cur" ] && ! cmp -s "$cur" "$ours" && ! cmp -s "$cur" "$want"; then
      fail "configuring the Docker daemon" "$cur exists and was not written by cloudcode: add the mirrors' registry-mirrors and insecure-registries to it by hand (or remove it), then apply again"
    fi
    mkdir -p /etc/docker && cp "$want" "$cur.cloudcode-new" && mv -f "$cur.cloudcode-new" "$cur" ||
      fail "configuring the Docker daemon" "could not write $cur"
  elif [ -f "$ours" ] && cmp -s "$ours" "$cur"; then
    rm -f "$cur"
  else
    rm -f "$ours"
    return 0
  fi
  reload_dockerd "$want" ||
    fail "configuring the Docker daemon" "dockerd did not take the new $cur within 10 s (see its log; a key it does not know is refused)"
  if [ -n "$want" ]; then cp "$want" "$ours"; else rm -f "$ours"; fi
  step daemon
}
sync_daemon_json

# 4. The run-time Caddy file names the serving devbox before Caddy may (re)start with a Caddyfile importing it.
caddy_changed=$caddyfile_changed
if ! cmp -s "$in/devbox.caddy" caddy/devbox.caddy; then
  mkdir -p caddy && cp "$in/devbox.caddy" caddy/.devbox.caddy.new && mv -f caddy/.devbox.caddy.new caddy/devbox.caddy
  caddy_changed=1
fi

# 5. Compose for every service but a serving devbox; Caddy reloaded in place when Compose did not recreate it.
caddy_before=$(compose ps -q caddy 2>/dev/null)
# The idle agent mounts the host's utmp (current logins): an empty one is a valid utmp where the host has none
# (a missing bind source would otherwise become a directory).
[ -e /run/utmp ] || : >/run/utmp
flags=""
[ "$build" = 1 ] && case " $up " in *" devbox_"*) flags="--build" ;; esac
# shellcheck disable=SC2086
out=$(compose up -d $flags $up 2>&1) || fail "docker compose up" "$(printf '%s' "$out" | oneline)"
step up
if [ "$caddy_changed" = 1 ] && [ "$(compose ps -q caddy 2>/dev/null)" = "$caddy_before" ]; then reload_caddy; fi

# 6. The devbox switched blue/green (the old one serves until the new one is healthy and OpenCode idle).
if [ -n "$switch_new" ]; then
  out=$(sh "$in/devbox.sh" "$dir" "$switch_old" "$switch_new" "$build" "$opencode_port" "$ttyd_port" \
    "$health_s" "$health_s" "$drain_s" "$in/devbox.caddy.new" 2>"$in/switch.err")
  printf 'switch\t%s\n' "$(printf '%s\n' "$out" | sed -n 's/^steps\t//p')"
  case $out in
    *"switched	"*) reloaded=1 ;;
    *) { printf '%s\n' "--- last $log_lines log lines of $switch_new:"; cat "$in/switch.err"; } >&2
       fail "switching the devbox" "$(printf '%s\n' "$out" | sed -n 's/^failed\t//p' | oneline 1)" ;;
  esac
  step switched
fi

# 7. Health: every service running, healthy where it has a check (a starting one's check run at once), and the
#    site answering through Caddy. A stopped container is final; an unhealthy one may recover (a check that timed
#    out on a busy first boot), so it fails the deploy only after grace_s without a healthy report.
deadline=$(($(now) + health_s))
while :; do
  # Containers only: hashing every file (apps' and sites' included) twice a second is work nobody reads here.
  sh "$in/inspect.sh" "$dir" --check-starting --no-files >"$in/facts" 2>/dev/null
  bad="" final=0
  for s in $services; do
    st=$(service_status "$s" "$in/facts")
    v=since_$(printf '%s' "$s" | tr -c 'A-Za-z0-9_' _) # app services have '-' in their names
    case $st in
      running) unset "$v" ;;
      *unhealthy*)
        eval "since=\${$v:-}"
        [ -n "$since" ] || { since=$(now); eval "$v=$since"; }
        [ $(($(now) - since)) -ge "$grace_s" ] && final=1
        bad="$bad, $s: $st" ;;
      exited* | dead*) final=1 bad="$bad, $s: $st" ;;
      *) bad="$bad, $s: $st" ;;
    esac
  done
  bad=${bad#, }
  if [ -z "$bad" ]; then
    # The idle agent does not count this user agent as use of the box.
    code=$(curl -sk -o /dev/null -A cloudcode-check/deploy -w '%{http_code}' --max-time 10 --resolve "$domain:443:127.0.0.1" "https://$domain/")
    case $code in [234][0-9][0-9]) break ;; esac
    last="the site does not answer through Caddy yet (HTTP $code)"
  else
    last=$bad
    [ "$final" = 1 ] && fail "waiting for healthy containers" "$last"
  fi
  [ "$(now)" -ge "$deadline" ] && fail "waiting for healthy containers" "not ready after ${health_s}s: $last"
  sleep 0.5
done
step healthy

# 8. Leftovers: a second devbox means an earlier switch was cut short, maybe after devbox.caddy named the new
#    colour but before Caddy loaded it, so Caddy reloads before the old one goes; a removed service's container.
gone=$(awk -F'\t' -v want="$services" -v target="$target" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) keep[w[i]] = 1 }
  $1 == "service" && !($2 ~ /^devbox/ ? $2 == target : ($2 in keep)) { print $2 "\t" $5 }' "$in/facts")
if [ -n "$gone" ]; then
  case $gone in devbox*) [ "$reloaded" = 1 ] || reload_caddy ;; esac
  # shellcheck disable=SC2046
  docker rm -f $(printf '%s\n' "$gone" | cut -f2) >/dev/null 2>&1 || fail "removing leftover containers" "docker rm failed"
  printf 'removed\t%s\n' "$(printf '%s\n' "$gone" | cut -f1 | tr '\n' ' ')"
fi

# 9. Files these settings no longer use (the chat bridge's once its block is gone): its container is gone now.
if [ -n "$retired" ]; then
  # Names carry no blanks (the provider filters them); no globbing either.
  set -f
  # shellcheck disable=SC2086
  rm -f -- $retired && { rmdir im 2>/dev/null || true; }
  set +f
  # Directories of apps' and sites' files left empty (a deleted folder, a removed app or site); `sites` itself
  # stays, as Caddy's bind mount.
  for d in apps sites; do [ -d "$d" ] && find "$d" -mindepth 1 -depth -type d -empty -delete 2>/dev/null; done
  true
fi

# Images of apps built on the host that no container uses any more (an earlier build, a removed app).
docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^cloudcode-app-' | while IFS= read -r ref; do
  [ -n "$(docker ps -aq --filter "ancestor=$ref" 2>/dev/null)" ] || docker rmi "$ref" >/dev/null 2>&1 || true
done

# 10. The manifest marks a complete generation (import reads it).
if [ -f "$in/manifest" ]; then
  cp -p "$in/manifest" "$manifest.cloudcode-new" && mv -f "$manifest.cloudcode-new" "$manifest"
fi
step done
printf 'steps\t%s\n' "${steps# }"
[ "$reloaded" = 1 ] && printf 'reloaded\n'
printf 'ok\n'
cat "$in/facts"
