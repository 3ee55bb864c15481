import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLineageStore } from '../../lib/lineage';
import { spawnSync } from 'node:child_process';
import { runWeft } from '../support/cli';

/** A fresh WEFT_HOME and a Temporal address nobody answers: any attempt to start work would fail differently. */
function freshHome() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-validation-'));
  return { home, environment: { WEFT_HOME: home, TEMPORAL_ADDRESS: '127.0.0.1:1' } };
}

async function objectCount(home: string): Promise<number> {
  // The command opened the store (so this counts what it wrote), and wrote no object.
  expect(fs.existsSync(path.join(home, 'lineage.db'))).toBe(true);
  const store = await openLineageStore(`sqlite://${path.join(home, 'lineage.db')}`);
  try {
    const [row] = await store.database.query<{ count: number }>('SELECT COUNT(*) AS count FROM objects');
    return Number(row.count);
  } finally {
    await store.close();
  }
}

describe('the CLI checks inputs before it starts or writes anything (finding 3)', () => {
  it('schedule create refuses a bad app name and a nonexistent evaluation, naming both', async () => {
    const { environment } = freshHome();
    const result = await runWeft(
      ['schedule', 'create', '--app', 'a b/c', '--evaluation', 'weave:///weft/rag-demo/object/Evaluation:0000'],
      environment,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/2 invalid inputs; nothing was written/);
    expect(result.stderr).toMatch(/--app: .*"a b\/c"/);
    expect(result.stderr).toMatch(/--evaluation .*Evaluation:0000/);
    // Refused before Temporal was contacted.
    expect(result.stderr).not.toMatch(/Cannot connect to Temporal/);
  });

  it('evaluate with a refused --rag publishes no Dataset or Evaluation', async () => {
    const { home, environment } = freshHome();
    const qa = path.join(home, 'qa.jsonl');
    fs.writeFileSync(qa, '{"question": "When?", "answer": "1997", "doc_id": "kyoto"}\n');
    const result = await runWeft(
      ['evaluate', '--dataset', qa, '--rag', 'weave:///weft/rag-demo/object/RagModel:0000'],
      environment,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--rag .*RagModel:0000/);
    expect(await objectCount(home)).toBe(0);
  });

  it('evaluate names the file and line of a null row', async () => {
    const { home, environment } = freshHome();
    const qa = path.join(home, 'qa.jsonl');
    fs.writeFileSync(qa, '{"question": "When?", "answer": "1997", "doc_id": "kyoto"}\nnull\n');
    const result = await runWeft(['evaluate', '--dataset', qa], environment);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${qa}:2 is null, not an object`);
    expect(await objectCount(home)).toBe(0);
  });

  it('a 1 MB question gets a clear error before any model sees it, never a native crash (finding 5)', () => {
    const { environment } = freshHome();
    const result = spawnSync(path.resolve(__dirname, '../../bin/weft'), ['ask', '-'], {
      input: 'x'.repeat(1024 * 1024),
      env: { ...process.env, ...environment },
      encoding: 'utf8',
    });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('The question has 1048576 characters; a question may have at most 8000');
  });
});
