/**
 * The gateway's calls into Temporal: the `requestUnit` update on a run's TaskRun workflow and the
 * agent signals to assignment workflows, with the retries that make them safe under load.
 *
 * An update is retried when the workflow refuses it while continuing as new, when Temporal's limit
 * of in-flight updates per workflow is reached, and on transient server errors. Its update id is
 * derived from the worker and the registration key, so a retried register is deduplicated by
 * Temporal as well as by the activity that assigns units.
 */
import { createHash } from 'node:crypto';
import { startAssignmentWorkflow } from '../activities/assignmentStarts.ts';
import { type Client, WorkflowNotFoundError, type WorkflowHandle, WorkflowUpdateFailedError, isGrpcServiceError } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import {
  type OnboardingSubmit,
  type UnitRequest,
  type UnitRequestResult,
  assignmentWorkflowId,
  requestUnitUpdate,
  submitOnboardingUpdate,
  taskRunWorkflowId,
} from '../workflows/definitions.ts';

/** gRPC status codes worth retrying: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE. */
const RETRYABLE_GRPC = new Set([4, 8, 10, 14]);
const RETRYABLE_TEXT = /continuing as new|limit exceeded|in-flight|too many|resource.?exhausted|unavailable|deadline/i;
/**
 * Temporal drops an accepted-but-unprocessed update when the run closes under it (continue-as-new:
 * "aborted by closing workflow") or when the workflow task that would run it fails because the run
 * is completing ("unexpected workflow task failure"). Sent again, the update reaches the next run,
 * or learns the run has ended.
 */
const DROPPED_UPDATE_TEXT = /aborted by closing workflow|unexpected workflow task failure/i;

export class WorkflowGoneError extends Error {
  override name = 'WorkflowGoneError';
}

export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
}

