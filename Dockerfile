# inventory-monitor: the daemon, with its config and SQLite database on volumes.
# The same Python as `make` expects (3.11); dependencies come from the hashed lock file.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /venv
COPY requirements.lock ./
RUN /venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY monitor ./monitor
COPY migrations ./migrations
RUN /venv/bin/pip install --no-deps .

FROM python:3.11-slim
# MONITOR_HOST: the example config binds the server to it. Inside a container, all
# interfaces, or the published port reaches nothing (the config then requires a token).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/venv/bin:$PATH \
    MONITOR_HOST=0.0.0.0
COPY --from=build /venv /venv
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home monitor \
    && mkdir -p /config /data \
    && chown monitor:monitor /data

USER 10001:10001
# The default database URL, sqlite+aiosqlite:///data/monitor.db, is relative to this directory.
WORKDIR /
VOLUME ["/config", "/data"]
# The dashboard, API and metrics (server.port); /healthz answers while polling runs.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["inventory-monitor", "health", "--config", "/config/monitor.yaml"]

# Exec form: the daemon is PID 1 and receives Docker's SIGTERM itself.
ENTRYPOINT ["inventory-monitor"]
CMD ["run", "--config", "/config/monitor.yaml"]
