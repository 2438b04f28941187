/**
 * A hitloop worker: hosts the TaskRun and Assignment workflows (pre-bundled) and every activity,
 * on the task queue of the settings. `hitloop worker` runs one until SIGTERM / SIGINT.
 */
import { type ActivityInterceptorsFactory, DefaultLogger, NativeConnection, Runtime, type TelemetryOptions, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.ts';
import type { Settings } from '../config/settings.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { workflowSinks, type WorkflowSinks } from '../observability/telemetry.ts';
import { ensureWorkflowBundle } from './workflowBundle.ts';

export interface HitloopWorkerOptions {
  settings: Settings;
  log: Logger;
  /** An open database to share (tests); otherwise one is opened from `settings.databaseUrl`. */
  db?: Database;
  connection?: NativeConnection;
  /** Tests slow down or speed up polling; defaults suit a small machine. */
  maxConcurrentActivityTaskExecutions?: number;
  /** Activity interceptors (tracing: observability/telemetry.ts). */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Where workflow spans go (tracing); by default they are dropped. */
  sinks?: WorkflowSinks;
}

export interface HitloopWorker {
  worker: Worker;
  db: Database;
  /** Runs until shutdown() or a fatal error; closes what it opened. */
  run(): Promise<void>;
  shutdown(): void;
}

export async function createHitloopWorker(opts: HitloopWorkerOptions): Promise<HitloopWorker> {
  const { settings, log } = opts;
  const db = opts.db ?? (await openDatabase(settings.databaseUrl));
  const connection = opts.connection ?? (await connectToTemporal(settings.temporalAddress));
  const workflowBundle = await ensureWorkflowBundle();
  const worker = await Worker.create({
    connection,
    namespace: settings.temporalNamespace,
    taskQueue: settings.taskQueue,
    workflowBundle,
    activities: createActivities({ db, settings, log }),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 20,
    ...(opts.activityInterceptors ? { interceptors: { activity: opts.activityInterceptors } } : {}),
    sinks: opts.sinks ?? workflowSinks(undefined),
    // Let in-flight activities finish (and record their results) on SIGTERM before exiting.
    shutdownGraceTime: '20s',
    // After a crash, another worker picks the workflows up this soon (the default waits 10 s).
    stickyQueueScheduleToStartTimeout: '3s',
  });
  return {
    worker,
    db,
    async run() {
      try {
        await worker.run();
      } finally {
        if (!opts.connection) await connection.close();
        if (!opts.db) await db.close();
      }
    },
    shutdown() {
      // Temporal's runtime also stops workers on SIGINT / SIGTERM; a second request is not an error.
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
  };
}

/**
 * Route the Temporal SDK's own log lines through our logger, and keep them to warnings unless we
 * log at debug level; `telemetryOptions` turns on the SDK's own metrics (observability/telemetry.ts).
 * Call once per process, before the first worker or connection.
 */
export function installSdkLogging(log: Logger, level: string, telemetryOptions?: TelemetryOptions): void {
  const sdkLevel = level === 'debug' || level === 'trace' ? 'INFO' : 'WARN';
  Runtime.install({
    // The native core's records too (by default it prints its own text lines to stderr): one format.
    telemetryOptions: { ...telemetryOptions, logging: { filter: { core: sdkLevel, other: sdkLevel }, forward: {} } },
    logger: new DefaultLogger(sdkLevel, (entry) => {
      const fields = { sdk: true, ...entry.meta };
      if (entry.level === 'ERROR') log.error(fields, entry.message);
      else if (entry.level === 'WARN') log.warn(fields, entry.message);
      else log.info(fields, entry.message);
    }),
  });
}

async function connectToTemporal(address: string): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address });
  } catch (err) {
    throw new Error(`cannot reach the Temporal server at ${address} (${(err as Error).message}); start one with \`hitloop dev\` or set TEMPORAL_ADDRESS`, {
      cause: err,
    });
  }
}
