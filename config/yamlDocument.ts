/** YAML files as hitloop reads them: a syntax error becomes a ConfigError naming the file and line. */
import YAML, { LineCounter, type Document } from 'yaml';
import { ConfigError, type ConfigIssue } from './errors.ts';

export function parseYamlDocument(text: string, file: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map(
        (error): ConfigIssue => ({
          path: '',
          message: `YAML syntax error: ${error.message.split('\n')[0] ?? error.message}`,
          line: lineCounter.linePos(error.pos[0]).line,
        }),
      ),
      file,
    );
  }
  return { doc, lineCounter };
}
