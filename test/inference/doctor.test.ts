/**
 * `weft doctor` on this host, which has no CUDA provider: it says so precisely, and fails only when CUDA is asked for.
 */
import { runWeft } from '../support/cli';
import { requireBuiltModels } from './built-models';

interface DoctorReport {
  ok: boolean;
  executionProvider: string;
  checks: Array<{ name: string; status: string; detail: string }>;
  cuda: { directory: string; missingLibraries: string[]; sessionProvider?: string; advice: string };
}

function parse(stdout: string): DoctorReport {
  return JSON.parse(stdout) as DoctorReport;
}

describe('weft doctor', () => {
  beforeAll(() => requireBuiltModels());

  it('passes on CPU and reports the models, the Temporal CLI and the trainer it found', async () => {
    const result = await runWeft(['doctor', '--json'], { WEFT_EXECUTION_PROVIDER: 'cpu' });
    expect(result.code).toBe(0);
    const report = parse(result.stdout);
    expect(report.ok).toBe(true);
    expect(Object.fromEntries(report.checks.map((check) => [check.name, check.status]))).toMatchObject({
      models: 'ok',
      'temporal-cli': 'ok',
      inference: 'ok',
      trainer: 'ok',
    });
  }, 120_000);

  it('with WEFT_EXECUTION_PROVIDER=cuda on a host without the CUDA provider: exit 1, naming the files and where they go', async () => {
    const result = await runWeft(['doctor', '--json'], { WEFT_EXECUTION_PROVIDER: 'cuda' });
    expect(result.code).toBe(1);
    const report = parse(result.stdout);
    expect(report.ok).toBe(false);
    expect(report.cuda.missingLibraries).toEqual(
      expect.arrayContaining(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']),
    );
    const inference = report.checks.find((check) => check.name === 'inference');
    expect(inference?.status).toBe('fail');
    expect(inference?.detail).toContain(report.cuda.directory);
    expect(inference?.detail).toMatch(/onnxruntime-gpu==\d+\.\d+\.\d+/);
    const text = await runWeft(['doctor'], { WEFT_EXECUTION_PROVIDER: 'cuda' });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^fail\s+inference\s+WEFT_EXECUTION_PROVIDER=cuda, but inference would run on CPU/m);
  }, 120_000);

  it('with WEFT_ENGINE=torch: checks the engine can start (torch on CPU here), and fails when CUDA is asked of a torch without it', async () => {
    const cpu = parse((await runWeft(['doctor', '--json', '--only', 'inference'], { WEFT_ENGINE: 'torch' })).stdout);
    expect(cpu.checks.find((check) => check.name === 'decode-engine')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/^torch \S+ engine on CPU/),
    });
    const cuda = await runWeft(['doctor', '--only', 'inference'], {
      WEFT_ENGINE: 'torch',
      WEFT_EXECUTION_PROVIDER: 'cuda',
    });
    expect(cuda.code).toBe(1);
    expect(cuda.stdout).toMatch(
      /^fail\s+decode-engine\s+WEFT_ENGINE=torch with WEFT_EXECUTION_PROVIDER=cuda, but torch/m,
    );
  }, 120_000);

  it('rejects an unknown provider with the accepted values and changes nothing', async () => {
    const result = await runWeft(['doctor'], { WEFT_EXECUTION_PROVIDER: 'rocm' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/WEFT_EXECUTION_PROVIDER/);
    expect(result.stderr).toMatch(/cpu.*cuda|cuda.*cpu/);
  }, 60_000);
});
