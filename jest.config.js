/** @type {import('jest').Config} */
module.exports = {
  // Node's environment, sharing the main realm's typed arrays so onnxruntime-node tensors pass its instanceof checks.
  testEnvironment: '<rootDir>/test/inference/onnxruntime-environment.js',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 120_000,
  // The integration tests start real servers; one file at a time keeps 2 cores usable.
  maxWorkers: 1,
  setupFiles: ['<rootDir>/test/support/jest-setup.ts'],
};
