import { spawn } from 'node:child_process';
import { parseRef, type LineageStore } from '../lib/lineage';
import { linkedVersionOfRagModel, ragModelCollectionRef } from '../lib/rag/registries';
import type { EvaluationSummary } from '../workflows/contracts/evaluation';
import type { RegressionCheck, ReevaluationActivities } from '../workflows/contracts/reevaluation';
import { atBoundary, invalidInput } from './boundary';

export interface ReevaluationDependencies {
  store: LineageStore;
  org: string;
  alertCommand?: string;
  alertWebhookUrl?: string;
}

function runAlertCommand(command: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`The alert command exited with code ${code}: ${stderr.trim()}`)),
    );
    child.stdin.end(payload);
  });
}

export function createReevaluationActivities(dependencies: ReevaluationDependencies): ReevaluationActivities {
  const { store, org } = dependencies;
  return atBoundary<ReevaluationActivities>({
    async refreshEvaluation({ evaluationRef }) {
      const evaluation = await store.objects.get(evaluationRef);
      const value = evaluation.value as { dataset?: string };
      if (typeof value.dataset !== 'string') {
        throw invalidInput(`${evaluationRef} is not an Evaluation: it has no 'dataset' ref.`);
      }
      const datasetRef = parseRef(value.dataset);
      if (datasetRef.kind !== 'object') {
        throw invalidInput(`The dataset of ${evaluationRef} is not an object ref: ${value.dataset}`);
      }
      const latest = await store.objects.latest(datasetRef.name, {
        entity: datasetRef.entity,
        project: datasetRef.project,
      });
      if (latest.ref === value.dataset) return { evaluationRef, datasetRef: value.dataset };
      const published = await store.objects.publish({
        entity: evaluation.entity,
        project: evaluation.project,
        name: evaluation.name,
        value: { ...value, dataset: latest.ref },
      });
      return { evaluationRef: published.ref, datasetRef: latest.ref };
    },

    async checkRegression({
      app,
      productionRagModelRef,
      evaluationResultRef,
      metric,
      threshold,
    }): Promise<RegressionCheck> {
      const result = (await store.objects.get(evaluationResultRef)).value as { summary: EvaluationSummary };
      const currentMean = result.summary[metric as keyof EvaluationSummary]?.mean ?? Number.NaN;
      // The score accepted at publish time is the gate's challenger mean stored on the registry version.
      const published = await linkedVersionOfRagModel(store, ragModelCollectionRef(org, app), productionRagModelRef);
      const gate = published?.artifact.metadata.gate as { metric?: string; challengerMean?: number } | undefined;
      const acceptedMean =
        gate && gate.metric === metric && typeof gate.challengerMean === 'number' ? gate.challengerMean : null;
      const regression = acceptedMean !== null && currentMean < acceptedMean - threshold;
      const message =
        acceptedMean === null
          ? `${metric} = ${currentMean.toFixed(3)}; no accepted ${metric} score recorded for ${productionRagModelRef} to compare with`
          : `${metric} = ${currentMean.toFixed(3)} vs ${acceptedMean.toFixed(3)} accepted at publish (threshold ${threshold}): ${regression ? 'REGRESSION' : 'ok'}`;
      return { regression, metric, currentMean, acceptedMean, threshold, message };
    },

    async sendAlert({ app, workflowId, check }) {
      const payload = JSON.stringify({ kind: 'weft.regression', app, workflowId, ...check });
      let sent = false;
      if (dependencies.alertCommand) {
        await runAlertCommand(dependencies.alertCommand, payload);
        sent = true;
      }
      if (dependencies.alertWebhookUrl) {
        const response = await fetch(dependencies.alertWebhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok) throw new Error(`The alert webhook answered ${response.status} ${response.statusText}.`);
        sent = true;
      }
      return sent;
    },
  });
}
