# tlc-pipeline: one image for the one-shot pipeline, the cron runner and luigid.
# No `# syntax=` line: BuildKit would fetch a frontend image for it, and offline builds fail.
# With podman, build with `--format docker`: the default OCI format drops HEALTHCHECK.
# Every Python package is pinned by docker/constraints.txt (docker/refresh-constraints.sh).

# Build stage: the package (non-editable) with dumb-init in /opt/venv; yacron, the cron
# runner, in a venv of its own so its pins never meet the pipeline's.
FROM python:3.11-slim AS build
# PIP_CONSTRAINT also reaches pip's isolated build environment, which `-c` does not: it pins
# the setuptools and wheel that build the package.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
COPY docker/constraints.txt constraints.txt
RUN python -m venv /opt/yacron \
 && /opt/yacron/bin/pip install --no-cache-dir -c constraints.txt yacron
COPY setup.cfg setup.py pyproject.toml README.md ./
COPY pipeline/ pipeline/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt dumb-init . \
 && /opt/venv/bin/pip check

FROM python:3.11-slim
LABEL org.opencontainers.image.title="tlc-pipeline" \
      org.opencontainers.image.description="NYC TLC trip records into a lake, DuckDB, PostgreSQL and BigQuery"
# luigi only reads TOML with this set; the package also sets it, but luigid and tools
# started directly need it too.
ENV LUIGI_CONFIG_PARSER=toml \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
# /data belongs to the runtime user: a fresh named volume mounted there copies its owner.
RUN groupadd --system --gid 10001 tlc \
 && useradd --system --uid 10001 --gid tlc --home-dir /app --shell /usr/sbin/nologin tlc \
 && mkdir -p /data \
 && chown tlc:tlc /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/yacron /opt/yacron
RUN ln -s /opt/yacron/bin/yacron /usr/local/bin/yacron
WORKDIR /app
COPY docker/luigi.toml /app/luigi.toml
COPY docker/crontab.yaml /app/crontab.yaml
COPY docker/healthcheck.py /app/healthcheck.py
USER 10001:10001
VOLUME ["/data"]
# dumb-init is PID 1: it forwards SIGTERM to the command's process group and reaps zombies,
# so `docker stop` ends a run at once instead of waiting out the timeout.
ENTRYPOINT ["dumb-init", "--"]
# Healthy when the central scheduler this container reports to (luigi.toml's [core]) answers
# its API, and /data is writable: what every service of the image needs to do its work.
HEALTHCHECK --interval=1m --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "/app/healthcheck.py"]
CMD ["luigi", "--module", "pipeline", "IngestMonth", "--help"]
