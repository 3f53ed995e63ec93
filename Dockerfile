# syntax=docker/dockerfile:1
# tlc-pipeline: one image for the one-shot pipeline, the cron runner and luigid.
# Build stage: a wheel of the package (non-editable), installed into a venv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY pipeline/ pipeline/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir .

# supercronic: cron for containers (runs as a non-root user, logs to stdout, passes the
# environment through), pinned and checked by its published SHA-1.
FROM python:3.11-slim AS supercronic
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SUPERCRONIC_VERSION=v0.2.33
# The release's published SHA-1 for supercronic-linux-amd64 v0.2.33.
ARG SUPERCRONIC_SHA1SUM=71b0d58cc53f6bd72cf2f293e09e294b79c666d8
ADD https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-amd64 /supercronic
RUN echo "${SUPERCRONIC_SHA1SUM}  /supercronic" | sha1sum -c - && chmod 0755 /supercronic

FROM python:3.11-slim
LABEL org.opencontainers.image.title="tlc-pipeline" \
      org.opencontainers.image.description="NYC TLC trip records into a lake, DuckDB, PostgreSQL and BigQuery"
# luigi only reads TOML with this set; the package also sets it, but luigid and tools
# started directly need it too.
ENV LUIGI_CONFIG_PARSER=toml \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 tlc \
 && useradd --system --uid 10001 --gid tlc --home-dir /app --shell /usr/sbin/nologin tlc
COPY --from=build /opt/venv /opt/venv
COPY --from=supercronic /supercronic /usr/local/bin/supercronic
WORKDIR /app
COPY docker/luigi.toml /app/luigi.toml
COPY docker/crontab /app/crontab
RUN mkdir -p /data && chown tlc:tlc /data
USER 10001:10001
VOLUME ["/data"]
# The package imports and its config parses: a cheap check that the image is usable.
HEALTHCHECK --interval=5m --timeout=30s --start-period=10s \
  CMD ["python", "-c", "import pipeline, luigi.configuration as c; c.get_config()"]
CMD ["luigi", "--module", "pipeline", "IngestMonth", "--help"]
