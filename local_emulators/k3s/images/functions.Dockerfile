# syntax=docker/dockerfile:1
#
# The application image of the k3s profile: submit and sweep under functions-framework,
# dispatch (`python -m podscribe.jobs.stream_consumer`), the migrations and the bucket Job.
# Cloud Functions builds the same code from the deploy bundles in GCP; here one image serves
# every target.
# Build from the repository root:
#   docker build -f local_emulators/k3s/images/functions.Dockerfile \
#     -t registry.localhost:5000/podscribe-functions:dev .
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 podscribe \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin podscribe

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY functions ./functions

# submit and dispatch extras, plus the Kubernetes client the launcher uses. Bytecode is
# compiled now: the root filesystem is read-only at run time.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install ".[submit,dispatch,kubernetes]" \
    && /opt/venv/bin/python -m compileall -q /app/functions \
    && rm -rf /app/src /root/.cache

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp

USER 10001:10001
EXPOSE 8080

# The manifests name the target; submit is the default.
CMD ["functions-framework", "--target=submit", "--source=functions/submit/main.py", \
     "--signature-type=http", "--host=0.0.0.0", "--port=8080"]
