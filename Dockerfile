# amibot: `amibot serve` on waitress, as a non-root user, with a health check.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AMIBOT_DB=/data/amibot.db \
    AMIBOT_CONFIG=/config/amibot.toml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY aws ./aws
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --home /data amibot \
 && mkdir -p /data /config && chown amibot /data

USER amibot
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2).status == 200 else 1)"
CMD ["amibot", "serve", "--host", "0.0.0.0", "--port", "3000"]
