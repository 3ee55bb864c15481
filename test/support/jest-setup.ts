import { DefaultLogger, Runtime } from '@temporalio/worker';

// In-process workers in tests log warnings and errors only, so a failing test's output stays readable.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // Already installed by an earlier test file in this process.
}
