/**
 * Task-run config (docs/design.md §2): schema, loading with overrides, data sources, and the user config file
 * with its `hitloop config` commands. Real files in temp directories; nothing mocked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerConfigCommands } from '../cli/commands/config.ts';
import { countAssignments, hashDataSource, readAssignments, type AssignmentRecord } from '../config/dataSource.ts';
import { ConfigError } from '../config/errors.ts';
import { loadTaskRunConfig, parseTaskRunConfig } from '../config/loadConfig.ts';
import { loadSettings } from '../config/settings.ts';
import { DEFAULTS, type DataSource, type TaskRunConfigInput } from '../config/taskRunConfig.ts';
import { listUserConfig, readUserConfig, setUserConfigValue, unsetUserConfigValue, userConfigPath } from '../config/userConfig.ts';
import { bonusAmountSchema } from '../review/requests.ts';
import { RunLimitsChangeSchema } from '../workflows/definitions.ts';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures/config');
const fixture = (name: string) => path.join(FIXTURES, name);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-config-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A minimal valid config object; tests break one thing at a time. */
function base(): Record<string, unknown> {
  return {
    task_name: 'demo',
    task_title: 'Demo task',
    task_description: 'A demo',
    task_tags: ['demo'],
    task_reward: 1,
    provider: 'mock',
    blueprint: { type: 'static-form', fields: [{ name: 'answer' }] },
    data: [{ q: 'one' }, { q: 'two' }],
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

async function configErrorAsync(fn: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

async function collect(iterable: AsyncIterable<AssignmentRecord>): Promise<AssignmentRecord[]> {
  const out: AssignmentRecord[] = [];
  for await (const record of iterable) out.push(record);
  return out;
}

describe('task-run config file', () => {
  it('loads a valid file with defaults applied and the data path made absolute', () => {
    const config = loadTaskRunConfig(fixture('valid.yaml'));
    expect(config.task_name).toBe('image-labels');
    expect(config.task_tags).toEqual(['images', 'labeling', 'quick']);
    expect(config.task_reward).toBe(0.5);
    expect(config.assignment_duration_seconds).toBe(1800);
    expect(config.task_lifetime_seconds).toBe(31 * 24 * 3600);
    expect(config.no_submission_patience_seconds).toBe(43_200);
    expect(config.reconnect_window_seconds).toBe(DEFAULTS.reconnect_window_seconds);
    expect(config.units_per_assignment).toBe(1);
    expect(config.auto_approve_after_seconds).toBe(0);
    expect(config.max_spend).toBeUndefined();
    expect(config.screening).toEqual({ enabled: false, max_screening_units: 0 });
    expect(config.gold.enabled).toBe(false);
    expect(config.qualifications).toEqual([
      { name: 'english', comparator: 'Exists' },
      { name: 'approval-rate', comparator: 'GreaterThanOrEqualTo', value: 95 },
      { name: 'country', comparator: 'In', value: [1, 44] },
    ]);
    expect(config.provider).toEqual({ type: 'mock' });
    expect(config.blueprint).toEqual({ type: 'static-form', fields: [{ name: 'label', label: 'What is shown?' }] });
    expect(config.data).toEqual({ file: fixture('items.jsonl'), format: 'jsonl' });
  });

  it('parses idempotently: a parsed config parses to itself (the workflow re-validates its input)', () => {
    const once = loadTaskRunConfig(fixture('valid.yaml'));
    const twice = parseTaskRunConfig(JSON.parse(JSON.stringify(once)));
    expect(twice).toEqual(once);
  });

  it('names the file and line of a YAML syntax error', () => {
    const error = configError(() => loadTaskRunConfig(fixture('syntax-error.yaml')));
    expect(error.message).toContain(fixture('syntax-error.yaml'));
    expect(error.message).toMatch(/YAML syntax error/);
    expect(error.issues[0]?.line).toBeGreaterThanOrEqual(3);
    expect(error.message).toMatch(/\(line \d+\)/);
  });

  it('reports every problem of a file at once, with the line of each', () => {
    const error = configError(() => loadTaskRunConfig(fixture('invalid.yaml')));
    expect(error.message).toContain('max_num_concurrent_units: -1 is not allowed: must be an integer >= 0 (line 6)');
    expect(error.message).toContain('qualifications[0].comparator: "Equals" is not allowed: must be one of Exists, DoesNotExist');
    expect(error.message).toContain('(did you mean "EqualTo"?) (line 9)');
    expect(error.issues).toHaveLength(2);
  });

  it('refuses a file that is not a mapping, and a file that does not exist', () => {
    const list = path.join(tmp, 'list.yaml');
    fs.writeFileSync(list, '- a\n- b\n');
    expect(configError(() => loadTaskRunConfig(list)).message).toContain('must hold a mapping of settings');
    const missing = path.join(tmp, 'nope.yaml');
    const error = configError(() => loadTaskRunConfig(missing));
    expect(error.message).toContain(`cannot read the config file ${missing}`);
    expect(error.message).toContain('ENOENT');
  });
});

describe('invalid values name the key, the value and what is allowed', () => {
  const messageFor = (mutate: (c: Record<string, unknown>) => void): string => {
    const config = base();
    mutate(config);
    return configError(() => parseTaskRunConfig(config)).message;
  };

  it('missing required key', () => {
    expect(messageFor((c) => delete c.task_title)).toBe('task_title: required (a string shown to workers)');
    expect(messageFor((c) => delete c.data)).toMatch(/^data: required \(the assignments: a list of objects/);
    expect(messageFor((c) => delete c.provider)).toMatch(/^provider: required \(which provider runs this task/);
  });

  it('wrong type', () => {
    expect(messageFor((c) => (c.task_reward = 'lots'))).toBe('task_reward: "lots" is not allowed: must be a number >= 0');
    expect(messageFor((c) => (c.task_tags = 5))).toBe('task_tags: 5 is not allowed: must be a list of strings or a comma-separated string');
    expect(messageFor((c) => (c.screening = { enabled: 'yes' }))).toBe('screening.enabled: "yes" is not allowed: must be true or false');
    expect(messageFor((c) => (c.provider = 7))).toMatch(/^provider: 7 is not allowed: must be a provider type name \(e\.g\. mock\)/);
  });

  it('negative or fractional caps and durations', () => {
    expect(messageFor((c) => (c.max_num_concurrent_units = -1))).toBe('max_num_concurrent_units: -1 is not allowed: must be an integer >= 0');
    expect(messageFor((c) => (c.allowed_concurrent = 1.5))).toBe('allowed_concurrent: 1.5 is not allowed: must be an integer >= 0');
    expect(messageFor((c) => (c.units_per_assignment = 0))).toBe('units_per_assignment: 0 is not allowed: must be an integer >= 1');
    expect(messageFor((c) => (c.task_reward = -0.01))).toBe('task_reward: -0.01 is not allowed: must be a number >= 0');
    expect(messageFor((c) => (c.max_spend = 0))).toBe('max_spend: 0 is not allowed: must be a number > 0');
  });

  it('amounts of money are what the database stores (numeric(14,4)): one rule for the config, a live change and a bonus', () => {
    const decimals = 'must be a number > 0 with at most 4 decimal places: amounts are stored to 0.0001, the smallest is 0.0001';
    for (const [amount, rule] of [
      // Stored as 0, or as another amount.
      [5e-324, decimals],
      [1e-7, decimals],
      [0.12345, decimals],
      [0.1 + 0.2, decimals],
      [1e10, 'must be below 10,000,000,000'],
    ] as const) {
      expect(messageFor((c) => (c.max_spend = amount))).toBe(`max_spend: ${amount} is not allowed: ${rule}`);
      expect(RunLimitsChangeSchema.safeParse({ max_spend: amount }).error?.issues.map((i) => i.message)).toEqual([rule]);
      expect(bonusAmountSchema.safeParse(amount).success).toBe(false);
    }
    expect(messageFor((c) => (c.task_reward = 1e-7))).toBe(
      'task_reward: 1e-7 is not allowed: must be a number >= 0 with at most 4 decimal places: amounts are stored to 0.0001',
    );
    for (const amount of [0.0001, 12.5, 0.3, 9_999_999_999.9999]) {
      expect(parseTaskRunConfig({ ...base(), max_spend: amount, task_reward: amount }).max_spend).toBe(amount);
      expect(RunLimitsChangeSchema.parse({ max_spend: amount, task_reward: amount })).toEqual({ max_spend: amount, task_reward: amount });
      expect(bonusAmountSchema.parse(amount)).toBe(amount);
    }
    expect(parseTaskRunConfig({ ...base(), task_reward: 0 }).task_reward).toBe(0);
  });

  it('unknown comparator, with a suggestion', () => {
    const message = messageFor((c) => (c.qualifications = [{ name: 'q', comparator: 'Equals', value: 1 }]));
    expect(message).toBe(
      'qualifications[0].comparator: "Equals" is not allowed: must be one of Exists, DoesNotExist, EqualTo, NotEqualTo, ' +
        'GreaterThan, GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, In, NotIn (did you mean "EqualTo"?)',
    );
  });

  it('a value that does not fit the comparator', () => {
    const q = (requirement: Record<string, unknown>) => messageFor((c) => (c.qualifications = [{ name: 'q', ...requirement }]));
    expect(q({ comparator: 'Exists', value: 1 })).toBe('qualifications[0].value: 1 is not allowed: Exists takes no value (remove it)');
    expect(q({ comparator: 'EqualTo' })).toBe('qualifications[0].value: required (EqualTo compares with an integer value)');
    expect(q({ comparator: 'LessThan', value: [1, 2] })).toMatch(/^qualifications\[0\]\.value: \[1,2\] is not allowed: LessThan takes a single integer/);
    expect(q({ comparator: 'In', value: 3 })).toBe('qualifications[0].value: 3 is not allowed: In takes a list of integers, e.g. [3]');
    expect(q({ comparator: 'NotIn', value: [1, 'x'] })).toBe('qualifications[0].value[1]: "x" is not allowed: must be an integer');
    expect(q({ comparator: 'GreaterThan', value: 2.5 })).toMatch(/^qualifications\[0\]\.value: 2\.5 is not allowed/);
  });

  it('unknown top-level key, with a suggestion when one is close', () => {
    expect(messageFor((c) => (c.task_titel = 'x'))).toBe('task_titel: unknown key (did you mean "task_title"?)');
    expect(messageFor((c) => (c.max_concurrent_units = 3))).toBe('max_concurrent_units: unknown key (did you mean "max_num_concurrent_units"?)');
    expect(messageFor((c) => (c.colour = 'blue'))).toMatch(/^colour: unknown key \(known keys: task_name, task_title, /);
    expect(messageFor((c) => (c.screening = { enabled: false, max_units: 2 }))).toBe(
      'screening.max_units: unknown key (did you mean "max_screening_units"?; known keys: enabled, max_screening_units, passed_qualification, data)',
    );
  });

  it('data: entries must be objects, a file needs a known format', () => {
    expect(messageFor((c) => (c.data = [{ a: 1 }, 5]))).toBe(
      'data[1]: 5 is not allowed: must be a JSON object (one assignment: field names to values)',
    );
    expect(messageFor((c) => (c.data = 'items.txt'))).toMatch(/^data: "items\.txt" is not allowed: cannot tell the format from the file name/);
    expect(messageFor((c) => (c.data = { file: 'x.json', format: 'xml' }))).toBe('data.format: "xml" is not allowed: must be one of json, jsonl, csv');
    expect(messageFor((c) => (c.data = 42))).toMatch(/^data: 42 is not allowed: must be a list of objects, a file path/);
  });

  it('screening and gold need their qualifications and items when enabled', () => {
    const message = messageFor((c) => (c.screening = { enabled: true }));
    expect(message).toContain('screening.passed_qualification: required when screening is enabled');
    const withBoth = messageFor((c) => {
      c.screening = { enabled: true, passed_qualification: 'screened' };
    });
    expect(withBoth).toBe('block_qualification: required when screening is enabled (workers who fail screening are given it)');
    expect(messageFor((c) => (c.gold = { enabled: true }))).toContain('gold.data: required when gold is enabled');
    expect(messageFor((c) => (c.gold = { enabled: true, data: [{ input: { q: 1 } }] }))).toBe(
      'gold.data[0].expected: required (the known answer)',
    );
  });

  it('reports several problems together, one per line', () => {
    const error = configError(() =>
      parseTaskRunConfig({ ...base(), task_reward: -1, max_num_concurrent_units: -1, tsk_name: 'x' }, 'input of run 7'),
    );
    expect(error.message.split('\n')).toEqual([
      'input of run 7: invalid configuration',
      'task_reward: -1 is not allowed: must be a number >= 0',
      'max_num_concurrent_units: -1 is not allowed: must be an integer >= 0',
      'tsk_name: unknown key (did you mean "task_name"?)',
    ]);
    expect(error.issues[0]).toEqual({ path: 'task_reward', value: -1, message: 'must be a number >= 0' });
  });

  it('accepts the shorthand forms and fills defaults', () => {
    const input: TaskRunConfigInput = { ...(base() as TaskRunConfigInput), task_tags: 'a,b', data: { file: '/tmp/x.CSV' } };
    const config = parseTaskRunConfig(input);
    expect(config.task_tags).toEqual(['a', 'b']);
    expect(config.provider).toEqual({ type: 'mock' });
    expect(config.data).toEqual({ file: '/tmp/x.CSV', format: 'csv' });
  });

  it('names data.file, the path and the OS error for a data file that cannot be read', () => {
    const dir = path.join(tmp, 'unreadable');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'run.yaml');
    fs.writeFileSync(file, 'task_name: t\ntask_title: T\ntask_description: D\ntask_tags: x\ntask_reward: 1\nprovider: mock\nblueprint: static-form\ndata: gone.jsonl\n');
    const error = configError(() => loadTaskRunConfig(file));
    expect(error.issues[0]?.path).toBe('data.file');
    expect(error.message).toContain(`data.file: cannot read ${path.join(dir, 'gone.jsonl')} (ENOENT: no such file or directory)`);
    fs.mkdirSync(path.join(dir, 'adir.csv'));
    const notFile = configError(() => loadTaskRunConfig(file, ['data=' + path.join(dir, 'adir.csv')]));
    expect(notFile.message).toContain('not a regular file');
  });
});

describe('command-line overrides', () => {
  it('win over the file, with numbers, booleans, lists, dotted keys and list indices', () => {
    const config = loadTaskRunConfig(fixture('valid.yaml'), [
      'task_reward=0.75',
      'max_num_concurrent_units=3',
      'task_tags=[a, b]',
      'task_title=Label: a picture',
      'blueprint.fields.0.label=Name',
      'blueprint.fields.1.name=extra',
      'qualifications[1].value=80',
      'qualifications.2.value=[7]',
      'screening.enabled=false',
      'max_spend=25',
    ]);
    expect(config.task_reward).toBe(0.75);
    expect(config.max_num_concurrent_units).toBe(3);
    expect(config.task_tags).toEqual(['a', 'b']);
    expect(config.task_title).toBe('Label: a picture');
    expect(config.blueprint).toEqual({ type: 'static-form', fields: [{ name: 'label', label: 'Name' }, { name: 'extra' }] });
    expect(config.qualifications[1]).toEqual({ name: 'approval-rate', comparator: 'GreaterThanOrEqualTo', value: 80 });
    expect(config.qualifications[2]).toEqual({ name: 'country', comparator: 'In', value: [7] });
    expect(config.max_spend).toBe(25);
  });

  it('turn shorthand provider and data into mappings when a nested key is set', () => {
    const config = loadTaskRunConfig(fixture('valid.yaml'), ['provider.region=eu', 'data.format=json', `data.file=${fixture('items.json')}`]);
    expect(config.provider).toEqual({ type: 'mock', region: 'eu' });
    expect(config.data).toEqual({ file: fixture('items.json'), format: 'json' });
  });

  it('resolve an overridden relative data path against the working directory', () => {
    const relative = path.relative(process.cwd(), fixture('items.csv'));
    const config = loadTaskRunConfig(fixture('valid.yaml'), [`data=${relative}`]);
    expect(config.data).toEqual({ file: fixture('items.csv'), format: 'csv' });
  });

  it('are validated like the file, and refuse malformed overrides', () => {
    expect(configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['allowed_concurrent=-2'])).message).toContain(
      'allowed_concurrent: -2 is not allowed: must be an integer >= 0',
    );
    const noEquals = configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['task_reward']));
    expect(noEquals.message).toContain('override "task_reward" must look like key=value');
    const pastEnd = configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['qualifications.9.name=x']));
    expect(pastEnd.message).toContain('qualifications.9.name: index 9 is past the end of qualifications (3 items');
    const throughScalar = configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['task_reward.amount=1']));
    expect(throughScalar.message).toContain('task_reward.amount: cannot set task_reward.amount: task_reward is 0.5, not a mapping or list');
  });

  it('an overridden value has no file line in its error', () => {
    const error = configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['allowed_concurrent=-2']));
    expect(error.issues[0]?.line).toBeUndefined();
    const fromFile = configError(() => loadTaskRunConfig(fixture('valid.yaml'), ['allowed_concurrent=-2', 'units_per_assignment=0']));
    expect(fromFile.issues.map((i) => i.path).sort()).toEqual(['allowed_concurrent', 'units_per_assignment']);
  });
});

