# The trading services (and the alert archive receiver) from this repository.
# Build context: the repository root (see compose.yaml).
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY otel ./otel
COPY services ./services
COPY deploy ./deploy
# The alert-archive container serves the runbooks its alerts link to.
COPY docs/runbooks ./docs/runbooks
RUN pip install --no-compile . && useradd --uid 10001 --create-home trading
USER 10001
ENTRYPOINT ["python"]
