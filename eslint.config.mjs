import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      '.weft/**',
      '.venv/**',
      '.venv-sdk/**',
      'trainer/**',
      'jest.config.js',
      'bin/**',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Workflow code is replayed: it may import only the workflow API, the shared contracts and sibling workflows.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Allowed: @temporalio/workflow, ./contracts/…, and a sibling workflow file (./evaluate). Nothing
              // with `..`, nothing from node_modules but the workflow API.
              regex: '^(?!@temporalio/workflow$|\\./contracts(/[A-Za-z0-9_-]+)?$|\\./[A-Za-z0-9_-]+$).*',
              message: 'workflows/ may import only @temporalio/workflow, workflows/contracts and sibling workflows.',
            },
          ],
        },
      ],
    },
  },
  {
    // lib/ is the domain and its adapters: imports point down, never up into the processes that compose it.
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(activities|client|workers|test|bench)(/|$)',
              message: 'lib/ may not import activities, client, workers, test or bench: pass what it needs in.',
            },
            {
              regex: '^(\\.\\./)+workflows(/(?!contracts(/|$))|$)',
              message: 'lib/ may import only workflows/contracts, never workflow code.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['workflows/contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@temporalio/common$|@temporalio/workflow$|\\./[A-Za-z0-9_-]+$).*',
              message:
                'workflows/contracts must stay bundle-safe: only @temporalio/workflow (define* helpers), @temporalio/common and sibling contracts.',
            },
          ],
        },
      ],
    },
  },
);
