import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, projectRoot, type WeftConfig } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';
import {
  bootstrapDemoProject,
  createRagRuntime,
  demoNames,
  EmptyQuestionError,
  logEmbeddingModel,
  maxQuestionCharacters,
  QuestionTooLongError,
  requireDemoModels,
  selectRagModel,
  type RagRuntime,
} from '../../lib/rag';
import { openVectorStore } from '../../lib/vectors';
import { printJson, printTable } from '../output';
import { lineageStoreOptions, vectorStoreOptions } from '../../lib/services';

/** Opens the lineage and vector stores for one command and always closes both. */
async function withRagRuntime<T>(body: (runtime: RagRuntime, config: WeftConfig) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
  try {
    const vectors = await openVectorStore(vectorStoreOptions(config));
    try {
      return await body(createRagRuntime({ store, vectors, config }), config);
    } finally {
      await vectors.close();
    }
  } finally {
    await store.close();
  }
}

const demoDataDirectory = path.join(projectRoot, 'data', 'climate');

function progressToStderr(json: boolean | undefined): ((message: string) => void) | undefined {
  // With --json, stdout carries only the result; progress for people goes to stderr either way.
  return (message) => {
    if (!json) process.stderr.write(`  ${message}\n`);
  };
}

/** `weft ask` and `weft ingest`: question the RAG app and (re)build its corpus collection. */
export function registerRagCommands(program: Command): void {
  program
    .command('ask <question>')
    .summary('answer a question (`-` reads it from stdin)')
    .description(
      'Answer a question with a RagModel and list its sources. Default: the `production` version in the "RAG Models" ' +
        'registry, else the newest RagModel; with neither, the demo project is set up first.',
    )
    .option('--rag <selector>', 'a RagModel ref (weave:///…), RagModel:vN, or a registry alias such as production')
    .option('--seed <seed>', 'sampling seed, for RagModels whose ChatModel samples', (value) => Number(value))
    .option('--json', 'print one JSON object instead of text')
    .action(async (argument: string, options: { rag?: string; seed?: number; json?: boolean }) => {
      // `-` reads the question from stdin (a long question does not fit in an argument list).
      const question = argument === '-' ? fs.readFileSync(0, 'utf8').replace(/\n$/, '') : argument;
      if (question.trim().length === 0) throw new EmptyQuestionError(0);
      if (question.length > maxQuestionCharacters) throw new QuestionTooLongError(0, question.length);
      await withRagRuntime(async (runtime, config) => {
        const scope = { entity: config.entity, project: config.project, org: config.org };
        let selected = await selectRagModel(runtime.store, options.rag, scope);
        if (selected === null) {
          if (!options.json) process.stderr.write('No RagModel yet: setting up the demo project…\n');
          const demo = await bootstrapDemoProject(runtime, {
            dataDirectory: demoDataDirectory,
            modelsDirectory: config.modelsDir,
            baseModel: config.demoBaseModel,
            onProgress: progressToStderr(options.json),
          });
          selected = { ragModelRef: demo.ragModelRef, source: 'latest' };
        }
        const [prediction] = await runtime.predict(selected.ragModelRef, [question], { seed: options.seed });
        const sources = prediction.contexts.map((context) => ({
          documentId: context.documentId,
          title: context.title,
          score: Math.round(context.score * 10_000) / 10_000,
        }));
        if (options.json) {
          return printJson({
            question,
            answer: prediction.answer,
            ragModelRef: selected.ragModelRef,
            sources,
            promptTokens: prediction.promptTokens,
            completionTokens: prediction.completionTokens,
            timings: prediction.timings,
          });
        }
        process.stdout.write(`${prediction.answer || '(no answer)'}\n\nsources\n`);
        printTable(
          ['doc id', 'title', 'score'],
          sources.map((source) => [source.documentId, source.title, source.score.toFixed(4)]),
        );
        process.stdout.write(`\n${selected.ragModelRef} · ${Math.round(prediction.timings.totalMilliseconds)} ms\n`);
      });
    });

  program
    .command('ingest <corpus>')
    .description(
      'Embed a corpus (a corpus.jsonl of {id, title, text}, or a folder of .jsonl/.md/.txt files) into a new vector ' +
        'collection and switch the alias to it; ingesting the same corpus again changes nothing.',
    )
    .option('--alias <name>', 'collection alias the RagModels read', demoNames.collectionAlias)
    .option('--embedding-model <ref>', 'embedding model artifact ref (default: the demo all-MiniLM-L6-v2 artifact)')
    .option('--chunk-words <words>', 'words per passage', (value) => Number(value))
    .option('--json', 'print one JSON object instead of text')
    .action(
      async (
        corpus: string,
        options: { alias: string; embeddingModel?: string; chunkWords?: number; json?: boolean },
      ) => {
        await withRagRuntime(async (runtime, config) => {
          const embeddingModelRef =
            options.embeddingModel ??
            (await logEmbeddingModel(runtime, requireDemoModels(config.modelsDir).embedding)).ref;
          const result = await runtime.ingest({
            corpusPath: corpus,
            alias: options.alias,
            embeddingModelRef,
            chunkWords: options.chunkWords,
            onProgress: ({ embeddedPassages, totalPassages }) =>
              progressToStderr(options.json)?.(`embedded ${embeddedPassages}/${totalPassages} passages`),
          });
          if (options.json) return printJson({ ...result, embeddingModelRef });
          process.stdout.write(
            result.created
              ? `ingested ${result.documents} documents as ${result.points} passages into ${result.collection}\n`
              : `${result.collection} already holds this corpus (${result.points} passages); nothing embedded\n`,
          );
          process.stdout.write(
            result.previousCollection === null
              ? `alias ${result.alias} → ${result.collection}\n`
              : `alias ${result.alias} switched: ${result.previousCollection} → ${result.collection}\n`,
          );
          process.stdout.write(`content version ${result.contentVersion}\n`);
        });
      },
    );
}
