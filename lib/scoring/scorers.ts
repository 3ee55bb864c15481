import { answerTokens, normalizeAnswer } from './text-normalization';

/** One evaluation row as the scorers see it. */
export interface ScoredRow {
  /** Gold answer. */
  answer: string;
  /** Gold document id (the corpus document the answer comes from). */
  goldDocumentId: string;
  /** Model output. */
  prediction: string;
  /** Retrieved document ids, best first. */
  retrievedDocumentIds: string[];
  /** Retrieved context texts, in the same order. */
  retrievedContexts: string[];
  /** Wall time of the prediction, in milliseconds. */
  latencyMilliseconds: number;
}

/** What a RAG prediction gives the scorers (the shape of lib/rag's Prediction, reduced to what they read). */
export interface PredictionForScoring {
  answer: string;
  contexts: { documentId: string; text: string }[];
  timings: { totalMilliseconds: number };
}

/** A QA row ({answer, doc_id}) and the RagModel's prediction for it, as the scorers read them. */
export function scoredRowOf(row: { answer: string; doc_id: string }, prediction: PredictionForScoring): ScoredRow {
  return {
    answer: row.answer,
    goldDocumentId: row.doc_id,
    prediction: prediction.answer,
    retrievedDocumentIds: prediction.contexts.map((context) => context.documentId),
    retrievedContexts: prediction.contexts.map((context) => context.text),
    latencyMilliseconds: prediction.timings.totalMilliseconds,
  };
}

export interface Scorer {
  name: string;
  /** Bumped whenever the scorer's meaning changes: cached results of an older version are not reused. */
  version: number;
  score(row: ScoredRow): number;
}

/** 1 when the normalised prediction equals the normalised gold answer. */
export const exactMatchScorer: Scorer = {
  name: 'exact_match',
  version: 1,
  score: (row) => (normalizeAnswer(row.prediction) === normalizeAnswer(row.answer) ? 1 : 0),
};

/** Token-overlap F1 between prediction and gold answer (SQuAD definition). */
export function tokenF1(prediction: string, answer: string): number {
  const predicted = answerTokens(prediction);
  const gold = answerTokens(answer);
  if (predicted.length === 0 || gold.length === 0) return predicted.length === gold.length ? 1 : 0;
  const goldCounts = new Map<string, number>();
  for (const token of gold) goldCounts.set(token, (goldCounts.get(token) ?? 0) + 1);
  let overlap = 0;
  for (const token of predicted) {
    const remaining = goldCounts.get(token) ?? 0;
    if (remaining > 0) {
      overlap += 1;
      goldCounts.set(token, remaining - 1);
    }
  }
  if (overlap === 0) return 0;
  const precision = overlap / predicted.length;
  const recall = overlap / gold.length;
  return (2 * precision * recall) / (precision + recall);
}

export const f1Scorer: Scorer = { name: 'f1', version: 1, score: (row) => tokenF1(row.prediction, row.answer) };

/** 1 when the gold document is among the first k retrieved. */
export function hitAtKScorer(k: number): Scorer {
  return {
    name: `hit@${k}`,
    version: 1,
    score: (row) => (row.retrievedDocumentIds.slice(0, k).includes(row.goldDocumentId) ? 1 : 0),
  };
}

/** Reciprocal rank of the gold document among the retrieved ones (0 when absent). */
export const mrrScorer: Scorer = {
  name: 'mrr',
  version: 1,
  score: (row) => {
    const rank = row.retrievedDocumentIds.indexOf(row.goldDocumentId);
    return rank < 0 ? 0 : 1 / (rank + 1);
  },
};

/**
 * Share of the answer's content tokens found in the retrieved contexts: an answer made of words the
 * retriever never showed the model is not grounded. An empty answer counts as grounded (it claims nothing).
 */
export const groundednessScorer: Scorer = {
  name: 'groundedness',
  version: 1,
  score: (row) => {
    const tokens = answerTokens(row.prediction);
    if (tokens.length === 0) return 1;
    const contextTokens = new Set(answerTokens(row.retrievedContexts.join(' ')));
    return tokens.filter((token) => contextTokens.has(token)).length / tokens.length;
  },
};

export const latencyScorer: Scorer = { name: 'latency_ms', version: 1, score: (row) => row.latencyMilliseconds };

/** Every scorer an Evaluation may name, by name. */
export const scorersByName: Record<string, Scorer> = Object.fromEntries(
  [exactMatchScorer, f1Scorer, hitAtKScorer(5), mrrScorer, groundednessScorer, latencyScorer].map((scorer) => [
    scorer.name,
    scorer,
  ]),
);

export class UnknownScorerError extends Error {
  readonly retryable = false;
  constructor(name: string) {
    super(`Unknown scorer '${name}'. Known scorers: ${Object.keys(scorersByName).join(', ')}.`);
    this.name = 'UnknownScorerError';
  }
}

export function scorerNamed(name: string): Scorer {
  const scorer = scorersByName[name];
  if (!scorer) throw new UnknownScorerError(name);
  return scorer;
}