describe('data sources', () => {
  const expected = [
    { image: 'a.png', hint: 'animal' },
    { image: 'b.png', hint: 'plant' },
    { image: 'c.png', hint: 'vehicle' },
  ];

  it('inline list', async () => {
    const data: DataSource = [{ a: 1 }, { a: 2 }, { a: 3 }];
    expect(await collect(readAssignments(data, { offset: 1 }))).toEqual([
      { index: 1, data: { a: 2 } },
      { index: 2, data: { a: 3 } },
    ]);
    expect(await countAssignments(data)).toBe(3);
    // Key order does not change the hash of inline data; content does.
    expect(await hashDataSource([{ a: 1, b: 2 }])).toBe(await hashDataSource([{ b: 2, a: 1 }]));
    expect(await hashDataSource([{ a: 1 }])).not.toBe(await hashDataSource([{ a: 2 }]));
  });

  it('JSON file', async () => {
    const data: DataSource = { file: fixture('items.json'), format: 'json' };
    expect(await collect(readAssignments(data))).toEqual(expected.slice(0, 2).map((d, index) => ({ index, data: d })));
    const notArray = path.join(tmp, 'object.json');
    fs.writeFileSync(notArray, '{"a": 1}');
    const error = await configErrorAsync(() => collect(readAssignments({ file: notArray, format: 'json' })));
    expect(error.message).toBe(`data.file: ${notArray} must hold a JSON array of objects (one per assignment), not an object`);
  });

  it('JSONL file, skipping blank lines; a bad line is named', async () => {
    const data: DataSource = { file: fixture('items.jsonl'), format: 'jsonl' };
    expect(await collect(readAssignments(data))).toEqual(expected.map((d, index) => ({ index, data: d })));
    expect(await countAssignments(data)).toBe(3);

    const bad = await configErrorAsync(() => collect(readAssignments({ file: fixture('bad-line.jsonl'), format: 'jsonl' })));
    expect(bad.issues[0]?.path).toBe('data.file');
    expect(bad.message).toMatch(new RegExp(`^data\\.file: line 3 of ${fixture('bad-line.jsonl')} is not valid JSON`));

    const notObject = await configErrorAsync(() => collect(readAssignments({ file: fixture('not-objects.jsonl'), format: 'jsonl' })));
    expect(notObject.message).toContain('line 2 of');
    expect(notObject.message).toContain('must be a JSON object (one assignment: field names to values), not a list');
  });

  it('CSV file: header row to objects, quoted commas and newlines, BOM dropped', async () => {
    const data: DataSource = { file: fixture('items.csv'), format: 'csv' };
    expect(await collect(readAssignments(data))).toEqual([
      { index: 0, data: { image: 'a.png', hint: 'animal' } },
      { index: 1, data: { image: 'b, with comma.png', hint: 'multi\nline' } },
      { index: 2, data: { image: 'c.png', hint: 'vehicle' } },
    ]);
    expect(await collect(readAssignments(data, { offset: 2 }))).toEqual([{ index: 2, data: { image: 'c.png', hint: 'vehicle' } }]);
    const ragged = path.join(tmp, 'ragged.csv');
    fs.writeFileSync(ragged, 'a,b\n1,2\n3\n');
    const error = await configErrorAsync(() => collect(readAssignments({ file: ragged, format: 'csv' })));
    expect(error.message).toContain(`data.file: ${ragged} is not valid CSV`);
  });

  it('a missing file names data.file, the path and the OS error', async () => {
    const missing = path.join(tmp, 'missing.jsonl');
    const error = await configErrorAsync(() => collect(readAssignments({ file: missing, format: 'jsonl' })));
    expect(error.message).toContain(`data.file: cannot read ${missing} (ENOENT: no such file or directory)`);
    const hashError = await configErrorAsync(() => hashDataSource({ file: missing, format: 'csv' }, 'gold.data'));
    expect(hashError.issues[0]?.path).toBe('gold.data.file');
  });

  it('hashes a file by its bytes', async () => {
    const file = path.join(tmp, 'hash.jsonl');
    fs.writeFileSync(file, '{"a":1}\n');
    const { createHash } = await import('node:crypto');
    expect(await hashDataSource({ file, format: 'jsonl' })).toBe(createHash('sha256').update('{"a":1}\n').digest('hex'));
  });

  it('streams a 100,000-line JSONL file and resumes at an offset', async () => {
    const file = path.join(tmp, 'big.jsonl');
    const out = fs.createWriteStream(file);
    for (let i = 0; i < 100_000; i++) out.write(`{"n":${i},"text":"item number ${i}"}\n`);
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const data: DataSource = { file, format: 'jsonl' };

    const tail = await collect(readAssignments(data, { offset: 99_997 }));
    expect(tail).toEqual([99_997, 99_998, 99_999].map((n) => ({ index: n, data: { n, text: `item number ${n}` } })));

    // Stopping early is allowed (a run that reaches its cap): the generator closes its file.
    const firstTwo: AssignmentRecord[] = [];
    for await (const record of readAssignments(data, { offset: 50_000 })) {
      firstTwo.push(record);
      if (firstTwo.length === 2) break;
    }
    expect(firstTwo.map((r) => r.data.n)).toEqual([50_000, 50_001]);

    expect(await countAssignments(data)).toBe(100_000);
  });
});

