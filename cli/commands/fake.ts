/**
 * `hitloop fake prolific --port N`: the local Prolific (fakes/prolific/server.ts), to try a
 * `prolific` run end to end without an account. It prints the settings to use and the URL a
 * simulated participant opens to start the study.
 */
import type { Command } from 'commander';
import { startFakeProlific } from '../../fakes/prolific/server.ts';
import { fakeCommandGroup } from './fakeMturk.ts';

export function registerFakeCommands(program: Command): void {
  fakeCommandGroup(program)
    .command('prolific')
    .description('a local Prolific speaking the parts of its API v1 hitloop uses (studies, submissions, bonuses, webhooks)')
    .option('--port <n>', 'port to listen on', '8700')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--token <token>', 'the API token it accepts', 'fake-prolific-token')
    .option('--workspace <id>', 'its one workspace', 'ws-fake')
    .option('--balance <amount>', 'workspace balance in the currency (GBP)', '1000')
    .option('--webhook-secret <secret>', 'signs its webhooks', 'fake-prolific-webhook-secret')
    .action(async (opts: { port: string; host: string; token: string; workspace: string; balance: string; webhookSecret: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error(`--port must be a port number 0..65535, not ${JSON.stringify(opts.port)}`);
      const balance = Number(opts.balance);
      if (!Number.isFinite(balance) || balance < 0)
        throw new Error(`--balance must be an amount >= 0, not ${JSON.stringify(opts.balance)}`);
      const server = await startFakeProlific({
        port,
        host: opts.host,
        token: opts.token,
        workspaceId: opts.workspace,
        balance: Math.round(balance * 100),
        webhookSecret: opts.webhookSecret,
      });
      process.stdout.write(
        [
          `local Prolific at ${server.url}`,
          `  export HITLOOP_PROLIFIC_URL=${server.url} HITLOOP_PROLIFIC_TOKEN=${opts.token} HITLOOP_PROLIFIC_WEBHOOK_SECRET=${opts.webhookSecret}`,
          `  run config: provider: { type: prolific, workspace_id: ${opts.workspace} }`,
          `  a participant starts a study at ${server.url}/fake/start?study=<study id>&participant=<any id>`,
          `  studies: curl -H 'Authorization: Token ${opts.token}' ${server.url}/api/v1/studies/   payments: ${server.url}/fake/ledger`,
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
