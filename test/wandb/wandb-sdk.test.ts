import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CallRecord } from '../../lib/lineage';
import { parseCliJson } from '../weave/support/weave-server-fixture';
import { requireSdkVenv, startWandbServe, type PythonRun, type WandbServeFixture } from './support/wandb-fixture';

/**
 * The seed tutorial's Python code (wandb 0.31 + weave 0.54 from PyPI, in .venv-sdk) against the real `weft serve`,
 * configured by environment variables only; everything is then read back through `weft` and the store.
 */

function expectSucceeded(run: PythonRun): void {
  if (run.code !== 0) throw new Error(`the Python script exited with ${run.code}:\n${run.output.slice(-6000)}`);
}

function shortOp(opName: string): string {
  return /\/op\/([^:]+):/.exec(opName)?.[1] ?? opName;
}

describe('the seed app team (weave + wandb Python SDKs) against weft serve', () => {
  let fixture: WandbServeFixture;
  let run: PythonRun;

  beforeAll(async () => {
    requireSdkVenv();
    fixture = await startWandbServe();
    // Only WANDB_BASE_URL and WANDB_API_KEY: weave finds its trace server at <WANDB_BASE_URL>/traces by itself.
    run = await fixture.python('seed_app_team.py', {
      SEED_ENTITY: 'weft',
      SEED_PROJECT: 'rag-demo',
      SEED_ORG: 'weft',
      WF_TRACE_SERVER_URL: '',
    });
  }, 300_000);

  afterAll(async () => {
    await fixture?.dispose();
  });

  it('runs to the end with WANDB_BASE_URL and WANDB_API_KEY only, and the server rejected nothing', () => {
    expectSucceeded(run);
    expect(fixture.log()).not.toMatch(/→ [45]\d\d/);
  });

  it('keeps every call of the evaluation, each tagged with the wandb run id, as `weft calls ls` lists them', async () => {
    const calls = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--entity', 'weft', '--project', 'rag-demo', '--limit', '1000', '--json']),
    );
    const byOp: Record<string, number> = {};
    for (const call of calls) byOp[shortOp(call.opName)] = (byOp[shortOp(call.opName)] ?? 0) + 1;
    const rows = run.result.rows as number;
    // One predict before the evaluation; then per row: predict_and_score → RagModel.predict → chat predict, and the scorer.
    expect(byOp).toEqual({
      'RagModel.predict': rows + 1,
      'LookupChatModel.predict': rows + 1,
      'Evaluation.evaluate': 1,
      'Evaluation.predict_and_score': rows,
      exact_match: rows,
      'Evaluation.summarize': 1,
    });
    expect(calls.every((call) => call.endedAt !== null)).toBe(true);
    const evaluation = calls.find((call) => call.id === run.result.eval_call_id)!;
    const inEvaluation = calls.filter((call) => call.traceId === evaluation.traceId);
    expect(inEvaluation).toHaveLength(4 * rows + 2);
    expect(inEvaluation.every((call) => call.attributes['wandb-run-id'] === run.result.eval_run_id)).toBe(true);
    expect((evaluation.output as Record<string, unknown>).exact_match).toEqual({
      correct: { true_count: rows, true_fraction: 1 },
    });
  });

  it('attaches every score as feedback on its predict call, none left waiting', async () => {
    const calls = await fixture.store.calls.query({ entity: 'weft', project: 'rag-demo', limit: 1000 });
    const predictions = calls.filter(
      (call) =>
        shortOp(call.opName) === 'RagModel.predict' &&
        calls.find(
          (parent) => parent.id === call.parentId && shortOp(parent.opName) === 'Evaluation.predict_and_score',
        ),
    );
    expect(predictions).toHaveLength(run.result.rows as number);
    for (const prediction of predictions) {
      const feedback = await fixture.store.calls.feedback(`weave:///weft/rag-demo/call/${prediction.id}`);
      expect(feedback.map((item) => item.type)).toEqual(['wandb.runnable.exact_match']);
      expect(feedback[0]!.payload).toEqual({ output: { correct: true } });
    }
    const [pending] = await fixture.store.database.query<{ count: number }>(
      'SELECT COUNT(*) AS count FROM pending_feedback',
    );
    expect(Number(pending!.count)).toBe(0);
  });

  it('logs the RagModel reference artifact from its run and links it into the RAG Models registry', async () => {
    const artifacts = parseCliJson<{ name: string; versionCount: number; aliases: string[] }[]>(
      await fixture.weft(['artifacts', 'ls', '--entity', 'weft', '--project', 'rag-demo', '--json']),
    );
    expect(artifacts).toEqual([
      expect.objectContaining({
        name: 'RagModel',
        versionCount: 1,
        aliases: [`${String(run.result.rag_model_digest)}=v0`],
      }),
    ]);
    const registry = parseCliJson<{ collections: { name: string; versionCount: number }[] }>(
      await fixture.weft(['registry', 'show', 'RAG Models', '--org', 'weft', '--json']),
    );
    expect(registry.collections).toEqual([expect.objectContaining({ name: 'RAG Model', versionCount: 1 })]);
    const linked = await fixture.store.registry.resolve(
      'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:latest',
    );
    expect(linked.artifact.ref).toBe('wandb-artifact:///weft/rag-demo/RagModel:v0');
    expect(linked.artifact.manifest).toEqual([
      { path: 'model', ref: run.result.rag_model_ref, checksum: run.result.rag_model_ref, size: 0 },
    ]);
    expect(linked.artifact.createdByRun).toBe(run.result.publish_run_id);
    const graph = parseCliJson<{ edges: { from: string; to: string; relation: string }[] }>(
      await fixture.weft(['lineage', 'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:v0', '--json']),
    );
    expect(graph.edges).toEqual(
      expect.arrayContaining([
        {
          from: `run:${String(run.result.publish_run_id)}`,
          to: 'wandb-artifact:///weft/rag-demo/RagModel:v0',
          relation: 'output',
        },
        {
          from: 'wandb-artifact:///weft/rag-demo/RagModel:v0',
          to: 'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:v0',
          relation: 'link',
        },
      ]),
    );
    const evalRun = await fixture.store.runs.get(run.result.eval_run_id as string);
    expect(evalRun).toMatchObject({ entity: 'weft', project: 'rag-demo', jobType: 'evaluation', state: 'finished' });
  });
});

