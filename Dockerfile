# amibot: `amibot serve` on waitress, as a non-root user, with a health check.
#
# The base image is pinned by digest (a tag moves when the image is rebuilt). The digest
# below was NOT resolved from the registry by this project's tooling (no image pulls
# where it was written): it is the python:3.11-slim digest pinned in public Dockerfiles.
# Check and refresh it with
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# and override without editing: docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AMIBOT_DB=/data/amibot.db \
    AMIBOT_CONFIG=/config/amibot.toml

WORKDIR /app
# Dependencies first, exactly as locked (versions and hashes: requirements.lock, made
# with `make lock`), then the project itself without resolving anything again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY aws ./aws
# --no-build-isolation: the build backend is the setuptools pinned and hashed in the lock
# (installed above), not whatever version pip would fetch unhashed into an isolated build.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
 && useradd --system --uid 10001 --home /data amibot \
 && mkdir -p /data /config && chown amibot /data

USER amibot
VOLUME ["/data"]
EXPOSE 3000
# The Slack port's /healthz says only whether the bot is up. Metrics and the detailed
# health are on the admin listener, off here: add `--admin-port 9100` (host 127.0.0.1,
# reachable inside the container) or `--admin-host 0.0.0.0` on a private network only.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2).status == 200 else 1)"
# The HTTP front and its 2 worker processes (issue 20: `--workers N`, 0 for one process);
# the workers share the SQLite file under /data (WAL) or the PostgreSQL of AMIBOT_DB.
CMD ["amibot", "serve", "--host", "0.0.0.0", "--port", "3000"]
