/**
 * `hitloop review <runId>`: the run's completed units awaiting review, with their data.
 * `hitloop review approve|reject|soft-reject <runId> [unitIds...] [--all] [--worker <id>]` and
 * `hitloop review bonus <runId> <unitId> --amount <n> --reason <text>`: each unit's review is one
 * request with a request key (given, or derived from the operation), so running the same command
 * again reviews nothing twice and pays nothing twice.
 */
import type { Command } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { openDatabase } from '../../model/database.ts';
import { connectOperator } from '../../operator/api.ts';
import { DECISION_BY_COMMAND, parseBonusAmount, parseBonusReason } from '../../review/requests.ts';
import { bonusStates } from '../../review/bonusStatus.ts';
import { createReviewer, listForReview, type ReviewReport, type Reviewer } from '../../review/operator.ts';
import type { SubmittedUnit } from '../../review/units.ts';
import type { AggregatedItem } from '../../review/itemAggregates.ts';
import { grantAccuracy, itemsOfRun, percent, workerQuality } from '../../review/workerQuality.ts';
import { withQualificationService } from './qual.ts';

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function withReviewer<T>(fn: (reviewer: Reviewer) => Promise<T>): Promise<T> {
  const op = await connectOperator(loadSettings());
  try {
    return await fn(createReviewer({ client: op.client, db: op.db, settings: op.settings }));
  } finally {
    await op.close();
  }
}

const oneLine = (value: unknown): string => {
  const text = JSON.stringify(value) ?? 'null';
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
};

export function formatSubmittedUnit(u: SubmittedUnit): string {
  const review = u.review ? `  ${u.review.decision}${u.review.note ? ` (${u.review.note})` : ''}` : '';
  const bonus = u.bonuses.length > 0 ? `  bonus ${u.bonuses.map((b) => `${b.amount} ${b.status}`).join(', ')}` : '';
  return [
    `${u.unitId}  ${u.unitStatus}${u.unitKind === 'normal' ? '' : ` (${u.unitKind})`}  worker ${u.provider}:${u.providerWorkerId}` +
      `  submitted ${u.submittedAt ?? '-'}${u.durationSeconds === null ? '' : ` after ${u.durationSeconds} s`}${review}${bonus}`,
    `  input: ${oneLine(u.assignmentData)}`,
    `  data:  ${oneLine(u.data)}`,
  ].join('\n');
}

export function formatItem(item: AggregatedItem): string {
  const fields = Object.entries(item.fields).map(
    ([field, f]) =>
      `  ${field}: ${f.label ?? '-'} (confidence ${f.confidence.toFixed(2)}; votes ${Object.entries(f.votes)
        .map(([label, n]) => `${label} ${n}`)
        .join(', ')}${f.tied.length > 1 ? `; tie: ${f.tied.join(' = ')}` : ''})`,
  );
  return [`item ${item.index} (${item.assignmentId})  ${item.status}  workers ${item.workers.length}`, `  input: ${oneLine(item.data)}`, ...fields].join('\n');
}

function formatReport(r: ReviewReport): string {
  const what = r.kind === 'bonus' ? `bonus ${r.amount} paid on ${r.unitId} (worker ${r.providerWorkerId})` : `${r.unitId}: ${r.unitStatus}`;
  return `${what}${r.repeated ? ' (already done by this request; nothing repeated)' : ''}`;
}

interface SelectionOptions {
  all?: boolean;
  worker?: string;
  note?: string;
  requestKey?: string;
  json?: boolean;
}

