/**
 * `hitloop links <runId>`: the signed task links of a `local` run's annotators, one per worker.
 * Each link only works for its worker and that run (HMAC with the settings' secret).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { openDatabase } from '../../model/database.ts';
import { TaskRun } from '../../model/entities.ts';
import { LOCAL_PROVIDER, localProviderOptionsSchema, localWorkerLink } from '../../providers/local.ts';
import { findRunForSimulation } from '../../simulate/findRun.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InvalidArgumentError('must be a whole number from 1 to 10000');
  return n;
}

interface LinksOptions {
  worker?: string[];
  count?: number;
  prefix: string;
  gateway?: string;
  json?: boolean;
}

export function registerLinksCommand(program: Command): void {
  program
    .command('links')
    .description('print the signed task links of a local-provider run, one per annotator')
    .argument('<runId>', 'a run whose provider is `local`')
    .option('--worker <id>', 'an annotator (repeat, or comma-separate)', collect)
    .option('--count <n>', 'make links for <prefix>1 .. <prefix>n', count)
    .option('--prefix <prefix>', 'worker id prefix for --count', 'annotator-')
    .option('--gateway <url>', 'gateway URL the annotators reach (default: the one the run launched units with, else HITLOOP_GATEWAY_URL)')
    .option('--json', 'print [{"worker", "link"}]')
    .action(async (runId: string, opts: LinksOptions) => {
      const settings = loadSettings();
      const db = await openDatabase(settings.databaseUrl);
      try {
        const run = await db.em().findOne(TaskRun, runId, { fields: ['providerType', 'config'] });
        if (!run) throw new Error(`no task run "${runId}" in the database; \`hitloop runs\` lists the runs`);
        if (run.providerType !== LOCAL_PROVIDER) {
          throw new Error(`run ${runId} uses the ${run.providerType} provider; signed links are for runs with \`provider: local\``);
        }
        const configured = localProviderOptionsSchema.safeParse(
          Object.fromEntries(Object.entries((run.config as { provider?: Record<string, unknown> }).provider ?? {}).filter(([k]) => k !== 'type')),
        );
        const workers =
          opts.worker && opts.worker.length > 0
            ? opts.worker
            : opts.count
              ? Array.from({ length: opts.count }, (_, i) => `${opts.prefix}${i + 1}`)
              : configured.success
                ? configured.data.workers
                : [];
        if (workers.length === 0) {
          throw new Error('name the annotators: --worker alice --worker bob, or --count 5 (or list them under provider.workers in the run config)');
        }
        const gatewayUrl = opts.gateway ?? (await findRunForSimulation(db, runId)).gatewayUrl ?? settings.gatewayUrl;
        const links = workers.map((worker) => ({ worker, link: localWorkerLink(gatewayUrl, settings.secret, runId, worker) }));
        process.stdout.write(opts.json ? `${JSON.stringify(links)}\n` : links.map((l) => `${l.worker}\t${l.link}\n`).join(''));
      } finally {
        await db.close();
      }
    });
}
