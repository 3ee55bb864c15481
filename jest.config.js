/** @type {import('jest').Config} */
module.exports = {
  // Node's environment, sharing the main realm's typed arrays so onnxruntime-node tensors pass its instanceof checks.
  testEnvironment: '<rootDir>/test/inference/onnxruntime-environment.js',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/cluster runs a Temporal Server built from Go source: only through `npm run test:cluster`.
  testPathIgnorePatterns:
    process.env.WEFT_CLUSTER_TEST === '1' ? ['/node_modules/'] : ['/node_modules/', '/test/cluster/'],
  testTimeout: 120_000,
  // The integration tests start real servers; one file at a time keeps 2 cores usable.
  maxWorkers: 1,
  setupFiles: ['<rootDir>/test/support/jest-setup.ts'],
  // PostgreSQL for the lineage tests: WEFT_TEST_POSTGRES_URL, else a server scripts/ensure-postgres.sh brings up.
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
};
