/** `hitloop worker`: one worker process, stopped gracefully by SIGTERM or SIGINT. */
import { loadSettings } from '../config/settings.ts';
import { describeError } from '../cli/errors.ts';
import { createLogger } from '../cli/logger.ts';
import { createHitloopWorker, installSdkLogging } from './worker.ts';

export async function runWorkerProcess(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel, 'worker');
  installSdkLogging(log, settings.logLevel);
  const w = await createHitloopWorker({ settings, log });
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
  log.info('worker stopped');
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runWorkerProcess().catch((err: unknown) => {
    process.stderr.write(`hitloop worker: ${describeError(err)}\n`);
    process.exit(1);
  });
}
