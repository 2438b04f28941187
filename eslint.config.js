import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { workflowImportsRule } from './toolchain/workflowImportsRule.ts';

/**
 * What workflow code may load at run time (hitloop/workflow-imports): besides files under
 * workflows/, only these; anything else for its types only. Add a module here only if it is pure and
 * deterministic (no I/O, clock, randomness or Node built-ins): it runs inside the workflow sandbox.
 */
const WORKFLOW_IMPORTS = {
  root: import.meta.dirname,
  workflowsDir: 'workflows',
  allow: [
    '@temporalio/workflow',
    // Signal and update payloads are validated on arrival, inside the workflow (workflows/definitions.ts).
    'zod',
    // The one status vocabulary (docs/design.md §1) and the storable-JSON schemas of the payloads.
    'model/status.ts',
    'model/storableJson.ts',
    // The one rule for amounts of money (live max_spend and task_reward changes).
    'model/money.ts',
    // The SDK's own workflow interceptors for OpenTelemetry (workflows/tracing.ts): deterministic, and
    // their spans leave through a sink.
    '@temporalio/interceptors-opentelemetry/lib/workflow',
    // OpenTelemetry's attribute-name constants, which those interceptors load (shared: workflows/preload.ts).
    '@opentelemetry/semantic-conventions',
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'bench/results/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    languageOptions: {
      parserOptions: {
        // Type-aware rules: the TypeScript project for .ts files, a default project for the browser JS.
        projectService: { allowDefaultProject: ['*.js', 'console/*.js', 'gateway/assets/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    files: [`${WORKFLOW_IMPORTS.workflowsDir}/**/*.ts`],
    plugins: { hitloop: { rules: { 'workflow-imports': workflowImportsRule } } },
    rules: { 'hitloop/workflow-imports': ['error', WORKFLOW_IMPORTS] },
  },
);
