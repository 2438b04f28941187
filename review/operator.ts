/**
 * Review and payment for the operator (`hitloop review ...`): list a run's submitted units, and
 * approve, reject, soft-reject or pay a bonus, each as a ReviewWorkflow named by its request key.
 *
 * Every input is checked here first, so a bad request (a negative amount, a unit not completed) is
 * refused with a clear message before anything starts, and changes nothing. The workflow's
 * activities check again (the unit may change in between) and are the authority.
 *
 * The same request twice: the second start of `review-<requestKey>` is refused by Temporal and the
 * first one's result is reported instead (a refused request may be tried again: it changed nothing).
 */
import {
  type Client,
  type WorkflowHandle,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdReusePolicy,
} from '@temporalio/client';
import type { Settings } from '../config/settings.ts';
import type { Database } from '../model/database.ts';
import { TaskRun, Unit, type ReviewDecision } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES, SUBMITTED_UNIT_STATUSES } from '../model/status.ts';
import { RUN_ID } from '../workflows/searchAttributes.ts';
import type { ReviewOperation, ReviewOutcome, ReviewWorkflow } from '../workflows/review.ts';
import {
  ReviewRequestError,
  bonusRequestKey,
  describeOperation,
  parseBonusAmount,
  parseBonusReason,
  parseRequestKey,
  reviewRequestKey,
  reviewWorkflowId,
} from './requests.ts';
import { submittedUnits, type SubmittedUnit } from './units.ts';

export { ReviewRequestError };

export interface ReviewerDeps {
  client: Client;
  db: Database;
  settings: Pick<Settings, 'taskQueue'>;
}

export interface ReviewSelection {
  /** Units named one by one. */
  unitIds?: string[];
  /** Every completed unit of the run awaiting review (narrowed by `worker` if given). */
  all?: boolean;
  /** Units of one worker: hitloop worker id (`w-...`) or the id at the provider. */
  worker?: string;
}

export interface ReviewOptions extends ReviewSelection {
  decision: ReviewDecision;
  note?: string;
  requestKey?: string;
  /** How long to wait for each review workflow (default 60 s). */
  timeoutMs?: number;
}

export interface BonusOptions {
  unitId: string;
  amount: unknown;
  reason: unknown;
  requestKey?: string;
  timeoutMs?: number;
  /** Pay even past what the run's `max_spend` leaves. */
  overBudget?: boolean;
}

export interface ReviewReport extends ReviewOutcome {
  /** True when this request key had been started before: its first result is reported. */
  repeated: boolean;
}

/** Review workflows started at once by a bulk operation. */
const BULK_CONCURRENCY = 8;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface ListOptions {
  /** Also list units already reviewed (default: only those awaiting review). */
  includeReviewed?: boolean;
  worker?: string;
}

async function requireRunIn(db: Database, runId: string): Promise<void> {
  if (!(await db.em().findOne(TaskRun, runId, { fields: ['id'] }))) {
    throw new ReviewRequestError(`there is no task run "${runId}" in the database; \`hitloop runs\` lists the runs`, 'not_found');
  }
}

/** A run's submitted units of every kind, from the database alone (no Temporal needed). */
export async function listForReview(db: Database, runId: string, opts: ListOptions = {}): Promise<SubmittedUnit[]> {
  await requireRunIn(db, runId);
  const rows: SubmittedUnit[] = [];
  const filter = {
    agentStatuses: opts.includeReviewed ? SUBMITTED_AGENT_STATUSES : (['completed'] as const),
    kinds: ['normal', 'screening', 'gold'] as const,
    ...(opts.worker ? { worker: opts.worker } : {}),
  };
  for await (const row of submittedUnits(db.em(), runId, filter)) rows.push(row);
  return rows;
}

