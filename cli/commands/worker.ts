import type { Command } from 'commander';
import { runWorkerProcess } from '../../workers/main.ts';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a hitloop worker (workflows and activities) until SIGTERM / SIGINT')
    .action(async () => {
      await runWorkerProcess();
    });
}
