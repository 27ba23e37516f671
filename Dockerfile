# syntax=docker/dockerfile:1
#
# unifocus API image.
#   build:  docker build -t unifocus:0.1.0 .
#   run:    docker run -p 8000:8000 --env-file .env unifocus:0.1.0
#   other commands, same image:  docker run --env-file .env unifocus:0.1.0 migrate
#
# Stage 1 builds a wheel of the project and installs it (with its dependencies) into a
# self-contained venv; stage 2 copies only that venv onto a clean slim base, so no compiler,
# source tree or pip cache ships in the runtime image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/venv
# Dependencies first (their layer is reused while only src/ changes): pyproject alone is
# enough for pip to resolve and install them; the project itself is built afterwards.
COPY pyproject.toml constraints.txt ./
RUN mkdir -p src/unifocus && touch src/unifocus/__init__.py \
 && /opt/venv/bin/pip install -c constraints.txt . \
 && /opt/venv/bin/pip uninstall -y unifocus
COPY src ./src
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/unifocus-*.whl \
 && /opt/venv/bin/unifocus --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="unifocus" \
      org.opencontainers.image.description="Time-and-attendance API"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    UNIFOCUS_DATA_DIR=/var/lib/unifocus
# Fixed non-root uid/gid 10001 (matches runAsUser in deploy/k8s/deployment.yaml). The writable
# paths are created owned by it; with a read-only root filesystem they are volumes instead.
RUN groupadd --system --gid 10001 unifocus \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/unifocus --create-home \
        --shell /usr/sbin/nologin unifocus \
 && mkdir -p /tmp/metrics /var/lib/unifocus \
 && chown 10001:10001 /tmp/metrics /var/lib/unifocus
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/unifocus
USER 10001:10001
EXPOSE 8000
# The service drains on SIGTERM (/ready answers 503, in-flight requests finish within
# UNIFOCUS_SHUTDOWN_GRACE_SECONDS, default 20); give `docker stop -t 30` or more.
STOPSIGNAL SIGTERM
# Liveness only (/health touches no dependency), at the readiness gate's cadence: every 30 s,
# 5 s timeout, unhealthy after 2 consecutive failures. Slim has no curl: use the stdlib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=2 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["unifocus"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
