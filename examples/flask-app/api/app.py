"""A small JSON API: the design documents' example app, served by Gunicorn behind cloudcode's Caddy."""

import os
import time

from flask import Flask, jsonify

app = Flask(__name__)
STARTED = time.time()


@app.get("/health")
def health():
    """Caddy's active health check (`health = "/health"`)."""
    return jsonify(status="ok")


@app.get("/")
def index():
    return jsonify(
        message=os.environ.get("GREETING", "hello from Flask"),
        version=os.environ.get("APP_VERSION", "dev"),
        # A secret env value is used, never shown: only whether it is set.
        database_configured=bool(os.environ.get("DATABASE_URL")),
        uptime_seconds=round(time.time() - STARTED, 1),
    )
