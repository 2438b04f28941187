/**
 * Screening and gold units (docs/design.md §3): units made on the spot for one worker, to check them.
 *
 * - Screening: a worker without the run's passed-screening grant gets a screening unit (at most
 *   `max_screening_units` held at once across the run). Its submission goes to the blueprint's
 *   screening validator: pass grants `passed_qualification` = 1, fail grants `block_qualification`.
 * - Gold: known-answer units mixed in per worker (see goldPlan.ts). The blueprint's gold validator
 *   compares a submission with the item's `expected`; the counts of correct and wrong golds are
 *   the qualifications `<base>-correct-golds` and `<base>-incorrect-golds`.
 *
 * A screening or gold unit is one unit of a new assignment appended to the run (its index follows
 * the data's), so its ids look like any other: a worker cannot tell a gold unit from a real one.
 * It never goes back to the pool: when its agent leaves without submitting, it expires.
 */
import type { Blueprint, UnitPosition } from '../blueprints/types.ts';
import { readAssignments, readGoldItems } from '../config/dataSource.ts';
import { componentOptions, goldQualificationNames, type GoldItem, type TaskRunConfig } from '../config/taskRunConfig.ts';
import type { EntityManager } from '../model/database.ts';
import { Agent, Assignment, TaskRun, Unit, type UnitKind, type Worker } from '../model/entities.ts';
import type { ProviderContext } from '../providers/types.ts';
import { blueprints, providers } from '../registry/builtins.ts';
import type { UnitRequestResult } from '../workflows/definitions.ts';
import { pickGoldItem } from './goldPlan.ts';
import { ensureQualification, grantValue, setGrant } from './grants.ts';

type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

export interface QualifyingRequest {
  runId: string;
  config: TaskRunConfig;
  blueprint: Blueprint;
  worker: Worker;
  agentId: string;
  registrationKey: string;
  /** The decision making the agent (see Agent.decidedBy). */
  decidedBy: string;
  /** Shown on the page like a real unit's, so a check unit looks like any other. */
  position: UnitPosition;
}

/**
 * Make the screening or gold unit registration/decision.ts chose for the worker, and assign it.
 * Screening units take the screening inputs in turn; gold units the item the worker saw least.
 */
export async function makeQualifyingUnit(em: EntityManager, req: QualifyingRequest, kind: Exclude<UnitKind, 'normal'>): Promise<Assigned> {
  const { config } = req;
  if (kind === 'screening') {
    const made = await em.count(Unit, { taskRun: req.runId, kind: 'screening' });
    const inputs = config.screening.data ? await readAll(config.screening.data, 'screening.data') : [];
    const input = inputs.length > 0 ? inputs[made % inputs.length]! : {};
    return makeUnit(em, req, 'screening', input, input);
  }
  const items = await readGoldData(config);
  const given = await em.find(
    Agent,
    { worker: req.worker.id, taskRun: req.runId, unit: { kind: 'gold' } },
    { populate: ['assignment'], orderBy: { createdAt: 'asc' } },
  );
  const index = pickGoldItem(
    items.length,
    given.map((a) => Number((a.assignment.getEntity().data as { gold_item?: number }).gold_item)),
  );
  const item = items[index]!;
  return makeUnit(em, req, 'gold', { gold_item: index, input: item.input, expected: item.expected }, item.input);
}

/** A new one-unit assignment appended to the run, its unit assigned to the worker, and the agent. */
async function makeUnit(
  em: EntityManager,
  req: QualifyingRequest,
  kind: Exclude<UnitKind, 'normal'>,
  assignmentData: Record<string, unknown>,
  shown: Record<string, unknown>,
): Promise<Assigned> {
  const last = await em.findOne(Assignment, { taskRun: req.runId }, { orderBy: { index: 'desc' }, fields: ['index'] });
  const index = (last?.index ?? -1) + 1;
  const assignmentId = `${req.runId}-a${index}`;
  const unitId = `${assignmentId}-u0`;
  const run = await em.findOneOrFail(TaskRun, req.runId, { fields: ['reward'] });
  const now = new Date();
  await em.insert(Assignment, { id: assignmentId, taskRun: req.runId, index, data: assignmentData, createdAt: now });
  // Never launched at the provider: the worker is already here, through the run's own link.
  await em.insert(Unit, {
    id: unitId,
    assignment: assignmentId,
    taskRun: req.runId,
    unitIndex: 0,
    kind,
    status: 'assigned',
    pay: Number(run.reward),
    worker: req.worker.id,
    createdAt: now,
    launchedAt: now,
    assignedAt: now,
  });
  await em.insert(Agent, {
    id: req.agentId,
    unit: unitId,
    assignment: assignmentId,
    taskRun: req.runId,
    worker: req.worker.id,
    status: 'accepted',
    registrationKey: req.registrationKey,
    decidedBy: req.decidedBy,
    initData: req.blueprint.initData({
      assignmentData: shown,
      unitIndex: 0,
      options: componentOptions(req.config.blueprint),
      position: req.position,
    }) as Record<string, unknown>,
    lastSeenAt: now,
    createdAt: now,
  });
  return { outcome: 'assigned', agentId: req.agentId, unitId, assignmentId, workerId: req.worker.id, newlyAssigned: true, unitKind: kind };
}

