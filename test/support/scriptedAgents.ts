/**
 * Deterministic agents for comparing runs: one worker at a time takes the next unit (in data order),
 * submits it, and waits until the run has settled (the submission stored, the freed slot relaunched)
 * before the next step. Two runs of the same inputs then write the same rows, crash or no crash.
 * Hooks let a test crash something at a chosen step.
 */
import { startAssignmentOf } from '../../gateway/workflowCalls.ts';
import { isGrpcServiceError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { Database } from '../../model/database.ts';
import { Unit } from '../../model/entities.ts';
import { type UnitRequestResult, requestUnitUpdate, taskRunWorkflowId } from '../../workflows/definitions.ts';
import { submit } from './directAgents.ts';
import { eventually } from './stack.ts';

// gRPC status codes (grpc-js is only a transitive dependency here).
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

type Assigned = Extract<UnitRequestResult, { outcome: 'assigned' }>;

export interface ScriptedWorkOptions {
  client: Client;
  db: Database;
  runId: string;
  /** Units to complete, one after another. */
  units: number;
  /** The run's max_num_concurrent_units (0: no cap), to know when a freed slot is relaunched. */
  cap: number;
  /** Workers take turns: step i is done by workers[i % workers.length]. */
  workers: string[];
  /** Runs after step i's unit was assigned, before it is submitted. */
  afterAssigned?: (step: number, unit: Assigned) => Promise<void>;
  /** Runs right after step i's submission was sent, before waiting for it to be stored. */
  afterSubmitted?: (step: number, unit: Assigned) => Promise<void>;
  /** How long one step may wait for the run (a crash makes Temporal wait out timeouts). */
  stepTimeoutMs?: number;
}

/** Calls `fn` again while the Temporal server is unreachable (e.g. being restarted). */
export async function whileServerUnavailable<T>(fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const cause = (err as Error).cause ?? err;
      const unavailable =
        (isGrpcServiceError(cause) && (cause.code === UNAVAILABLE || cause.code === DEADLINE_EXCEEDED)) ||
        /UNAVAILABLE|ECONNREFUSED|deadline exceeded/i.test(String(cause));
      if (!unavailable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * The `requestUnit` update with a chosen registration key, asked again when Temporal dropped it
 * unprocessed: the run was continuing as new (refused by the validator, or "aborted by closing
 * workflow"), or the update arrived just as the workflow task completing the workflow was sent
 * (the server fails that task with UnhandledCommand and answers the update "unexpected workflow
 * task failure"). The next try reaches the new run, or finds the run ended.
 */
export async function requestUnitWithKey(client: Client, runId: string, providerWorkerId: string, registrationKey: string): Promise<UnitRequestResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      // As the gateway does: a first agent's assignment workflow is started before the answer is used.
      const result = await client.workflow.getHandle(taskRunWorkflowId(runId)).executeUpdate(requestUnitUpdate, {
        args: [{ provider: 'mock', providerWorkerId, registrationKey }],
      });
      return await startAssignmentOf(client, result);
    } catch (err) {
      const text = `${String(err)} ${String((err as Error).cause ?? '')}`;
      if (attempt < 50 && /continuing as new|aborted by closing workflow|unexpected workflow task failure/i.test(text)) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      throw err;
    }
  }
}

/** Completes `units` units one at a time; returns the assignments in the order they were worked. */
export async function workInTurns(opts: ScriptedWorkOptions): Promise<Assigned[]> {
  const { client, runId } = opts;
  const timeout = opts.stepTimeoutMs ?? 150_000;
  const done: Assigned[] = [];
  for (let step = 0; step < opts.units; step++) {
    const worker = opts.workers[step % opts.workers.length]!;
    // A fixed registration key (per run): a request retried after a crash finds the agent it created.
    const registrationKey = `${worker}-${runId}-step-${step}`;
    let lastRefusal = '';
    const unit = await eventually(
      async () => {
        const result = await whileServerUnavailable(() => requestUnitWithKey(client, runId, worker, registrationKey));
        if (result.outcome === 'assigned') return result;
        if (result.outcome !== 'refused') throw new Error(`step ${step}: ${worker} was sent to ${result.outcome}; these runs have none`);
        lastRefusal = `${result.reason}: ${result.detail}`;
        if (result.reason === 'no_units_available') return undefined;
        throw new Error(`step ${step}: ${worker} was refused (${lastRefusal})`);
      },
      `step ${step}: a unit for ${worker}`,
      timeout,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}${lastRefusal ? ` (last refusal: ${lastRefusal})` : ''}`, { cause: err });
    });
    await opts.afterAssigned?.(step, unit);
    await whileServerUnavailable(() => submit(client, unit.assignmentId, unit.agentId, { label: step % 2 === 0 ? 'positive' : 'negative', step }));
    await opts.afterSubmitted?.(step, unit);
    await settled(opts, step + 1, timeout);
    done.push(unit);
  }
  return done;
}

/** Waits until `completed` units are stored and every slot they freed holds a newly launched unit. */
async function settled(opts: ScriptedWorkOptions, completed: number, timeoutMs: number): Promise<void> {
  const em = () => opts.db.em();
  const total = await em().count(Unit, { taskRun: opts.runId });
  const left = total - completed;
  const expectedActive = opts.cap > 0 ? Math.min(opts.cap, left) : left;
  await eventually(
    async () => {
      const done = await em().count(Unit, { taskRun: opts.runId, status: 'completed' });
      const active = await em().count(Unit, { taskRun: opts.runId, status: { $in: ['launched', 'assigned'] } });
      return done === completed && active === expectedActive ? true : undefined;
    },
    `${completed} completed unit(s) and ${expectedActive} launched in run ${opts.runId}`,
    timeoutMs,
  );
}

/**
 * One worker's loop for runs worked by several workers at once: take a unit, submit it, until the
 * run refuses or has closed. Unlike a plain loop it ends quietly when the run's workflow closes
 * between two requests (Temporal then answers "workflow execution already completed").
 */
export async function workUntilRunEnds(client: Client, runId: string, providerWorkerId: string): Promise<number> {
  let done = 0;
  for (let request = 0; ; request++) {
    let result: UnitRequestResult;
    try {
      result = await requestUnitWithKey(client, runId, providerWorkerId, `${providerWorkerId}-${runId}-${request}`);
    } catch (err) {
      if (/already completed/i.test(String(err)) && (await runClosed(client, runId))) return done;
      throw err;
    }
    if (result.outcome === 'refused') {
      if (result.reason !== 'no_units_available') return done;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (result.outcome !== 'assigned') throw new Error(`${providerWorkerId} was sent to ${result.outcome}; this loop only does units`);
    await submit(client, result.assignmentId, result.agentId, { label: done % 2 === 0 ? 'positive' : 'negative', by: providerWorkerId });
    done += 1;
  }
}

async function runClosed(client: Client, runId: string): Promise<boolean> {
  const { status } = await client.workflow.getHandle(taskRunWorkflowId(runId)).describe();
  return status.name !== 'RUNNING' && status.name !== 'CONTINUED_AS_NEW';
}