export function createReviewer(deps: ReviewerDeps) {
  const { client, db } = deps;

  const requireRun = (runId: string): Promise<void> => requireRunIn(db, runId);
  const list = (runId: string, opts: ListOptions = {}): Promise<SubmittedUnit[]> => listForReview(db, runId, opts);

  /** The units a selection names; all-or-nothing: one bad unit refuses the whole request. */
  async function selectUnits(runId: string, selection: ReviewSelection): Promise<string[]> {
    const named = selection.unitIds ?? [];
    if (named.length > 0 && (selection.all || selection.worker)) {
      throw new ReviewRequestError('name units, or use --all / --worker, not both', 'usage');
    }
    if (named.length === 0 && !selection.all && !selection.worker) {
      throw new ReviewRequestError('say which units: unit ids, --all (every completed unit of the run) or --worker <id>', 'usage');
    }
    if (named.length > 0) {
      await checkSubmitted(runId, named, 'reviewed');
      return [...new Set(named)];
    }
    const waiting = await list(runId, selection.worker ? { worker: selection.worker } : {});
    if (waiting.length === 0) {
      throw new ReviewRequestError(
        `run ${runId} has no completed units awaiting review${selection.worker ? ` from worker ${selection.worker}` : ''}; nothing was changed`,
      );
    }
    return waiting.map((u) => u.unitId);
  }

  async function checkSubmitted(runId: string, unitIds: readonly string[], verb: string): Promise<void> {
    const units = await db.em().find(Unit, { id: { $in: [...unitIds] } }, { fields: ['id', 'status', 'taskRun'] });
    const byId = new Map(units.map((u) => [u.id, u]));
    const problems: string[] = [];
    for (const id of unitIds) {
      const unit = byId.get(id);
      if (!unit || unit.taskRun.id !== runId) problems.push(`unit ${id} is not a unit of run ${runId}`);
      else if (!SUBMITTED_UNIT_STATUSES.includes(unit.status)) {
        problems.push(`unit ${id} is ${unit.status}, not completed: only submitted work can be ${verb}`);
      }
    }
    if (problems.length > 0) throw new ReviewRequestError(`${problems.join('; ')}; nothing was changed`);
  }

  /** Start (or find) the workflow of one request and wait for its outcome. */
  async function run(runId: string, op: ReviewOperation, timeoutMs: number): Promise<ReviewReport> {
    const workflowId = reviewWorkflowId(op.requestKey);
    let handle: WorkflowHandle<typeof ReviewWorkflow>;
    let repeated = false;
    try {
      handle = await client.workflow.start<typeof ReviewWorkflow>('ReviewWorkflow', {
        taskQueue: deps.settings.taskQueue,
        workflowId,
        args: [op],
        // A completed request is never run again; a refused one changed nothing and may be retried.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        typedSearchAttributes: [{ key: RUN_ID, value: runId }],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = client.workflow.getHandle<typeof ReviewWorkflow>(workflowId);
      repeated = true;
    }
    const outcome = await resultWithin(handle, timeoutMs, op);
    if (repeated && !sameOperation(op, outcome)) {
      throw new ReviewRequestError(
        `request key "${op.requestKey}" was already used for another operation (${outcome.kind} of unit ${outcome.unitId}); use another key; nothing was changed`,
      );
    }
    return { ...outcome, repeated: repeated || outcome.alreadyDone };
  }

  async function resultWithin(
    handle: WorkflowHandle<typeof ReviewWorkflow>,
    timeoutMs: number,
    op: ReviewOperation,
  ): Promise<ReviewOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ReviewRequestError(
              `the ${describeOperation(op)} (workflow ${handle.workflowId}) did not finish within ${Math.round(timeoutMs / 1000)} s: ` +
                `is a hitloop worker running on task queue "${deps.settings.taskQueue}"? It completes once one runs; ` +
                'run the same command again to see its result',
              'unavailable',
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([handle.result(), timeout]);
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw new ReviewRequestError(innermostMessage(err));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async function review(runId: string, opts: ReviewOptions): Promise<ReviewReport[]> {
    const given = parseRequestKey(opts.requestKey);
    await requireRun(runId);
    const unitIds = await selectUnits(runId, opts);
    const bulk = unitIds.length > 1 || !!opts.all || !!opts.worker;
    const ops: ReviewOperation[] = unitIds.map((unitId) => ({
      kind: 'review',
      decision: opts.decision,
      unitId,
      requestKey: reviewRequestKey(opts.decision, unitId, given, bulk),
      ...(opts.note ? { note: opts.note } : {}),
    }));
    return inBatches(ops, (op) => run(runId, op, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
  }

  async function bonus(runId: string, opts: BonusOptions): Promise<ReviewReport> {
    const amount = parseBonusAmount(opts.amount);
    const reason = parseBonusReason(opts.reason);
    const given = parseRequestKey(opts.requestKey);
    await requireRun(runId);
    await checkSubmitted(runId, [opts.unitId], 'given a bonus');
    const op: ReviewOperation = {
      kind: 'bonus',
      unitId: opts.unitId,
      amount,
      reason,
      requestKey: bonusRequestKey(opts.unitId, amount, reason, given),
      ...(opts.overBudget ? { overBudget: true } : {}),
    };
    return run(runId, op, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  return { list, review, bonus };
}

export type Reviewer = ReturnType<typeof createReviewer>;

function sameOperation(op: ReviewOperation, outcome: ReviewOutcome): boolean {
  if (op.kind !== outcome.kind || op.unitId !== outcome.unitId) return false;
  return op.kind === 'bonus' ? op.amount === outcome.amount : op.decision === outcome.decision;
}

/** Runs `fn` over `items`, a few at a time; every failure is collected and reported together. */
async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  const failures: string[] = [];
  let next = 0;
  const lanes = Array.from({ length: Math.min(BULK_CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  });
  await Promise.all(lanes);
  if (failures.length > 0) {
    const done = items.length - failures.length;
    throw new ReviewRequestError(
      `${failures.length} of ${items.length} operation(s) failed${done > 0 ? ` (the other ${done} succeeded; running the same command again repeats none of them)` : ''}: ${failures.join('; ')}`,
    );
  }
  return results;
}

/** The refusal's own words: the deepest cause (workflow failed <- activity failed <- the refusal). */
function innermostMessage(err: Error): string {
  let current: Error = err;
  while (current.cause instanceof Error) current = current.cause;
  return current.message;
}
