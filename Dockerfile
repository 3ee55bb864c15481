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
# CUDA inference for the gpu worker (WEFT_CUDA=0 builds a CPU-only image): onnxruntime's CUDA provider libraries at
# exactly onnxruntime-node's version, taken from the onnxruntime-gpu wheel (built for CUDA 13), and the CUDA 13
# runtime, cuBLAS and cuRAND they load, from PyPI's nvidia-* wheels. bench/device/README.md: the same libraries,
# placed the same way, ran on an H200; this image build itself has not been run here (no Docker engine).
ARG WEFT_CUDA=1
RUN if [ "$WEFT_CUDA" = 1 ]; then \
      ort=$(node -p "require('onnxruntime-node/package.json').version") && \
      python3 -m venv /opt/weft-cuda && \
      /opt/weft-cuda/bin/pip install --no-cache-dir --no-deps "onnxruntime-gpu==$ort" \
        'nvidia-cuda-runtime==13.*' 'nvidia-cublas==13.*' 'nvidia-curand==10.*' && \
      site=$(/opt/weft-cuda/bin/python -c 'import site; print(site.getsitepackages()[0])') && \
      cp "$site"/onnxruntime/capi/libonnxruntime_providers_cuda.so "$site"/onnxruntime/capi/libonnxruntime_providers_shared.so \
        node_modules/onnxruntime-node/bin/napi-v6/linux/x64/ && \
      ln -s "$site/nvidia/cu13/lib" /opt/weft-cuda/lib && rm -rf "$site/onnxruntime"; \
    fi
ENV LD_LIBRARY_PATH=/opt/weft-cuda/lib
COPY . .
ENV WEFT_HOME=/data \
    HF_HUB_OFFLINE=1
# Orchestrator by default; compose overrides the command for the gpu and registry workers.
CMD ["node", "--require", "tsx/cjs", "workers/orchestrator.ts"]
