import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { AliasConflictError, NotFoundError, type LineageStore } from '../lib/lineage';
import { errorTypes } from '../workflows/contracts/errors';
import type { LifecycleRegistryActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

/** Registry and collection names the pipeline writes to (W&B Registry semantics). */
export const chatModelRegistry = 'RAG Chat Models';
export const ragModelRegistry = 'RAG Models';
export const ragModelCollection = 'RAG Model';

export interface RegistryActivityDependencies {
  store: LineageStore;
  org: string;
}

export function registryCollectionRef(org: string, registry: string, collection: string): string {
  return `wandb-artifact:///${org}/wandb-registry-${registry}/${collection}`;
}

/** Version number an alias of a registry collection points at, or null when it is unassigned. */
export async function registryAliasVersion(store: LineageStore, collectionRef: string, alias: string) {
  try {
    return (await store.registry.resolve(`${collectionRef}:${alias}`)).version;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/** Files of a folder as artifact entries, their paths prefixed (`onnx/model.onnx`). */
export function filesUnder(directory: string, prefix: string): { path: string; localPath: string }[] {
  const entries: { path: string; localPath: string }[] = [];
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile())
        entries.push({ path: path.posix.join(prefix, path.relative(directory, full)), localPath: full });
    }
  };
  walk(directory);
  return entries.sort((left, right) => left.path.localeCompare(right.path));
}

/** The name used for the idempotency key of one step of one workflow (rule 3: keys derive from workflow id + step). */
const stepKey = (workflowId: string, step: string) => `${workflowId}/${step}`;

