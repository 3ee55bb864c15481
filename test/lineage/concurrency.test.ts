import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { type LineageStore } from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore, type TestLocation } from './support/test-backends';

const WRITER = path.join(__dirname, 'fixtures', 'concurrent-writer.ts');
const COLLECTION = 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/shared-chat';
const WRITERS = 8;
const ITERATIONS = 6;

interface ContendReport {
  writer: number;
  links: Record<string, number>;
  objectVersions: Record<string, number>;
  aliasMoves: number;
  aliasConflicts: number;
  error?: string;
}

function startWriter(location: TestLocation, ...args: string[]): ChildProcess {
  return fork(WRITER, [args[0]!, location.url, location.blobDirectory, ...args.slice(1)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function runWriter(location: TestLocation, writer: number): Promise<ContendReport> {
  return new Promise((resolve, reject) => {
    const child = startWriter(location, 'contend', String(writer), String(ITERATIONS));
    let report: ContendReport | undefined;
    child.on('message', (message) => (report = message as ContendReport));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (report?.error) reject(new Error(`writer ${writer} failed: ${report.error}`));
      else if (code !== 0 || !report) reject(new Error(`writer ${writer} exited with ${code} and no report`));
      else resolve(report);
    });
  });
}

describe.each(BACKENDS)('lineage store under concurrent writers on %s', (backend) => {
  let location: TestLocation;
  let store: LineageStore;

  beforeAll(async () => {
    location = await createTestLocation(backend);
    // Migrate once up front, so the writers contend on data rather than on schema creation.
    store = await openTestStore(location);
  });

  afterAll(async () => {
    await store?.close();
    await location?.dispose();
  });

  it('8 processes publishing, logging, linking and moving aliases create no duplicates and lose no alias move', async () => {
    const reports = await Promise.all(Array.from({ length: WRITERS }, (_, writer) => runWriter(location, writer)));

    const objectVersions = await store.objects.versions('SharedConfig');
    expect(objectVersions.map((version) => version.version)).toEqual([0, 1, 2]);
    expect(new Set(objectVersions.map((version) => version.digest)).size).toBe(3);
    for (const report of reports) {
      for (const [digest, version] of Object.entries(report.objectVersions)) {
        expect(objectVersions.find((stored) => stored.digest === digest)?.version).toBe(version);
      }
    }

    const artifactVersions = await store.artifacts.versions('wandb-artifact:///weft/rag-demo/shared-model');
    expect(artifactVersions.map((version) => version.version)).toEqual([0, 1, 2, 3]);
    expect(new Set(artifactVersions.map((version) => version.digest)).size).toBe(4);

    const linked = await store.registry.versions(COLLECTION);
    expect(linked).toHaveLength(4);
    const linkOf = new Map(linked.map((version) => [version.artifact.ref, version.version]));
    for (const report of reports) {
      for (const [artifactRef, version] of Object.entries(report.links)) expect(linkOf.get(artifactRef)).toBe(version);
    }

    const history = await store.registry.aliasHistory(COLLECTION, 'production');
    const reportedMoves = reports.reduce((total, report) => total + report.aliasMoves, 0);
    expect(history).toHaveLength(reportedMoves);
    expect(history[0]!.fromVersion).toBeNull();
    history.slice(1).forEach((move, index) => expect(move.fromVersion).toBe(history[index]!.toVersion));
    const production = await store.registry.resolve(`${COLLECTION}:production`);
    expect(production.version).toBe(history[history.length - 1]!.toVersion);
  });

  it('a writer killed inside a transaction leaves nothing behind, and the retried log completes once', async () => {
    const before = await store.counts();
    const child = startWriter(location, 'crash');
    await new Promise<void>((resolve, reject) => {
      child.on('message', (message) => {
        if ((message as { insideTransaction?: boolean }).insideTransaction) {
          child.kill('SIGKILL');
          resolve();
        } else reject(new Error(`crash writer reported ${JSON.stringify(message)}`));
      });
      child.on('error', reject);
    });
    await new Promise((resolve) => child.on('exit', resolve));
    expect(child.signalCode).toBe('SIGKILL');

    expect(await store.counts()).toEqual(before);
    const retried = await store.artifacts.log({
      name: 'crash-model',
      type: 'model',
      files: [{ path: 'w.bin', content: 'crash weights' }],
    });
    const again = await store.artifacts.log({
      name: 'crash-model',
      type: 'model',
      files: [{ path: 'w.bin', content: 'crash weights' }],
    });
    expect(retried).toMatchObject({ ref: 'wandb-artifact:///weft/rag-demo/crash-model:v0', created: true });
    expect(again).toEqual({ ...retried, created: false });
    const after = await store.counts();
    expect(after.artifact_versions).toBe(before.artifact_versions + 1);
    expect(after.collection_members).toBe(before.collection_members + 1);
  });
});
