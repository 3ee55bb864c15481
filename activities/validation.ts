import type { LineageStore } from '../lib/lineage';
import { parseRefOfKind, validateName } from '../lib/lineage';
import { parseEvaluation, parseRagModel } from '../lib/rag';
import { scorersByName } from '../lib/scoring/scorers';
import { hyperParameterProblems } from '../lib/training/hyper-parameters';
import type { LifecyclePipelineInput, LifecycleValidationActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

/** What the validation activities read: the lineage store only (they write nothing). */
export interface ValidationDependencies {
  store: LineageStore;
}

/** An error a retry cannot fix (a lib error that says so); anything else is transient and is rethrown. */
function badInputMessage(error: unknown): string {
  if (error instanceof Error && (error as { retryable?: boolean }).retryable === false) return error.message;
  throw error;
}

/**
 * The app name becomes a registry collection (`RAG Models/<app>`), an artifact (`<app>-chat`) and a folder
 * name, so it must be legal as each of them: letters, digits, "-" and "_".
 */
export function appNameProblems(app: unknown): string[] {
  const problems: string[] = [];
  for (const check of [
    () => validateName('collection name', app),
    () => validateName('artifact name', `${String(app)}-chat`),
  ]) {
    try {
      check();
    } catch (error) {
      problems.push(`--app: ${badInputMessage(error)}`);
      break;
    }
  }
  return problems;
}

/** The object behind a ref, checked to be of the expected Weave type; a problem message when it is not. */
async function objectProblem(
  store: LineageStore,
  flag: string,
  ref: string,
  expectedType: string,
): Promise<{ problem?: string; value?: unknown; ref?: string }> {
  try {
    parseRefOfKind(ref, 'object');
    const object = await store.objects.get(ref);
    const type = (object.value as { _type?: unknown } | null)?._type;
    if (type !== expectedType) {
      return {
        problem: `${flag} ${ref} is ${typeof type === 'string' ? `a ${type}` : 'not a typed object'}, not ${/^[AEIOU]/.test(expectedType) ? 'an' : 'a'} ${expectedType}.`,
      };
    }
    return { value: object.value, ref: object.ref };
  } catch (error) {
    return { problem: `${flag} ${badInputMessage(error)}` };
  }
}

/** An Evaluation ref: an Evaluation whose dataset is a Dataset with rows and whose scorers all exist. */
export async function evaluationProblems(store: LineageStore, ref: string, flag = '--evaluation'): Promise<string[]> {
  const found = await objectProblem(store, flag, ref, 'Evaluation');
  if (found.problem) return [found.problem];
  const problems: string[] = [];
  try {
    const evaluation = parseEvaluation(found.value, found.ref!);
    const unknown = evaluation.scorers.filter((name) => !(name in scorersByName));
    if (unknown.length > 0) {
      problems.push(
        `${flag} ${ref} names unknown scorer(s) ${unknown.join(', ')}; known: ${Object.keys(scorersByName).join(', ')}.`,
      );
    }
    const dataset = await objectProblem(store, `${flag} ${ref}: its dataset`, evaluation.dataset, 'Dataset');
    if (dataset.problem) problems.push(dataset.problem);
    else if ((await store.datasets.rows(dataset.ref!)).length === 0) {
      problems.push(`${flag} ${ref}: its dataset ${dataset.ref} has no rows.`);
    }
  } catch (error) {
    problems.push(`${flag} ${badInputMessage(error)}`);
  }
  return problems;
}

/** A RagModel ref (a full object ref; aliases are resolved by the caller). */
export async function ragModelProblems(store: LineageStore, ref: string, flag = '--rag'): Promise<string[]> {
  const found = await objectProblem(store, flag, ref, 'RagModel');
  if (found.problem) return [found.problem];
  try {
    parseRagModel(found.value, found.ref!);
    return [];
  } catch (error) {
    return [`${flag} ${badInputMessage(error)}`];
  }
}

/** A base model: a `model` artifact version (or a registry version of one). */
async function baseModelProblems(store: LineageStore, ref: string): Promise<string[]> {
  try {
    parseRefOfKind(ref, 'artifact', 'registry');
    const artifact = await store.artifacts.get(ref);
    if (artifact.type !== 'model') {
      return [`--base-model ${ref} is an artifact of type '${artifact.type}', not a model.`];
    }
    return [];
  } catch (error) {
    return [`--base-model ${badInputMessage(error)}`];
  }
}

async function trainingDatasetProblems(store: LineageStore, ref: string): Promise<string[]> {
  const found = await objectProblem(store, '--dataset', ref, 'Dataset');
  if (found.problem) return [found.problem];
  if ((await store.datasets.rows(found.ref!)).length === 0) return [`--dataset ${ref} has no rows.`];
  return [];
}

const positiveWholeNumber = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 1;

/** Every problem with a lifecycle run's inputs, all at once; empty when the run may start. Reads only. */
export async function lifecycleInputProblems(store: LineageStore, input: LifecyclePipelineInput): Promise<string[]> {
  const problems = [...appNameProblems(input.app)];
  if (input.trainingConfig !== 'demo-cpu' && input.trainingConfig !== 'gpu') {
    problems.push(`--config must be demo-cpu or gpu, got '${String(input.trainingConfig)}'.`);
  }
  problems.push(...hyperParameterProblems(input.hyperParameters ?? {}).map((problem) => `--hp: ${problem}.`));
  for (const [flag, value] of [
    ['--batch-size', input.batchSize],
    ['--parallel', input.maxParallelBatches],
  ] as const) {
    if (value !== undefined && !positiveWholeNumber(value)) problems.push(`${flag} must be a whole number ≥ 1.`);
  }
  if (input.gate?.margin !== undefined && !Number.isFinite(input.gate.margin)) {
    problems.push('--gate-margin must be a finite number.');
  }
  problems.push(...(await baseModelProblems(store, input.baseModelRef)));
  problems.push(...(await trainingDatasetProblems(store, input.trainingDatasetRef)));
  problems.push(...(await evaluationProblems(store, input.evaluationRef)));
  if (input.ragModelRef !== undefined) problems.push(...(await ragModelProblems(store, input.ragModelRef)));
  return problems;
}

/** One message naming every bad input, so a user fixes them in one go. */
export function invalidInputsMessage(problems: string[]): string {
  return `${problems.length} invalid input${problems.length === 1 ? '' : 's'}; nothing was written:\n- ${problems.join('\n- ')}`;
}

/** Throws one bad-input error naming every problem; does nothing when there are none. */
export function refuseInvalidInputs(problems: string[]): void {
  if (problems.length > 0) throw invalidInput(invalidInputsMessage(problems));
}

export function createValidationActivities({ store }: ValidationDependencies): LifecycleValidationActivities {
  return atBoundary<LifecycleValidationActivities>({
    async validateLifecycleInput(input) {
      refuseInvalidInputs(await lifecycleInputProblems(store, input));
      return { valid: true };
    },
  });
}
