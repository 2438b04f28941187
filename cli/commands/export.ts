/** `hitloop export <runId> --format jsonl|csv [--out file]`: a run's submitted units with their data. */
import type { Command } from 'commander';
import { loadSettings } from '../../config/settings.ts';
import { exportAggregatedTo } from '../../export/aggregated.ts';
import { EXPORT_FORMATS, exportRunTo, exportRunToFile, parseExportFormat, requireExportableRun, writeFileWhole } from '../../export/exportRun.ts';
import { openDatabase } from '../../model/database.ts';
import type { UnitKind } from '../../model/entities.ts';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write every completed or reviewed unit of a run: input, worker, timings, review state and submitted data')
    .argument('<runId>')
    .option('--format <format>', `one of ${EXPORT_FORMATS.join(', ')}`, 'jsonl')
    .option('--out <file>', 'write to this file (default: standard output)')
    .option('--include-qualifying', 'also export screening and gold units')
    .option('--aggregated', 'one row per item of an overlap run: aggregated label, confidence, votes, workers')
    .action(async (runId: string, opts: { format: string; out?: string; includeQualifying?: boolean; aggregated?: boolean }) => {
      const format = parseExportFormat(opts.format);
      const kinds: readonly UnitKind[] = opts.includeQualifying ? ['normal', 'screening', 'gold'] : ['normal'];
      const db = await openDatabase(loadSettings().databaseUrl);
      try {
        // Checked before any file is opened: an unknown run exits 3 (not found) and writes nothing.
        await requireExportableRun(db, runId);
        if (opts.aggregated) {
          const { rows } = opts.out
            ? (await writeFileWhole(opts.out, (out) => exportAggregatedTo(db, runId, out, format))).result
            : await exportAggregatedTo(db, runId, process.stdout, format);
          process.stderr.write(`exported ${rows} item(s) of run ${runId}${opts.out ? ` to ${opts.out}` : ''}\n`);
        } else if (opts.out) {
          const { rows, file } = await exportRunToFile(db, runId, opts.out, { format, kinds });
          process.stderr.write(`exported ${rows} unit(s) of run ${runId} to ${file}\n`);
        } else {
          const { rows } = await exportRunTo(db, runId, process.stdout, { format, kinds });
          process.stderr.write(`exported ${rows} unit(s) of run ${runId}\n`);
        }
      } finally {
        await db.close();
      }
    });
}
