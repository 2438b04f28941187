/**
 * Qualifications (docs/design.md §3): the ten comparators exactly as docs/design.md §3 defines them, grants and
 * revokes in the database and at the provider, `hitloop qual` and `hitloop worker block|unblock`,
 * a launch refused for a requirement naming an unknown qualification, and eligibility in the
 * order of docs/design.md §3 (blocked before anything else) through the TaskRun workflow, on SQLite and PostgreSQL.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QualificationRequirement } from '../config/taskRunConfig.ts';
import { GrantedQualification, ProviderCall, Worker } from '../model/entities.ts';
import { meetsRequirement } from '../qualifications/requirements.ts';
import { createQualificationService, type QualificationService } from '../qualifications/service.ts';
import { formConfig } from './support/configs.ts';
import { takeUnit, waitForUnitStatus } from './support/completeUnits.ts';
import { requestUnit, submit } from './support/directAgents.ts';
import { eventually, startStack, testLog, type Dialect, type Stack } from './support/stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

// ------------------------------------------------------------------------------------------------
// The comparators, against the words of docs/design.md §3: `Exists` fails without a grant; `DoesNotExist` fails
// with one; every other comparator fails without a grant, else compares the granted value.
// ------------------------------------------------------------------------------------------------

type Case = [requirement: QualificationRequirement, granted: number | undefined, holds: boolean];
const q = 'skill';
const COMPARATOR_CASES: Case[] = [
  [{ name: q, comparator: 'Exists' }, undefined, false],
  [{ name: q, comparator: 'Exists' }, 0, true],
  [{ name: q, comparator: 'Exists' }, 7, true],
  [{ name: q, comparator: 'DoesNotExist' }, undefined, true],
  [{ name: q, comparator: 'DoesNotExist' }, 0, false],
  [{ name: q, comparator: 'DoesNotExist' }, 3, false],
  [{ name: q, comparator: 'EqualTo', value: 3 }, undefined, false],
  [{ name: q, comparator: 'EqualTo', value: 3 }, 3, true],
  [{ name: q, comparator: 'EqualTo', value: 3 }, 4, false],
  [{ name: q, comparator: 'EqualTo', value: 0 }, 0, true],
  [{ name: q, comparator: 'NotEqualTo', value: 3 }, undefined, false],
  [{ name: q, comparator: 'NotEqualTo', value: 3 }, 3, false],
  [{ name: q, comparator: 'NotEqualTo', value: 3 }, 2, true],
  [{ name: q, comparator: 'GreaterThan', value: 3 }, undefined, false],
  [{ name: q, comparator: 'GreaterThan', value: 3 }, 3, false],
  [{ name: q, comparator: 'GreaterThan', value: 3 }, 4, true],
  [{ name: q, comparator: 'GreaterThan', value: -1 }, 0, true],
  [{ name: q, comparator: 'GreaterThanOrEqualTo', value: 3 }, undefined, false],
  [{ name: q, comparator: 'GreaterThanOrEqualTo', value: 3 }, 2, false],
  [{ name: q, comparator: 'GreaterThanOrEqualTo', value: 3 }, 3, true],
  [{ name: q, comparator: 'GreaterThanOrEqualTo', value: 3 }, 9, true],
  [{ name: q, comparator: 'LessThan', value: 3 }, undefined, false],
  [{ name: q, comparator: 'LessThan', value: 3 }, 2, true],
  [{ name: q, comparator: 'LessThan', value: 3 }, 3, false],
  [{ name: q, comparator: 'LessThan', value: 1 }, -5, true],
  [{ name: q, comparator: 'LessThanOrEqualTo', value: 3 }, undefined, false],
  [{ name: q, comparator: 'LessThanOrEqualTo', value: 3 }, 3, true],
  [{ name: q, comparator: 'LessThanOrEqualTo', value: 3 }, 4, false],
  [{ name: q, comparator: 'In', value: [1, 3] }, undefined, false],
  [{ name: q, comparator: 'In', value: [1, 3] }, 3, true],
  [{ name: q, comparator: 'In', value: [1, 3] }, 2, false],
  [{ name: q, comparator: 'NotIn', value: [1, 3] }, undefined, false],
  [{ name: q, comparator: 'NotIn', value: [1, 3] }, 2, true],
  [{ name: q, comparator: 'NotIn', value: [1, 3] }, 1, false],
];

describe('qualification comparators (docs/design.md §3)', () => {
  it.each(COMPARATOR_CASES)('%j with grant %s holds: %s', (requirement, granted, holds) => {
    const grants = new Map<string, number>(
      granted === undefined
        ? [['other', 1]]
        : [
            [q, granted],
            ['other', 1],
          ],
    );
    expect(meetsRequirement(requirement, grants)).toBe(holds);
  });

  it('covers every comparator, each with and without a grant', () => {
    const covered = new Set(COMPARATOR_CASES.map(([r]) => r.comparator));
    expect([...covered].sort()).toEqual(
      [
        'DoesNotExist',
        'EqualTo',
        'Exists',
        'GreaterThan',
        'GreaterThanOrEqualTo',
        'In',
        'LessThan',
        'LessThanOrEqualTo',
        'NotEqualTo',
        'NotIn',
      ].sort(),
    );
    for (const comparator of covered) {
      const cases = COMPARATOR_CASES.filter(([r]) => r.comparator === comparator);
      expect(
        cases.some(([, g]) => g === undefined),
        `${comparator} without a grant`,
      ).toBe(true);
      expect(
        cases.some(([, g]) => g !== undefined),
        `${comparator} with a grant`,
      ).toBe(true);
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe.each<Dialect>(['sqlite', 'postgresql'])('qualifications on %s', (dialect) => {
  let stack: Stack;
  let quals: QualificationService;
  beforeAll(async () => {
    stack = await startStack(dialect);
    quals = createQualificationService({ db: stack.db, settings: stack.settings, log: testLog });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const providerCalls = (operation: string, workerId: string) =>
    stack.db.em().find(ProviderCall, { operation, target: workerId }, { orderBy: { id: 'asc' } });

  it('creates, grants, lists and revokes, telling the provider of each change once', async () => {
    await quals.create({ name: 'english', description: 'reads English' });
    await expect(quals.create({ name: 'english' })).rejects.toThrow(/already exists/);
    await expect(quals.grant({ name: 'french', provider: 'mock', providerWorkerId: 'ana', value: 1 })).rejects.toThrow(
      /no qualification named "french".*hitloop qual create french/,
    );
    await expect(quals.grant({ name: 'english', provider: 'mock', providerWorkerId: 'ana', value: '2.5' })).rejects.toThrow(
      /must be an integer/,
    );
    await expect(quals.grant({ name: 'english', provider: 'nowhere', providerWorkerId: 'ana', value: 1 })).rejects.toThrow(
      /unknown provider "nowhere"/,
    );

    // A worker hitloop has never met is recorded by the grant.
    const first = await quals.grant({ name: 'english', provider: 'mock', providerWorkerId: 'ana', value: 3 });
    expect(first).toMatchObject({ changed: true, value: 3, previous: null });
    expect(await stack.db.em().count(Worker, { provider: 'mock', providerWorkerId: 'ana' })).toBe(1);
    // The same grant again changes nothing and calls no provider.
    const again = await quals.grant({ name: 'english', provider: 'mock', providerWorkerId: 'ana', value: '3' });
    expect(again).toMatchObject({ changed: false, value: 3 });
    const changed = await quals.grant({ name: 'english', provider: 'mock', providerWorkerId: 'ana', value: 5, requestKey: 'grant-ana-5' });
    expect(changed).toMatchObject({ changed: true, value: 5, previous: 3, requestKey: 'grant-ana-5' });

    const grants = await providerCalls('grantQualification', 'ana');
    expect(grants.map((g) => (g.payload as { value: number }).value)).toEqual([3, 5]);
    expect(grants[1]!.requestKey).toBe('grant-ana-5');

    expect(await quals.listForWorker({ provider: 'mock', providerWorkerId: 'ana' })).toEqual([
      expect.objectContaining({ qualification: 'english', value: 5, provider: 'mock', providerWorkerId: 'ana' }),
    ]);
    const all = await quals.list();
    expect(all.qualifications).toEqual([expect.objectContaining({ name: 'english', description: 'reads English', grants: 1 })]);
    expect(await quals.listForWorker({ provider: 'mock', providerWorkerId: 'nobody' })).toEqual([]);

    const revoked = await quals.revoke({ name: 'english', provider: 'mock', providerWorkerId: 'ana' });
    expect(revoked).toMatchObject({ changed: true, previous: 5, value: null });
    expect(await stack.db.em().count(GrantedQualification, {})).toBe(0);
    await expect(quals.revoke({ name: 'english', provider: 'mock', providerWorkerId: 'ana' })).rejects.toThrow(/holds no "english" grant/);
    expect(await providerCalls('revokeQualification', 'ana')).toHaveLength(1);

    // Granted again after the revoke: a new request, so the provider hears of it again.
    await quals.grant({ name: 'english', provider: 'mock', providerWorkerId: 'ana', value: 3 });
    expect(await providerCalls('grantQualification', 'ana')).toHaveLength(3);
  });

  it('refuses the launch of a run whose requirement names a qualification that does not exist', async () => {
    const { runId } = await stack.operator.launch(
      formConfig({ qualifications: [{ name: 'no-such-qualification', comparator: 'Exists' }] }, 2),
    );
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('failed');
    expect(final.failureReason).toMatch(/qualifications\[0\]\.name: no qualification named "no-such-qualification"/);
    expect(final.failureReason).toMatch(/hitloop qual create no-such-qualification/);
    expect(final.totalUnits).toBe(0);
  });

  it('checks eligibility in the order of docs/design.md §3 through the run: blocked first, then requirements', async () => {
    await quals.create({ name: 'level' });
    await quals.create({ name: 'banned' });
    const config = formConfig(
      {
        block_qualification: 'banned',
        qualifications: [
          { name: 'level', comparator: 'GreaterThanOrEqualTo', value: 2 },
          { name: 'banned', comparator: 'DoesNotExist' },
        ],
      },
      6,
    );
    const { runId } = await stack.operator.launch(config);
    const client = stack.env.client;
    const ask = (worker: string) =>
      eventually(async () => {
        const r = await requestUnit(client, runId, worker);
        return r.outcome === 'refused' && r.reason === 'no_units_available' ? undefined : r;
      }, `an answer for ${worker}`);

    // No grant of `level`: GreaterThanOrEqualTo fails without a grant.
    expect(await ask('nolevel')).toMatchObject({ outcome: 'refused', reason: 'not_qualified', detail: expect.stringContaining('level') });
    await quals.grant({ name: 'level', provider: 'mock', providerWorkerId: 'low', value: 1 });
    expect(await ask('low')).toMatchObject({ outcome: 'refused', reason: 'not_qualified' });
    await quals.grant({ name: 'level', provider: 'mock', providerWorkerId: 'good', value: 2 });
    expect(await ask('good')).toMatchObject({ outcome: 'assigned' });

    // The run's block qualification, and a provider-level block: `blocked`, before the requirements.
    await quals.grant({ name: 'banned', provider: 'mock', providerWorkerId: 'soft-blocked', value: 0 });
    expect(await ask('soft-blocked')).toMatchObject({
      outcome: 'refused',
      reason: 'blocked',
      detail: expect.stringContaining('this task'),
    });
    const blocked = await quals.block({ provider: 'mock', providerWorkerId: 'hard-blocked', reason: 'spam' });
    expect(blocked).toMatchObject({ blocked: true, changed: true });
    expect(await ask('hard-blocked')).toMatchObject({ outcome: 'refused', reason: 'blocked' });
    expect(await providerCalls('blockWorker', 'hard-blocked')).toHaveLength(1);
    expect(await quals.block({ provider: 'mock', providerWorkerId: 'hard-blocked' })).toMatchObject({ changed: false });
    expect(await providerCalls('blockWorker', 'hard-blocked')).toHaveLength(1);

    // Unblocked and qualified: work again.
    await quals.unblock({ provider: 'mock', providerWorkerId: 'hard-blocked' });
    await quals.grant({ name: 'level', provider: 'mock', providerWorkerId: 'hard-blocked', value: 5 });
    expect(await ask('hard-blocked')).toMatchObject({ outcome: 'assigned' });
    expect(await providerCalls('unblockWorker', 'hard-blocked')).toHaveLength(1);
    await stack.operator.shutdown(runId);
  });

  it('caps: allowed_concurrent 1 and maximum_units_per_worker 2 hold within a run and across a new run of the task', async () => {
    const client = stack.env.client;
    const task = `caps-task-${dialect}`;
    const caps = { task_name: task, allowed_concurrent: 1, maximum_units_per_worker: 2 };
    const first = await stack.operator.launch(formConfig(caps, 5));
    for (const worker of ['cap-1', 'cap-2']) {
      for (let n = 0; n < 2; n++) {
        const unit = await takeUnit(client, first.runId, worker);
        // Holding a unit: nothing more until it is submitted.
        expect(await requestUnit(client, first.runId, worker)).toMatchObject({ outcome: 'refused', reason: 'too_many_concurrent' });
        await submit(client, unit.assignmentId, unit.agentId, { label: 'positive' });
        await waitForUnitStatus(stack.db, unit.unitId, 'completed');
      }
      expect(await requestUnit(client, first.runId, worker)).toMatchObject({ outcome: 'refused', reason: 'max_for_task' });
    }
    // A new worker is welcome.
    expect(await takeUnit(client, first.runId, 'cap-3')).toMatchObject({ outcome: 'assigned' });

    // A new run of the same task: the exhausted workers are still refused, new ones accepted.
    const second = await stack.operator.launch(formConfig(caps, 2));
    expect(await takeUnit(client, second.runId, 'cap-4')).toMatchObject({ outcome: 'assigned' });
    for (const worker of ['cap-1', 'cap-2']) {
      expect(await requestUnit(client, second.runId, worker)).toMatchObject({ outcome: 'refused', reason: 'max_for_task' });
    }
    await stack.operator.shutdown(first.runId);
    await stack.operator.shutdown(second.runId);
  });

  it.runIf(dialect === 'sqlite')('drives it all from the command line: `hitloop qual` and `hitloop worker block|unblock`', async () => {
    const env = { ...process.env, HITLOOP_DATABASE_URL: stack.settings.databaseUrl, HITLOOP_LOG_LEVEL: 'warn' };
    const hitloop = async (...args: string[]) => {
      try {
        const { stdout } = await run(process.execPath, [path.join(ROOT, 'cli', 'main.ts'), ...args], { env, cwd: ROOT });
        return { code: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    expect((await hitloop('qual', 'create', 'cli-qual', '--description', 'made on the command line')).stdout).toMatch(
      /created qualification cli-qual/,
    );
    expect((await hitloop('qual', 'grant', 'cli-qual', 'mock', 'cli-worker', '--value', '4')).stdout).toMatch(
      /granted cli-qual = 4 to mock cli-worker/,
    );
    const bad = await hitloop('qual', 'grant', 'cli-qual', 'mock', 'cli-worker', '--value', 'lots');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/must be an integer/);
    const listed = JSON.parse((await hitloop('qual', 'list', 'mock', 'cli-worker', '--json')).stdout) as unknown[];
    expect(listed).toEqual([expect.objectContaining({ qualification: 'cli-qual', value: 4 })]);
    expect((await hitloop('qual', 'list')).stdout).toMatch(/cli-qual {2}\(1 grant\) {2}made on the command line/);
    expect((await hitloop('qual', 'revoke', 'cli-qual', 'mock', 'cli-worker')).stdout).toMatch(
      /revoked cli-qual from mock cli-worker \(was 4\)/,
    );

    expect((await hitloop('worker', 'block', 'mock', 'cli-worker', '--reason', 'spam')).stdout).toMatch(/^blocked mock cli-worker/);
    expect((await stack.db.em().findOneOrFail(Worker, { providerWorkerId: 'cli-worker' })).blocked).toBe(true);
    expect((await hitloop('worker', 'unblock', 'mock', 'cli-worker')).stdout).toMatch(/^unblocked mock cli-worker/);
    expect((await stack.db.em().findOneOrFail(Worker, { providerWorkerId: 'cli-worker' })).blocked).toBe(false);
    // `hitloop worker` itself still runs a worker process; block and unblock are its subcommands.
    const help = (await hitloop('worker', '--help')).stdout;
    expect(help).toMatch(/run a hitloop worker/);
    expect(help).toMatch(/block \[options\] <provider> <providerWorkerId>/);
    expect(help).toMatch(/unblock/);
  });
});
