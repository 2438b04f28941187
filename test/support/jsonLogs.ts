/**
 * The one log format of hitloop's processes: every line a process writes is a pino JSON record.
 * ManagedProcess (chaos/managedProcess.ts) marks each start and exit in the log file with a line
 * `===== <time> start|exit ...`: those are the harness's, not the process's.
 */
import fs from 'node:fs';

export interface LogCheck {
  /** Records read (JSON objects with pino's level, time and msg). */
  records: number;
  /** Lines that are not such a record, with their line number. */
  others: string[];
}

export function checkJsonLog(file: string): LogCheck {
  const check: LogCheck = { records: 0, others: [] };
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('===== ')) return;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (typeof record.level === 'number' && typeof record.time === 'number' && typeof record.msg === 'string') {
          check.records += 1;
          return;
        }
      } catch {
        // not JSON: reported below
      }
      check.others.push(`${file}:${i + 1}: ${line.slice(0, 200)}`);
    });
  return check;
}
