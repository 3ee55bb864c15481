/**
 * A self-hosted Temporal Server on PostgreSQL, the shape of docker-compose.yml without Docker.
 *
 *   npx tsx scripts/temporal-cluster.ts up [--postgres URL] [--port N] [--namespace NS] [--folder DIR]
 *       Builds the server once (scripts/build-temporal-server.sh, cached), creates the databases `temporal` and
 *       `temporal_visibility` when missing, sets up or updates their schemas with temporal-sql-tool, writes the server's
 *       config and dynamic config into the folder (default $WEFT_HOME/temporal-cluster), starts the server, registers
 *       the namespace and weft's search attributes, prints `TEMPORAL_ADDRESS=…` and runs until Ctrl-C.
 *       PostgreSQL: --postgres, else WEFT_CLUSTER_POSTGRES_URL, else the server scripts/ensure-postgres.sh brings up.
 *   npx tsx scripts/temporal-cluster.ts namespace
 *       Registers TEMPORAL_NAMESPACE and weft's search attributes on the server TEMPORAL_ADDRESS names (TLS and API
 *       key from the usual TEMPORAL_* variables). docker-compose.yml's `temporal-namespace` service runs this, so the
 *       list in workflows/contracts/search-attributes.ts is the only one.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { parseConfig, projectRoot } from '../lib/config/config';
import { startClusterServer } from '../lib/temporal/cluster';
import { temporalTarget, unreachableMessage } from '../lib/temporal/connection';
import { ensureNamespaceAndSearchAttributes } from '../lib/temporal/namespace-setup';

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

async function namespace(): Promise<void> {
  const target = temporalTarget();
  let connection: Connection | undefined;
  // Compose starts this as soon as the server is healthy; the frontend may still refuse for a few seconds.
  for (let attempt = 0; !connection; attempt += 1) {
    try {
      connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: 5000 });
    } catch (error) {
      if (attempt >= 30) throw new Error(unreachableMessage(target, error));
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  try {
    const report = await ensureNamespaceAndSearchAttributes(connection, target.namespace);
    process.stdout.write(
      `namespace ${report.namespace}: ${report.namespaceCreated ? 'registered' : 'already there'}; ` +
        `search attributes ${report.searchAttributesCreated.length > 0 ? `created: ${report.searchAttributesCreated.join(', ')}` : 'already there'}\n`,
    );
  } finally {
    await connection.close();
  }
}

async function up(args: string[]): Promise<void> {
  const postgresUrl =
    option(args, '--postgres') ??
    process.env.WEFT_CLUSTER_POSTGRES_URL ??
    execFileSync('bash', [path.join(projectRoot, 'scripts', 'ensure-postgres.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
  const portText = option(args, '--port');
  const port = portText === undefined ? 7233 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`--port must be a port number, got '${portText}'`);
  const folder = path.resolve(option(args, '--folder') ?? path.join(parseConfig(process.env).home, 'temporal-cluster'));
  execFileSync('bash', [path.join(projectRoot, 'scripts', 'build-temporal-server.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const server = await startClusterServer({
    folder,
    postgresUrl,
    port,
    namespace: option(args, '--namespace') ?? process.env.TEMPORAL_NAMESPACE ?? 'default',
    log: (line) => process.stderr.write(`[temporal-cluster] ${line}\n`),
  });
  process.stdout.write(
    `TEMPORAL_ADDRESS=${server.address} TEMPORAL_NAMESPACE=${server.namespace}\n` +
      `config ${server.configFile}, log ${server.logFile}; Ctrl-C stops the server (the databases keep its state)\n`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  server.process().once('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`[temporal-cluster] the server exited (${signal ?? `code ${code}`}); see ${server.logFile}\n`);
    process.exit(1);
  });
}

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'up') await up(args);
  else if (command === 'namespace') await namespace();
  else {
    process.stderr.write('usage: temporal-cluster.ts up [--postgres URL] [--port N] [--namespace NS] [--folder DIR]\n');
    process.stderr.write('       temporal-cluster.ts namespace   (on TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE)\n');
    process.exitCode = 2;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`temporal-cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
