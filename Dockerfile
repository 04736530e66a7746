# The bot in a container: docker compose up -d (see README.md, "Docker").
#
# Base image: pin it by digest so that a rebuild gets the same bytes. No digest is written here:
# none could be looked up where this file was last edited (no registry access). To pin it, and
# to update it later (security fixes), run
#     docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# and write the answer after the tag:  FROM python:3.11-slim@sha256:<digest>
FROM python:3.11-slim

# HTTP_HOST: inside a container the published port is the boundary, so listen on every interface
# here and choose on the host what is exposed (docker-compose.yml publishes to 127.0.0.1 only).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3 \
    WEBHOOK_PORT=8080 \
    HTTP_HOST=0.0.0.0

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes. Exact versions, hashes.
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

COPY bot.py ./
COPY core ./core
COPY cogs ./cogs
COPY discord_side ./discord_side

# A fixed, unprivileged uid/gid, so a host directory can be given to it: chown 10001:10001 DIR.
# A new named volume takes /data's ownership from the image.
RUN groupadd --gid 10001 bot \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin bot \
    && mkdir -p /data \
    && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080

# /healthz is 200 only while the gateway is connected and ready and the database answers.
# (WEBHOOK_PORT=0 turns the HTTP server off, and with it this check.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('WEBHOOK_PORT', '8080'); sys.exit(0) if port == '0' else urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"

# SIGTERM (docker stop) shuts down cleanly: running jobs resume at the next start.
STOPSIGNAL SIGTERM
CMD ["python", "bot.py"]
