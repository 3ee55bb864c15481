import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';
import { lineageStoreOptions } from '../../lib/services';
import { openWandbPublisher, syncToWandb, WandbConfigError } from '../../lib/wandb-remote';
import { printJson, printTable } from '../output';

export function registerWandbCommands(program: Command): void {
  program
    .command('sync')
    .description(
      'Publish into the configured W&B server (WANDB_ENTITY, WANDB_BASE_URL, WANDB_API_KEY) what the local store ' +
        'holds and W&B does not yet: chat models and their runs, evaluations and their calls, RagModels, production',
    )
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
      try {
        const publisher = await openWandbPublisher(
          store,
          process.env,
          { project: config.project },
          {
            info: (message) => (options.json ? undefined : process.stderr.write(`${message}\n`)),
            warn: (message) => process.stderr.write(`${message}\n`),
          },
        );
        if (!publisher) {
          throw new WandbConfigError(
            'weft sync publishes into W&B, which is not configured: set WANDB_ENTITY, WANDB_BASE_URL and WANDB_API_KEY.',
          );
        }
        const entries = await syncToWandb(store, publisher, config.org, (entry) => {
          if (!options.json) process.stderr.write(`${entry.outcome.padEnd(10)} ${entry.item}\n`);
        });
        if (options.json) return printJson(entries);
        printTable(
          ['local', 'outcome', 'W&B', 'what'],
          entries.map((entry) => [entry.item, entry.outcome, entry.remoteRef ?? '', entry.detail]),
        );
      } finally {
        await store.close();
      }
    });
}
