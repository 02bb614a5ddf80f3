#!/bin/bash
# devbox entrypoint (cloudcode test image): ttyd web terminal on $TTYD_PORT under /terminal (restarted if it
# exits) and OpenCode's server as the main process on $OPENCODE_PORT.
set -euo pipefail
: "${OPENCODE_PORT:=4096}" "${TTYD_PORT:=7681}"
mkdir -p "$HOME"
(
  while true; do
    ttyd -W -b /terminal -p "$TTYD_PORT" /bin/bash || true
    sleep 1
  done
) &
exec opencode serve --hostname 0.0.0.0 --port "$OPENCODE_PORT"