describe('the seed model team: a 52 MB model artifact through the registry, and weft versions read by wandb.Api()', () => {
  let fixture: WandbServeFixture;
  let run: PythonRun;
  let modelDir: string;
  const localDigests: Record<string, string> = {};

  beforeAll(async () => {
    requireSdkVenv();
    fixture = await startWandbServe();
    modelDir = path.join(fixture.location.folder, 'model');
    const files: Record<string, Buffer> = {
      'adapter/adapter_model.safetensors': crypto.randomBytes(52 * 1024 * 1024),
      'adapter/adapter_config.json': Buffer.from('{"r": 16, "lora_alpha": 32}'),
      'tokenizer.json': Buffer.from('{"vocab": ["a", "b"]}'),
    };
    for (const [name, bytes] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(modelDir, name)), { recursive: true });
      fs.writeFileSync(path.join(modelDir, name), bytes);
      localDigests[name] = crypto.createHash('sha256').update(bytes).digest('hex');
    }
    // A version weft itself published (as its pipeline does): the wandb SDK must read it by registry path and alias.
    const logged = await fixture.store.artifacts.log({
      entity: 'weft',
      project: 'rag-demo',
      name: 'rag-app',
      type: 'rag-app',
      metadata: { gate: 'passed' },
      files: [
        { path: 'app.json', content: '{"prompt": "answer from the context"}' },
        { path: 'index/vectors.bin', content: Buffer.alloc(200_000, 7) },
      ],
    });
    const target = 'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model';
    const link = await fixture.store.registry.link({ artifact: logged.ref, target });
    await fixture.store.registry.moveAlias(target, { alias: 'production', to: link.version, expected: null });
    run = await fixture.python('seed_model_team.py', {
      SEED_ENTITY: 'weft',
      SEED_PROJECT: 'rag-demo',
      SEED_ORG: 'weft',
      SEED_MODEL_DIR: modelDir,
      SEED_DOWNLOAD_DIR: path.join(fixture.location.folder, 'downloads'),
    });
  }, 300_000);

  afterAll(async () => {
    await fixture?.dispose();
  });

  it('downloads from the registry exactly the bytes the model team logged', () => {
    expectSucceeded(run);
    expect(run.result.downloaded).toEqual(localDigests);
    expect(fixture.log()).not.toMatch(/→ [45]\d\d/);
  });

  it('links the model into RAG Chat Models with its aliases (one added through wandb.Api()), seen alike by weft and wandb', async () => {
    expect(run.result.linked_aliases).toEqual(['latest', 'production', 'staging']);
    expect(run.result.linked_version).toBe('v0');
    const registry = parseCliJson<{ collections: { name: string; aliases: string[] }[] }>(
      await fixture.weft(['registry', 'show', 'RAG Chat Models', '--org', 'weft', '--json']),
    );
    expect(registry.collections).toEqual([
      expect.objectContaining({ name: 'Finetuned Llama-3.2', aliases: ['production=v0', 'staging=v0'] }),
    ]);
    const version = await fixture.store.artifacts.get('wandb-artifact:///weft/rag-demo/finetuned-llama:candidate');
    expect(version.manifest.map((entry) => [entry.path, entry.digest])).toEqual(
      Object.entries(localDigests).sort(([left], [right]) => (left < right ? -1 : 1)),
    );
  });

  it('records lineage: the fine-tune run logged the model, the download run used it', async () => {
    const edges = await fixture.store.database.query<{ run_id: string; direction: string; name: string }>(
      `SELECT r.run_id, r.direction, c.name FROM run_artifacts r JOIN artifact_versions v ON v.id = r.artifact_version_id
       JOIN collections c ON c.id = v.collection_id ORDER BY r.direction`,
    );
    expect(edges).toEqual([
      { run_id: run.result.download_run_id, direction: 'input', name: 'finetuned-llama' },
      { run_id: run.result.train_run_id, direction: 'output', name: 'finetuned-llama' },
    ]);
  });

  it("serves weft's own published registry version to wandb.Api().artifact(...) with its files, aliases and metadata", () => {
    expect(run.result.published_aliases).toEqual(['latest', 'production']);
    expect(run.result.published_type).toBe('rag-app');
    expect(run.result.published_metadata).toEqual({ gate: 'passed' });
    expect(run.result.published_files).toEqual({
      'app.json': crypto.createHash('sha256').update('{"prompt": "answer from the context"}').digest('hex'),
      'index/vectors.bin': crypto.createHash('sha256').update(Buffer.alloc(200_000, 7)).digest('hex'),
    });
  });
});
