/**
 * After each submission of an overlap item (docs/design.md §3): aggregate the item's answers,
 * store the result, and add a unit while dynamic overlap wants one. Idempotent per submission: it
 * recomputes from what is stored, and a unit it adds has a fixed id (`<assignmentId>-u<k>`), so a
 * retry finds the unit made by the first attempt and reports the same total.
 */
import { unitsWanted } from '../aggregation/dynamicOverlap.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import { Agent, Assignment, ItemAggregate, TaskRun, Unit } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES } from '../model/status.ts';
import { aggregateVotes, itemFromResults, loadRunVotes } from '../review/itemAggregates.ts';
import { type ActivityDeps, permanentFailure } from './context.ts';

export function createAggregationActivities(deps: ActivityDeps) {
  const { db } = deps;

  /** Returns how many units the item has now (more than before when dynamic overlap added one). */
  async function aggregateItem(input: { runId: string; assignmentId: string }): Promise<{ units: number; confidence: number | null }> {
    const em = db.em();
    const run = await em.findOne(TaskRun, input.runId);
    if (!run) throw permanentFailure('UnknownTaskRun', `task run ${input.runId} is not in the database`);
    const config = run.config as unknown as TaskRunConfig;
    const assignment = await em.findOneOrFail(Assignment, input.assignmentId);
    const units = await em.count(Unit, { assignment: input.assignmentId, kind: 'normal' });
    const submitted = await em.count(Agent, { assignment: input.assignmentId, status: { $in: [...SUBMITTED_AGENT_STATUSES] } });
    let confidence: number | null = null;
    let fields: ItemAggregate['fields'] | null = null;
    if (config.aggregate) {
      // Majority needs the item's votes only; Dawid-Skene estimates workers over every item of the run.
      const only = config.aggregate.method === 'majority' ? input.assignmentId : undefined;
      const item = itemFromResults(assignment, aggregateVotes(config.aggregate.method, await loadRunVotes(em, input.runId, config.aggregate, only)));
      confidence = item.confidence;
      fields = item.fields;
    }
    const policy = config.overlap ? { ...config.overlap, ...(run.liveOverlap ?? {}) } : null;
    const wanted = policy && run.status === 'running' ? Math.max(units, unitsWanted({ units, submitted, confidence }, policy)) : units;
    if (config.aggregate) {
      // Stored with the item's units after this decision, so a retry (which finds them made) stores the same row.
      await em.upsert(ItemAggregate, {
        assignment: input.assignmentId,
        taskRun: input.runId,
        method: config.aggregate.method,
        fields: fields!,
        confidence,
        submitted,
        units: wanted,
      });
    }
    if (wanted > units) {
      await em.insertMany(
        Unit,
        Array.from({ length: wanted - units }, (_, k) => ({
          id: `${input.assignmentId}-u${units + k}`,
          assignment: input.assignmentId,
          taskRun: input.runId,
          unitIndex: units + k,
          kind: 'normal' as const,
          status: 'created' as const,
          pay: config.task_reward,
          createdAt: new Date(),
        })),
      );
      deps.log.info({ runId: input.runId, assignmentId: input.assignmentId, confidence, units: wanted }, 'dynamic overlap: unit added');
    }
    return { units: wanted, confidence };
  }

  /** `hitloop set overlap.max=... overlap.confidence=...`: kept on the run for the next decisions. */
  async function recordLiveOverlap(input: { runId: string; change: { max?: number; confidence?: number } }): Promise<void> {
    const em = db.em();
    const run = await em.findOneOrFail(TaskRun, input.runId);
    run.liveOverlap = { ...(run.liveOverlap ?? {}), ...input.change };
    await em.flush();
  }

  return { aggregateItem, recordLiveOverlap };
}

export type AggregationActivities = ReturnType<typeof createAggregationActivities>;
