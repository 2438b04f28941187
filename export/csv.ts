/**
 * CSV for spreadsheets (RFC 4180): every field quoted when it must be, nested values as JSON, and
 * the top-level fields of `input` and `data` spread into their own `input.<key>` / `data.<key>`
 * columns so that a form's answers are columns of their own.
 */
import { SCALAR_COLUMNS, type ExportRow } from './rows.ts';

export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(fields: readonly unknown[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

const objectKeys = (value: unknown): string[] =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : [];

/** Collects the keys of `input` and `data` seen across rows, in first-seen order. */
export class CsvColumns {
  readonly inputKeys = new Set<string>();
  readonly dataKeys = new Set<string>();

  see(row: ExportRow): void {
    for (const k of objectKeys(row.input)) this.inputKeys.add(k);
    for (const k of objectKeys(row.data)) this.dataKeys.add(k);
  }

  header(): string {
    return csvLine([
      ...SCALAR_COLUMNS,
      ...[...this.inputKeys].map((k) => `input.${k}`),
      ...[...this.dataKeys].map((k) => `data.${k}`),
      'input',
      'data',
    ]);
  }

  line(row: ExportRow): string {
    const pick = (obj: unknown, key: string): unknown =>
      typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;
    return csvLine([
      ...SCALAR_COLUMNS.map((c) => row[c]),
      ...[...this.inputKeys].map((k) => pick(row.input, k)),
      ...[...this.dataKeys].map((k) => pick(row.data, k)),
      row.input,
      row.data,
    ]);
  }
}
