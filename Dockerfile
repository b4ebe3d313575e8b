# citizenbot — the same install steps as the README, in a slim image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080

RUN useradd --create-home --uid 10001 citizenbot
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY storage ./storage
RUN pip install -c constraints.txt . && mkdir -p /data && chown citizenbot /data

USER citizenbot
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WEB_PORT', '8080'), timeout=4)"

# On PostgreSQL the schema is upgraded first; on SQLite `run` does it by itself.
CMD ["sh", "-c", "citizenbot db upgrade && exec citizenbot run"]
