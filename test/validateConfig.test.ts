/**
 * `hitloop validate` and the deep check every launch runs (config/deepCheck.ts): files read to the
 * end with errors naming key, file and line; an empty data set, a missing template and onboarding
 * without a form refused; a relative template resolved like `data`; and the cost preview.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../cli/exitCodes.ts';
import { ConfigError } from '../config/errors.ts';
import { validateRunFile } from '../operator/api.ts';
import { runCli } from './support/cli.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-validate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A config file in its own folder, with the files it names beside it. */
function configWith(yaml: string, files: Record<string, string> = {}): string {
  const dir = path.join(tmp, `c${n++}`);
  fs.mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const file = path.join(dir, 'run.yaml');
  fs.writeFileSync(
    file,
    [
      'task_name: validate-test',
      'task_title: Label',
      'task_description: Say the tone.',
      'task_tags: [t]',
      'task_reward: 0.25',
      'provider: mock',
      yaml,
    ].join('\n'),
  );
  return file;
}
const FORM = 'blueprint:\n  type: static-form\n  fields:\n    - { name: label, type: select, options: [positive, negative] }';

async function problems(file: string, overrides: string[] = []): Promise<string> {
  const err = await validateRunFile(file, overrides).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'a ConfigError').toBeInstanceOf(ConfigError);
  return (err as ConfigError).message;
}

describe('deep check of a task-run config', () => {
  it('a broken line in a JSONL, a CSV or a JSON data file is named with its file and line', async () => {
    const jsonl = configWith(`${FORM}\ndata: items.jsonl`, { 'items.jsonl': '{"text": "a"}\n\n{"text": "b"\n' });
    expect(await problems(jsonl)).toMatch(new RegExp(`data\\.file: line 3 of ${path.dirname(jsonl)}/items\\.jsonl is not valid JSON`));
    const notObject = configWith(`${FORM}\ndata: items.jsonl`, { 'items.jsonl': '{"text": "a"}\n[1, 2]\n' });
    expect(await problems(notObject)).toMatch(/data\.file: line 2 of .*items\.jsonl must be a JSON object/);
    const csv = configWith(`${FORM}\ndata: items.csv`, { 'items.csv': 'text,n\n"a,1\n' });
    expect(await problems(csv)).toMatch(/data\.file: .*items\.csv is not valid CSV/);
    const json = configWith(`${FORM}\ndata: items.json`, { 'items.json': '[{"text": "a"}, 3]' });
    expect(await problems(json)).toMatch(/data\.file: item 1 of .*items\.json must be a JSON object/);
  });

  it('an empty data set is refused, inline or from a file', async () => {
    expect(await problems(configWith(`${FORM}\ndata: items.jsonl`, { 'items.jsonl': '\n\n' }))).toMatch(/data: the data set is empty/);
    expect(await problems(configWith(`${FORM}\ndata: items.csv`, { 'items.csv': 'text\n' }))).toMatch(/data: the data set is empty/);
  });

  it('a broken gold file is named with its line; every problem is reported at once', async () => {
    const file = configWith(`${FORM}\ndata: items.jsonl\ngold: { enabled: true, data: gold.jsonl, gold_every_units: 2 }`, {
      'items.jsonl': '',
      'gold.jsonl': '{"input": {"text": "g"}, "expected": {"label": "positive"}}\n{"input": {"text": "g2"}}\n',
    });
    const message = await problems(file);
    expect(message).toMatch(/gold\.data\.file: gold item 1 is not \{ input: \{\.\.\.\}, expected: \.\.\. \}/);
    expect(message).toMatch(/data: the data set is empty/);
  });

  it('a relative template is resolved from the config file, like data; a missing one is refused', async () => {
    const ok = configWith('blueprint: { type: static-form, template: page.html }\ndata: [{ text: a }]', { 'page.html': '<input name="x">' });
    const { config } = await validateRunFile(ok);
    expect((config.blueprint as { template?: string }).template).toBe(path.join(path.dirname(ok), 'page.html'));
    const missing = configWith('blueprint: { type: static-form, template: nowhere.html }\ndata: [{ text: a }]');
    expect(await problems(missing)).toMatch(/blueprint\.template: .*nowhere\.html.*cannot read the template/);
  });

  it('onboarding_qualification without an onboarding form is refused', async () => {
    const file = configWith(`${FORM}\nonboarding_qualification: onboarded\ndata: [{ text: a }]`);
    expect(await problems(file)).toMatch(/onboarding_qualification: "onboarded" is not allowed: .*blueprint\.onboarding .* is missing/);
    const withForm = configWith(
      `${FORM}\n  onboarding: { fields: [{ name: q, type: text }], expected: { q: "42" } }\nonboarding_qualification: onboarded\ndata: [{ text: a }]`,
    );
    await expect(validateRunFile(withForm)).resolves.toBeDefined();
  });

  it('previews the cost: units x reward, gold, fees, with the currency', async () => {
    const file = configWith(
      `${FORM}\nunits_per_assignment: 2\nmax_spend: 3\ndata: items.jsonl\ngold: { enabled: true, data: [{ input: { text: g }, expected: { label: positive } }], min_golds: 1, gold_every_units: 4 }`,
      { 'items.jsonl': Array.from({ length: 5 }, (_, i) => `{"text": "${i}"}`).join('\n') },
    );
    const { preview } = await validateRunFile(file);
    // 5 assignments x 2 units = 10 units x 0.25 = 2.5; gold 1 + floor(10 / 4) = 3 units x 0.25 = 0.75.
    expect(preview).toMatchObject({ currency: 'USD', assignments: 5, units: 10, unitsCost: 2.5, goldUnits: 3, goldCost: 0.75, fees: 0, total: 3.25, maxSpend: 3 });
  });
});

describe('hitloop validate', () => {
  // validate needs neither Temporal nor a database: nothing listens at these.
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', HITLOOP_DATABASE_URL: `sqlite://${tmp}/unused.db`, HITLOOP_TASK_QUEUE: 'unused', HITLOOP_CONFIG_FILE: `${tmp}/none.yaml` };

  it('prints the preview and exits 0 for a good config; exits 2 naming file and line for a bad one', async () => {
    const good = configWith(`${FORM}\ndata: items.jsonl`, { 'items.jsonl': '{"text": "a"}\n{"text": "b"}\n' });
    const ok = await runCli(['validate', good], env);
    expect(ok.code, ok.stderr).toBe(EXIT_CODES.ok);
    expect(ok.stdout).toMatch(/valid/);
    expect(ok.stdout).toMatch(/2 assignment\(s\), 2 unit\(s\) x 0.25 = 0.5 USD/);
    expect(ok.stdout).toMatch(/total: 0.5 USD/);

    const bad = configWith(`${FORM}\ndata: items.jsonl`, { 'items.jsonl': '{"text": "a"}\n{oops}\n' });
    const refused = await runCli(['validate', bad], env);
    expect(refused.code).toBe(EXIT_CODES.usage);
    expect(refused.stderr).toMatch(/line 2 of .*items\.jsonl is not valid JSON/);
    expect(refused.stderr).not.toMatch(/^\s+at /m);
  });
});
