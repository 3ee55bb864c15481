import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { requireBuiltModels } from '../support/models';
import { runWeft } from '../support/cli';
import { filesUnder } from '../../lib/common/files';

/**
 * A real full disk: WEFT_HOME on a 320 MiB tmpfs, most of it taken by a filler file, so `weft ingest` runs out of
 * space while storing the 86 MiB embedding model. It must stop with a clear message, keep no half-written blob and
 * leave the database whole; with the filler deleted, the same command completes.
 * Mounting needs root (or CAP_SYS_ADMIN): without it this test fails, saying so — it is never skipped.
 */
/** A fresh folder with a tmpfs of `size` mounted on it; `release` unmounts and removes it. Mounting needs root. */
function mountSmallTmpfs(prefix: string, size: string, role: string): { folder: string; release: () => void } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', folder], { stdio: 'pipe' });
  } catch (error) {
    fs.rmSync(folder, { recursive: true, force: true });
    throw new Error(
      `This test mounts a small tmpfs as ${role} and needs root or CAP_SYS_ADMIN: mount failed (${String((error as { stderr?: Buffer }).stderr ?? error).trim()}).`,
    );
  }
  return {
    folder,
    release: () => {
      execFileSync('umount', [folder]);
      fs.rmSync(folder, { recursive: true, force: true });
    },
  };
}

describe('disk full under WEFT_HOME (tmpfs)', () => {
  let home: string;
  let release = (): void => undefined;

  beforeAll(() => {
    requireBuiltModels();
    ({ folder: home, release } = mountSmallTmpfs('weft-disk-full-', '320m', 'WEFT_HOME'));
  });

  afterAll(() => release());

  it('ingest stops with a clear message and keeps nothing half-written; it completes once space is freed', async () => {
    const corpus = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-disk-full-corpus-')), 'corpus.jsonl');
    fs.writeFileSync(
      corpus,
      ['Glaciers are retreating almost everywhere.', 'Kelp forests store carbon in their fronds.']
        .map((text, index) => JSON.stringify({ id: `doc-${index}`, title: `Document ${index}`, text }))
        .join('\n'),
    );
    const filler = path.join(home, 'filler');
    // 260 MiB of the 320: the model (86 MiB) cannot fit beside it. (Ingest stores it twice: blob and model cache.)
    fs.writeFileSync(filler, Buffer.alloc(260 * 1024 * 1024, 1));
    const environment = { WEFT_HOME: home, WEFT_MODELS_DIR: path.resolve(__dirname, '..', '..', '.weft', 'models') };

    const full = await runWeft(['ingest', corpus, '--json'], environment);
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(/The disk holding the blob store .* is full \(ENOSPC\); nothing half-written was kept/);
    expect(full.stderr).not.toMatch(/Unhandled|at .*\.ts:\d+/);
    // No temporary leftovers, and every blob under its final name is whole (its name is its SHA-256).
    const blobs = filesUnder(path.join(home, 'blobs')).map((file) => file.localPath);
    expect(blobs.filter((file) => path.basename(file).startsWith('.tmp-'))).toEqual([]);
    for (const file of blobs.filter((name) => !name.includes(`${path.sep}staging${path.sep}`))) {
      expect(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(path.basename(file));
    }
    const database = new Database(path.join(home, 'lineage.db'), { readonly: true });
    try {
      expect(database.pragma('integrity_check', { simple: true })).toBe('ok');
      // The failed artifact was never recorded: nothing points at a blob that is not there.
      expect(database.prepare('SELECT COUNT(*) AS count FROM artifact_versions').get()).toEqual({ count: 0 });
    } finally {
      database.close();
    }

    fs.rmSync(filler);
    const freed = await runWeft(['ingest', corpus, '--json'], environment);
    expect(freed.stderr).not.toMatch(/weft: /);
    expect(freed.code).toBe(0);
    expect(JSON.parse(freed.stdout)).toMatchObject({ created: true, documents: 2 });
  }, 300_000);
});

/** `scripts/setup.sh` on a fresh clone with too little room: it says so and installs nothing (pip would fail late). */
describe('setup on a disk without room for a fresh install (tmpfs)', () => {
  let clone: string;
  let release = (): void => undefined;

  beforeAll(() => {
    ({ folder: clone, release } = mountSmallTmpfs('weft-setup-full-', '16m', 'the clone'));
    fs.mkdirSync(path.join(clone, 'scripts'));
    fs.copyFileSync(
      path.resolve(__dirname, '..', '..', 'scripts', 'setup.sh'),
      path.join(clone, 'scripts', 'setup.sh'),
    );
  });

  afterAll(() => release());

  it('stops before installing anything, naming the space it needs and the way past the check', () => {
    const environment = { ...process.env };
    delete environment.WEFT_SKIP_DISK_CHECK;
    let failure: { status?: number; stderr?: Buffer } = {};
    try {
      execFileSync('bash', ['scripts/setup.sh'], { cwd: clone, env: environment, stdio: 'pipe' });
    } catch (error) {
      failure = error as typeof failure;
    }
    expect(failure.status).toBe(1);
    const stderr = String(failure.stderr);
    expect(stderr).toMatch(/only 0 GB free on .*; a fresh set-up needs about 13 GB/);
    expect(stderr).toContain('WEFT_SKIP_DISK_CHECK=1');
    expect(fs.readdirSync(clone).sort()).toEqual(['scripts']);
  });
});
