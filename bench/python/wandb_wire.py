"""The Python half of bench/wandb-wire.ts: times weave's Evaluation.evaluate and wandb's log_artifact against the
server in WANDB_BASE_URL / WF_TRACE_SERVER_URL, and a plain local copy of the same bytes as the baseline.
Prints `RESULT {...}` with seconds."""

import asyncio
import json
import os
import pathlib
import shutil
import time

import wandb
import weave

ROWS = int(os.environ["BENCH_ROWS"])
SMALL_FILES = int(os.environ["BENCH_SMALL_FILES"])
LARGE_MB = int(os.environ["BENCH_LARGE_MB"])
WORK = pathlib.Path(os.environ["BENCH_WORK"])


class EchoModel(weave.Model):
    prefix: str

    @weave.op()
    async def predict(self, question: str) -> str:
        return self.prefix + question


@weave.op()
def non_empty(output: str) -> dict:
    return {"ok": len(output) > 0}


def timed_log(run, name: str, source: pathlib.Path) -> float:
    started = time.perf_counter()
    artifact = wandb.Artifact(name=name, type="dataset")
    artifact.add_dir(str(source))
    run.log_artifact(artifact)
    artifact.wait()
    return time.perf_counter() - started


def timed_copy(source: pathlib.Path, target: pathlib.Path) -> float:
    started = time.perf_counter()
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        if path.is_file():
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
    return time.perf_counter() - started


async def main() -> None:
    weave.init("bench/wandb-wire")
    evaluation = weave.Evaluation(
        dataset=weave.Dataset(name="questions", rows=[{"question": f"question {i}"} for i in range(ROWS)]),
        scorers=[non_empty],
    )
    model = EchoModel(prefix="answer to ")
    started = time.perf_counter()
    await evaluation.evaluate(model)
    evaluated = time.perf_counter() - started
    if os.environ.get("WEAVE_DISABLED") == "true":
        # The baseline: the same evaluation with tracing off (no server at all).
        print("RESULT " + json.dumps({"evaluate_s": evaluated}))
        return
    weave.get_client().flush()
    recorded = time.perf_counter() - started

    small = WORK / "small"
    small.mkdir(parents=True)
    for index in range(SMALL_FILES):
        (small / f"doc-{index:04d}.txt").write_bytes(os.urandom(4096))
    large = WORK / "large"
    large.mkdir()
    with open(large / "weights.bin", "wb") as handle:
        for _ in range(LARGE_MB):
            handle.write(os.urandom(1024 * 1024))

    with wandb.init(project="wandb-wire", entity="bench", job_type="bench") as run:
        small_log = timed_log(run, "small-files", small)
        large_log = timed_log(run, "large-file", large)
    small_copy = timed_copy(small, WORK / "small-copy")
    large_copy = timed_copy(large, WORK / "large-copy")
    print(
        "RESULT "
        + json.dumps(
            {
                "evaluate_s": evaluated,
                "evaluate_and_flush_s": recorded,
                "small_log_s": small_log,
                "small_copy_s": small_copy,
                "large_log_s": large_log,
                "large_copy_s": large_copy,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