export function registerReviewCommands(program: Command): void {
  const review = program
    .command('review')
    .description('list completed units awaiting review; `review approve|reject|soft-reject|bonus` decide and pay')
    .argument('<runId>')
    .option('--include-reviewed', 'also list units already reviewed')
    .option('--worker <id>', "only this worker's units (hitloop worker id, or the id at the provider)")
    .option('--json', 'print a JSON array')
    .option('--by-item', 'overlap runs: one entry per item with its answers aggregated (label, confidence, votes)')
    .action(async (runId: string, opts: { includeReviewed?: boolean; worker?: string; json?: boolean; byItem?: boolean }) => {
      const settings = loadSettings();
      const db = await openDatabase(settings.databaseUrl);
      if (opts.byItem) {
        try {
          const items = await itemsOfRun(db.em(), runId);
          if (opts.json) return print(JSON.stringify(items));
          for (const item of items) print(formatItem(item));
          const open = items.filter((i) => i.status === 'unaggregated').length;
          return print(`\n${items.length} item(s), ${open} unaggregated (no answer yet, or all units expired)`);
        } finally {
          await db.close();
        }
      }
      let units: SubmittedUnit[];
      try {
        units = await listForReview(db, runId, {
          ...(opts.includeReviewed ? { includeReviewed: true } : {}),
          ...(opts.worker ? { worker: opts.worker } : {}),
        });
      } finally {
        await db.close();
      }
      if (opts.json) return print(JSON.stringify(units));
      if (units.length === 0)
        return print(
          `run ${runId} has no ${opts.includeReviewed ? 'submitted' : 'completed'} units${opts.includeReviewed ? '' : ' awaiting review'}`,
        );
      for (const u of units) print(formatSubmittedUnit(u));
      const waiting = units.filter((u) => u.unitStatus === 'completed').length;
      print(`\n${waiting} unit(s) awaiting review; decide with \`hitloop review approve|reject|soft-reject ${runId} <unitId...> | --all\``);
    });

  for (const [name, decision] of Object.entries(DECISION_BY_COMMAND)) {
    review
      .command(name)
      .description(
        decision === 'approve'
          ? 'approve completed units: paid, unit accepted'
          : decision === 'reject'
            ? 'reject completed units: not paid, unit rejected'
            : 'soft-reject completed units: paid, but recorded as poor work',
      )
      .argument('<runId>')
      .argument('[unitIds...]', 'the units (see `hitloop review <runId>`)')
      .option('--all', 'every completed unit of the run awaiting review')
      .option('--worker <id>', 'every completed unit of this worker awaiting review')
      .option('--note <text>', 'a note kept with the review (and shown to the worker where the provider can)')
      .option('--request-key <key>', `idempotency key (default: ${decision}-<unitId>; with several units, <key>:<unitId>)`)
      .option('--json', 'print the outcomes as JSON')
      .action(async (runId: string, unitIds: string[], opts: SelectionOptions) => {
        const reports = await withReviewer((r) =>
          r.review(runId, {
            decision,
            unitIds,
            ...(opts.all ? { all: true } : {}),
            ...(opts.worker ? { worker: opts.worker } : {}),
            ...(opts.note ? { note: opts.note } : {}),
            ...(opts.requestKey ? { requestKey: opts.requestKey } : {}),
          }),
        );
        if (opts.json) return print(JSON.stringify(reports));
        for (const report of reports) print(formatReport(report));
      });
  }

  review
    .command('workers')
    .description("overlap runs: each worker's agreement with the aggregated labels and estimated accuracy")
    .argument('<runId>')
    .option('--grant <qualification>', "grant each worker's accuracy, in per cent, as this qualification (create it first)")
    .option('--json', 'print a JSON array')
    .action(async (runId: string, opts: { grant?: string; json?: boolean }) => {
      const settings = loadSettings();
      const db = await openDatabase(settings.databaseUrl);
      const workers = await workerQuality(db.em(), runId).finally(() => db.close());
      const granted = opts.grant ? await withQualificationService((service) => grantAccuracy(service, runId, opts.grant!, workers)) : [];
      if (opts.json) return print(JSON.stringify(workers.map((w) => ({ ...w, accuracyPercent: percent(w.accuracy) }))));
      for (const w of workers) {
        print(`${w.provider}:${w.providerWorkerId}  items ${w.items}  agreement ${percent(w.agreement)} %  accuracy ${percent(w.accuracy)} %`);
      }
      if (opts.grant) print(`granted ${opts.grant} to ${granted.length} worker(s) (${granted.filter((g) => g.changed).length} changed)`);
    });

  review
    .command('bonus')
    .description("pay a bonus on a unit's submitted work, through the worker's provider (never twice for one request key); --status lists the run's bonuses")
    .argument('<runId>')
    .argument('[unitId]')
    .option('--amount <amount>', "a number > 0, in the provider's currency")
    .option('--reason <text>', 'why (shown to the worker)')
    .option('--request-key <key>', 'idempotency key (default: derived from unit, amount and reason)')
    .option('--status', "list the run's bonuses: paid, pending, or parked (the provider could not tell whether a payment went through)")
    .option('--over-budget', "pay even if it goes past what the run's max_spend leaves (refused otherwise)")
    .option('--json', 'print the outcome as JSON')
    .action(async (runId: string, unitId: string | undefined, opts: { amount?: string; reason?: string; requestKey?: string; status?: boolean; overBudget?: boolean; json?: boolean }) => {
      if (opts.status) {
        const op = await connectOperator(loadSettings());
        try {
          const states = await bonusStates(op.db, runId);
          if (opts.json) return print(JSON.stringify(states));
          if (states.length === 0) return print(`run ${runId} has no bonuses`);
          for (const b of states) {
            print(
              `${b.requestKey}  ${b.unitId}  ${b.amount}  ${b.status}${b.providerRef ? `  ref ${b.providerRef}` : ''}` +
                (b.parked ? `  parked: ${JSON.stringify(b.parked)} (check the payment at the provider before paying it by hand)` : ''),
            );
          }
        } finally {
          await op.close();
        }
        return;
      }
      if (!unitId || opts.amount === undefined || opts.reason === undefined) {
        throw new Error('a bonus needs <runId> <unitId> --amount <n> --reason <text> (or --status to list the run\'s bonuses)');
      }
      const { amount, reason } = opts;
      // Refused before connecting to anything: a bad amount never reaches a provider.
      parseBonusAmount(amount);
      parseBonusReason(reason);
      const report = await withReviewer((r) =>
        r.bonus(runId, {
          unitId,
          amount,
          reason,
          ...(opts.requestKey ? { requestKey: opts.requestKey } : {}),
          ...(opts.overBudget ? { overBudget: true } : {}),
        }),
      );
      print(opts.json ? JSON.stringify(report) : formatReport(report));
    });
}
