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
    // Workflow code is replayed: it may import only the workflow API, common types and the shared contracts.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(?!@temporalio/workflow$|@temporalio/common$|\\./contracts(/|$)|\\.\\./contracts(/|$)|\\./|\\.\\./).*',
              message:
                'workflows/ may import only @temporalio/workflow, @temporalio/common (types) and workflows/contracts.',
            },
            {
              regex: '^\\.\\./\\.\\.',
              message: 'workflows/ may not reach outside workflows/.',
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
              regex: '^(?!@temporalio/common$|@temporalio/workflow$|\\./).*',
              message:
                'workflows/contracts must stay bundle-safe: only @temporalio/workflow (define* helpers), @temporalio/common and sibling contracts.',
            },
          ],
        },
      ],
    },
  },
);
