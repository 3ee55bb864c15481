import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';
import { parseServeConfig, startWeaveServer } from '../../lib/weave-server';
import { lineageStoreOptions } from '../../lib/services';
import { temporalTarget } from '../../lib/temporal/connection';
import { temporalPipelineRuns } from '../../lib/temporal/pipeline-runs';

interface ServeOptions {
  port: string;
  host: string;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port expects a port number from 0 to 65535 (0 picks a free one), got "${text}".`);
  }
  return port;
}

/** `weft serve`: the lineage store over HTTP, speaking the Weave trace-server API for the official `weave` SDK. */
export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the lineage store as a Weave trace server and a W&B server, so apps using the weave and wandb SDKs record into weft.\n' +
        'Needs WEFT_SERVE_TOKEN; clients set WF_TRACE_SERVER_URL and WANDB_BASE_URL to the printed URL and WANDB_API_KEY to the token.',
    )
    .option('--port <port>', 'port to listen on (0 picks a free one)', '6345')
    .option('--host <host>', 'interface to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .action(async (options: ServeOptions) => {
      const serveConfig = parseServeConfig(process.env);
      const config = loadConfig();
      const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
      const target = temporalTarget();
      // The Web UI of the embedded server (`weft up`) unless TEMPORAL_ADDRESS points elsewhere and no URL is given.
      const temporalUiUrl = config.temporalUiUrl ?? (target.explicit ? undefined : `http://127.0.0.1:${config.uiPort}`);
      const pipelines = temporalPipelineRuns();
      let server;
      try {
        server = await startWeaveServer({
          store,
          token: serveConfig.token,
          host: options.host,
          port: parsePort(options.port),
          defaultEntity: config.entity,
          ui: { temporalUiUrl, temporalNamespace: target.namespace, pipelines, project: config.project },
          // One line per failure, so a client's rejected request or a skipped call can be found in the server's log.
          onError: (error, request) =>
            process.stderr.write(
              `weft serve: ${request.method} ${request.path} → ${request.status}: ${error.message}\n`,
            ),
        });
      } catch (error) {
        await pipelines.close();
        await store.close();
        throw error;
      }
      process.stdout.write(
        `weft serve: Weave trace server on ${server.url} over ${store.url}\n` +
          `  web UI: ${server.url}/ (log in with the token; set WEFT_SERVE_URL=${server.url} for CLI links)\n` +
          `  export WF_TRACE_SERVER_URL=${server.url}\n` +
          `  export WANDB_BASE_URL=${server.url}   # the wandb SDK and weave's GraphQL (W&B API)\n` +
          `  export WANDB_API_KEY=<the value of WEFT_SERVE_TOKEN>\n` +
          `  then weave.init('${config.entity}/${config.project}') in your app\n`,
      );
      if (serveConfig.token.length < 40 || /^[^-]*-/.test(serveConfig.token)) {
        // The wandb SDK rejects such a key before sending anything (it reads text before a "-" as a host prefix).
        process.stderr.write(
          'weft serve: the wandb Python SDK needs an API key of 40+ characters without "-"; ' +
            'for wandb clients use e.g. WEFT_SERVE_TOKEN=$(openssl rand -hex 20).\n',
        );
      }
      const running = server;
      // Runs until interrupted; a signal closes the server and the store, then the command returns.
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void running
            .close()
            .then(() => pipelines.close())
            .then(() => store.close())
            .then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
