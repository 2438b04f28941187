/** `hitloop worker`: one worker process, stopped gracefully by SIGTERM or SIGINT. */
import { loadSettings } from '../config/settings.ts';
import { describeError } from '../cli/errors.ts';
import { createLogger } from '../cli/logger.ts';
import { createMetrics, instrumentProvider } from '../observability/metrics.ts';
import { startMetricsServer } from '../observability/metricsServer.ts';
import { providers } from '../registry/builtins.ts';
import { sdkTelemetryOptions, startTracing, workflowSinks } from '../observability/telemetry.ts';
import { createHitloopWorker, installSdkLogging } from './worker.ts';

export async function runWorkerProcess(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel, 'worker');
  installSdkLogging(log, settings.logLevel, sdkTelemetryOptions());
  const tracing = startTracing('hitloop-worker');
  const w = await createHitloopWorker({
    settings,
    log,
    sinks: workflowSinks(tracing),
    ...(tracing ? { activityInterceptors: tracing.activityInterceptors } : {}),
  });
  const metrics = createMetrics({ role: 'worker', db: w.db });
  providers.decorate((provider) => instrumentProvider(provider, metrics));
  const metricsPort = process.env.HITLOOP_METRICS_PORT;
  const metricsServer = metricsPort ? await startMetricsServer(metrics.registry, Number(metricsPort), process.env.HITLOOP_METRICS_HOST) : undefined;
  if (metricsServer) log.info({ url: metricsServer.url }, 'metrics served');
  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down: finishing in-flight activities');
    w.shutdown();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  log.info(
    { temporal: settings.temporalAddress, taskQueue: settings.taskQueue, database: redactUrl(settings.databaseUrl) },
    'worker started',
  );
  await w.run();
  await metricsServer?.close();
  await tracing?.shutdown();
  log.info('worker stopped');
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runWorkerProcess().catch((err: unknown) => {
    // JSON like every other line of a worker's log.
    createLogger('fatal', 'worker').fatal({ error: describeError(err) }, 'worker failed');
    process.exit(1);
  });
}
