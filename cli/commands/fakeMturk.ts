/**
 * `hitloop fake mturk --port N`: the local MTurk (fakes/mturk) by hand, for trying a run on
 * "MTurk" without an AWS account. Point hitloop at it with HITLOOP_MTURK_ENDPOINT and any AWS key;
 * workers open http://127.0.0.1:N/mturk/hits?workerId=A1TEST to preview and accept HITs.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { startFakeMTurk } from '../../fakes/mturk/server.ts';
import { MTURK_ENDPOINT_ENV } from '../../providers/mturk/client.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('must be a port number from 0 to 65535 (0: any free port)');
  return n;
}

function amount(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be an amount in dollars >= 0');
  return n;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The `fake` command group (shared with other local stand-ins), created once. */
export function fakeCommandGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'fake') ??
    program.command('fake').description('local stand-ins for crowd marketplaces, speaking their real APIs (for trying runs by hand and for tests)')
  );
}

export function registerFakeMturkCommand(program: Command): void {
  fakeCommandGroup(program)
    .command('mturk')
    .description('run a local MTurk: the Requester API (AWS JSON 1.1, SigV4) and the worker pages (preview, accept, externalSubmit)')
    .option('--port <n>', 'port to listen on (0: any free port)', port, 4011)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--balance <dollars>', 'starting account balance', amount, 10_000)
    .option('--access-key <id>', 'accept only this AWS access key id (repeat for more; default: any)', collect)
    .action(async (opts: { port: number; host: string; balance: number; accessKey?: string[] }) => {
      const fake = await startFakeMTurk({ port: opts.port, host: opts.host, balance: opts.balance, accessKeyIds: opts.accessKey });
      process.stdout.write(
        `local MTurk at ${fake.url}\n` +
          `  requester API: export ${MTURK_ENDPOINT_ENV}=${fake.url} (with any AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)\n` +
          `  worker pages:  ${fake.url}/mturk/hits?workerId=A1TESTWORKER\n` +
          `  state:         ${fake.url}/_fake/state\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await fake.close();
    });
}
