/**
 * Full validation of a task-run config: the base schema (config/taskRunConfig.ts), then the provider
 * and blueprint options against the registered implementations' own schemas, then what the chosen
 * blueprint must support (onboarding, screening, gold validators). All problems are reported together.
 */
import type { ZodType } from 'zod';
import type { Blueprint } from '../blueprints/types.ts';
import type { CrowdProvider } from '../providers/types.ts';
import { blueprints as registeredBlueprints, providers as registeredProviders } from '../registry/index.ts';
import type { Registry } from '../registry/registry.ts';
import { checkDataFiles } from './dataSource.ts';
import { ConfigError, didYouMean, type ConfigIssue } from './errors.ts';
import { loadRawTaskRunConfig } from './loadConfig.ts';
import { componentOptions, taskRunConfigSchema, type ComponentSpec, type TaskRunConfig } from './taskRunConfig.ts';
import { issuesFromZod, type IssueOptions } from './zodIssues.ts';

export interface ValidateRunOptions {
  /** Where the config came from, for the error's first line. */
  where?: string;
  /** Source lines of key paths (from loadRawTaskRunConfig). */
  locate?: IssueOptions['locate'];
  /** The registries to check against (tests pass their own); default: the process-wide ones. */
  providers?: Registry<CrowdProvider>;
  blueprints?: Registry<Blueprint>;
}

