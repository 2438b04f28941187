/**
 * `hitloop qual create|grant|revoke|list`: qualifications and workers' grants of them. These talk
 * to the database and the worker's provider only, so they work without a Temporal server.
 */
import type { Command } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { openDatabase } from '../../model/database.ts';
import type { GrantRow } from '../../qualifications/grants.ts';
import { createQualificationService, type GrantOutcome, type QualificationService } from '../../qualifications/service.ts';
import { createLogger } from '../logger.ts';

/** Runs `fn` with a qualification service over the configured database, closing it afterwards. */
export async function withQualificationService<T>(fn: (service: QualificationService) => Promise<T>): Promise<T> {
  const settings = loadSettings();
  // Command output goes to stdout; the service's info lines would only repeat it.
  const log = createLogger('warn', 'cli');
  const db = await openDatabase(settings.databaseUrl);
  try {
    return await fn(createQualificationService({ db, settings, log }));
  } finally {
    await db.close();
  }
}

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function formatGrant(g: GrantRow): string {
  return `${g.provider} ${g.providerWorkerId}  ${g.qualification} = ${g.value}`;
}

function describeOutcome(o: GrantOutcome, verb: 'granted' | 'revoked'): string {
  const who = `${o.worker.provider} ${o.worker.providerWorkerId}`;
  if (!o.changed) return `${who} already holds ${o.qualification} = ${o.value}; nothing changed`;
  if (verb === 'revoked') return `revoked ${o.qualification} from ${who} (was ${o.previous})`;
  return `granted ${o.qualification} = ${o.value} to ${who}${o.previous === null ? '' : ` (was ${o.previous})`}`;
}

export function registerQualCommands(program: Command): void {
  const qual = program.command('qual').description('qualifications: create them, grant or revoke them to workers, list grants');

  qual
    .command('create')
    .description('define a qualification (a named integer property of workers)')
    .argument('<name>')
    .option('--description <text>', 'what holding it means')
    .option('--json', 'print the qualification as JSON')
    .action(async (name: string, opts: { description?: string; json?: boolean }) => {
      const q = await withQualificationService((s) => s.create({ name, ...(opts.description ? { description: opts.description } : {}) }));
      print(opts.json ? JSON.stringify(q) : `created qualification ${q.name}`);
    });

  qual
    .command('grant')
    .description("give a worker a qualification with a value (default 1); also sent to the worker's provider")
    .argument('<name>', 'the qualification')
    .argument('<provider>', "the worker's provider (e.g. mock, local)")
    .argument('<providerWorkerId>', "the worker's id at that provider")
    .option('--value <n>', 'an integer', '1')
    .option('--request-key <key>', 'idempotency key passed to the provider (default: a new one)')
    .option('--json', 'print the outcome as JSON')
    .action(
      async (name: string, provider: string, providerWorkerId: string, opts: { value: string; requestKey?: string; json?: boolean }) => {
        const outcome = await withQualificationService((s) =>
          s.grant({ name, provider, providerWorkerId, value: opts.value, ...(opts.requestKey ? { requestKey: opts.requestKey } : {}) }),
        );
        print(opts.json ? JSON.stringify(outcome) : describeOutcome(outcome, 'granted'));
      },
    );

  qual
    .command('revoke')
    .description("remove a worker's grant (clears a failed onboarding, so the worker may try again)")
    .argument('<name>', 'the qualification')
    .argument('<provider>')
    .argument('<providerWorkerId>')
    .option('--request-key <key>', 'idempotency key passed to the provider (default: a new one)')
    .option('--json', 'print the outcome as JSON')
    .action(async (name: string, provider: string, providerWorkerId: string, opts: { requestKey?: string; json?: boolean }) => {
      const outcome = await withQualificationService((s) =>
        s.revoke({ name, provider, providerWorkerId, ...(opts.requestKey ? { requestKey: opts.requestKey } : {}) }),
      );
      print(opts.json ? JSON.stringify(outcome) : describeOutcome(outcome, 'revoked'));
    });

  qual
    .command('list')
    .description("list qualifications and every grant; with a worker, that worker's grants; with --qualification, its holders")
    .argument('[provider]', "with providerWorkerId: list this worker's grants")
    .argument('[providerWorkerId]')
    .option('--qualification <name>', 'only the holders of this qualification')
    .option('--json', 'print JSON')
    .action(
      async (provider: string | undefined, providerWorkerId: string | undefined, opts: { qualification?: string; json?: boolean }) => {
        if (provider !== undefined && providerWorkerId === undefined) {
          throw new Error('name a worker by provider AND id, e.g. `hitloop qual list mock worker-1`');
        }
        if (provider !== undefined && providerWorkerId !== undefined) {
          const grants = await withQualificationService((s) => s.listForWorker({ provider, providerWorkerId }));
          if (opts.json) return print(JSON.stringify(grants));
          if (grants.length === 0) return print(`${provider} ${providerWorkerId} holds no qualifications`);
          for (const g of grants) print(formatGrant(g));
          return;
        }
        if (opts.qualification !== undefined) {
          const name = opts.qualification;
          const grants = await withQualificationService((s) => s.grantsOf({ name }));
          if (opts.json) return print(JSON.stringify(grants));
          if (grants.length === 0) return print(`no worker holds ${name}`);
          for (const g of grants) print(formatGrant(g));
          return;
        }
        const all = await withQualificationService((s) => s.list());
        if (opts.json) return print(JSON.stringify(all));
        if (all.qualifications.length === 0) return print('no qualifications yet; create one with `hitloop qual create <name>`');
        for (const q of all.qualifications)
          print(`${q.name}  (${q.grants} grant${q.grants === 1 ? '' : 's'})${q.description ? `  ${q.description}` : ''}`);
        if (all.grants.length > 0) {
          print('');
          for (const g of all.grants) print(formatGrant(g));
        }
      },
    );
}
