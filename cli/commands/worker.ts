/**
 * `hitloop worker`: run a hitloop worker process (workflows and activities). Its subcommands
 * `hitloop worker block|unblock <provider> <id>` are about the other kind of worker, the person
 * doing units: they set and lift a provider-level block. Plain `hitloop worker` still runs a process.
 */
import type { Command } from 'commander';
import { runWorkerProcess } from '../../workers/main.ts';
import { withQualificationService } from './qual.ts';

export function registerWorkerCommand(program: Command): void {
  const worker = program
    .command('worker')
    .description('run a hitloop worker (workflows and activities) until SIGTERM / SIGINT; `worker block|unblock` manage crowd workers')
    .action(async () => {
      await runWorkerProcess();
    });

  worker
    .command('block')
    .description('block a crowd worker from every run (refused with `blocked`) and at their provider')
    .argument('<provider>', "the worker's provider (e.g. mock, local)")
    .argument('<providerWorkerId>', "the worker's id at that provider")
    .option('--reason <text>', 'passed to the provider')
    .option('--request-key <key>', 'idempotency key passed to the provider (default: a new one)')
    .action(async (provider: string, providerWorkerId: string, opts: { reason?: string; requestKey?: string }) => {
      const o = await withQualificationService((s) =>
        s.block({
          provider,
          providerWorkerId,
          ...(opts.reason ? { reason: opts.reason } : {}),
          ...(opts.requestKey ? { requestKey: opts.requestKey } : {}),
        }),
      );
      process.stdout.write(`${o.changed ? 'blocked' : 'already blocked:'} ${provider} ${providerWorkerId}\n`);
    });

  worker
    .command('unblock')
    .description('lift a provider-level block')
    .argument('<provider>')
    .argument('<providerWorkerId>')
    .option('--request-key <key>', 'idempotency key passed to the provider (default: a new one)')
    .action(async (provider: string, providerWorkerId: string, opts: { requestKey?: string }) => {
      const o = await withQualificationService((s) =>
        s.unblock({ provider, providerWorkerId, ...(opts.requestKey ? { requestKey: opts.requestKey } : {}) }),
      );
      process.stdout.write(`${o.changed ? 'unblocked' : 'not blocked:'} ${provider} ${providerWorkerId}\n`);
    });
}
