import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadSession } from './onnx-session';

/** The libraries onnxruntime-node loads for its CUDA provider, from the folder of its own libonnxruntime.so.1. */
export const cudaProviderLibraries = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

export interface CudaProviderReport {
  /** Where onnxruntime-node looks for the provider libraries. */
  directory: string;
  onnxruntimeVersion: string;
  missingLibraries: string[];
  /** Libraries the CUDA provider needs that the dynamic loader cannot find (from ldd), e.g. libcublas.so.13. */
  unresolvedDependencies: string[];
  /** The provider a CUDA session actually got on `modelPath`, when one was tried. */
  sessionProvider?: 'cuda' | 'cpu';
  /** Why CUDA did not load, as onnxruntime said it. */
  reason?: string;
  /** What to do, in one paragraph; empty when CUDA works. */
  advice: string;
}

function onnxruntimeBinaryDirectory(): { directory: string; version: string } {
  const packageJson = require.resolve('onnxruntime-node/package.json');
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  return { directory: path.join(path.dirname(packageJson), 'bin', 'napi-v6', process.platform, arch), version };
}

function unresolved(library: string): string[] {
  try {
    const output = execFileSync('ldd', [library], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return output
      .split('\n')
      .filter((line) => line.includes('=> not found'))
      .map((line) => line.trim().split(/\s+/)[0]);
  } catch {
    return []; // no ldd here: the session attempt below still says whether CUDA loads
  }
}

/**
 * Whether onnxruntime-node can run on CUDA here, and if not, exactly what is missing: the provider libraries
 * (they come from the onnxruntime-gpu wheel of the same version), the CUDA libraries they load, or the session
 * itself (driver, device). With `modelPath`, a CUDA session is created on it to prove it.
 */
export async function checkCudaProvider(
  options: { modelPath?: string; deviceId?: number } = {},
): Promise<CudaProviderReport> {
  const { directory, version } = onnxruntimeBinaryDirectory();
  const missingLibraries = cudaProviderLibraries.filter((name) => !existsSync(path.join(directory, name)));
  const cudaLibrary = path.join(directory, 'libonnxruntime_providers_cuda.so');
  const unresolvedDependencies = missingLibraries.length === 0 ? unresolved(cudaLibrary) : [];
  const report: CudaProviderReport = {
    directory,
    onnxruntimeVersion: version,
    missingLibraries,
    unresolvedDependencies,
    advice: '',
  };
  if (options.modelPath && missingLibraries.length === 0) {
    const reasons: string[] = [];
    const loaded = await loadSession(options.modelPath, 'Model file', {
      executionProvider: 'cuda',
      deviceId: options.deviceId ?? 0,
      logger: { warn: (_message, attributes) => reasons.push(String(attributes?.reason ?? '')) },
    });
    report.sessionProvider = loaded.executionProvider;
    if (reasons.length > 0) report.reason = reasons.join('; ');
  }
  if (missingLibraries.length > 0) {
    report.advice =
      `onnxruntime-node ${version} has no CUDA provider: put ${missingLibraries.join(' and ')} in ${directory}, ` +
      `taken from the PyPI wheel onnxruntime-gpu==${version} (onnxruntime/capi/), and the CUDA libraries they load ` +
      'on LD_LIBRARY_PATH (README: Running on a GPU; the Dockerfile does both).';
  } else if (unresolvedDependencies.length > 0) {
    const toolkit = unresolvedDependencies.filter((name) => !name.startsWith('libcuda.so'));
    const parts: string[] = [];
    if (toolkit.length > 0) {
      parts.push(
        `The CUDA provider cannot find ${toolkit.join(', ')}: add the folders holding them to LD_LIBRARY_PATH ` +
          '(PyPI nvidia-cuda-runtime, nvidia-cublas, nvidia-curand of that CUDA major, or a PyTorch built for it: ' +
          'site-packages/nvidia/*/lib).',
      );
    }
    if (toolkit.length < unresolvedDependencies.length) {
      parts.push('No NVIDIA driver here (libcuda.so.1 is missing): install it, or run on a GPU host.');
    }
    report.advice = parts.join(' ');
  } else if (report.sessionProvider === 'cpu') {
    report.advice =
      'The CUDA provider libraries are in place but the session fell back to CPU: check the driver (nvidia-smi), ' +
      "that the driver supports the provider's CUDA major, and WEFT_CUDA_DEVICE_ID.";
  }
  return report;
}
