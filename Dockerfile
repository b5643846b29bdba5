# One image for the API and the Dagster code location (webserver and daemon run it too).
# Build stage: the locked environment; runtime stage: that environment and the code only,
# run as an unprivileged user. PYTHON_IMAGE picks the base image of both stages (an
# air-gapped build passes a locally built equivalent; see scripts/offline-base-image.sh).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS build
# uv trusts the system's CA store (not its bundled roots), so a build behind a TLS-inspecting
# proxy works with that proxy's CA mounted over /etc/ssl/certs/ca-certificates.crt.
ENV PYTHONDONTWRITEBYTECODE=1 UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_SYSTEM_CERTS=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/state/dagster DATA_DIR=/data STATE_DIR=/state \
    _RJEM_MALLOC_CONF=background_thread:true,dirty_decay_ms:10000,muzzy_decay_ms:10000
RUN groupadd --system --gid 10001 community \
 && useradd --system --uid 10001 --gid community --home-dir /app --shell /usr/sbin/nologin community \
 && mkdir -p /data /state/dagster /backups \
 && chown -R community:community /data /state /backups
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=community:community /app /app
COPY deploy/dagster.yaml /state/dagster/dagster.yaml
WORKDIR /app
USER community
EXPOSE 3000 3001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=4).status == 200 else 1)"]
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "3000"]
