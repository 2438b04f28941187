/**
 * The operator API: what the command line does, as a typed module for scripts. Starts runs through
 * the Temporal client (the same door as `temporal workflow start`), reads state from the database,
 * changes caps live, and shuts runs down.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { loadTaskRunConfig } from '../config/loadConfig.ts';
import type { Settings } from '../config/settings.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import { deepCheckRunConfig, type CostPreview } from '../config/deepCheck.ts';
import { loadRunConfig, validateRunConfig } from '../config/validateRun.ts';
import '../registry/builtins.ts';
import { DatabaseUrlError, openDatabase, type Database } from '../model/database.ts';
import { TaskRun } from '../model/entities.ts';
import { UNIT_STATUSES, isFinalTaskRunStatus, type TaskRunStatus } from '../model/status.ts';
import {
  type RunLimits,
  type RunLimitsChange,
  type RunSummary,
  type UnitCounts,
  RunLimitsChangeSchema,
  changeRunLimitsUpdate,
  runIdOfWorkflowId,
  shutdownRunSignal,
  taskRunWorkflowId,
} from '../workflows/definitions.ts';
import { runSpendWithFee } from '../review/spend.ts';
import { emptyUnitCounts } from '../workflows/runPlan.ts';
import { RUN_ID, RUN_STATUS, TASK_NAME } from '../workflows/searchAttributes.ts';
import type { TaskRunOptions } from '../workflows/taskRun.ts';
import { describeStuckStep, stuckStepOf } from './stuckStep.ts';

export class OperatorError extends Error {
  override name = 'OperatorError';
  /** What kind of failure, for the command line's exit code (cli/exitCodes.ts); absent: a refusal. */
  readonly kind: 'usage' | 'not_found' | 'unavailable' | undefined;

  constructor(message: string, kind?: 'usage' | 'not_found' | 'unavailable') {
    super(message);
    this.kind = kind;
  }
}

export interface LaunchResult {
  runId: string;
  workflowId: string;
}

export interface RunStatusReport extends RunSummary {
  /** Pay of payable units plus paid bonuses (docs/design.md §4). */
  spend: number;
  /** The provider's fee, included in `spend` (Prolific's service fee). */
  serviceFee?: number;
  /** "stuck: <step> failing, N attempts: <message>" while a step of the run keeps failing; else null. */
  stuck: string | null;
}

export interface Operator {
  client: Client;
  db: Database;
  settings: Settings;
  launch(
    config: TaskRunConfig | Record<string, unknown>,
    opts?: { runId?: string; workflowOptions?: TaskRunOptions },
  ): Promise<LaunchResult>;
  launchFile(file: string, overrides?: string[], opts?: { runId?: string }): Promise<LaunchResult>;
  status(runId: string): Promise<RunStatusReport>;
  runs(): Promise<RunStatusReport[]>;
  changeLimits(runId: string, change: RunLimitsChange): Promise<RunLimits>;
  shutdown(runId: string, reason?: string): Promise<RunStatusReport>;
  /** Resolves when the run has ended; `onProgress` sees each status read along the way. */
  wait(runId: string, opts?: { pollMs?: number; onProgress?: (s: RunStatusReport) => void }): Promise<RunStatusReport>;
  close(): Promise<void>;
}

export const newRunId = (): string => `r-${randomBytes(5).toString('hex')}`;

/**
 * `hitloop validate`: everything a launch checks, without Temporal or a database: the config, the
 * files it names read to the end, and what the run would cost.
 */
export async function validateRunFile(file: string, overrides: readonly string[] = []): Promise<{ config: TaskRunConfig; preview: CostPreview }> {
  const config = loadRunConfig(file, overrides);
  return { config, preview: await deepCheckRunConfig(config, file) };
}

