/**
 * `hitloop gateway`: one gateway process, until SIGTERM / SIGINT (then its sockets are closed with
 * 1001 so agents resume on another instance). Also runnable as `node gateway/main.ts`.
 */
import { createLogger } from '../cli/logger.ts';
import { loadSettings, type Settings } from '../config/settings.ts';
import { startTracing } from '../observability/telemetry.ts';
import { startGateway, type Gateway } from './server.ts';

export interface GatewayProcessOptions {
  port?: number;
  host?: string;
  settings?: Settings;
  /** Called once the gateway listens (the CLI prints its URL). */
  onListening?(gateway: Gateway): void;
}

export async function runGatewayProcess(opts: GatewayProcessOptions = {}): Promise<void> {
  const settings = opts.settings ?? loadSettings();
  const log = createLogger(settings.logLevel, 'gateway');
  const tracing = startTracing('hitloop-gateway');
  const gateway = await startGateway({
    settings,
    log,
    ...(tracing ? { clientInterceptors: tracing.clientInterceptors } : {}),
    port: opts.port ?? settings.gatewayPort,
    host: opts.host ?? process.env.HITLOOP_GATEWAY_HOST ?? '127.0.0.1',
  });
  opts.onListening?.(gateway);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down: closing sockets so agents resume elsewhere');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await gateway.close();
  await tracing?.shutdown();
}

// As a process of a stack (hitloop stack, the harness): everything it says is a JSON log record on
// stderr ('gateway listening' carries the URL), so one log format covers every process.
if (import.meta.url === `file://${process.argv[1]}`) {
  runGatewayProcess().then(
    // Exit explicitly: a retry the Temporal client scheduled before its connection closed would
    // otherwise keep the process alive until it fires on the closed connection, and throws.
    () => process.exit(0),
    (err: unknown) => {
      createLogger('fatal', 'gateway').fatal({ error: (err as Error).message }, 'gateway failed');
      process.exit(1);
    },
  );
}
