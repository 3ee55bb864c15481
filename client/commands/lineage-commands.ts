import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import {
  formatRef,
  InvalidValueError,
  openLineageStore,
  parseRegistryPath,
  type LineageStore,
} from '../../lib/lineage';
import { closeRunsOfClosedWorkflows } from '../../lib/temporal/run-reaper';
import { printJson, printTable } from '../output';
import { connectClient } from '../temporal-client';
import { lineageStoreOptions } from '../../lib/services';
import { uiLinks, type UiLinks } from '../../lib/weave-server/ui/ui-links';

/** A `Web UI: <url>` line when WEFT_SERVE_URL says where `weft serve` runs (human output only; --json is unchanged). */
function printWebUiLink(url: (links: UiLinks) => string): void {
  const links = uiLinks(loadConfig().serveUrl);
  if (links) process.stdout.write(`Web UI: ${url(links)}\n`);
}

/** Opens the store named by the configuration for one command and always closes it. */
async function withLineageStore<T>(body: (store: LineageStore) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

interface JsonOption {
  json?: boolean;
}
interface ScopeOptions extends JsonOption {
  entity?: string;
  project?: string;
}

/** `--attr k=v` may repeat; commander folds the values into one object. */
function collectAttribute(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const separator = value.indexOf('=');
  if (separator <= 0) throw new Error(`--attr expects key=value (e.g. --attr wandb-run-id=abc), got "${value}".`);
  return { ...previous, [value.slice(0, separator)]: value.slice(separator + 1) };
}

function short(text: string | null | undefined, length = 60): string {
  if (!text) return '';
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function addScope(command: Command): Command {
  return command
    .option('--entity <entity>', 'entity (default: WEFT_ENTITY)')
    .option('--project <project>', 'project (default: WEFT_PROJECT)')
    .option('--json', 'print JSON instead of a table');
}

/** `weft registry`, `weft artifacts`, `weft objects`, `weft lineage`, `weft calls`: read the lineage store; `weft reap` closes runs. */
export function registerLineageCommands(program: Command): void {
  const registry = program
    .command('registry')
    .description('W&B-style registries: named places that hold linked model and app versions');
  registry
    .command('ls')
    .description('List registries')
    .option('--org <org>', 'org (default: WEFT_ORG)')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: JsonOption & { org?: string }) => {
      const registries = await withLineageStore((store) => store.registry.list(options.org));
      if (options.json) return printJson(registries);
      printTable(
        ['registry', 'accepts types', 'description', 'created'],
        registries.map((item) => [
          item.name,
          item.artifactTypes.join(', ') || 'any',
          short(item.description),
          item.createdAt,
        ]),
      );
    });
  registry
    .command('show <name>')
    .description(
      'Show a registry’s collections, or one collection’s versions and alias history: "RAG Models/RAG Model" ' +
        '(W&B’s path form) or --collection',
    )
    .option('--org <org>', 'org (default: WEFT_ORG)')
    .option('--collection <collection>', 'show this collection’s versions and alias moves')
    .option('--json', 'print JSON instead of a table')
    .action(async (name: string, options: JsonOption & { org?: string; collection?: string }) => {
      const path = parseRegistryPath(name);
      if (path.collection !== undefined && options.collection !== undefined && path.collection !== options.collection) {
        throw new InvalidValueError(
          `"${name}" names the collection "${path.collection}" and --collection names "${options.collection}"; give one.`,
        );
      }
      const collection = path.collection ?? options.collection;
      await withLineageStore(async (store) => {
        const shown = await store.registry.show(path.registry, options.org);
        if (collection === undefined) {
          if (options.json) return printJson(shown);
          process.stdout.write(
            `${shown.registry.name} (accepts ${shown.registry.artifactTypes.join(', ') || 'any type'})\n`,
          );
          printTable(
            ['collection', 'type', 'versions', 'aliases'],
            shown.collections.map((collection) => [
              collection.name,
              collection.type,
              collection.versionCount,
              collection.aliases.join(' '),
            ]),
          );
          return;
        }
        const collectionRef = formatRef({
          kind: 'registry',
          org: shown.registry.org,
          registry: shown.registry.name,
          collection,
        });
        const versions = await store.registry.versions(collectionRef);
        const history = await store.registry.aliasHistory(collectionRef);
        if (options.json) return printJson({ versions, aliasHistory: history });
        printTable(
          ['version', 'aliases', 'artifact', 'linked', 'by'],
          versions.map((version) => [
            `v${version.version}`,
            version.aliases.join(' '),
            version.artifact.ref,
            version.linkedAt,
            version.linkedBy ?? '',
          ]),
        );
        process.stdout.write('\nalias moves\n');
        printTable(
          ['alias', 'from', 'to', 'actor', 'workflow', 'when'],
          history.map((move) => [
            move.alias,
            move.fromVersion === null ? '-' : `v${move.fromVersion}`,
            move.toVersion === null ? '-' : `v${move.toVersion}`,
            move.actor ?? '',
            move.workflowId ?? '',
            move.movedAt,
          ]),
        );
        printWebUiLink((links) => links.collection(shown.registry.name, collection));
      });
    });
  registry
    .command('create <name>')
    .description('Create a registry (idempotent), e.g. "RAG Chat Models"')
    .option('--org <org>', 'org (default: WEFT_ORG)')
    .option('--description <text>', 'what the registry holds')
    .option('--type <types...>', 'artifact types its collections accept (default: any)')
    .option('--json', 'print JSON')
    .action(async (name: string, options: JsonOption & { org?: string; description?: string; type?: string[] }) => {
      const created = await withLineageStore((store) =>
        store.registry.create({
          name,
          org: options.org,
          description: options.description,
          artifactTypes: options.type,
        }),
      );
      if (options.json) return printJson(created);
      process.stdout.write(`registry "${created.name}" ready in org ${created.org}\n`);
    });

  const artifacts = program.command('artifacts').description('W&B-style artifacts: typed, versioned files');
  addScope(
    artifacts.command('ls').description('List artifact collections').option('--type <type>', 'only this artifact type'),
  ).action(async (options: ScopeOptions & { type?: string }) => {
    const listed = await withLineageStore((store) => store.artifacts.list(options));
    if (options.json) return printJson(listed);
    printTable(
      ['artifact', 'type', 'versions', 'latest', 'aliases'],
      listed.map((item) => [item.name, item.type, item.versionCount, item.latestRef ?? '', item.aliases.join(' ')]),
    );
  });
  artifacts
    .command('show <ref>')
    .description('Show one artifact version (wandb-artifact:///entity/project/name:vN or :alias)')
    .option('--json', 'print JSON instead of a table')
    .action(async (ref: string, options: JsonOption) => {
      const version = await withLineageStore((store) => store.artifacts.get(ref));
      if (options.json) return printJson(version);
      process.stdout.write(
        `${version.ref}  type ${version.type}  aliases ${version.aliases.join(' ') || '-'}\ndigest ${version.digest}  size ${version.size}  created ${version.createdAt}${version.createdByRun ? `  by run ${version.createdByRun}` : ''}\n`,
      );
      printTable(
        ['path', 'size', 'digest or ref'],
        version.manifest.map((entry) => [entry.path, entry.size, entry.digest ?? entry.ref ?? '']),
      );
      printWebUiLink((links) => links.lineage(version.ref));
    });
  artifacts
    .command('download <ref> [directory]')
    .description('Write an artifact version’s files into a folder, verified against their digests')
    .option('--json', 'print JSON')
    .action(async (ref: string, directory: string | undefined, options: JsonOption) => {
      const result = await withLineageStore((store) => store.artifacts.download(ref, directory ?? '.'));
      if (options.json) return printJson(result);
      process.stdout.write(`${result.files.length} file(s) written to ${result.directory}\n`);
      for (const reference of result.references)
        process.stdout.write(`reference ${reference.path} → ${reference.ref}\n`);
    });

  const objects = program.command('objects').description('Weave-style objects: content-addressed versions');
  addScope(objects.command('ls').description('List object names and their latest versions')).action(
    async (options: ScopeOptions) => {
      const listed = await withLineageStore((store) => store.objects.list(options));
      if (options.json) return printJson(listed);
      printTable(
        ['object', 'type', 'versions', 'latest', 'updated'],
        listed.map((item) => [item.name, item.typeName ?? '', item.versionCount, item.latestRef, item.updatedAt]),
      );
    },
  );
  addScope(
    objects
      .command('show <refOrName>')
      .description('Show an object version (weave:///… ref) or every version of a name'),
  ).action(async (refOrName: string, options: ScopeOptions) => {
    await withLineageStore(async (store) => {
      if (refOrName.startsWith('weave:///')) {
        const version = await store.objects.get(refOrName);
        if (options.json) return printJson(version);
        process.stdout.write(
          `${version.ref}  v${version.version}${version.isLatest ? ' (latest)' : ''}  ${version.createdAt}\n`,
        );
        process.stdout.write(`${JSON.stringify(version.value, null, 2)}\n`);
        return;
      }
      const versions = await store.objects.versions(refOrName, options);
      if (options.json) return printJson(versions);
      printTable(
        ['version', 'digest', 'created', ''],
        versions.map((version) => [
          `v${version.version}`,
          version.digest,
          version.createdAt,
          version.isLatest ? 'latest' : '',
        ]),
      );
    });
  });

  program
    .command('lineage <ref>')
    .description(
      'What produced an artifact, registry version or Weave object (ChatModel, RagModel, EvaluationResult), and where it is used',
    )
    .option('--direction <direction>', 'upstream, downstream or both', 'both')
    .option('--depth <hops>', 'hops to follow', '10')
    .option('--json', 'print JSON instead of a table')
    .action(
      async (ref: string, options: JsonOption & { direction: 'upstream' | 'downstream' | 'both'; depth: string }) => {
        const graph = await withLineageStore((store) =>
          store.lineage.walk(ref, { direction: options.direction, maxDepth: Number(options.depth) }),
        );
        if (options.json) return printJson(graph);
        process.stdout.write(`lineage of ${graph.root}\n`);
        printTable(
          ['from', 'relation', 'to'],
          graph.edges.map((edge) => [edge.from, edge.relation, edge.to]),
        );
        printWebUiLink((links) => links.lineage(graph.root));
      },
    );

  const calls = program.command('calls').description('Weave-style calls (traces)');
  addScope(
    calls
      .command('ls')
      .description('List calls, filtered by op, attribute, trace or time')
      .option('--op <name>', 'only this op')
      .option('--attr <key=value>', 'only calls with this attribute (repeatable)', collectAttribute)
      .option('--trace <id>', 'only this trace')
      .option('--since <time>', 'started at or after this ISO time')
      .option('--limit <count>', 'at most this many', '100'),
  ).action(
    async (
      options: ScopeOptions & {
        op?: string;
        attr?: Record<string, string>;
        trace?: string;
        since?: string;
        limit: string;
      },
    ) => {
      const found = await withLineageStore((store) =>
        store.calls.query({
          entity: options.entity,
          project: options.project,
          opName: options.op,
          attributes: options.attr,
          traceId: options.trace,
          startedAfter: options.since,
          limit: Number(options.limit),
        }),
      );
      if (options.json) return printJson(found);
      printTable(
        ['id', 'op', 'trace', 'started', 'ended', 'status'],
        found.map((call) => [
          call.id,
          call.opName,
          call.traceId,
          call.startedAt,
          call.endedAt ?? '',
          call.exception ? 'error' : call.endedAt ? 'ok' : 'running',
        ]),
      );
    },
  );

  program
    .command('reap')
    .description(
      'Close the lineage runs whose workflow has ended without closing them (failed or timed out → failed, cancelled or\n' +
        'terminated → killed): what the orchestrator worker does every minute, now — e.g. when no worker runs.',
    )
    .option('--json', 'print the closed runs as JSON')
    .action(async (options: JsonOption) => {
      const reaped = await withLineageStore(async (store) => {
        const { client, close } = await connectClient();
        try {
          return await closeRunsOfClosedWorkflows(store, client);
        } finally {
          await close();
        }
      });
      if (options.json) return printJson(reaped);
      if (reaped.length === 0) {
        process.stdout.write('No open lineage run belongs to an ended workflow.\n');
        return;
      }
      printTable(
        ['run', 'workflow', 'workflow status', 'run state'],
        reaped.map((run) => [run.runId, run.workflowId, run.workflowStatus.toLowerCase(), run.state]),
      );
    });
}
