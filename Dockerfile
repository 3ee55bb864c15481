# One image for every weft process; docker-compose.yml picks the entry point per service.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --omit=dev
# The trainer's pinned packages (torch with CUDA, transformers, peft, onnx) for the gpu worker's fine-tune.
COPY trainer/requirements.txt trainer/requirements.txt
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r trainer/requirements.txt
COPY . .
ENV WEFT_HOME=/data \
    HF_HUB_OFFLINE=1
# Orchestrator by default; compose overrides the command for the gpu and registry workers.
CMD ["node", "--require", "tsx/cjs", "workers/orchestrator.ts"]
