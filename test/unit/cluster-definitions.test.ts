import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../lib/config/config';
import { clusterConfigYaml, postgresEndpoint, temporalServerVersion } from '../../lib/temporal/cluster';
import { searchAttributeCreateCommand } from '../../lib/temporal/namespace-setup';
import { weftSearchAttributeDefinitions } from '../../workflows/contracts/search-attributes';

const read = (file: string) => fs.readFileSync(path.join(projectRoot, file), 'utf8');

describe('one definition of the cluster set-up for docker-compose.yml and scripts/temporal-cluster.ts', () => {
  const compose = read('docker-compose.yml');

  it('docker-compose.yml keeps no copy of the search attributes: its namespace service runs the shared code', () => {
    for (const name of Object.keys(weftSearchAttributeDefinitions)) expect(compose).not.toContain(name);
    const service = /\n {2}temporal-namespace:\n((?: {4}.*\n| {6}.*\n|\n)*)/.exec(compose)?.[1] ?? '';
    expect(service).toContain("command: ['node', '--require', 'tsx/cjs', 'scripts/temporal-cluster.ts', 'namespace']");
    // The same TEMPORAL_NAMESPACE as the workers, from the shared environment block.
    expect(service).toContain('environment: *weft-environment');
    expect(read('scripts/temporal-cluster.ts')).toContain('ensureNamespaceAndSearchAttributes(');
    // No worker starts before the namespace and search attributes are there.
    for (const worker of ['orchestrator', 'gpu-worker', 'registry-worker']) {
      const block = new RegExp(`\\n  ${worker}:\\n((?: {4}.*\\n| {6}.*\\n| {8}.*\\n| {10}.*\\n| {12}.*\\n)*)`).exec(
        compose,
      )?.[1];
      expect(block).toMatch(/temporal-namespace:\n\s+condition: service_completed_successfully/);
    }
  });

  it('the build script builds the version the code expects', () => {
    expect(read('scripts/build-temporal-server.sh')).toContain(`\nversion=${temporalServerVersion}\n`);
  });

  it('the doctor’s fix command names the type of each search attribute', () => {
    expect(searchAttributeCreateCommand({ address: 'temporal:7233', namespace: 'prod' }, 'WeftScore')).toBe(
      'temporal operator search-attribute create --address temporal:7233 --namespace prod --name WeftScore --type Double',
    );
  });

  it('refuses a PostgreSQL URL it cannot use, naming the expected form', () => {
    expect(() => postgresEndpoint('mysql://u:p@h/db')).toThrow(/expected postgres:\/\/user:password@host:port/);
    expect(() => postgresEndpoint('not a url')).toThrow(/Not a PostgreSQL URL: 'not a url'/);
    expect(postgresEndpoint('postgres://temporal:p%40ss@db.internal/x')).toEqual({
      host: 'db.internal',
      port: 5432,
      user: 'temporal',
      password: 'p@ss',
    });
  });

  it('writes a server config with both stores on PostgreSQL and each service on its own ports', () => {
    const yaml = clusterConfigYaml({
      endpoint: { host: '127.0.0.1', port: 5432, user: 'temporal', password: 'secret"quote' },
      databases: { default: 'temporal', visibility: 'temporal_visibility' },
      ports: {
        frontend: 7233,
        frontendMembership: 6933,
        history: 7234,
        historyMembership: 6934,
        matching: 7235,
        matchingMembership: 6935,
        worker: 7239,
        workerMembership: 6939,
      },
      dynamicConfigFile: '/tmp/dynamic.yaml',
      historyShards: 4,
    });
    expect(yaml).toContain('visibilityStore: postgres-visibility');
    expect(yaml.match(/pluginName: postgres12/g)).toHaveLength(2);
    expect(yaml).toContain('databaseName: "temporal_visibility"');
    // Quoted so a password with YAML's special characters stays one string.
    expect(yaml).toContain('password: "secret\\"quote"');
    expect(yaml).toMatch(/frontend:\n {4}rpc:\n {6}grpcPort: 7233\n {6}membershipPort: 6933/);
  });
});
