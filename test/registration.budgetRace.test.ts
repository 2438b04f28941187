/**
 * A gold unit is paid like any unit, so its budget check and the unit it allows are one step, as a
 * bonus's check and record are (registration/standing.ts `lockBudgetForQualifyingUnits`, review/budget.ts
 * `lockRunBudget`): a bonus and a gold unit that each fit in what `max_spend` leaves, but not
 * together, are never both paid. The registration activity and `payBonus` against a real database,
 * without Temporal (as in registration.activities.test.ts), from separate connections.
 */
import { LockMode } from '@mikro-orm/core';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskRunActivities, type TaskRunActivities } from '../activities/taskRunActivities.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { Agent, Bonus, TaskRun, Unit } from '../model/entities.ts';
import { runBudget } from '../review/budget.ts';
import { ReviewRefusedError, payBonus } from '../review/store.ts';
import type { Settings } from '../config/settings.ts';
import type { RunLimits, UnitRequestResult } from '../workflows/definitions.ts';
import type { RunPlan } from '../workflows/runPlan.ts';
import { formConfig } from './support/configs.ts';
import { TEST_DIALECTS, createTestDatabase } from './support/databases.ts';
import { eventually, testLog, testSettings } from './support/stack.ts';

const ROUNDS = 8;
const REWARD = 0.5;
const BONUS = 0.4;
/** Room for a gold unit (0.5) or a bonus (0.4), not both. */
const ROOM = 0.6;

/** Gold first for every worker: their golds are never scored here, so each registration is due one. */
const GOLD = {
  gold: { enabled: true, data: [{ input: { text: 'gold' }, expected: { label: 'positive' } }], min_golds: 1, gold_every_units: 0 },
};

type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

function assigned(r: UnitRequestResult | undefined): Assigned {
  if (r?.outcome !== 'assigned') throw new Error(`expected a unit, got ${JSON.stringify(r)}`);
  return r;
}