/** Validate a config object completely; returns it with provider and blueprint options defaulted. */
export function validateRunConfig(raw: unknown, options: ValidateRunOptions = {}): TaskRunConfig {
  const providers = options.providers ?? registeredProviders;
  const blueprints = options.blueprints ?? registeredBlueprints;
  const issues: ConfigIssue[] = [];

  const parsed = taskRunConfigSchema.safeParse(raw);
  if (!parsed.success) issues.push(...issuesFromZod(parsed.error.issues, raw, taskRunConfigSchema, { locate: options.locate }));
  const badKeys = new Set(issues.map((issue) => issue.path.split(/[.[]/)[0]));

  // Even when other keys are wrong, check provider and blueprint if they parsed: one pass, all problems.
  const specs = parsed.success ? parsed.data : partialSpecs(raw);
  const provider = badKeys.has('provider') ? undefined : checkComponent('provider', specs.provider, providers, issues, options);
  const blueprint = badKeys.has('blueprint') ? undefined : checkComponent('blueprint', specs.blueprint, blueprints, issues, options);

  if (parsed.success && blueprint) issues.push(...missingValidators(parsed.data, blueprint.impl));
  if (parsed.success && blueprint) issues.push(...overlapIssues(parsed.data, blueprint.impl, blueprint.spec));
  if (issues.length > 0 || !parsed.success || !provider || !blueprint) throw new ConfigError(issues, options.where);
  return { ...parsed.data, provider: provider.spec, blueprint: blueprint.spec };
}

/**
 * Load a config file with overrides and validate it completely, data files included: what
 * `hitloop run` does before it starts a workflow.
 */
export function loadRunConfig(
  file: string,
  overrides: readonly string[] = [],
  options: Omit<ValidateRunOptions, 'where' | 'locate'> = {},
): TaskRunConfig {
  const loaded = loadRawTaskRunConfig(file, overrides);
  const config = validateRunConfig(loaded.raw, { ...options, where: file, locate: loaded.locate });
  checkDataFiles(config, file);
  return config;
}

function checkComponent<T extends { type: string; optionsSchema: ZodType }>(
  kind: 'provider' | 'blueprint',
  spec: ComponentSpec | undefined,
  registry: Registry<T>,
  issues: ConfigIssue[],
  options: ValidateRunOptions,
): { impl: T; spec: ComponentSpec } | undefined {
  if (spec === undefined) return undefined;
  if (!registry.has(spec.type)) {
    const known = registry.types();
    const guess = didYouMean(spec.type, known);
    const message =
      known.length === 0
        ? `no ${kind} types are registered (import the ${kind} implementations before validating)`
        : `must be a registered ${kind} type: ${known.join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}`;
    const line = options.locate?.([kind, 'type']) ?? options.locate?.([kind]);
    issues.push({ path: `${kind}.type`, value: spec.type, message, ...(line === undefined ? {} : { line }) });
    return undefined;
  }
  const impl = registry.get(spec.type);
  const given = componentOptions(spec);
  const result = impl.optionsSchema.safeParse(given);
  if (!result.success) {
    issues.push(...issuesFromZod(result.error.issues, given, impl.optionsSchema, { prefix: [kind], locate: options.locate }));
    return undefined;
  }
  const defaulted = result.data;
  const merged: ComponentSpec =
    typeof defaulted === 'object' && defaulted !== null && !Array.isArray(defaulted)
      ? { ...(defaulted as Record<string, unknown>), type: spec.type }
      : spec;
  return { impl, spec: merged };
}

/** The provider and blueprint specs of a config that failed the base schema, where they are usable. */
function partialSpecs(raw: unknown): { provider?: ComponentSpec; blueprint?: ComponentSpec } {
  if (typeof raw !== 'object' || raw === null) return {};
  const record = raw as Record<string, unknown>;
  const spec = (value: unknown): ComponentSpec | undefined => {
    if (typeof value === 'string' && value.trim() !== '') return { type: value.trim() };
    if (typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string') {
      return value as ComponentSpec;
    }
    return undefined;
  };
  return { provider: spec(record.provider), blueprint: spec(record.blueprint) };
}

/** The onboarding form workers are shown: the blueprint's own, or its `onboarding` options (qualifications/onboarding.ts). */
function hasOnboardingForm(config: TaskRunConfig, blueprint: Blueprint): boolean {
  if ('onboardingInitData' in blueprint) return true;
  return componentOptions(config.blueprint).onboarding !== undefined;
}

function missingValidators(config: TaskRunConfig, blueprint: Blueprint): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const validators = blueprint.validators ?? {};
  const lacks = (what: string) => `blueprint ${blueprint.type} has no ${what} validator, so ${what} results cannot be decided`;
  if (config.onboarding_qualification !== undefined && !validators.onboarding) {
    issues.push({ path: 'onboarding_qualification', value: config.onboarding_qualification, message: lacks('onboarding') });
  } else if (config.onboarding_qualification !== undefined && !hasOnboardingForm(config, blueprint)) {
    issues.push({
      path: 'onboarding_qualification',
      value: config.onboarding_qualification,
      message: 'workers must pass onboarding, but blueprint.onboarding (the form and its expected answers) is missing: add it, or remove onboarding_qualification',
    });
  }
  if (config.screening.enabled && !validators.screening) {
    issues.push({ path: 'screening.enabled', value: true, message: lacks('screening') });
  }
  if (config.gold.enabled && !validators.gold) {
    issues.push({ path: 'gold.enabled', value: true, message: lacks('gold') });
  }
  return issues;
}

/** Overlap needs a blueprint whose agents work alone; aggregated fields must be fields the blueprint collects. */
function overlapIssues(config: TaskRunConfig, blueprint: Blueprint, spec: ComponentSpec): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.overlap && (blueprint.collaboration ?? 'independent') === 'group') {
    issues.push({ path: 'overlap', message: `blueprint ${blueprint.type} is worked by a group together; use units_per_assignment, not overlap` });
  }
  const known = blueprint.submissionFields?.(componentOptions(spec));
  if (config.aggregate && known) {
    config.aggregate.fields.forEach((field, i) => {
      if (known.includes(field)) return;
      const guess = didYouMean(field, known);
      issues.push({
        path: `aggregate.fields[${i}]`,
        value: field,
        message: `must be a field of the blueprint's form: ${known.join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}`,
      });
    });
  }
  return issues;
}
