#!/usr/bin/env bash
# Installs what the project needs, idempotently: system packages (when root), uv, and
# the locked Python environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v redis-server >/dev/null || need_apt+=(redis-server)
# PostgreSQL (the production Dagster instance's storage); Debian keeps it off PATH.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || need_apt+=(postgresql)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
  else
    echo "missing system packages; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
UV=".cache/uv/bin/uv"
if [ ! -x "$UV" ] || [ "$("$UV" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PY" -m venv .cache/uv
  .cache/uv/bin/pip install -q "uv==${UV_VERSION}"
fi
"$UV" sync --frozen --quiet --python "$PY" ${UV_GROUPS:-}
