/**
 * ESLint rule `hitloop/workflow-imports`: workflow code loads at run time only `@temporalio/workflow`,
 * other workflow files and the pure modules named in the rule's options (eslint.config.js, the one
 * place they are listed). Anything else it may import for its types only (`import type` or inline
 * `type` specifiers, which the bundler drops), so activity code, I/O and Node built-ins never reach
 * the deterministic sandbox.
 */
import path from 'node:path';
import type { Rule } from 'eslint';

export interface WorkflowImportsOptions {
  /** The repository root, which `workflowsDir` and the files of `allow` are relative to. */
  root: string;
  /** The folder of workflow code (`workflows`): any file under it may be imported. */
  workflowsDir: string;
  /** Packages (with their subpaths) and repository files (`model/status.ts`) allowed besides. */
  allow: string[];
}

/** Minimal shape of the import-like nodes of typescript-eslint's AST that this rule reads. */
interface ImportLike {
  type: string;
  source?: { value?: unknown } | null;
  importKind?: 'type' | 'value';
  exportKind?: 'type' | 'value';
  specifiers?: Array<{ importKind?: 'type' | 'value'; exportKind?: 'type' | 'value' }>;
}

/** True when the statement brings in types only: nothing of it is left after type stripping. */
function isTypeOnly(node: ImportLike): boolean {
  if (node.importKind === 'type' || node.exportKind === 'type') return true;
  const specifiers = node.specifiers ?? [];
  // `import {} from 'x'` keeps loading 'x'; `import { type A } from 'x'` does not.
  return specifiers.length > 0 && specifiers.every((s) => s.importKind === 'type' || s.exportKind === 'type');
}

/** Whether workflow file `fromFile` may load `specifier` at run time. */
export function isAllowedWorkflowImport(specifier: string, fromFile: string, options: WorkflowImportsOptions): boolean {
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
    const target = path.resolve(path.dirname(fromFile), specifier);
    const workflows = path.resolve(options.root, options.workflowsDir);
    if (target.startsWith(workflows + path.sep)) return true;
    return options.allow.some((allowed) => path.resolve(options.root, allowed) === target);
  }
  return options.allow.some((allowed) => specifier === allowed || specifier.startsWith(`${allowed}/`));
}

export const workflowImportsRule: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: { description: 'Workflow files load only @temporalio/workflow, workflow files and listed pure modules; the rest for types only' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          workflowsDir: { type: 'string' },
          allow: { type: 'array', items: { type: 'string' } },
        },
        required: ['root', 'workflowsDir', 'allow'],
        additionalProperties: false,
      },
    ],
    messages: {
      notAllowed:
        "workflow code may not load '{{specifier}}' at run time (allowed: files under {{workflowsDir}}/, {{allow}}). " +
        'Import only its types (`import type`), move the work into an activity, or, if it is pure and deterministic, add it to the allow list of hitloop/workflow-imports in eslint.config.js.',
    },
  },
  create(context) {
    const options = context.options[0] as WorkflowImportsOptions;
    const check = (node: ImportLike, reportOn: Rule.Node): void => {
      const specifier = node.source?.value;
      if (typeof specifier !== 'string' || isTypeOnly(node)) return;
      if (isAllowedWorkflowImport(specifier, context.filename, options)) return;
      context.report({
        node: reportOn,
        messageId: 'notAllowed',
        data: { specifier, workflowsDir: options.workflowsDir, allow: options.allow.join(', ') },
      });
    };
    return {
      ImportDeclaration: (node) => check(node as ImportLike, node),
      ExportNamedDeclaration: (node) => check(node as ImportLike, node),
      ExportAllDeclaration: (node) => check(node as ImportLike, node),
      ImportExpression: (node) => check(node as ImportLike, node),
    };
  },
};