async function readAll(source: NonNullable<TaskRunConfig['screening']['data']>, key: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const record of readAssignments(source, { key })) items.push(record.data);
  return items;
}

async function readGoldData(config: TaskRunConfig): Promise<GoldItem[]> {
  const items: GoldItem[] = [];
  for await (const { item } of readGoldItems(config.gold.data!)) items.push(item);
  if (items.length === 0) throw new Error(`gold.data of task ${config.task_name} holds no gold items`);
  return items;
}

export interface QualifyingScore {
  kind: Exclude<UnitKind, 'normal'>;
  passed: boolean;
  /** The grants the score sets, to tell the worker's provider. */
  grants: Array<{ qualification: string; value: number }>;
}

interface Scoring {
  kind: Exclude<UnitKind, 'normal'>;
  config: TaskRunConfig;
  blueprint: Blueprint;
  /** The blueprint's verdict on the submission (pure: the same every time it is asked). */
  passed: boolean;
}

/** The verdict on a submission of a screening or gold unit; null for a normal unit. */
async function judge(em: EntityManager, args: { runId: string; unitId: string; data: unknown }): Promise<Scoring | null> {
  const unit = await em.findOneOrFail(Unit, args.unitId, { fields: ['kind', 'assignment'] });
  if (unit.kind === 'normal') return null;
  const run = await em.findOneOrFail(TaskRun, args.runId, { fields: ['config'] });
  const config = run.config as unknown as TaskRunConfig;
  const blueprint = blueprints.get(config.blueprint.type);
  const options = componentOptions(config.blueprint);
  if (unit.kind === 'screening') {
    return { kind: 'screening', config, blueprint, passed: blueprint.validators!.screening!(args.data, options).passed };
  }
  const assignment = await em.findOneOrFail(Assignment, unit.assignment.id, { fields: ['data'] });
  const expected = (assignment.data as { expected?: unknown }).expected;
  return { kind: 'gold', config, blueprint, passed: blueprint.validators!.gold!(args.data, expected, options) };
}

/**
 * Score a screening or gold submission; null for a normal unit. Call it in the transaction that
 * marks the submission completed (and only when that transaction did), so it is counted once.
 */
export async function scoreQualifyingSubmission(
  em: EntityManager,
  args: { runId: string; unitId: string; workerId: string; data: Record<string, unknown> },
): Promise<QualifyingScore | null> {
  const scoring = await judge(em, args);
  if (!scoring) return null;
  const { config, passed } = scoring;
  if (scoring.kind === 'screening') {
    const name = passed ? config.screening.passed_qualification! : config.block_qualification!;
    const what = passed ? `passed the screening of task ${config.task_name}` : `blocked from task ${config.task_name}`;
    const q = await ensureQualification(em, name, what);
    await setGrant(em, { workerId: args.workerId, qualificationId: q.id, value: 1 });
    return { kind: 'screening', passed, grants: [{ qualification: name, value: 1 }] };
  }
  const names = goldQualificationNames(config);
  const grants: QualifyingScore['grants'] = [];
  for (const [name, hit, what] of [
    [names.correct, passed, 'correct'],
    [names.incorrect, !passed, 'wrong'],
  ] as const) {
    // Both counts exist from the first gold on, so `hitloop qual list` shows 0 wrong answers too.
    const q = await ensureQualification(em, name, `${what} answers on known-answer (gold) units of task ${config.task_name}`);
    const value = ((await grantValue(em, args.workerId, q.id)) ?? 0) + (hit ? 1 : 0);
    await setGrant(em, { workerId: args.workerId, qualificationId: q.id, value });
    grants.push({ qualification: name, value });
  }
  return { kind: 'gold', passed, grants };
}

/**
 * Tell the worker's provider what scoring a submission granted, once per agent and qualification
 * (request key `score:<agentId>:<qualification>`). Safe to call again after a crash: the verdict is
 * judged again from the stored submission, and the provider answers a repeated key from its record.
 */
export async function tellProviderOfScore(
  em: EntityManager,
  ctx: ProviderContext,
  args: { runId: string; agentId: string },
): Promise<void> {
  const agent = await em.findOneOrFail(Agent, args.agentId, { populate: ['worker'] });
  const scoring = await judge(em, { runId: args.runId, unitId: agent.unit.id, data: agent.submission });
  if (!scoring) return;
  const worker = agent.worker.getEntity();
  const { config, passed } = scoring;
  const names =
    scoring.kind === 'screening'
      ? [passed ? config.screening.passed_qualification! : config.block_qualification!]
      : [goldQualificationNames(config).correct, goldQualificationNames(config).incorrect];
  const provider = providers.get(worker.provider);
  for (const name of names) {
    const q = await ensureQualification(em, name, `granted by task ${config.task_name}`);
    const value = (await grantValue(em, worker.id, q.id)) ?? 0;
    await provider.grantQualification(ctx, {
      workerId: worker.providerWorkerId,
      qualification: name,
      value,
      requestKey: scoreRequestKey(args.agentId, name),
    });
  }
}

/** The request key telling the provider of a scored grant: one per agent and qualification. */
export const scoreRequestKey = (agentId: string, qualification: string): string => `score:${agentId}:${qualification}`;
