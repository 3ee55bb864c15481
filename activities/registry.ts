import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { filesUnder, type FolderFile } from '../lib/common/files';
import { AliasConflictError, formatRef, parseRefOfKind, type LineageStore } from '../lib/lineage';
import {
  chatModelCollectionRef,
  linkedVersionOfRagModel,
  ragModelCollectionRef,
  registryAliases,
  registryArtifactTypes,
  registryNames,
} from '../lib/rag/registries';
import type { WandbPublisher } from '../lib/wandb-remote';
import { errorTypes } from '../workflows/contracts/errors';
import type { LifecycleRegistryActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';
import { toAliasConflictFailure, withPublishProgress } from './wandb-publish';

export interface RegistryActivityDependencies {
  store: LineageStore;
  org: string;
  /** Set when W&B is configured (WANDB_ENTITY): promoteRagModel then publishes into W&B too. */
  wandb?: WandbPublisher;
}

/**
 * The files of a fine-tune's model artifact: the ONNX folder at the root (what inference loads), the HF weights under
 * hf/ (so it can be fine-tuned again). Per-layer weight files that equal the base's are the base's blobs.
 */
export function fineTunedModelFiles(modelDirectory: string): FolderFile[] {
  const hfDirectory = path.join(modelDirectory, 'hf');
  return [
    ...filesUnder(path.join(modelDirectory, 'onnx')),
    ...(fs.existsSync(hfDirectory) ? filesUnder(hfDirectory, { prefix: 'hf' }) : []),
  ];
}

/** The name used for the idempotency key of one step of one workflow (rule 3: keys derive from workflow id + step). */
const stepKey = (workflowId: string, step: string) => `${workflowId}/${step}`;

export function createRegistryActivities({
  store,
  org,
  wandb,
}: RegistryActivityDependencies): LifecycleRegistryActivities {
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
        files: fineTunedModelFiles(input.fineTune.modelDirectory),
        runId: run.id,
        idempotencyKey: stepKey(input.runKey, 'log-model'),
      });
      await store.runs.finish(run.id, { summary: { final_loss: input.fineTune.summary.finalLoss }, state: 'finished' });
      await store.registry.create({
        org,
        name: registryNames.chatModels,
        artifactTypes: [registryArtifactTypes.chatModels],
      });
      const collectionRef = chatModelCollectionRef(org, input.app);
      const linked = await store.registry.link({
        artifact: logged.ref,
        target: collectionRef,
        actor: Context.current().info.activityType,
        workflowId: input.workflowId,
        idempotencyKey: stepKey(input.runKey, 'link-model'),
      });
      // `candidate` follows the newest fine-tune of the app, whichever run wrote it: moved from wherever it points.
      await store.registry.promote({
        collection: collectionRef,
        version: linked.version,
        alias: registryAliases.candidate,
        expected: 'any',
        actor: 'registerModel',
        workflowId: input.workflowId,
      });
      return { artifactRef: logged.ref, registryRef: linked.ref };
    },

    async promoteRagModel(input) {
      await store.registry.create({
        org,
        name: registryNames.ragModels,
        artifactTypes: [registryArtifactTypes.ragModels],
      });
      const digest = parseRefOfKind(input.ragModelRef, 'object').digest;
      // A reference artifact: the RagModel lives in the object store; the artifact points at it (checksum off).
      const logged = await store.artifacts.log({
        name: `${input.app}-rag-model`,
        type: registryArtifactTypes.ragModels,
        description: `RagModel ${input.ragModelRef}, published after the gate`,
        metadata: { url: input.ragModelRef, gate: input.gate, workflow_id: input.workflowId },
        references: [{ uri: input.ragModelRef, path: 'rag-model' }],
        idempotencyKey: stepKey(input.workflowId, 'log-rag-model'),
      });
      const artifactCollectionRef = formatRef({ ...parseRefOfKind(logged.ref, 'artifact'), version: undefined });
      await store.artifacts.moveAlias(artifactCollectionRef, {
        alias: digest,
        to: logged.version,
        expected: 'any',
        workflowId: input.workflowId,
      });
      const collectionRef = ragModelCollectionRef(org, input.app);
      const linked = await store.registry.link({
        artifact: logged.ref,
        target: collectionRef,
        actor: 'promoteRagModel',
        workflowId: input.workflowId,
        idempotencyKey: stepKey(input.workflowId, 'link-rag-model'),
      });
      // Compare-and-set on the app's `production`: it must still point where the gate's champion came from. A retry
      // after a successful move finds it already at our version, which the store treats as a no-op success.
      const expectedVersion =
        input.expectedProductionRef === null
          ? null
          : ((await linkedVersionOfRagModel(store, collectionRef, input.expectedProductionRef))?.version ?? null);
      // W&B first: a newer champion there stops the move here too, before the local store changes.
      const remoteConflict = await wandb?.productionConflict({
        collectionRef,
        expectedRagModelRef: input.expectedProductionRef,
        challengerRagModelRef: input.ragModelRef,
      });
      if (remoteConflict) {
        throw ApplicationFailure.nonRetryable(
          `${remoteConflict}; the challenger was not published. Re-run the pipeline to compare against it.`,
          errorTypes.aliasConflict,
        );
      }
      try {
        await store.registry.promote({
          collection: collectionRef,
          version: linked.version,
          alias: registryAliases.production,
          expected: expectedVersion,
          actor: 'promoteRagModel',
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
      if (!wandb) return { registryRef: linked.ref, version: `v${linked.version}` };
      try {
        const remote = await withPublishProgress((progress) =>
          wandb.publishRagModel(
            {
              localRegistryRef: linked.ref,
              workflowId: input.workflowId,
              production: { expectedRagModelRef: input.expectedProductionRef },
            },
            progress,
          ),
        );
        return { registryRef: linked.ref, version: `v${linked.version}`, wandb: remote };
      } catch (error) {
        throw toAliasConflictFailure(error);
      }
    },
  });
}
