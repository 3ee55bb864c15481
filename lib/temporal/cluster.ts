import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { Client as PostgresClient } from 'pg';
import { projectRoot } from '../config/config';
import { waitForTemporal } from './dev-server';
import { ensureNamespaceAndSearchAttributes, type NamespaceSetupReport } from './namespace-setup';

/**
 * A self-hosted Temporal Server on PostgreSQL (persistence and SQL visibility), the shape docker-compose.yml
 * describes, built from the Go module go.temporal.io/server by scripts/build-temporal-server.sh. Used by
 * scripts/temporal-cluster.ts (`npm run temporal:cluster`) and the cluster test.
 */
export const temporalServerVersion = '1.32.1';

export class ClusterError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ClusterError';
  }
}

export interface ClusterBinaries {
  folder: string;
  server: string;
  sqlTool: string;
}

const buildScript = path.join(projectRoot, 'scripts', 'build-temporal-server.sh');

/** The cached binaries (built once by scripts/build-temporal-server.sh), or an error saying how to build them. */
export function findClusterBinaries(environment: NodeJS.ProcessEnv = process.env): ClusterBinaries {
  let folder: string;
  try {
    folder = execFileSync('bash', [buildScript, '--print'], {
      encoding: 'utf8',
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch {
    throw new ClusterError(
      `Temporal Server ${temporalServerVersion} is not built: run 'bash scripts/build-temporal-server.sh' ` +
        '(needs Go 1.26.8 or later and the Go module proxy; it caches the binaries, so it builds once).',
    );
  }
  return {
    folder,
    server: path.join(folder, 'temporal-server'),
    sqlTool: path.join(folder, 'temporal-sql-tool'),
  };
}

export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** Host, port and credentials of a `postgres://user:password@host:port/db` URL. */
export function postgresEndpoint(url: string): PostgresEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ClusterError(`Not a PostgreSQL URL: '${url}' (expected postgres://user:password@host:port/database)`);
  }
  if (!['postgres:', 'postgresql:'].includes(parsed.protocol) || !parsed.username) {
    throw new ClusterError(
      `Not a PostgreSQL URL with a user: '${url}' (expected postgres://user:password@host:port/db)`,
    );
  }
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

function endpointUrl(endpoint: PostgresEndpoint, database: string): string {
  const credentials = `${encodeURIComponent(endpoint.user)}:${encodeURIComponent(endpoint.password)}`;
  return `postgres://${credentials}@${endpoint.host}:${endpoint.port}/${database}`;
}

/** The schema of each store, embedded in temporal-sql-tool (the files of schema/postgresql/v12 in the module). */
const schemaNames = { default: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;

export interface ClusterDatabases {
  default: string;
  visibility: string;
}

/**
 * Creates the two databases (when missing) and brings their schemas to the version this server needs with
 * temporal-sql-tool: `setup-schema -v 0.0` (versioning tables) on a new database, then `update-schema`. A database
 * already set up keeps its data; `setup-schema` is skipped there because it would reset the recorded version.
 */
export async function setupClusterSchemas(
  binaries: ClusterBinaries,
  endpoint: PostgresEndpoint,
  databases: ClusterDatabases,
  log: (line: string) => void = () => undefined,
): Promise<void> {
  const admin = new PostgresClient({ connectionString: endpointUrl(endpoint, 'postgres') });
  await admin.connect().catch((error: Error) => {
    throw new ClusterError(`Cannot connect to PostgreSQL at ${endpoint.host}:${endpoint.port}: ${error.message}`);
  });
  try {
    for (const store of ['default', 'visibility'] as const) {
      const database = databases[store];
      if (!/^[a-z_][a-z0-9_]*$/.test(database)) {
        throw new ClusterError(`Database name '${database}' must be lower-case letters, digits and '_'`);
      }
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${database}`);
      const client = new PostgresClient({ connectionString: endpointUrl(endpoint, database) });
      await client.connect();
      let versioned = false;
      try {
        const table = await client.query("SELECT to_regclass('public.schema_version') AS name");
        if (table.rows[0]?.name) {
          const row = await client.query('SELECT curr_version FROM schema_version WHERE db_name = $1', [database]);
          versioned = (row.rowCount ?? 0) > 0;
        }
      } finally {
        await client.end();
      }
      const environment = {
        ...process.env,
        SQL_PLUGIN: 'postgres12',
        SQL_HOST: endpoint.host,
        SQL_PORT: String(endpoint.port),
        SQL_USER: endpoint.user,
        SQL_PASSWORD: endpoint.password,
        SQL_DATABASE: database,
      };
      const run = (args: string[]) => {
        try {
          const output = execFileSync(binaries.sqlTool, args, { encoding: 'utf8', env: environment, stdio: 'pipe' });
          for (const line of output.split('\n').filter(Boolean)) log(line);
        } catch (error) {
          const stderr = (error as { stderr?: string }).stderr ?? '';
          throw new ClusterError(
            `temporal-sql-tool ${args.join(' ')} failed on database ${database}:\n${stderr.trim().split('\n').slice(-5).join('\n')}`,
          );
        }
      };
      if (!versioned) run(['setup-schema', '-v', '0.0']);
      run(['update-schema', '--schema-name', schemaNames[store]]);
      log(`${store} store: database ${database} at the latest schema`);
    }
  } finally {
    await admin.end();
  }
}

export interface ClusterPorts {
  frontend: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** True when `port` on 127.0.0.1 can be bound now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Free ports for every service (all different), with the frontend on `frontend` when given. Below 32768: the server
 * records each service's membership port in a PostgreSQL `smallint` column, so an ephemeral port (32768 and up on
 * Linux) makes it exit at start ("value out of range for type smallint").
 */
export async function clusterPorts(frontend?: number): Promise<ClusterPorts> {
  const taken = new Set<number>(frontend === undefined ? [] : [frontend]);
  const next = async () => {
    for (;;) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (!taken.has(port) && (await canBind(port))) {
        taken.add(port);
        return port;
      }
    }
  };
  return {
    frontend: frontend ?? (await next()),
    frontendMembership: await next(),
    history: await next(),
    historyMembership: await next(),
    matching: await next(),
    matchingMembership: await next(),
    worker: await next(),
    workerMembership: await next(),
  };
}

/**
 * The server's static config: PostgreSQL for both stores, all four services in one process on 127.0.0.1, no
 * metrics or pprof listeners, and a dynamic config file. The four services may each open their own pools: 4 × (5 + 2)
 * connections at most, well within PostgreSQL's default of 100.
 */
export function clusterConfigYaml(options: {
  endpoint: PostgresEndpoint;
  databases: ClusterDatabases;
  ports: ClusterPorts;
  dynamicConfigFile: string;
  historyShards: number;
}): string {
  const { endpoint, databases, ports } = options;
  const q = (value: string) => JSON.stringify(value);
  const store = (database: string, connections: number) =>
    [
      `      sql:`,
      `        pluginName: postgres12`,
      `        databaseName: ${q(database)}`,
      `        connectAddr: ${q(`${endpoint.host}:${endpoint.port}`)}`,
      `        connectProtocol: tcp`,
      `        user: ${q(endpoint.user)}`,
      `        password: ${q(endpoint.password)}`,
      `        maxConns: ${connections}`,
      `        maxIdleConns: ${connections}`,
      `        maxConnLifetime: 1h`,
    ].join('\n');
  const service = (name: string, grpc: number, membership: number) =>
    [
      `  ${name}:`,
      `    rpc:`,
      `      grpcPort: ${grpc}`,
      `      membershipPort: ${membership}`,
      `      bindOnLocalHost: true`,
    ].join('\n');
  return [
    'log:',
    '  stdout: true',
    '  level: warn',
    'persistence:',
    '  defaultStore: postgres-default',
    '  visibilityStore: postgres-visibility',
    `  numHistoryShards: ${options.historyShards}`,
    '  datastores:',
    '    postgres-default:',
    store(databases.default, 5),
    '    postgres-visibility:',
    store(databases.visibility, 2),
    'global:',
    '  membership:',
    '    maxJoinDuration: 30s',
    '    broadcastAddress: 127.0.0.1',
    'services:',
    service('frontend', ports.frontend, ports.frontendMembership),
    service('history', ports.history, ports.historyMembership),
    service('matching', ports.matching, ports.matchingMembership),
    service('worker', ports.worker, ports.workerMembership),
    'clusterMetadata:',
    '  enableGlobalNamespace: false',
    '  failoverVersionIncrement: 10',
    '  masterClusterName: active',
    '  currentClusterName: active',
    '  clusterInformation:',
    '    active:',
    '      enabled: true',
    '      initialFailoverVersion: 1',
    '      rpcName: frontend',
    `      rpcAddress: ${q(`127.0.0.1:${ports.frontend}`)}`,
    'dcRedirectionPolicy:',
    '  policy: noop',
    'dynamicConfigClient:',
    `  filepath: ${q(options.dynamicConfigFile)}`,
    '  pollInterval: 10s',
    '',
  ].join('\n');
}

/**
 * Dynamic config: search attributes registered a moment ago are visible to the next workflow task at once (the
 * frontend otherwise caches the list for up to a minute), so a run started right after setup does not fail on them.
 */
export const clusterDynamicConfigYaml = [
  'system.forceSearchAttributesCacheRefreshOnRead:',
  '  - value: true',
  '    constraints: {}',
  '',
].join('\n');

export interface ClusterServerOptions {
  /** Folder for the config files and the server's log. */
  folder: string;
  postgresUrl: string;
  databases?: ClusterDatabases;
  /** Frontend gRPC port (default: a free one). */
  port?: number;
  namespace?: string;
  /** Fixed when the databases are created; 4 is plenty for one host. */
  historyShards?: number;
  log?: (line: string) => void;
  environment?: NodeJS.ProcessEnv;
}

export interface ClusterServer {
  address: string;
  namespace: string;
  configFile: string;
  logFile: string;
  databases: ClusterDatabases;
  /** The server process (its own process group). */
  process(): ChildProcess;
  /** Registration done at start: namespace, search attributes. */
  setup: NamespaceSetupReport;
  /** SIGKILL to the server's process group: a crash, no cleanup. */
  kill(): Promise<void>;
  /** Starts the server again on the same config and databases, and waits until it answers. */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(graceMilliseconds?: number): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Sets up the schemas, writes the config, starts the server in its own process group, waits for the frontend,
 * then registers the namespace and weft's search attributes. The databases persist: a second start on them
 * keeps every workflow.
 */
export async function startClusterServer(options: ClusterServerOptions): Promise<ClusterServer> {
  const binaries = findClusterBinaries(options.environment);
  const endpoint = postgresEndpoint(options.postgresUrl);
  const databases = options.databases ?? { default: 'temporal', visibility: 'temporal_visibility' };
  const namespace = options.namespace ?? 'default';
  const log = options.log ?? (() => undefined);
  fs.mkdirSync(options.folder, { recursive: true });
  await setupClusterSchemas(binaries, endpoint, databases, log);
  const ports = await clusterPorts(options.port);
  const configFile = path.join(options.folder, 'temporal-server.yaml');
  const dynamicConfigFile = path.join(options.folder, 'dynamic-config.yaml');
  const logFile = path.join(options.folder, 'temporal-server.log');
  fs.writeFileSync(dynamicConfigFile, clusterDynamicConfigYaml);
  fs.writeFileSync(
    configFile,
    clusterConfigYaml({ endpoint, databases, ports, dynamicConfigFile, historyShards: options.historyShards ?? 4 }),
    { mode: 0o600 },
  );
  const address = `127.0.0.1:${ports.frontend}`;
  let child: ChildProcess;
  const launch = async () => {
    const output = fs.openSync(logFile, 'a');
    child = spawn(binaries.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
      stdio: ['ignore', output, output],
      detached: true,
      env: options.environment ?? process.env,
    });
    fs.closeSync(output);
    const current = child;
    try {
      await waitForTemporal(address, 120_000, () => current.exitCode === null && current.signalCode === null);
    } catch (error) {
      if (current.exitCode === null && current.signalCode === null) {
        try {
          process.kill(-current.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
      throw new ClusterError(
        `Temporal Server did not answer at ${address}` +
          `${current.exitCode !== null ? ` (it exited with code ${current.exitCode})` : ''}: ${String(error)}\n` +
          `Last lines of ${logFile}:\n${tail}`,
      );
    }
  };
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    }
  };
  await launch();
  let setup: NamespaceSetupReport;
  try {
    const connection = await Connection.connect({ address });
    try {
      setup = await ensureNamespaceAndSearchAttributes(connection, namespace);
    } finally {
      await connection.close();
    }
  } catch (error) {
    signalGroup('SIGKILL');
    throw error;
  }
  log(`Temporal Server ${temporalServerVersion} on PostgreSQL answers at ${address} (namespace ${namespace})`);
  return {
    address,
    namespace,
    configFile,
    logFile,
    databases,
    setup,
    process: () => child,
    kill: async () => {
      signalGroup('SIGKILL');
      await exited(child);
    },
    restart: async () => {
      signalGroup('SIGKILL');
      await exited(child);
      await launch();
    },
    stop: async (graceMilliseconds = 15_000) => {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMilliseconds);
      await exited(child);
      clearTimeout(timer);
    },
  };
}