describe('user config file', () => {
  function tempHome(): NodeJS.ProcessEnv {
    const home = fs.mkdtempSync(path.join(tmp, 'home-'));
    return { HOME: home };
  }

  it('lives under XDG_CONFIG_HOME or ~/.config, or at HITLOOP_CONFIG_FILE', () => {
    expect(userConfigPath({ HOME: '/h' })).toBe('/h/.config/hitloop/config.yaml');
    expect(userConfigPath({ HOME: '/h', XDG_CONFIG_HOME: '/x' })).toBe('/x/hitloop/config.yaml');
    expect(userConfigPath({ HOME: '/h', XDG_CONFIG_HOME: '' })).toBe('/h/.config/hitloop/config.yaml');
    expect(userConfigPath({ HOME: '/h', HITLOOP_CONFIG_FILE: '/etc/hl.yaml' })).toBe('/etc/hl.yaml');
  });

  it('set, read, list and unset round-trip; the file is private (0600) and written atomically', () => {
    const env = tempHome();
    expect(readUserConfig(env)).toEqual({});
    setUserConfigValue('database_url', 'postgresql://me:s3cret@db:5432/hitloop', env);
    expect(setUserConfigValue('gateway_port', '8088', env)).toBe(8088);
    setUserConfigValue('secret', 'a-very-long-secret-value', env);
    setUserConfigValue('data_dir', '~/hl-data', env);

    const file = userConfigPath(env);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['config.yaml']);
    expect(readUserConfig(env)).toEqual({
      database_url: 'postgresql://me:s3cret@db:5432/hitloop',
      gateway_port: 8088,
      secret: 'a-very-long-secret-value',
      data_dir: path.join(env.HOME!, 'hl-data'),
    });
    expect(listUserConfig(env).map((e) => e.key)).toEqual(['data_dir', 'database_url', 'secret', 'gateway_port']);
    expect(loadSettings(env).gatewayPort).toBe(8088);

    // A comment the user wrote survives edits.
    fs.writeFileSync(file, `# my notes\n${fs.readFileSync(file, 'utf8')}`);
    expect(unsetUserConfigValue('gateway_port', env)).toBe(true);
    expect(unsetUserConfigValue('gateway_port', env)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toContain('# my notes');
    expect(readUserConfig(env).gateway_port).toBeUndefined();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses unknown keys (listing the known ones) and bad values', () => {
    const env = tempHome();
    const unknown = configError(() => setUserConfigValue('databse_url', 'x', env));
    expect(unknown.message).toContain('databse_url: unknown key (did you mean "database_url"?');
    // Without a close guess, the known keys are listed.
    const unguessable = configError(() => setUserConfigValue('colour', 'x', env));
    expect(unguessable.message).toContain('colour: unknown key (known keys: data_dir, database_url, temporal_address');
    const badPort = configError(() => setUserConfigValue('gateway_port', '99999', env));
    expect(badPort.message).toContain('gateway_port: 99999 is not allowed: must be a port number 1..65535');
    const badLevel = configError(() => setUserConfigValue('log_level', 'loud', env));
    expect(badLevel.message).toContain('log_level: "loud" is not allowed: must be one of fatal, error, warn, info, debug, trace, silent');
    expect(fs.existsSync(userConfigPath(env))).toBe(false);

    fs.mkdirSync(path.dirname(userConfigPath(env)), { recursive: true });
    fs.writeFileSync(userConfigPath(env), 'temporal_adress: 1.2.3.4:7233\n');
    const fromFile = configError(() => readUserConfig(env));
    expect(fromFile.message).toContain(userConfigPath(env));
    expect(fromFile.message).toContain('temporal_adress: unknown key (did you mean "temporal_address"?)');
    // The CLI can clean up what it cannot read.
    expect(unsetUserConfigValue('temporal_adress', env)).toBe(true);
    expect(readUserConfig(env)).toEqual({});
  });

  it('trusted proxies: addresses and networks, from the file or the environment; anything else refused by name', () => {
    const env = tempHome();
    expect(loadSettings(env).trustedProxies).toEqual([]);
    expect(setUserConfigValue('trusted_proxies', '127.0.0.1, 172.16.0.0/12,::1', env)).toEqual(['127.0.0.1', '172.16.0.0/12', '::1']);
    expect(loadSettings(env).trustedProxies).toEqual(['127.0.0.1', '172.16.0.0/12', '::1']);
    // The environment wins, and is checked as strictly.
    expect(loadSettings({ ...env, HITLOOP_TRUSTED_PROXIES: '10.0.0.2' }).trustedProxies).toEqual(['10.0.0.2']);
    expect(() => loadSettings({ ...env, HITLOOP_TRUSTED_PROXIES: '127.0.0.1,localhost' })).toThrow(
      'HITLOOP_TRUSTED_PROXIES: "localhost" is not an IP address or network',
    );
    for (const bad of ['proxy.example.org', '10.0.0.0/33', '10.0.0.1/8/8', '::1/129']) {
      expect(configError(() => setUserConfigValue('trusted_proxies', bad, env)).message).toContain(`"${bad}" is not an IP address or network`);
    }
  });

  it('hitloop config get/set/list/unset', async () => {
    const env: NodeJS.ProcessEnv = { ...tempHome(), HITLOOP_LOG_LEVEL: 'debug' };
    const output: string[] = [];
    const errors: string[] = [];
    const cli = async (...args: string[]) => {
      const program = new Command('hitloop').exitOverride().configureOutput({ writeErr: (t) => errors.push(t), writeOut: (t) => output.push(t) });
      registerConfigCommands(program, { env, write: (t) => output.push(t) });
      output.length = 0;
      await program.parseAsync(args, { from: 'user' });
      return output.join('');
    };

    expect(await cli('config', 'set', 'temporal_address', '10.0.0.5:7233')).toContain('temporal_address set in');
    expect(await cli('config', 'get', 'temporal_address')).toBe('10.0.0.5:7233\n');
    await cli('config', 'set', 'secret', 'super-secret-0123456789');
    await cli('config', 'set', 'operator_password', 'console-password-0123');
    await cli('config', 'set', 'database_url', 'postgresql://u:pw@localhost:5432/db');
    await cli('config', 'set', 'prolific_token', 'prolific-token-abc123');
    expect(await cli('config', 'set', 'log_level', 'warn')).toContain('note: HITLOOP_LOG_LEVEL is set in the environment');

    const listed = JSON.parse(await cli('config', 'list', '--json')) as {
      file: string;
      settings: { key: string; value: string | number; source: string }[];
    };
    const byKey = Object.fromEntries(listed.settings.map((s) => [s.key, s]));
    expect(listed.file).toBe(userConfigPath(env));
    expect(byKey.temporal_address).toMatchObject({ value: '10.0.0.5:7233', source: 'file' });
    expect(byKey.secret).toMatchObject({ value: '********', source: 'file' });
    expect(byKey.operator_password).toMatchObject({ value: '********', source: 'file' });
    expect(byKey.database_url).toMatchObject({ value: 'postgresql://u:****@localhost:5432/db', source: 'file' });
    expect(byKey.prolific_token).toMatchObject({ value: '********', source: 'file' });
    expect(byKey.prolific_webhook_secret).toMatchObject({ value: '(not set)', source: 'default' });
    expect(byKey.log_level).toMatchObject({ value: 'debug', source: 'env' });
    expect(byKey.task_queue).toMatchObject({ value: 'hitloop', source: 'default' });

    const table = await cli('config', 'list');
    expect(table).not.toContain('super-secret');
    expect(table).not.toContain('prolific-token-abc123');
    expect(table).not.toContain('console-password');
    expect(table).toMatch(/log_level\s+debug\s+\(env HITLOOP_LOG_LEVEL\)/);

    expect(await cli('config', 'unset', 'temporal_address')).toContain('temporal_address removed');
    expect(await cli('config', 'get', 'temporal_address')).toBe('127.0.0.1:7233\n');

    const failure = await cli('config', 'get', 'colour').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CommanderError);
    expect((failure as CommanderError).exitCode).toBe(2);
    expect(errors.join('')).toContain('colour: unknown key (known keys: data_dir, database_url');
  });
});