export interface RetryPolicy {
  /** Give up after this long (ms). */
  budgetMs: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const UPDATE_RETRY: RetryPolicy = { budgetMs: 120_000, firstDelayMs: 25, maxDelayMs: 1_000 };
export const SIGNAL_RETRY: RetryPolicy = { budgetMs: 30_000, firstDelayMs: 50, maxDelayMs: 2_000 };
/**
 * A signal to an assignment workflow that does not exist yet is tried again for the whole signal
 * budget. A run answers a registration in the same workflow task that starts the agent's assignment
 * workflow (docs/design.md §6), and Temporal creates that workflow after it: usually a moment later,
 * but a run busy with a burst of registrations has seen starts wait seconds to minutes (the bench's
 * end-to-end run). The start is on record, so past the budget the packet is refused as "Temporal is
 * not answering, retry" (the worker's page sends it again), never as "the assignment has ended".
 */

function errorChainText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current && depth < 5; depth++) {
    parts.push(current instanceof Error ? `${current.name}: ${current.message}` : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- ');
}

function isRetryable(err: unknown): boolean {
  for (let current: unknown = err, depth = 0; current && depth < 5; depth++) {
    if (isGrpcServiceError(current) && RETRYABLE_GRPC.has(current.code)) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  const text = errorChainText(err);
  if (DROPPED_UPDATE_TEXT.test(text)) return true;
  if (err instanceof WorkflowUpdateFailedError) return RETRYABLE_TEXT.test(text);
  return RETRYABLE_TEXT.test(text) && !(err instanceof WorkflowNotFoundError);
}

function isNotFound(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  for (let current: unknown = err, depth = 0; current && depth < 5; depth++) {
    if (isGrpcServiceError(current) && current.code === 5) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return /workflow execution already completed|not found/i.test(errorChainText(err));
}

/** Resolves after `ms`, or at once when `signal` aborts (the next attempt then sees it). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** Told of every refused attempt that will be tried again (the gateway logs them). */
export type RetryObserver = (what: string, attempt: number, error: string) => void;

interface RetryOptions {
  onRetry?: RetryObserver | undefined;
  /** Once aborted (the caller is shutting down), no further attempt is made. */
  signal?: AbortSignal | undefined;
  /**
   * Asked when Temporal dropped an update because its run was closing: true when no run follows it
   * (the workflow ended rather than continued as new). The server answers a retried update id on a
   * closed run with the same "aborted" error forever, so only this tells the two apart.
   */
  workflowEnded?: () => Promise<boolean>;
  /** Try again while the workflow does not exist yet (never started, as opposed to closed): its start is on record. */
  waitForStart?: boolean;
}

/** Not found because it was never started (a closed workflow answers "already completed"). */
function isNotStartedYet(err: unknown): boolean {
  return isNotFound(err) && !/already completed/i.test(errorChainText(err));
}

async function withRetries<T>(policy: RetryPolicy, what: string, call: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const startedAt = Date.now();
  const deadline = startedAt + policy.budgetMs;
  let delay = policy.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      opts.signal?.throwIfAborted();
      return await call();
    } catch (err) {
      if (opts.signal?.aborted) throw new TemporalUnavailableError(`${what}: the gateway is shutting down`, { cause: err });
      const gone = (): WorkflowGoneError =>
        new WorkflowGoneError(`${what}: the workflow is not running (${errorChainText(err)})`, { cause: err });
      const starting = opts.waitForStart === true && isNotStartedYet(err);
      if (isNotFound(err) && !isRetryable(err) && !starting) throw gone();
      if (!isRetryable(err) && !starting) throw err;
      if (opts.workflowEnded && DROPPED_UPDATE_TEXT.test(errorChainText(err)) && (await opts.workflowEnded())) throw gone();
      if (Date.now() + delay > deadline) {
        const why = starting ? `the workflow had not started within ${policy.budgetMs} ms` : `Temporal kept refusing for ${policy.budgetMs} ms`;
        throw new TemporalUnavailableError(`${what}: ${why} (${errorChainText(err)})`, { cause: err });
      }
      opts.onRetry?.(what, attempt, errorChainText(err));
      // Full jitter: many gateways retrying the same workflow spread out instead of colliding again.
      await sleep(Math.random() * delay + policy.firstDelayMs, opts.signal);
      delay = Math.min(policy.maxDelayMs, delay * 2);
    }
  }
}

/** A bounded, stable update id for one registration (Temporal caps id lengths). */
export function registrationUpdateId(request: UnitRequest): string {
  const digest = createHash('sha256')
    .update(`${request.provider}\0${request.providerWorkerId}\0${request.registrationKey}`)
    .digest('base64url');
  return `register-${digest.slice(0, 32)}`;
}

export class WorkflowCalls {
  readonly #client: Client;
  readonly #onRetry: RetryObserver | undefined;
  readonly #stopping = new AbortController();

  constructor(client: Client, opts: { onRetry?: RetryObserver } = {}) {
    this.#client = client;
    this.#onRetry = opts.onRetry;
  }

  /**
   * Cancel every call in flight and refuse new ones (TemporalUnavailableError), before the client's
   * connection is closed: a call still retrying on a closed connection makes the Temporal client
   * throw "Channel has been shut down" from a timer, which ends the process.
   */
  stop(): void {
    this.#stopping.abort();
  }

  /** `call` cancelled by `stop()` (gRPC CANCELLED, which the client does not retry). */
  #cancellable<T>(call: () => Promise<T>): () => Promise<T> {
    return () => this.#client.withAbortSignal(this.#stopping.signal, call);
  }

  /** Retries for an update on a run's TaskRun workflow: it may continue as new under the update. */
  #updateRetries(handle: WorkflowHandle): RetryOptions {
    return {
      onRetry: this.#onRetry,
      signal: this.#stopping.signal,
      workflowEnded: async () => {
        try {
          return (await handle.describe()).status.name !== 'RUNNING';
        } catch (err) {
          return isNotFound(err);
        }
      },
    };
  }

  /**
   * Ask the run for a unit; a run whose workflow has closed refuses with `run_not_running`.
   * `updateIdSuffix` asks again under another update id (Temporal answers a repeated one from memory).
   */
  async requestUnit(runId: string, request: UnitRequest, updateIdSuffix?: string): Promise<UnitRequestResult> {
    const handle = this.#client.workflow.getHandle(taskRunWorkflowId(runId));
    const updateId = registrationUpdateId(request) + (updateIdSuffix ? `-${updateIdSuffix}` : '');
    try {
      const result = await withRetries(
        UPDATE_RETRY,
        `register for run ${runId}`,
        this.#cancellable(() => handle.executeUpdate(requestUnitUpdate, { args: [request], updateId })),
        this.#updateRetries(handle),
      );
      return await startAssignmentOf(this.#client, result);
    } catch (err) {
      if (err instanceof WorkflowGoneError) {
        return { outcome: 'refused', reason: 'run_not_running', detail: `run ${runId} has ended and takes no more workers` };
      }
      throw err;
    }
  }

  /** Send a worker's onboarding answers; the run answers like `requestUnit` (a unit if they passed). */
  async submitOnboarding(runId: string, submission: OnboardingSubmit): Promise<UnitRequestResult> {
    const handle = this.#client.workflow.getHandle(taskRunWorkflowId(runId));
    const digest = createHash('sha256').update(`${submission.onboardingAgentId}\0${submission.submitKey}`).digest('base64url');
    try {
      const result = await withRetries(
        UPDATE_RETRY,
        `onboarding answers for run ${runId}`,
        this.#cancellable(() => handle.executeUpdate(submitOnboardingUpdate, { args: [submission], updateId: `onboarding-${digest.slice(0, 32)}` })),
        this.#updateRetries(handle),
      );
      return await startAssignmentOf(this.#client, result);
    } catch (err) {
      if (err instanceof WorkflowGoneError) {
        return { outcome: 'refused', reason: 'run_not_running', detail: `run ${runId} has ended and takes no more workers` };
      }
      throw err;
    }
  }

  /**
   * Signal an agent's assignment workflow; WorkflowGoneError when that workflow has closed,
   * TemporalUnavailableError when it has not started within the signal budget (SIGNAL_RETRY).
   */
  async signalAssignment<Args extends unknown[]>(assignmentId: string, signal: SignalDefinition<Args>, ...args: Args): Promise<void> {
    const handle = this.#client.workflow.getHandle(assignmentWorkflowId(assignmentId));
    await withRetries(SIGNAL_RETRY, `signal ${signal.name} to assignment ${assignmentId}`, this.#cancellable(() => handle.signal(signal, ...args)), {
      onRetry: this.#onRetry,
      signal: this.#stopping.signal,
      waitForStart: true,
    });
  }

  /** Whether the Temporal server answers (for the readiness endpoint). */
  async ping(): Promise<void> {
    await this.#client.connection.workflowService.getSystemInfo({});
  }
}

/**
 * The first agent of an assignment: its workflow is started by the caller of the update, before the
 * worker hears of the agent (docs/design.md §6), so the worker's first packets find it even while no
 * hitloop worker runs to do the run's own hand-over. Best effort: that hand-over is the durable start,
 * and a first packet that beats both is retried (signalAssignment). Returns the answer without the
 * start details, which go nowhere else.
 */
export async function startAssignmentOf(client: Client, result: UnitRequestResult): Promise<UnitRequestResult> {
  if (result.outcome !== 'assigned' || !result.assignmentStart) return result;
  const { assignmentStart, ...answer } = result;
  await startAssignmentWorkflow(client, assignmentStart).catch(() => undefined);
  return answer;
}
