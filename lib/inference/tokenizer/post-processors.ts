import { type ComponentConfig, readComponents, unsupported } from './tokenizer-json';

/** Wraps the ids of one sequence in the model's special tokens ([CLS] … [SEP], <s> …). */
export interface PostProcessor {
  process(ids: number[]): { ids: number[]; typeIds: number[] };
  /** How many ids process() adds, so truncation leaves room for them. */
  readonly addedTokenCount: number;
}

const supportedPostProcessors = ['TemplateProcessing', 'BertProcessing', 'RobertaProcessing', 'ByteLevel', 'Sequence'];

type TemplatePiece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: string; type_id: number } };

function templateProcessor(config: ComponentConfig): PostProcessor {
  const single = (Array.isArray(config.single) ? config.single : []) as TemplatePiece[];
  const specialTokens = (config.special_tokens ?? {}) as Record<string, { ids: number[] }>;
  const addedTokenCount = single.reduce(
    (count, piece) => count + ('SpecialToken' in piece ? (specialTokens[piece.SpecialToken.id]?.ids.length ?? 0) : 0),
    0,
  );
  return {
    addedTokenCount,
    process(sequence) {
      const ids: number[] = [];
      const typeIds: number[] = [];
      for (const piece of single) {
        if ('SpecialToken' in piece) {
          for (const id of specialTokens[piece.SpecialToken.id]?.ids ?? []) {
            ids.push(id);
            typeIds.push(piece.SpecialToken.type_id);
          }
        } else {
          ids.push(...sequence);
          for (let index = 0; index < sequence.length; index++) typeIds.push(piece.Sequence.type_id);
        }
      }
      return { ids, typeIds };
    },
  };
}

function classifierProcessor(config: ComponentConfig): PostProcessor {
  const [, classifierId] = config.cls as [string, number];
  const [, separatorId] = config.sep as [string, number];
  return {
    addedTokenCount: 2,
    process(sequence) {
      const ids = [classifierId, ...sequence, separatorId];
      return { ids, typeIds: ids.map(() => 0) };
    },
  };
}

const identity: PostProcessor = {
  addedTokenCount: 0,
  process: (ids) => ({ ids, typeIds: ids.map(() => 0) }),
};

export function createPostProcessor(config: ComponentConfig | null | undefined): PostProcessor {
  if (!config) return identity;
  switch (config.type) {
    case 'TemplateProcessing':
      return templateProcessor(config);
    case 'BertProcessing':
    case 'RobertaProcessing':
      return classifierProcessor(config);
    case 'ByteLevel':
      // Only adjusts offsets, which weft does not expose.
      return identity;
    case 'Sequence': {
      const steps = readComponents(config, 'processors').map(createPostProcessor);
      return {
        addedTokenCount: steps.reduce((count, step) => count + step.addedTokenCount, 0),
        process: (ids) => steps.reduce((current, step) => step.process(current.ids), identity.process(ids)),
      };
    }
    default:
      return unsupported('post-processor', config, supportedPostProcessors);
  }
}
