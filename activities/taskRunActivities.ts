/**
 * The side effects of a TaskRun workflow: validating and recording the run, creating its
 * assignments, launching and expiring units through the provider, and handing units to workers.
 * Each is idempotent: retried after a crash it neither duplicates a row nor repeats a provider call.
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { componentOptions, unitsPerItem, type TaskRunConfig } from '../config/taskRunConfig.ts';
import { ConfigError } from '../config/errors.ts';
import { readAssignments, hashDataSource } from '../config/dataSource.ts';
import { validateRunConfig } from '../config/validateRun.ts';
import { Agent, Assignment, OnboardingAgent, Qualification, Task, TaskRun, Unit } from '../model/entities.ts';
import type { EntityManager } from '../model/database.ts';
import { transitionTaskRun, transitionUnit } from '../model/transitions.ts';
import { ACTIVE_AGENT_STATUSES, type TaskRunStatus, type UnitStatus, isFinalTaskRunStatus } from '../model/status.ts';
import { blueprints, providers } from '../registry/builtins.ts';
import type { RunLimits, UnitRequest, UnitRequestResult } from '../workflows/definitions.ts';
import type { RunPlan } from '../workflows/runPlan.ts';
import { registerWorkers } from '../registration/assign.ts';
import { type ActivityDeps, permanentFailure, providerContext } from './context.ts';
import { startAssignmentWorkflows } from './assignmentStarts.ts';
import { itemKeyOf } from './itemClaims.ts';
import { enqueueForAgents } from './outbox.ts';
import { leaversPollSeconds } from './providerPolling.ts';

const INSERT_BATCH = 500;
const EXPIRE_PAGE = 1_000;

export function createTaskRunActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function loadRun(em: EntityManager, runId: string): Promise<{ run: TaskRun; config: TaskRunConfig }> {
    const run = await em.findOne(TaskRun, runId);
    if (!run) throw permanentFailure('UnknownTaskRun', `task run ${runId} is not in the database; was registerTaskRun skipped?`);
    return { run, config: run.config as unknown as TaskRunConfig };
  }

  /** Parse the config and check what it names exists; a bad config fails the run with the reasons. */
  async function validateTaskRunConfig(input: { runId: string; config: unknown }): Promise<RunPlan> {
    let config: TaskRunConfig;
    try {
      config = validateRunConfig(input.config);
    } catch (err) {
      if (err instanceof ConfigError) throw permanentFailure('InvalidTaskRunConfig', err.message);
      throw err;
    }
    const names = config.qualifications.map((q) => q.name);
    if (names.length > 0) {
      const known = new Set((await db.em().find(Qualification, { name: { $in: names } })).map((q) => q.name));
      const missing = config.qualifications.map((q, i) => ({ name: q.name, i })).filter((q) => !known.has(q.name));
      if (missing.length > 0) {
        throw permanentFailure(
          'InvalidTaskRunConfig',
          missing
            .map((m) => `qualifications[${m.i}].name: no qualification named "${m.name}"; create it with \`hitloop qual create ${m.name}\``)
            .join('\n'),
        );
      }
    }
    const pollSeconds = leaversPollSeconds(config);
    return {
      taskName: config.task_name,
      providerType: config.provider.type,
      blueprintType: config.blueprint.type,
      limits: {
        max_num_concurrent_units: config.max_num_concurrent_units,
        allowed_concurrent: config.allowed_concurrent,
        maximum_units_per_worker: config.maximum_units_per_worker,
        task_reward: config.task_reward,
        task_lifetime_seconds: config.task_lifetime_seconds,
      },
      noSubmissionPatienceSeconds: config.no_submission_patience_seconds,
      assignmentDurationSeconds: config.assignment_duration_seconds,
      reconnectWindowSeconds: config.reconnect_window_seconds,
      unitsPerAssignment: unitsPerItem(config),
      ...(config.overlap
        ? { overlap: { min: config.overlap.min, max: config.overlap.max ?? config.overlap.min, confidence: config.overlap.confidence ?? null } }
        : {}),
      autoApproveAfterSeconds: config.auto_approve_after_seconds,
      maxSpend: config.max_spend ?? null,
      // Only providers with something to poll add it, so the plan of every other run is unchanged.
      ...(pollSeconds !== null ? { leaversPollSeconds: pollSeconds } : {}),
      summary: {
        task: config.task_name,
        title: config.task_title,
        provider: config.provider.type,
        blueprint: config.blueprint.type,
        reward: config.task_reward,
        units_per_assignment: config.units_per_assignment,
        ...(config.overlap ? { overlap: `${config.overlap.min}..${config.overlap.max ?? config.overlap.min}` } : {}),
        max_num_concurrent_units: config.max_num_concurrent_units,
        data: Array.isArray(config.data) ? `${config.data.length} inline` : config.data.file,
      },
    };
  }

  /** The Task (by name) and the TaskRun row with its frozen config; a retry finds them there. */
  async function registerTaskRun(input: { runId: string; workflowId: string; config: unknown }): Promise<void> {
    const config = validateRunConfig(input.config);
    const dataSha256 = await hashDataSource(config.data);
    await db.em().transactional(async (em) => {
      if (await em.findOne(TaskRun, input.runId)) return;
      let task = await em.findOne(Task, { name: config.task_name });
      if (!task) {
        task = em.create(Task, { id: `task-${randomUUID()}`, name: config.task_name });
        await em.flush();
      }
      em.create(TaskRun, {
        id: input.runId,
        task,
        status: 'launching',
        workflowId: input.workflowId,
        config: config as unknown as Record<string, unknown>,
        providerType: config.provider.type,
        blueprintType: config.blueprint.type,
        reward: config.task_reward,
        maxSpend: config.max_spend ?? null,
        assignmentCount: 0,
        dataSha256,
      });
    });
  }

  /** A live `max_spend` change, where bonuses and gold units read the budget (review/budget.ts). */
  async function recordMaxSpend(input: { runId: string; maxSpend: number }): Promise<void> {
    await db.em().nativeUpdate(TaskRun, { id: input.runId }, { maxSpend: input.maxSpend });
  }

  /**
   * Every assignment and its units, streamed from the data source in batches. Each batch is one
   * transaction, so after a crash the rows present say exactly where to resume.
   */
  async function createAssignments(input: { runId: string }): Promise<{ assignments: number; units: number }> {
    const em = db.em();
    const { run, config } = await loadRun(em, input.runId);
    const perAssignment = unitsPerItem(config);
    let created = await em.count(Assignment, { taskRun: input.runId });
    let batch: Array<{ index: number; data: Record<string, unknown> }> = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const now = new Date();
      const rows = batch;
      batch = [];
      await db.em().transactional(async (tem) => {
        await tem.insertMany(
          Assignment,
          rows.map((r) => ({
            id: `${input.runId}-a${r.index}`,
            taskRun: input.runId,
            index: r.index,
            data: r.data,
            itemKey: itemKeyOf(r.data),
            createdAt: now,
          })),
        );
        await tem.insertMany(
          Unit,
          rows.flatMap((r) =>
            Array.from({ length: perAssignment }, (_, u) => ({
              id: `${input.runId}-a${r.index}-u${u}`,
              assignment: `${input.runId}-a${r.index}`,
              taskRun: input.runId,
              unitIndex: u,
              kind: 'normal' as const,
              status: 'created' as const,
              pay: config.task_reward,
              createdAt: now,
            })),
          ),
        );
      });
      created += rows.length;
      Context.current().heartbeat({ created });
    };
    for await (const item of readAssignments(config.data, { offset: created })) {
      batch.push(item);
      if (batch.length >= INSERT_BATCH) await flush();
    }
    await flush();
    await db.em().nativeUpdate(TaskRun, { id: run.id }, { assignmentCount: created });
    return { assignments: created, units: created * perAssignment };
  }

  async function setUpProviderForRun(input: { runId: string }): Promise<void> {
    const em = db.em();
    const { config } = await loadRun(em, input.runId);
    await providers
      .get(config.provider.type)
      .setUpRun(providerContext(deps, em), { runId: input.runId, options: componentOptions(config.provider) });
  }

  /**
   * Launch `count` created units as launch batch number `batch`. The batch is claimed first, so a
   * retry launches the same units, and the provider sees one request key per unit.
   */
  async function launchUnits(input: { runId: string; batch: number; count: number; reward: number }): Promise<{ launched: number }> {
    const em = db.em();
    const { config } = await loadRun(em, input.runId);
    const provider = providers.get(config.provider.type);
    let claimed = await em.find(Unit, { taskRun: input.runId, launchBatch: input.batch });
    if (claimed.length === 0) {
      const next = await em.find(
        Unit,
        { taskRun: input.runId, status: 'created', launchBatch: null },
        { orderBy: { assignment: { index: 'asc' }, unitIndex: 'asc' }, limit: input.count, fields: ['id'] },
      );
      await em.nativeUpdate(Unit, { id: { $in: next.map((u) => u.id) }, launchBatch: null }, { launchBatch: input.batch });
      claimed = await db.em().find(Unit, { taskRun: input.runId, launchBatch: input.batch });
    }
    const taskUrl = `${deps.settings.gatewayUrl}/task/${encodeURIComponent(input.runId)}`;
    const ctx = providerContext(deps, em);
    for (const unit of claimed) {
      if (unit.status !== 'created') continue;
      const { providerUnitId } = await provider.launchUnit(ctx, {
        runId: input.runId,
        unitId: unit.id,
        reward: input.reward,
        taskUrl,
        requestKey: `launch:${unit.id}`,
      });
      await transitionUnit(em, unit.id, 'launched', { providerUnitId, launchedAt: new Date(), pay: input.reward });
      Context.current().heartbeat();
    }
    Context.current().heartbeat();
    return { launched: claimed.length };
  }

  /**
   * Expire what no one has submitted: `unassigned` (created and launched units: end of lifetime) or
   * `all` (also assigned ones: shutdown). Counts by former status; a retry reports the same counts.
   */
  async function expireUnits(input: {
    runId: string;
    scope: 'unassigned' | 'all';
    reason: string;
  }): Promise<Partial<Record<UnitStatus, number>>> {
    const info = Context.current().info;
    const requestKey = `${info.workflowExecution?.runId ?? 'standalone'}/${info.activityId}`;
    const from: UnitStatus[] = input.scope === 'all' ? ['created', 'launched', 'assigned'] : ['created', 'launched'];
    const { config } = await loadRun(db.em(), input.runId);
    const provider = providers.get(config.provider.type);
    const counts: Partial<Record<UnitStatus, number>> = {};
    for (const status of from) {
      const marker = `${requestKey}:${status}`;
      // Only units the provider knows of need a call: a page at a time, so a huge run stays small in memory.
      for (let after = ''; ; ) {
        const em = db.em();
        const page = await em.find(
          Unit,
          { taskRun: input.runId, status, providerUnitId: { $ne: null }, id: { $gt: after } },
          { fields: ['id', 'providerUnitId'], orderBy: { id: 'asc' }, limit: EXPIRE_PAGE },
        );
        if (page.length === 0) break;
        after = page[page.length - 1]!.id;
        const ctx = providerContext(deps, em);
        for (const unit of page) {
          await provider.expireUnit(ctx, { runId: input.runId, unitId: unit.id, providerUnitId: unit.providerUnitId!, requestKey: `expire:${unit.id}` });
        }
        if (status === 'assigned') {
          const holders = await em.find(
            Agent,
            { unit: { $in: page.map((u) => u.id) }, status: { $in: [...ACTIVE_AGENT_STATUSES] } },
            { fields: ['id'] },
          );
          const holderIds = holders.map((a) => a.id);
          await em.nativeUpdate(Agent, { id: { $in: holderIds } }, { status: 'expired', endedAt: new Date() });
          await enqueueForAgents(em, holderIds, 'status', { status: 'expired', reason: input.reason }, `status:expired`);
        }
        Context.current().heartbeat({ status, after });
      }
      const em = db.em();
      await em.nativeUpdate(Unit, { taskRun: input.runId, status }, { status: 'expired', expiredBy: marker, endedAt: new Date() });
      const n = await em.count(Unit, { taskRun: input.runId, expiredBy: marker });
      if (n > 0) counts[status] = n;
    }
    deps.log.info({ runId: input.runId, reason: input.reason, counts }, 'units expired');
    return counts;
  }

  async function recordRunStatus(input: {
    runId: string;
    status: TaskRunStatus;
    endReason: string | null;
    failureReason?: string;
  }): Promise<void> {
    const final = isFinalTaskRunStatus(input.status);
    await db.em().transactional(async (em) => {
      await transitionTaskRun(em, input.runId, input.status, {
        ...(input.endReason !== null ? { endReason: input.endReason } : {}),
        ...(input.failureReason ? { failureReason: input.failureReason } : {}),
        ...(final ? { endedAt: new Date() } : {}),
      });
      // Onboarding left half done ends with the run: its answers could no longer lead to a unit.
      if (final) await em.nativeUpdate(OnboardingAgent, { taskRun: input.runId, status: 'onboarding' }, { status: 'expired', endedAt: new Date() });
    });
  }

  /**
   * Decide a batch of registrations in order, in one transaction (registration/assign.ts).
   * Agent ids derive from the registration, so a retry (or a re-run with another batch) finds the agents it made.
   * `agentId` in a request is only set by runs from before derived ids.
   */
  async function assignUnitsToWorkers(input: {
    runId: string;
    limits: RunLimits;
    requests: Array<UnitRequest & { agentId?: string }>;
  }): Promise<UnitRequestResult[]> {
    const { run, config } = await loadRun(db.em(), input.runId);
    const forRegistration = {
      runId: input.runId,
      taskId: run.task.id,
      config,
      limits: input.limits,
      blueprint: blueprints.get(config.blueprint.type),
      items: run.assignmentCount,
    };
    // The workflow run deciding: an agent it made before a crash or a workflow-task retry is new to it.
    const decidedBy = Context.current().info.workflowExecution?.runId ?? 'standalone';
    const requests = input.requests.map(({ agentId, ...request }) => ({ ...request, legacyAgentId: agentId }));
    return registerWorkers(db, forRegistration, requests, decidedBy);
  }

  return {
    validateTaskRunConfig,
    registerTaskRun,
    createAssignments,
    setUpProviderForRun,
    launchUnits,
    expireUnits,
    recordRunStatus,
    recordMaxSpend,
    assignUnitsToWorkers,
    startAssignmentWorkflows,
  };
}

export type TaskRunActivities = ReturnType<typeof createTaskRunActivities>;