export async function connectOperator(settings: Settings, shared?: { client?: Client; db?: Database }): Promise<Operator> {
  let connection: Connection | undefined;
  let client = shared?.client;
  if (!client) {
    try {
      connection = await Connection.connect({ address: settings.temporalAddress, connectTimeout: '5s' });
    } catch (err) {
      throw new OperatorError(
        `cannot reach the Temporal server at ${settings.temporalAddress} (${(err as Error).message}); start one with \`hitloop dev\` or set TEMPORAL_ADDRESS`,
        'unavailable',
      );
    }
    client = new Client({ connection, namespace: settings.temporalNamespace });
  }
  let db: Database;
  try {
    db = shared?.db ?? (await openDatabase(settings.databaseUrl));
  } catch (err) {
    await connection?.close();
    if (err instanceof DatabaseUrlError) throw err;
    throw new OperatorError((err as Error).message, 'unavailable');
  }
  const c = client;

  async function launch(
    config: TaskRunConfig | Record<string, unknown>,
    opts: { runId?: string; workflowOptions?: TaskRunOptions; where?: string } = {},
  ): Promise<LaunchResult> {
    // Validated here for a quick, clear answer (files read to the end); the workflow validates again as its first step.
    const valid = validateRunConfig(config, { where: opts.where });
    await deepCheckRunConfig(valid, opts.where);
    const runId = opts.runId ?? newRunId();
    const workflowId = taskRunWorkflowId(runId);
    await c.workflow.start('TaskRunWorkflow', {
      taskQueue: settings.taskQueue,
      workflowId,
      args: opts.workflowOptions ? [valid, opts.workflowOptions] : [valid],
      typedSearchAttributes: [
        { key: TASK_NAME, value: valid.task_name },
        { key: RUN_ID, value: runId },
        { key: RUN_STATUS, value: 'launching' },
      ],
    });
    return { runId, workflowId };
  }

  async function status(runId: string): Promise<RunStatusReport> {
    const em = db.em();
    const run = await em.findOne(TaskRun, runId, { populate: ['task'] });
    if (!run) return statusFromTemporal(runId);
    const rows: Array<{ status: string; n: number | string }> = await em
      .getConnection()
      .execute('select status, count(*) as n from unit where task_run_id = ? group by status', [runId]);
    const units = emptyUnitCounts();
    for (const row of rows) units[row.status as keyof UnitCounts] = Number(row.n);
    const { spend, serviceFee } = await runSpendWithFee(em, runId);
    const stuck = isFinalTaskRunStatus(run.status) ? null : await stuckStepOf(c.workflow.getHandle(taskRunWorkflowId(runId)));
    return {
      runId,
      taskName: run.task.getEntity().name,
      status: run.status,
      endReason: run.endReason ?? null,
      failureReason: run.failureReason ?? null,
      units,
      totalUnits: UNIT_STATUSES.reduce((sum, s) => sum + units[s], 0),
      spend,
      serviceFee,
      stuck,
    };
  }

  /** A run the database does not know: refused at validation (failed), or not yet recorded. */
  async function statusFromTemporal(runId: string): Promise<RunStatusReport> {
    const handle = c.workflow.getHandle(taskRunWorkflowId(runId));
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new OperatorError(`no task run "${runId}": not in the database nor in Temporal; \`hitloop runs\` lists the runs`, 'not_found');
      }
      throw err;
    }
    let failureReason: string | null = null;
    let state: TaskRunStatus = 'launching';
    if (description.status.name === 'FAILED' || description.status.name === 'TERMINATED' || description.status.name === 'TIMED_OUT') {
      state = 'failed';
      failureReason = await handle.result().then(
        () => null,
        (err: Error) => (err.cause instanceof Error ? err.cause.message : err.message),
      );
    }
    return {
      runId,
      taskName: '',
      status: state,
      endReason: state === 'failed' ? 'failed' : null,
      failureReason,
      units: emptyUnitCounts(),
      totalUnits: 0,
      spend: 0,
      stuck: state === 'failed' ? null : describeStuckStep(description.raw.pendingActivities ?? []),
    };
  }

  async function runs(): Promise<RunStatusReport[]> {
    const reports: RunStatusReport[] = [];
    // Every continue-as-new is another execution of the same workflow id: one run, one row.
    const seen = new Set<string>();
    for await (const wf of c.workflow.list({ query: `WorkflowType = 'TaskRunWorkflow'` })) {
      if (seen.has(wf.workflowId)) continue;
      seen.add(wf.workflowId);
      reports.push(await status(runIdOfWorkflowId(wf.workflowId)));
    }
    return reports;
  }

  async function changeLimits(runId: string, change: RunLimitsChange): Promise<RunLimits> {
    const parsed = RunLimitsChangeSchema.safeParse(change);
    if (!parsed.success) {
      throw new OperatorError(
        parsed.error.issues
          .map((i) => {
            const key = i.path.join('.');
            const value = key ? (change as Record<string, unknown>)[key] : undefined;
            return key ? `${key}: ${JSON.stringify(value)} is not allowed: ${i.message}` : i.message;
          })
          .join('; '),
        'usage',
      );
    }
    try {
      return await c.workflow.getHandle(taskRunWorkflowId(runId)).executeUpdate(changeRunLimitsUpdate, { args: [parsed.data] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OperatorError(`no running task run "${runId}"`, 'not_found');
      throw new OperatorError(
        `run ${runId} refused the change: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
      );
    }
  }

  async function shutdown(runId: string, reason = 'operator'): Promise<RunStatusReport> {
    const handle = c.workflow.getHandle(taskRunWorkflowId(runId));
    try {
      await handle.signal(shutdownRunSignal, { reason });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        const current = await status(runId);
        if (isFinalTaskRunStatus(current.status)) return current;
        throw new OperatorError(`no running task run "${runId}"`, 'not_found');
      }
      throw err;
    }
    // The workflow expires what is left and waits for its in-flight activities before it returns.
    await handle.result().catch(() => undefined);
    return status(runId);
  }

  async function wait(runId: string, opts: { pollMs?: number; onProgress?: (s: RunStatusReport) => void } = {}): Promise<RunStatusReport> {
    const handle = c.workflow.getHandle(taskRunWorkflowId(runId));
    let ended = false;
    const result = handle.result().finally(() => {
      ended = true;
    });
    result.catch(() => undefined);
    for (;;) {
      const s = await status(runId);
      opts.onProgress?.(s);
      if (isFinalTaskRunStatus(s.status) && ended) return s;
      if (ended) {
        // The workflow closed; the database holds its last word.
        return status(runId);
      }
      await Promise.race([result.catch(() => undefined), sleep(opts.pollMs ?? 1000)]);
    }
  }

  return {
    client: c,
    db,
    settings,
    launch,
    launchFile: (file, overrides = [], opts = {}) => launch(loadTaskRunConfig(file, overrides), { ...opts, where: file }),
    status,
    runs,
    changeLimits,
    shutdown,
    wait,
    async close() {
      if (!shared?.db) await db.close();
      if (connection) await connection.close();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
