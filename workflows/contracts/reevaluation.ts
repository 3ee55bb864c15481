import type { EvaluateWorkflowResult, ScoreName } from './evaluation';

export interface ReevaluateWorkflowInput {
  app: string;
  /** An Evaluation ref; the run evaluates on the latest version of its dataset. */
  evaluationRef: string;
  metric: Exclude<ScoreName, 'latency_ms'>;
  /** A drop of the metric's mean larger than this, versus the score accepted at publish time, is a regression. */
  regressionThreshold: number;
  batchSize?: number;
  maxParallelBatches?: number;
}

export interface RegressionCheck {
  regression: boolean;
  metric: string;
  currentMean: number;
  acceptedMean: number | null;
  threshold: number;
  message: string;
}

export interface ReevaluateWorkflowResult {
  status: 'evaluated' | 'no-production';
  productionRagModelRef: string | null;
  evaluationRef: string | null;
  evaluation?: EvaluateWorkflowResult;
  check?: RegressionCheck;
  alerted: boolean;
}

/** `weft-pipeline` activities of the nightly re-evaluation. */
export interface ReevaluationActivities {
  /** The same Evaluation pointed at its dataset's latest version (published as a new Evaluation version if it changed). */
  refreshEvaluation(input: { evaluationRef: string }): Promise<{ evaluationRef: string; datasetRef: string }>;
  checkRegression(input: {
    app: string;
    productionRagModelRef: string;
    evaluationResultRef: string;
    metric: string;
    threshold: number;
  }): Promise<RegressionCheck>;
  /** Sends the alert to the configured hook (command or webhook); returns false when none is configured. */
  sendAlert(input: { app: string; workflowId: string; check: RegressionCheck }): Promise<boolean>;
}
