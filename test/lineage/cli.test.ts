import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { registerLineageCommands } from '../../client/commands/lineage-commands';
import { openLineageStore } from '../../lib/lineage';

// loadConfig() reads the environment once per module registry: set it before any command runs.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-lineage-cli-'));
process.env.WEFT_HOME = home;
process.env.WEFT_LINEAGE_URL = `sqlite://${path.join(home, 'lineage.db')}`;

async function runCommand(...argv: string[]): Promise<string> {
  const program = new Command('weft').exitOverride();
  registerLineageCommands(program);
  let output = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    output += chunk.toString();
    return true;
  });
  try {
    await program.parseAsync(['node', 'weft', ...argv]);
  } finally {
    spy.mockRestore();
  }
  return output;
}

describe('weft lineage commands', () => {
  let modelRef: string;

  beforeAll(async () => {
    const store = await openLineageStore(process.env.WEFT_LINEAGE_URL!);
    const run = await store.runs.create({ id: 'train-1', jobType: 'fine-tune' });
    modelRef = (
      await store.artifacts.log({
        name: 'chat-model',
        type: 'model',
        runId: run.id,
        files: [{ path: 'w.bin', content: 'weights' }],
      })
    ).ref;
    await store.registry.link({
      artifact: modelRef,
      target: 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/chat',
      actor: 'ci',
    });
    await store.registry.moveAlias('wandb-artifact:///weft/wandb-registry-RAG Chat Models/chat', {
      alias: 'production',
      to: 'v0',
      expected: null,
      actor: 'ci',
      workflowId: 'wf-9',
    });
    await store.objects.publish({ name: 'Prompt', value: { _type: 'Prompt', template: 'Q: {q}' } });
    await store.calls.upsert({
      id: 'c-1',
      opName: 'RagModel.predict',
      traceId: 't-1',
      startedAt: '2026-01-01T00:00:00Z',
      attributes: { 'wandb-run-id': 'train-1' },
    });
    await store.calls.upsert({
      id: 'c-2',
      opName: 'RagModel.predict',
      traceId: 't-2',
      startedAt: '2026-01-01T00:00:01Z',
      attributes: { 'wandb-run-id': 'other' },
    });
    await store.close();
  });

  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('creates and lists registries as a table and as JSON', async () => {
    expect(await runCommand('registry', 'create', 'RAG Models', '--type', 'rag-app')).toContain(
      'registry "RAG Models" ready',
    );
    const table = await runCommand('registry', 'ls');
    expect(table).toMatch(/RAG Chat Models\s+any/);
    expect(table).toMatch(/RAG Models\s+rag-app/);
    const json = JSON.parse(await runCommand('registry', 'ls', '--json')) as { name: string }[];
    expect(json.map((registry) => registry.name)).toEqual(['RAG Chat Models', 'RAG Models']);
  });

  it('shows a collection’s versions and alias history', async () => {
    const shown = await runCommand('registry', 'show', 'RAG Chat Models', '--collection', 'chat');
    expect(shown).toContain(modelRef);
    expect(shown).toMatch(/production\s+-\s+v0\s+ci\s+wf-9/);
    expect(await runCommand('registry', 'show', 'RAG Chat Models')).toMatch(/chat\s+model\s+1\s+production=v0/);
  });

  it('accepts W&B’s path form "<Registry>/<Collection>" and refuses two different collections', async () => {
    expect(await runCommand('registry', 'show', 'RAG Chat Models/chat')).toMatch(/production\s+-\s+v0\s+ci\s+wf-9/);
    await expect(runCommand('registry', 'show', 'RAG Chat Models/chat', '--collection', 'other')).rejects.toThrow(
      '"RAG Chat Models/chat" names the collection "chat" and --collection names "other"; give one.',
    );
    await expect(runCommand('registry', 'show', 'RAG Chat Models/nope')).rejects.toThrow(
      'The registry "RAG Chat Models" has no collection "nope"',
    );
  });

  it('lists, shows and downloads artifacts', async () => {
    expect(await runCommand('artifacts', 'ls')).toMatch(/chat-model\s+model\s+1/);
    const shown = JSON.parse(await runCommand('artifacts', 'show', modelRef, '--json')) as {
      version: number;
      aliases: string[];
    };
    expect(shown).toMatchObject({ version: 0, aliases: ['latest'] });
    const target = path.join(home, 'download');
    expect(await runCommand('artifacts', 'download', modelRef, target)).toContain('1 file(s) written');
    expect(fs.readFileSync(path.join(target, 'w.bin'), 'utf8')).toBe('weights');
  });

  it('lists and shows objects', async () => {
    expect(await runCommand('objects', 'ls')).toMatch(
      /Prompt\s+Prompt\s+1\s+weave:\/\/\/weft\/rag-demo\/object\/Prompt:/,
    );
    expect(await runCommand('objects', 'show', 'Prompt')).toMatch(/v0\s+\S+\s+\S+\s+latest/);
  });

  it('walks lineage and filters calls by attribute', async () => {
    expect(await runCommand('lineage', modelRef)).toMatch(
      /run:train-1\s+output\s+wandb-artifact:\/\/\/weft\/rag-demo\/chat-model:v0/,
    );
    const calls = JSON.parse(await runCommand('calls', 'ls', '--attr', 'wandb-run-id=train-1', '--json')) as {
      id: string;
    }[];
    expect(calls.map((call) => call.id)).toEqual(['c-1']);
    expect(await runCommand('calls', 'ls', '--op', 'RagModel.predict')).toMatch(/c-1[\s\S]*c-2/);
  });
});