export function createRegistryActivities({ store, org }: RegistryActivityDependencies): LifecycleRegistryActivities {
  return atBoundary<LifecycleRegistryActivities>({
    async registerModel(input) {
      const onnxDirectory = path.join(input.fineTune.modelDirectory, 'onnx');
      if (!fs.existsSync(path.join(onnxDirectory, 'model.onnx'))) {
        throw invalidInput(
          `The fine-tuned model folder ${onnxDirectory} has no model.onnx: the fine-tune step did not finish its export. ` +
            'Re-run the pipeline; if it repeats, check the gpu worker log.',
          errorTypes.invalidModel,
        );
      }
      const run = await store.runs.create({
        jobType: 'fine-tune',
        workflowId: input.workflowId,
        config: { base_model: input.baseModelRef, dataset: input.trainingDatasetRef, ...input.fineTune.summary },
        idempotencyKey: stepKey(input.runKey, 'fine-tune-run'),
      });
      await store.artifacts.use(input.baseModelRef, { runId: run.id });
      const logged = await store.artifacts.log({
        name: `${input.app}-chat`,
        type: 'model',
        description: `LoRA fine-tune of ${input.baseModelRef} for ${input.app}, merged and exported to ONNX`,
        metadata: {
          base_model: input.baseModelRef,
          dataset: input.trainingDatasetRef,
          final_loss: input.fineTune.summary.finalLoss,
          steps: input.fineTune.summary.steps,
          tokens_per_second: input.fineTune.summary.tokensPerSecond,
          export_check: { max_abs_logit_diff: input.fineTune.summary.maxAbsLogitDifference },
          workflow_id: input.workflowId,
        },
        // The ONNX folder at the root (what inference loads), the HF weights under hf/ (so it can be fine-tuned again).
        files: [
          ...filesUnder(onnxDirectory, ''),
          ...(fs.existsSync(path.join(input.fineTune.modelDirectory, 'hf'))
            ? filesUnder(path.join(input.fineTune.modelDirectory, 'hf'), 'hf')
            : []),
        ],
        runId: run.id,
        idempotencyKey: stepKey(input.runKey, 'log-model'),
      });
      await store.runs.finish(run.id, { summary: { final_loss: input.fineTune.summary.finalLoss }, state: 'finished' });
      await store.registry.create({ org, name: chatModelRegistry, artifactTypes: ['model'] });
      const collectionRef = registryCollectionRef(org, chatModelRegistry, input.app);
      const linked = await store.registry.link({
        artifact: logged.ref,
        target: collectionRef,
        actor: Context.current().info.activityType,
        workflowId: input.workflowId,
        idempotencyKey: stepKey(input.runKey, 'link-model'),
      });
      // `candidate` is this pipeline's alias; a concurrent pipeline may move it too, so re-read and retry on conflict.
      for (let attempt = 0; ; attempt += 1) {
        const current = await registryAliasVersion(store, collectionRef, 'candidate');
        try {
          await store.registry.moveAlias(collectionRef, {
            alias: 'candidate',
            to: linked.version,
            expected: current,
            actor: 'registerModel',
            workflowId: input.workflowId,
          });
          break;
        } catch (error) {
          if (attempt >= 3 || (error as { type?: string }).type !== 'AliasConflictError') throw error;
        }
      }
      return { artifactRef: logged.ref, registryRef: linked.ref };
    },

    async publishRagModel(input) {
      await store.registry.create({ org, name: ragModelRegistry, artifactTypes: ['rag-model'] });
      const digest = input.ragModelRef.slice(input.ragModelRef.lastIndexOf(':') + 1);
      // A reference artifact: the RagModel lives in the object store; the artifact points at it (checksum off).
      const logged = await store.artifacts.log({
        name: `${input.app}-rag-model`,
        type: 'rag-model',
        description: `RagModel ${input.ragModelRef}, published after the gate`,
        metadata: { url: input.ragModelRef, gate: input.gate, workflow_id: input.workflowId },
        references: [{ uri: input.ragModelRef, path: 'rag-model' }],
        idempotencyKey: stepKey(input.workflowId, 'log-rag-model'),
      });
      const artifactCollectionRef = logged.ref.slice(0, logged.ref.lastIndexOf(':'));
      const currentDigestAlias = await store.artifacts
        .get(`${artifactCollectionRef}:${digest}`)
        .then((version) => version.version)
        .catch((error: unknown) => {
          if (error instanceof NotFoundError) return null;
          throw error;
        });
      if (currentDigestAlias !== logged.version) {
        await store.artifacts.moveAlias(artifactCollectionRef, {
          alias: digest,
          to: logged.version,
          expected: currentDigestAlias,
          workflowId: input.workflowId,
        });
      }
      const collectionRef = registryCollectionRef(org, ragModelRegistry, ragModelCollection);
      const linked = await store.registry.link({
        artifact: logged.ref,
        target: collectionRef,
        actor: 'publishRagModel',
        workflowId: input.workflowId,
        idempotencyKey: stepKey(input.workflowId, 'link-rag-model'),
      });
      // Compare-and-set on `production`: it must still point where the gate's champion came from. A retry after a
      // successful move finds it already at our version, which the store treats as a no-op success.
      const current = await registryAliasVersion(store, collectionRef, 'production');
      const expectedVersion =
        input.expectedProductionRef === null
          ? null
          : await championVersion(store, collectionRef, input.expectedProductionRef);
      if (current !== linked.version) {
        try {
          await store.registry.moveAlias(collectionRef, {
            alias: 'production',
            to: linked.version,
            expected: expectedVersion,
            actor: 'publishRagModel',
            workflowId: input.workflowId,
          });
        } catch (error) {
          if (!(error instanceof AliasConflictError)) throw error;
          throw ApplicationFailure.nonRetryable(
            `production moved to v${error.actualVersion} after this run's gate compared against ` +
              `${expectedVersion === null ? 'no production version' : `v${expectedVersion}`}; ` +
              'the challenger was not published. Re-run the pipeline to compare against the new production version.',
            errorTypes.aliasConflict,
          );
        }
      }
      return { registryRef: linked.ref, version: `v${linked.version}` };
    },
  });
}

/** The registry version whose reference artifact points at the given RagModel ref (the champion the gate saw). */
async function championVersion(
  store: LineageStore,
  collectionRef: string,
  ragModelRef: string,
): Promise<number | null> {
  const versions = await store.registry.versions(collectionRef);
  const match = versions.find((version) => version.artifact.metadata.url === ragModelRef);
  return match ? match.version : null;
}
