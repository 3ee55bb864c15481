"""The seed tutorial's app-team half (§1, §3, §4, §5), with a stand-in chat model instead of a fine-tuned Llama.

Runs unchanged against any W&B server: it reads WANDB_BASE_URL, WANDB_API_KEY and WF_TRACE_SERVER_URL
from the environment. Prints one JSON line (`RESULT {...}`) with what it created, for the test to check.
"""

import asyncio
import json
import os
import sys
from typing import Any

import wandb
import weave

ENTITY = os.environ["SEED_ENTITY"]
PROJECT = os.environ["SEED_PROJECT"]
ORG = os.environ["SEED_ORG"]
QUESTIONS = [
    ("What is the capital of Germany?", "Berlin"),
    ("When was the first conference on climate change?", "1979"),
    ("What gas do plants absorb?", "carbon dioxide"),
    ("What is the boiling point of water in Celsius?", "100"),
    ("Which planet is known as the red planet?", "Mars"),
]


class LookupChatModel(weave.Model):
    """Answers from a fixed table: the seed's UnslothLoRAChatModel without the GPU."""

    chat_model: str
    cm_temperature: float
    answers: dict[str, str]

    @weave.op()
    async def predict(self, query: list[dict[str, str]]) -> str:
        return self.answers.get(query[-1]["content"], "I do not know")


class RagModel(weave.Model):
    chat_model: Any
    prompt: str

    @weave.op()
    async def predict(self, question: str) -> dict:
        answer = await self.chat_model.predict([{"role": "user", "content": self.prompt + question}])
        return {"answer": answer}


@weave.op()
def exact_match(expected: str, output: dict) -> dict:
    return {"correct": expected.lower() in output["answer"].lower()}


async def main() -> None:
    wandb.login()
    weave.init(ENTITY + "/" + PROJECT)

    answers = {question: answer for question, answer in QUESTIONS}
    base_chat = LookupChatModel(name="ChatModelRag", chat_model="base", cm_temperature=1.0, answers=answers)
    first = RagModel(chat_model=base_chat, prompt="")
    first_ref = weave.publish(first, "RagModel")

    # §3: fetch the existing RagModel by ref, swap the chat model, publish the new version.
    rag_model = weave.ref(first_ref.uri()).get()
    new_chat_model = LookupChatModel(
        name="UnslothLoRAChatModelRag",
        chat_model=f"wandb-artifact:///{ORG}/wandb-registry-RAG Chat Models/Finetuned Llama-3.2:v0",
        cm_temperature=1.0,
        answers=answers,
    )
    rag_model.chat_model = new_chat_model
    pub_reference = weave.publish(rag_model, "RagModel")
    await rag_model.predict("When was the first conference on climate change?")

    # §4: an Evaluation linked to a run through weave.attributes.
    dataset = weave.Dataset(name="climate_rag_questions", rows=[{"question": q, "expected": a} for q, a in QUESTIONS])
    evaluation = weave.Evaluation(name="climate_rag_eval", dataset=dataset, scorers=[exact_match])
    eval_ref = weave.publish(evaluation, "climate_rag_eval")
    climate_rag_eval = weave.ref(eval_ref.uri()).get()
    run = wandb.init(project=PROJECT, entity=ENTITY, job_type="evaluation")
    with weave.attributes({"wandb-run-id": run.id}):
        summary, call = await climate_rag_eval.evaluate.call(climate_rag_eval, rag_model)
    run.finish()

    # §5: the RagModel as a reference artifact, linked into the registry.
    models_link = f"weave:///{ENTITY}/{PROJECT}/object/{pub_reference.name}:{pub_reference.digest}"
    with wandb.init(project=PROJECT, entity=ENTITY) as run5:
        artifact_model = wandb.Artifact(
            name="RagModel",
            type="model",
            description="RagModel link from Weave",
            metadata={"url": models_link},
        )
        artifact_model.add_reference(models_link, name="model", checksum=False)
        run5.log_artifact(artifact_model, aliases=[pub_reference.digest])
        run5.link_artifact(artifact_model, target_path=f"{ORG}/wandb-registry-RAG Models/RAG Model")
        publish_run_id = run5.id

    weave.finish()
    print(
        "RESULT "
        + json.dumps(
            {
                "rag_model_ref": pub_reference.uri(),
                "rag_model_digest": pub_reference.digest,
                "eval_call_id": call.id,
                "eval_run_id": run.id,
                "publish_run_id": publish_run_id,
                "summary": summary,
                "rows": len(QUESTIONS),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
