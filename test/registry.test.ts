/**
 * The registry of pluggable parts (docs/design.md §5) and full run-config validation against it, with small
 * fake implementations registered here (the real providers and blueprints have their own tests).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Blueprint } from '../blueprints/types.ts';
import { ConfigError } from '../config/errors.ts';
import { loadRunConfig, validateRunConfig } from '../config/validateRun.ts';
import type { CrowdProvider } from '../providers/types.ts';
import { blueprints, DuplicateTypeError, providers, Registry, UnknownTypeError } from '../registry/index.ts';

const fakeProvider = (type: string): CrowdProvider => ({
  type,
  optionsSchema: z.strictObject({ region: z.enum(['eu', 'us']).default('eu') }),
  async setUpRun() {},
  async launchUnit(_ctx, req) {
    return { providerUnitId: `fake-${req.unitId}` };
  },
  async expireUnit() {},
  async approveWork() {},
  async rejectWork() {},
  async payBonus(_ctx, req) {
    return { providerRef: `bonus-${req.requestKey}` };
  },
  async grantQualification() {},
  async revokeQualification() {},
  async blockWorker() {},
  async unblockWorker() {},
});

const formOptions = z.strictObject({
  fields: z
    .array(z.strictObject({ name: z.string().regex(/^[a-z_]+$/, 'must be a lowercase identifier'), label: z.string().optional() }))
    .min(1, 'list at least one field'),
  instructions: z.string().default(''),
});

const fakeBlueprint = (type: string, validators?: Blueprint['validators']): Blueprint => ({
  type,
  optionsSchema: formOptions,
  initData: ({ assignmentData }) => ({ data: assignmentData }),
  submissionSchema: () => z.record(z.string(), z.string()),
  taskPage: ({ runId }) => ({ html: `<p>run ${runId}</p>` }),
  ...(validators ? { validators } : {}),
});

function registries() {
  const p = new Registry<CrowdProvider>('provider');
  p.register(fakeProvider('fake-crowd'));
  p.register(fakeProvider('other-crowd'));
  const b = new Registry<Blueprint>('blueprint');
  b.register(fakeBlueprint('fake-form', { onboarding: () => ({ passed: true }) }));
  return { providers: p, blueprints: b };
}

function runConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    task_name: 'registry-test',
    task_title: 'Registry test',
    task_description: 'Checks options',
    task_tags: 'a,b',
    task_reward: 0.1,
    provider: 'fake-crowd',
    blueprint: { type: 'fake-form', fields: [{ name: 'answer' }] },
    data: [{ q: 1 }],
    ...overrides,
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

describe('Registry', () => {
  it('registers, finds and lists implementations by type', () => {
    const { providers: registry } = registries();
    expect(registry.has('fake-crowd')).toBe(true);
    expect(registry.has('nope')).toBe(false);
    expect(registry.get('other-crowd').type).toBe('other-crowd');
    expect(registry.types()).toEqual(['fake-crowd', 'other-crowd']);
  });

  it('an unknown type lists the known ones', () => {
    const { providers: registry } = registries();
    let caught: unknown;
    try {
      registry.get('mturk');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownTypeError);
    expect((caught as UnknownTypeError).message).toBe('unknown provider type "mturk" (known provider types: fake-crowd, other-crowd)');
    expect((caught as UnknownTypeError).known).toEqual(['fake-crowd', 'other-crowd']);
    expect(() => new Registry<Blueprint>('blueprint').get('x')).toThrow('unknown blueprint type "x" (no blueprint types are registered)');
  });

  it('refuses a duplicate registration and keeps the first', () => {
    const { providers: registry } = registries();
    const first = registry.get('fake-crowd');
    expect(() => registry.register(fakeProvider('fake-crowd'))).toThrow(DuplicateTypeError);
    expect(() => registry.register(fakeProvider('fake-crowd'))).toThrow('a provider of type "fake-crowd" is already registered');
    expect(registry.get('fake-crowd')).toBe(first);
    expect(() => registry.register(fakeProvider(''))).toThrow('needs a non-empty string `type`');
  });

  it('the process-wide registries are shared instances', async () => {
    const again = await import('../registry/index.ts');
    expect(again.providers).toBe(providers);
    expect(again.blueprints).toBe(blueprints);
    providers.register(fakeProvider('process-wide-fake'));
    blueprints.register(fakeBlueprint('process-wide-form'));
    const config = validateRunConfig(runConfig({ provider: 'process-wide-fake', blueprint: { type: 'process-wide-form', fields: [{ name: 'x' }] } }));
    expect(config.provider).toEqual({ type: 'process-wide-fake', region: 'eu' });
  });
});

describe('validateRunConfig', () => {
  it('validates provider and blueprint options with their own schemas and applies their defaults', () => {
    const config = validateRunConfig(runConfig({ provider: { type: 'fake-crowd', region: 'us' } }), registries());
    expect(config.provider).toEqual({ type: 'fake-crowd', region: 'us' });
    expect(config.blueprint).toEqual({ type: 'fake-form', fields: [{ name: 'answer' }], instructions: '' });
    expect(config.task_tags).toEqual(['a', 'b']);
    // Idempotent: what the command line validated, the workflow validates again unchanged.
    expect(validateRunConfig(JSON.parse(JSON.stringify(config)), registries())).toEqual(config);
  });

  it('paths option errors inside the blueprint and provider', () => {
    const error = configError(() =>
      validateRunConfig(
        runConfig({ provider: { type: 'fake-crowd', region: 'mars' }, blueprint: { type: 'fake-form', fields: [{ name: 'Bad Name' }], colour: 1 } }),
        registries(),
      ),
    );
    expect(error.issues.map((i) => i.path)).toEqual(['provider.region', 'blueprint.fields[0].name', 'blueprint.colour']);
    expect(error.message).toContain('blueprint.fields[0].name: "Bad Name" is not allowed: must be a lowercase identifier');
    expect(error.message).toContain('blueprint.colour: unknown key (known keys: fields, instructions)');
  });

  it('an unknown provider or blueprint type is an issue at <kind>.type listing the known ones', () => {
    const error = configError(() => validateRunConfig(runConfig({ provider: 'fake-crowed', blueprint: { type: 'survey' } }), registries()));
    expect(error.message.split('\n')).toEqual([
      'provider.type: "fake-crowed" is not allowed: must be a registered provider type: fake-crowd, other-crowd (did you mean "fake-crowd"?)',
      'blueprint.type: "survey" is not allowed: must be a registered blueprint type: fake-form',
    ]);
  });

  it('reports base-schema and option problems together', () => {
    const error = configError(() =>
      validateRunConfig(runConfig({ task_reward: -5, blueprint: { type: 'fake-form', fields: [] } }), { ...registries(), where: 'run.yaml' }),
    );
    expect(error.message.split('\n')).toEqual([
      'run.yaml: invalid configuration',
      'task_reward: -5 is not allowed: must be a number >= 0',
      'blueprint.fields: [] is not allowed: list at least one field',
    ]);
  });

  it('needs a blueprint validator for onboarding, screening and gold', () => {
    const error = configError(() =>
      validateRunConfig(
        runConfig({
          onboarding_qualification: 'onboarded',
          block_qualification: 'blocked',
          screening: { enabled: true, passed_qualification: 'screened' },
          gold: { enabled: true, data: [{ input: { q: 1 }, expected: 'x' }] },
        }),
        registries(),
      ),
    );
    expect(error.message.split('\n')).toEqual([
      'onboarding_qualification: "onboarded" is not allowed: workers must pass onboarding, but blueprint.onboarding (the form and its expected answers) is missing: add it, or remove onboarding_qualification',
      'screening.enabled: true is not allowed: blueprint fake-form has no screening validator, so screening results cannot be decided',
      'gold.enabled: true is not allowed: blueprint fake-form has no gold validator, so gold results cannot be decided',
    ]);
  });

  it('loadRunConfig: file, overrides, registry options and data files in one call', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-registry-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'items.csv'), 'q\n1\n2\n');
      const file = path.join(dir, 'run.yaml');
      fs.writeFileSync(
        file,
        [
          'task_name: from-file',
          'task_title: T',
          'task_description: D',
          'task_tags: [x]',
          'task_reward: 1',
          'provider: fake-crowd',
          'blueprint:',
          '  type: fake-form',
          '  fields:',
          '    - name: answer',
          'data: items.csv',
          '',
        ].join('\n'),
      );
      const config = loadRunConfig(file, ['provider.region=us', 'blueprint.fields.0.label=Answer'], registries());
      expect(config.provider).toEqual({ type: 'fake-crowd', region: 'us' });
      expect(config.blueprint).toEqual({ type: 'fake-form', fields: [{ name: 'answer', label: 'Answer' }], instructions: '' });
      expect(config.data).toEqual({ file: path.join(dir, 'items.csv'), format: 'csv' });

      const bad = configError(() => loadRunConfig(file, ['blueprint.fields.0.name=Nope'], registries()));
      expect(bad.message).toContain('blueprint.fields[0].name: "Nope" is not allowed: must be a lowercase identifier');
      const badLine = configError(() => loadRunConfig(file, ['provider.region=mars', 'task_reward=-1'], registries()));
      expect(badLine.issues.find((i) => i.path === 'task_reward')?.line).toBeUndefined();
      const fromFile = configError(() => loadRunConfig(file, [], { ...registries(), blueprints: new Registry<Blueprint>('blueprint') }));
      expect(fromFile.message).toContain('blueprint.type: "fake-form" is not allowed: no blueprint types are registered');
      expect(fromFile.issues[0]?.line).toBe(8);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