describe.each(TEST_DIALECTS)('a gold unit and a bonus racing for one budget on %s', (dialect) => {
  let db: Database;
  let drop: () => Promise<void>;
  let activities: TaskRunActivities;
  let settings: Settings;
  let runs = 0;
  beforeAll(async () => {
    const database = await createTestDatabase(dialect);
    drop = database.drop;
    db = await openDatabase(database.url);
    settings = testSettings({ databaseUrl: database.url });
    activities = createTaskRunActivities({ db, settings, log: testLog });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  const execution = (activityId: string) =>
    new MockActivityEnvironment({ activityId, workflowExecution: { workflowId: 'taskrun-test', runId: 'wf-run-1' } });

  async function launchedRun(overrides: Record<string, unknown>, assignments: number): Promise<{ runId: string; plan: RunPlan }> {
    const runId = `r-race-${dialect}-${runs++}`;
    const config = formConfig({ task_reward: REWARD, max_spend: 100, ...overrides }, assignments);
    const env = execution(`launch-${runId}`);
    const plan = (await env.run(activities.validateTaskRunConfig, { runId, config })) as RunPlan;
    await env.run(activities.registerTaskRun, { runId, workflowId: `taskrun-${runId}`, config });
    const { units } = (await env.run(activities.createAssignments, { runId })) as { units: number };
    await env.run(activities.setUpProviderForRun, { runId });
    await env.run(activities.launchUnits, { runId, batch: 1, count: units, reward: plan.limits.task_reward });
    return { runId, plan };
  }

  const register = async (activityId: string, runId: string, limits: RunLimits, worker: string, key: string): Promise<Assigned> => {
    const results = (await execution(activityId).run(activities.assignUnitsToWorkers, {
      runId,
      limits,
      requests: [{ provider: 'mock', providerWorkerId: worker, registrationKey: key }],
    })) as UnitRequestResult[];
    return assigned(results[0]);
  };

  /** The worker submits what they hold (as far as the budget and the gold rule are concerned: their golds stay unscored). */
  const submitHeld = async (runId: string, worker: string): Promise<void> => {
    await db.em().nativeUpdate(Agent, { taskRun: runId, worker: { providerWorkerId: worker }, status: 'accepted' }, { status: 'completed' });
    await db.em().nativeUpdate(Unit, { taskRun: runId, worker: { providerWorkerId: worker }, status: 'assigned' }, { status: 'completed' });
  };

  /** `max_spend` set to leave exactly `room`. */
  const leaveRoom = async (runId: string, room: number): Promise<number> => {
    const spent = (await runBudget(db.em(), runId))!.spent;
    const maxSpend = Math.round((spent + room) * 10_000) / 10_000;
    await db.em().nativeUpdate(TaskRun, { id: runId }, { maxSpend });
    return maxSpend;
  };

  const bonus = (unitId: string, requestKey: string) => {
    const em = db.em();
    return payBonus(em, { em, settings, log: testLog }, { kind: 'bonus', unitId, amount: BONUS, reason: 'careful work', requestKey });
  };

  const goldUnits = (runId: string) => db.em().count(Unit, { taskRun: runId, kind: 'gold' });

  it('exactly one of a bonus and a gold unit that together pass max_spend is paid, round after round', async () => {
    const { runId, plan } = await launchedRun(GOLD, ROUNDS + 2);
    // The worker's first unit (a gold one) is the work the bonuses are paid on.
    const paidOn = await register('first', runId, plan.limits, 'wes', 'k-wes-0');
    await submitHeld(runId, 'wes');
    for (let round = 1; round <= ROUNDS; round++) {
      const maxSpend = await leaveRoom(runId, ROOM);
      const goldBefore = await goldUnits(runId);
      // The same worker registers again while a bonus is paid on their earlier work.
      const [registration, paid] = await Promise.allSettled([
        register(`round-${round}`, runId, plan.limits, 'wes', `k-wes-${round}`),
        bonus(paidOn.unitId, `race-${round}`),
      ]);
      if (registration.status === 'rejected') throw registration.reason;
      const madeGold = (await goldUnits(runId)) - goldBefore;
      expect(madeGold, `round ${round}`).toBe(registration.value.unitKind === 'gold' ? 1 : 0);
      if (paid.status === 'rejected') {
        expect(paid.reason, `round ${round}`).toBeInstanceOf(ReviewRefusedError);
        expect(String(paid.reason)).toMatch(/is more than run .* max_spend leaves/);
      }
      const bonuses = await db.em().count(Bonus, { requestKey: `race-${round}` });
      expect(bonuses + madeGold, `round ${round}: bonuses ${bonuses}, gold units ${madeGold}`).toBe(1);
      expect((await runBudget(db.em(), runId))!.spent, `round ${round}`).toBeLessThanOrEqual(maxSpend);
      await submitHeld(runId, 'wes');
    }
  }, 300_000);

  // The interleavings that matter, made certain (PostgreSQL: SQLite has one writer, so none of this can overlap there).
  describe.runIf(dialect === 'postgresql')('a bonus paused after its budget check, holding the run', () => {
    /** Backends of this database waiting for a lock. */
    const waitingForLocks = async (): Promise<number> => {
      const rows: Array<{ n: number | string }> = await db
        .em()
        .getConnection()
        .execute(`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
      return Number(rows[0]!.n);
    };

    /**
     * `payBonus` on `unitId`, held after its budget check (the test locks the unit its bonus row
     * refers to), while `register` runs until it is done or waits for a lock; then the bonus goes on.
     */
    async function registerWhileBonusPaused<T>(unitId: string, requestKey: string, register: () => Promise<T>) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let unitLocked!: () => void;
      const locked = new Promise<void>((resolve) => (unitLocked = resolve));
      const holder = db.em().transactional(async (tem) => {
        await tem.findOne(Unit, unitId, { fields: ['id'], lockMode: LockMode.PESSIMISTIC_WRITE });
        unitLocked();
        await released;
      });
      await locked;
      const paid = bonus(unitId, requestKey);
      // The bonus has locked the run, checked the budget and waits to insert its row.
      await eventually(async () => ((await waitingForLocks()) === 1 ? true : undefined), 'the bonus waiting for the unit');
      let settled = false;
      const registration = register();
      registration.then(
        () => (settled = true),
        () => (settled = true),
      );
      await eventually(async () => (settled || (await waitingForLocks()) === 2 ? true : undefined), 'the registration done or waiting');
      const waited = !settled;
      release();
      await holder;
      const [registered, bonusPaid] = await Promise.allSettled([registration, paid]);
      return { waited, registered, bonusPaid };
    }

    it('a gold unit checked while a bonus holds the budget waits for the bonus, then leaves its room to it; no deadlock on the worker', async () => {
      const { runId, plan } = await launchedRun(GOLD, 3);
      const paidOn = await register('first', runId, plan.limits, 'gil', 'k-gil-0');
      expect(paidOn.unitKind).toBe('gold');
      await submitHeld(runId, 'gil');
      const maxSpend = await leaveRoom(runId, ROOM);
      // The same worker: had the registration locked them before the run, the bonus (which refers to them) would deadlock with it.
      const { waited, registered, bonusPaid } = await registerWhileBonusPaused(paidOn.unitId, 'paused-gold', () =>
        register('second', runId, plan.limits, 'gil', 'k-gil-1'),
      );
      expect(waited).toBe(true);
      expect(bonusPaid.status).toBe('fulfilled');
      if (registered.status === 'rejected') throw registered.reason;
      // The bonus took the room: the gold unit gives way to a real one.
      expect(registered.value.unitKind ?? 'normal').toBe('normal');
      expect(await goldUnits(runId)).toBe(1);
      expect((await runBudget(db.em(), runId))!.spent).toBeLessThanOrEqual(maxSpend);
    }, 120_000);

    it('a registration in a run without screening or gold does not wait for a bonus holding the budget; no deadlock on the worker', async () => {
      const { runId, plan } = await launchedRun({}, 3);
      const paidOn = await register('first', runId, plan.limits, 'hal', 'k-hal-0');
      await submitHeld(runId, 'hal');
      await leaveRoom(runId, ROOM);
      const { waited, registered, bonusPaid } = await registerWhileBonusPaused(paidOn.unitId, 'paused-plain', () =>
        register('second', runId, plan.limits, 'hal', 'k-hal-1'),
      );
      // Its agent refers to the run (FOR KEY SHARE), which the budget's lock (FOR NO KEY UPDATE) lets through.
      expect(waited).toBe(false);
      if (registered.status === 'rejected') throw registered.reason;
      expect(registered.value.unitId).not.toBe(paidOn.unitId);
      expect(bonusPaid.status).toBe('fulfilled');
      expect(await db.em().count(Bonus, { requestKey: 'paused-plain', status: 'paid' })).toBe(1);
    }, 120_000);
  });
});
