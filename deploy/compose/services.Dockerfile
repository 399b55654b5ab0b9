# The trading services (and the alert archive receiver) from this repository.
# Build context: the repository root (see compose.yaml).
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# /app is a (partial) checkout: the services run from it (`python -m services`, they are
# in no wheel), and the tooling finds it through TRADING_OTEL_HOME.
ENV TRADING_OTEL_HOME=/app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY otel ./otel
COPY tools ./tools
COPY collector/manifest.yaml ./collector/manifest.yaml
COPY services ./services
COPY deploy ./deploy
# The alert-archive container serves the runbooks its alerts link to.
COPY docs/runbooks ./docs/runbooks
# The library with every integration, and the tooling (the alert archive receiver).
RUN pip install --no-compile ".[all]" ./tools && useradd --uid 10001 --create-home trading
USER 10001
ENTRYPOINT ["python"]
