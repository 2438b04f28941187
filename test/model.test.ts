/**
 * The data model against real PostgreSQL and SQLite: the same suite runs on both. Each dialect gets
 * a fresh database, migrated by openDatabase; every test uses its own ids, so tests never share rows.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import {
  ForeignKeyConstraintViolationException,
  UniqueConstraintViolationException,
  CheckConstraintViolationException,
} from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database, type EntityManager } from '../model/database.ts';
import { DatabaseUrlError, parseDatabaseUrl } from '../model/databaseUrl.ts';
import {
  Agent,
  Assignment,
  Bonus,
  GrantedQualification,
  OnboardingAgent,
  OutboxMessage,
  Project,
  ProviderCall,
  Qualification,
  Review,
  Task,
  TaskRun,
  Unit,
  Worker,
} from '../model/entities.ts';
import { migrateUp, migrationsDir, pendingSchemaChanges } from '../model/migrate.ts';
import { MIGRATIONS_TABLE } from '../model/migrationRunner.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from '../model/sqliteDialect.ts';
import { RowNotFoundError, transitionAgent, transitionOnboardingAgent, transitionTaskRun, transitionUnit } from '../model/transitions.ts';
import {
  IllegalTransitionError,
  allowedTransitions,
  type AgentStatus,
  type OnboardingAgentStatus,
  type TaskRunStatus,
  type UnitStatus,
} from '../model/status.ts';
import { createTestDatabase, TEST_DIALECTS } from './support/databases.ts';

const execFileAsync = promisify(execFile);

let nextTag = 0;
/** A short unique tag per fixture, so tests sharing one database never collide. */
const tag = () => `x${++nextTag}`;

interface RunGraph {
  projectId: string;
  taskId: string;
  runId: string;
  assignmentId: string;
  workerId: string;
  unitId: string;
  agentId: string;
}

/** Project -> task -> run -> assignment -> unit (assigned to a worker) -> agent (in_task). */
async function seedRun(em: EntityManager, t = tag()): Promise<RunGraph> {
  const g: RunGraph = {
    projectId: `p-${t}`,
    taskId: `k-${t}`,
    runId: `r-${t}`,
    assignmentId: `r-${t}-a0`,
    workerId: `w-${t}`,
    unitId: `r-${t}-a0-u0`,
    agentId: `r-${t}-a0-u0-g0`,
  };
  em.create(Project, { id: g.projectId, name: `project ${t}`, owner: 'lab', budget: 100.25 });
  em.create(Task, { id: g.taskId, name: `task ${t}`, project: g.projectId });
  em.create(TaskRun, {
    id: g.runId,
    task: g.taskId,
    status: 'running',
    workflowId: `taskrun-${g.runId}`,
    config: { task_name: `task ${t}`, task_reward: 0.75, nested: { list: [1, 2, 3] } },
    providerType: 'mock',
    blueprintType: 'static-form',
    reward: 0.75,
  });
  em.create(Assignment, { id: g.assignmentId, taskRun: g.runId, index: 0, data: { text: 'hello', n: 1 } });
  em.create(Worker, { id: g.workerId, provider: 'mock', providerWorkerId: `pw-${t}` });
  em.create(Unit, {
    id: g.unitId,
    assignment: g.assignmentId,
    taskRun: g.runId,
    unitIndex: 0,
    status: 'assigned',
    pay: 0.75,
    worker: g.workerId,
  });
  em.create(Agent, {
    id: g.agentId,
    unit: g.unitId,
    assignment: g.assignmentId,
    taskRun: g.runId,
    worker: g.workerId,
    status: 'in_task',
  });
  await em.flush();
  return g;
}

/** Runs `write` in a fresh EntityManager and expects the database to refuse it with `error`. */
async function expectRefused(
  db: Database,
  error: abstract new (...args: never[]) => Error,
  write: (em: EntityManager) => void | Promise<void>,
): Promise<void> {
  const em = db.em();
  const attempt = async () => {
    await write(em);
    await em.flush();
  };
  await expect(attempt()).rejects.toBeInstanceOf(error);
}

async function runCli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, args, { cwd: path.resolve(import.meta.dirname, '..'), timeout: 120_000 });
}

describe('parseDatabaseUrl', () => {
  it('picks the dialect from the scheme', () => {
    expect(parseDatabaseUrl('sqlite:///var/lib/hitloop/db.sqlite')).toEqual({ dialect: 'sqlite', file: '/var/lib/hitloop/db.sqlite' });
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', file: ':memory:' });
    expect(parseDatabaseUrl('postgres://u:p@h:5432/db')).toMatchObject({ dialect: 'postgresql', database: 'db' });
    expect(parseDatabaseUrl('postgresql://u:p@h/db2')).toMatchObject({ dialect: 'postgresql', database: 'db2' });
  });

  it('refuses an unknown scheme, naming the variable and the accepted forms, without leaking a password', async () => {
    const attempt = openDatabase('mysql://root:secret@localhost/db');
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUrlError);
    await expect(attempt).rejects.toThrow(/HITLOOP_DATABASE_URL.*unknown scheme.*sqlite:\/\/\/.*sqlite::memory:.*postgresql:\/\//);
    await expect(attempt).rejects.not.toThrow(/secret/);
  });

  it('says which PostgreSQL it could not reach, without the password', async () => {
    const attempt = openDatabase('postgresql://hitloop:wrong-secret@127.0.0.1:1/hitloop_test');
    await expect(attempt).rejects.toThrow(
      /Cannot connect to PostgreSQL at postgresql:\/\/hitloop:\*\*\*@127\.0\.0\.1:1\/hitloop_test \(HITLOOP_DATABASE_URL\)/,
    );
    await expect(attempt).rejects.not.toThrow(/wrong-secret/);
  });

  it('refuses a relative SQLite path and a PostgreSQL URL without a database', () => {
    expect(() => parseDatabaseUrl('sqlite://data/hitloop.db')).toThrow(/three slashes/);
    expect(() => parseDatabaseUrl('postgresql://u:pw@h:5432')).toThrow(/names no database/);
  });
});

describe('SQLite specifics', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'hitloop-sqlite-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the parent directory and sets WAL, busy_timeout and foreign keys', async () => {
    const file = path.join(dir, 'nested', 'deeper', 'hitloop.db');
    const db = await openDatabase(`sqlite://${file}`);
    try {
      expect(fs.existsSync(file)).toBe(true);
      const conn = db.em().getConnection();
      expect(await conn.execute('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await conn.execute('pragma busy_timeout')).toEqual([{ timeout: SQLITE_BUSY_TIMEOUT_MS }]);
      expect(await conn.execute('pragma foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    } finally {
      await db.close();
    }
  });

  it('opens and migrates an in-memory database', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      const g = await seedRun(db.em());
      expect(await db.em().count(Unit, { taskRun: g.runId })).toBe(1);
    } finally {
      await db.close();
    }
  });
});

describe.each(TEST_DIALECTS)('data model on %s', (dialect) => {
  let scratch: { url: string; drop(): Promise<void> };
  let db: Database;

  beforeAll(async () => {
    scratch = await createTestDatabase(dialect);
    db = await openDatabase(scratch.url);
  });
  afterAll(async () => {
    await db?.close();
    await scratch?.drop();
  });

  describe('schema and migrations', () => {
    it('openDatabase applied every migration file, and the schema matches the entities', async () => {
      const files = fs.readdirSync(migrationsDir(dialect)).filter((f) => /^Migration.*\.ts$/.test(f));
      expect(files.length).toBeGreaterThan(0);
      const executed = await db.orm.migrator.getExecuted();
      expect(executed.map((m) => m.name).sort()).toEqual(files.map((f) => f.replace(/\.ts$/, '')).sort());
      expect(await pendingSchemaChanges(db)).toBe('');
    });

    it('applying the migrations again is a no-op', async () => {
      const before = await db.orm.migrator.getExecuted();
      expect(await migrateUp(db)).toEqual([]);
      const again = await openDatabase(scratch.url);
      try {
        expect(await migrateUp(again)).toEqual([]);
      } finally {
        await again.close();
      }
      const after = await db.orm.migrator.getExecuted();
      expect(after.map((m) => [m.id, m.name])).toEqual(before.map((m) => [m.id, m.name]));
    });

    it('two concurrent openDatabase calls on a fresh database both succeed and migrate once', async () => {
      const fresh = await createTestDatabase(dialect);
      try {
        const [a, b] = await Promise.all([openDatabase(fresh.url), openDatabase(fresh.url)]);
        try {
          const rows: Array<{ name: string }> = await a.em().getConnection().execute(`select name from ${MIGRATIONS_TABLE}`);
          const names = rows.map((r) => r.name);
          expect(names.length).toBeGreaterThan(0);
          expect(new Set(names).size).toBe(names.length);
          const g = await seedRun(a.em());
          expect((await b.em().findOneOrFail(Unit, g.unitId)).status).toBe('assigned');
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      } finally {
        await fresh.drop();
      }
    });

    it('two processes opening a fresh database at once both succeed and can write', async () => {
      const fresh = await createTestDatabase(dialect);
      const databaseModule = pathToFileURL(path.resolve(import.meta.dirname, '..', 'model', 'database.ts')).href;
      const script = `
        const [moduleUrl, url, id] = process.argv.slice(1);
        const { openDatabase } = await import(moduleUrl);
        const { Worker } = await import(new URL('./entities.ts', moduleUrl).href);
        const db = await openDatabase(url);
        const em = db.em();
        em.create(Worker, { id, provider: 'mock', providerWorkerId: id });
        await em.flush();
        await db.close();
        console.log('opened ' + id);`;
      try {
        const results = await Promise.all(
          ['proc-a', 'proc-b'].map((id) => runCli(['--input-type=module', '-e', script, databaseModule, fresh.url, id])),
        );
        expect(results.map((r) => r.stdout.trim())).toEqual(['opened proc-a', 'opened proc-b']);
        const check = await openDatabase(fresh.url);
        try {
          expect(await check.em().count(Worker, { id: { $in: ['proc-a', 'proc-b'] } })).toBe(2);
          expect(await migrateUp(check)).toEqual([]);
        } finally {
          await check.close();
        }
      } finally {
        await fresh.drop();
      }
    });

    it('stores money as numeric(14,4), JSON as json/jsonb and booleans as booleans', async () => {
      const conn = db.em().getConnection();
      if (dialect === 'postgresql') {
        const cols = await conn.execute(
          `select table_name, column_name, data_type, numeric_precision, numeric_scale from information_schema.columns
           where table_schema = current_schema() and (table_name, column_name) in
           (('unit','pay'),('task_run','reward'),('bonus','amount'),('project','budget'),('task_run','config'),('worker','blocked'),('outbox_message','id'))
           order by table_name, column_name`,
        );
        expect(cols).toEqual([
          { table_name: 'bonus', column_name: 'amount', data_type: 'numeric', numeric_precision: 14, numeric_scale: 4 },
          { table_name: 'outbox_message', column_name: 'id', data_type: 'bigint', numeric_precision: 64, numeric_scale: 0 },
          { table_name: 'project', column_name: 'budget', data_type: 'numeric', numeric_precision: 14, numeric_scale: 4 },
          { table_name: 'task_run', column_name: 'config', data_type: 'jsonb', numeric_precision: null, numeric_scale: null },
          { table_name: 'task_run', column_name: 'reward', data_type: 'numeric', numeric_precision: 14, numeric_scale: 4 },
          { table_name: 'unit', column_name: 'pay', data_type: 'numeric', numeric_precision: 14, numeric_scale: 4 },
          { table_name: 'worker', column_name: 'blocked', data_type: 'boolean', numeric_precision: null, numeric_scale: null },
        ]);
      } else {
        const typeOf = async (table: string, column: string) => {
          const cols: Array<{ name: string; type: string }> = await conn.execute(`pragma table_info(${table})`);
          return cols.find((c) => c.name === column)?.type;
        };
        expect(await typeOf('unit', 'pay')).toBe('numeric(14,4)');
        expect(await typeOf('task_run', 'reward')).toBe('numeric(14,4)');
        expect(await typeOf('bonus', 'amount')).toBe('numeric(14,4)');
        expect(await typeOf('project', 'budget')).toBe('numeric(14,4)');
        expect(await typeOf('task_run', 'config')).toBe('json');
      }
    });
  });

  describe('several processes sharing the database', () => {
    it('two processes running read-then-write transactions at once never fail with a busy database', async () => {
      const databaseModule = pathToFileURL(path.resolve(import.meta.dirname, '..', 'model', 'database.ts')).href;
      const requestKey = `rw-${tag()}`;
      const script = `
        const [moduleUrl, url, requestKey, who] = process.argv.slice(1);
        const { openDatabase } = await import(moduleUrl);
        const { ProviderCall } = await import(new URL('./entities.ts', moduleUrl).href);
        const db = await openDatabase(url);
        for (let i = 0; i < 40; i++) {
          await db.em().transactional(async (em) => {
            const seen = await em.count(ProviderCall, { requestKey });
            em.create(ProviderCall, { provider: 'mock', operation: 'rw', requestKey, target: who, payload: { seen } });
          });
        }
        await db.close();
        console.log('done ' + who);`;
      const results = await Promise.all(
        ['a', 'b'].map((who) => runCli(['--input-type=module', '-e', script, databaseModule, scratch.url, requestKey, who])),
      );
      expect(results.map((r) => r.stdout.trim())).toEqual(['done a', 'done b']);
      expect(await db.em().count(ProviderCall, { requestKey })).toBe(80);
    });
  });

  describe('CRUD of every entity', () => {
    it('creates, reads back (types intact), updates and deletes the whole graph', async () => {
      const t = tag();
      const g = await seedRun(db.em(), t);
      const em = db.em();
      em.create(OnboardingAgent, { id: `ob-${t}`, taskRun: g.runId, worker: g.workerId, status: 'onboarding' });
      em.create(Qualification, { id: `q-${t}`, name: `qual ${t}`, description: 'passed onboarding' });
      em.create(GrantedQualification, { id: `gq-${t}`, worker: g.workerId, qualification: `q-${t}`, value: 1 });
      em.create(Review, { id: `rv-${t}`, unit: g.unitId, agent: g.agentId, decision: 'approve', note: 'good', requestKey: `req-rv-${t}` });
      em.create(Bonus, {
        id: `b-${t}`,
        agent: g.agentId,
        unit: g.unitId,
        worker: g.workerId,
        taskRun: g.runId,
        amount: 1.2345,
        reason: 'great work',
        requestKey: `req-b-${t}`,
      });
      const message = em.create(OutboxMessage, {
        agent: g.agentId,
        seq: 1,
        kind: 'live_update',
        payload: { text: 'hi', turn: 1 },
        dedupeKey: `wf:act-1`,
      });
      const call = em.create(ProviderCall, {
        provider: 'mock',
        operation: 'launch_unit',
        requestKey: `req-pc-${t}`,
        target: g.unitId,
        payload: { reward: 0.75 },
      });
      await em.flush();
      expect(typeof message.id).toBe('number');
      expect(typeof call.id).toBe('number');

      const read = db.em();
      const project = await read.findOneOrFail(Project, g.projectId);
      expect(project).toMatchObject({ name: `project ${t}`, owner: 'lab', budget: 100.25 });
      expect(project.createdAt).toBeInstanceOf(Date);
      const task = await read.findOneOrFail(Task, g.taskId);
      expect(task.project?.id).toBe(g.projectId);
      const run = await read.findOneOrFail(TaskRun, g.runId);
      expect(run).toMatchObject({
        status: 'running',
        workflowId: `taskrun-${g.runId}`,
        providerType: 'mock',
        blueprintType: 'static-form',
        reward: 0.75,
        assignmentCount: 0,
        config: { task_name: `task ${t}`, task_reward: 0.75, nested: { list: [1, 2, 3] } },
      });
      expect(run.endedAt ?? null).toBeNull();
      const assignment = await read.findOneOrFail(Assignment, g.assignmentId);
      expect(assignment).toMatchObject({ index: 0, data: { text: 'hello', n: 1 } });
      expect(assignment.taskRun.id).toBe(g.runId);
      const worker = await read.findOneOrFail(Worker, g.workerId);
      expect(worker).toMatchObject({ provider: 'mock', providerWorkerId: `pw-${t}`, blocked: false });
      const unit = await read.findOneOrFail(Unit, g.unitId, { populate: ['worker'] });
      expect(unit).toMatchObject({ unitIndex: 0, kind: 'normal', status: 'assigned', pay: 0.75 });
      expect(unit.worker?.getEntity().providerWorkerId).toBe(`pw-${t}`);
      const agent = await read.findOneOrFail(Agent, g.agentId);
      expect(agent).toMatchObject({ status: 'in_task' });
      expect(agent.unit.id).toBe(g.unitId);
      expect(await read.findOneOrFail(OnboardingAgent, `ob-${t}`)).toMatchObject({ status: 'onboarding' });
      expect(await read.findOneOrFail(Qualification, `q-${t}`)).toMatchObject({ name: `qual ${t}` });
      const grant = await read.findOneOrFail(GrantedQualification, `gq-${t}`);
      expect(grant.value).toBe(1);
      expect(grant.updatedAt).toBeInstanceOf(Date);
      expect(await read.findOneOrFail(Review, `rv-${t}`)).toMatchObject({ decision: 'approve', note: 'good' });
      expect(await read.findOneOrFail(Bonus, `b-${t}`)).toMatchObject({ amount: 1.2345, status: 'pending', reason: 'great work' });
      expect(await read.findOneOrFail(OutboxMessage, message.id)).toMatchObject({
        seq: 1,
        kind: 'live_update',
        payload: { text: 'hi', turn: 1 },
      });
      expect(await read.findOneOrFail(ProviderCall, call.id)).toMatchObject({ operation: 'launch_unit', payload: { reward: 0.75 } });

      // update
      const endedAt = new Date('2030-01-02T03:04:05.678Z');
      worker.blocked = true;
      run.assignmentCount = 3;
      run.endedAt = endedAt;
      run.config = { ...run.config, changed: true };
      agent.state = { step: 2, answers: ['a', null] };
      agent.submission = ['any', 'json', 42];
      grant.value = 0;
      project.budget = 1234567890.1234;
      await read.flush();
      const reread = db.em();
      expect((await reread.findOneOrFail(Worker, g.workerId)).blocked).toBe(true);
      const run2 = await reread.findOneOrFail(TaskRun, g.runId);
      expect(run2.assignmentCount).toBe(3);
      expect(run2.endedAt?.toISOString()).toBe(endedAt.toISOString());
      expect(run2.config).toMatchObject({ changed: true });
      expect(await reread.findOneOrFail(Agent, g.agentId)).toMatchObject({
        state: { step: 2, answers: ['a', null] },
        submission: ['any', 'json', 42],
      });
      expect((await reread.findOneOrFail(GrantedQualification, `gq-${t}`)).value).toBe(0);
      expect((await reread.findOneOrFail(Project, g.projectId)).budget).toBe(1234567890.1234);

      // delete, one entity at a time, leaves to root
      const del = db.em();
      for (const [entity, id] of [
        [ProviderCall, call.id],
        [OutboxMessage, message.id],
        [Bonus, `b-${t}`],
        [Review, `rv-${t}`],
        [GrantedQualification, `gq-${t}`],
        [Qualification, `q-${t}`],
        [OnboardingAgent, `ob-${t}`],
        [Agent, g.agentId],
        [Unit, g.unitId],
        [Worker, g.workerId],
        [Assignment, g.assignmentId],
        [TaskRun, g.runId],
        [Task, g.taskId],
        [Project, g.projectId],
      ] as const) {
        const row = await del.findOneOrFail(entity as typeof Project, id as never);
        await del.remove(row).flush();
        expect(await db.em().findOne(entity as typeof Project, id as never)).toBeNull();
      }
    });
  });

  describe('unique constraints reject duplicates', () => {
    const Unique = UniqueConstraintViolationException;

    it('project.name, task.name, qualification.name', async () => {
      const g = await seedRun(db.em());
      const [, t] = g.projectId.split('-');
      await expectRefused(db, Unique, (em) => void em.create(Project, { id: `p2-${t}`, name: `project ${t}` }));
      await expectRefused(db, Unique, (em) => void em.create(Task, { id: `k2-${t}`, name: `task ${t}` }));
      const em = db.em();
      em.create(Qualification, { id: `q1-${t}`, name: `qual ${t}` });
      await em.flush();
      await expectRefused(db, Unique, (em2) => void em2.create(Qualification, { id: `q2-${t}`, name: `qual ${t}` }));
    });

    it('assignment (taskRun, index) and unit (assignment, unitIndex)', async () => {
      const g = await seedRun(db.em());
      await expectRefused(db, Unique, (em) => void em.create(Assignment, { id: `${g.runId}-dup`, taskRun: g.runId, index: 0, data: {} }));
      await expectRefused(
        db,
        Unique,
        (em) =>
          void em.create(Unit, {
            id: `${g.assignmentId}-dup`,
            assignment: g.assignmentId,
            taskRun: g.runId,
            unitIndex: 0,
            status: 'created',
            pay: 1,
          }),
      );
    });

    it('worker (provider, providerWorkerId), but the same provider id at another provider is fine', async () => {
      const g = await seedRun(db.em());
      const pw = `pw-${g.workerId.slice(2)}`;
      await expectRefused(db, Unique, (em) => void em.create(Worker, { id: `${g.workerId}-dup`, provider: 'mock', providerWorkerId: pw }));
      const em = db.em();
      em.create(Worker, { id: `${g.workerId}-local`, provider: 'local', providerWorkerId: pw });
      await em.flush();
    });

    it('agent (worker, registrationKey), while agents without a key do not collide', async () => {
      const g = await seedRun(db.em());
      const base = { unit: g.unitId, assignment: g.assignmentId, taskRun: g.runId, worker: g.workerId, status: 'none' as const };
      const em = db.em();
      em.create(Agent, { ...base, id: `${g.agentId}-k1`, registrationKey: 'reg-1' });
      em.create(Agent, { ...base, id: `${g.agentId}-n1` });
      em.create(Agent, { ...base, id: `${g.agentId}-n2` });
      await em.flush();
      await expectRefused(db, Unique, (em2) => void em2.create(Agent, { ...base, id: `${g.agentId}-k2`, registrationKey: 'reg-1' }));
    });

    it('granted_qualification (worker, qualification)', async () => {
      const g = await seedRun(db.em());
      const em = db.em();
      em.create(Qualification, { id: `q-${g.runId}`, name: `q ${g.runId}` });
      em.create(GrantedQualification, { id: `gq1-${g.runId}`, worker: g.workerId, qualification: `q-${g.runId}`, value: 1 });
      await em.flush();
      await expectRefused(
        db,
        Unique,
        (em2) =>
          void em2.create(GrantedQualification, { id: `gq2-${g.runId}`, worker: g.workerId, qualification: `q-${g.runId}`, value: 0 }),
      );
    });

    it('review.requestKey and bonus.requestKey', async () => {
      const g = await seedRun(db.em());
      const review = { unit: g.unitId, agent: g.agentId, decision: 'reject' as const, requestKey: `rk-${g.runId}` };
      const bonus = {
        agent: g.agentId,
        unit: g.unitId,
        worker: g.workerId,
        taskRun: g.runId,
        amount: 2,
        reason: 'r',
        requestKey: `bk-${g.runId}`,
      };
      const em = db.em();
      em.create(Review, { ...review, id: `rv1-${g.runId}` });
      em.create(Bonus, { ...bonus, id: `b1-${g.runId}` });
      await em.flush();
      await expectRefused(db, Unique, (em2) => void em2.create(Review, { ...review, id: `rv2-${g.runId}` }));
      await expectRefused(db, Unique, (em2) => void em2.create(Bonus, { ...bonus, id: `b2-${g.runId}` }));
    });

    it('outbox_message (agent, seq) and (agent, dedupeKey)', async () => {
      const g = await seedRun(db.em());
      const em = db.em();
      em.create(OutboxMessage, { agent: g.agentId, seq: 1, kind: 'k', payload: {}, dedupeKey: 'd1' });
      await em.flush();
      await expectRefused(
        db,
        Unique,
        (em2) => void em2.create(OutboxMessage, { agent: g.agentId, seq: 1, kind: 'k', payload: {}, dedupeKey: 'd2' }),
      );
      await expectRefused(
        db,
        Unique,
        (em2) => void em2.create(OutboxMessage, { agent: g.agentId, seq: 2, kind: 'k', payload: {}, dedupeKey: 'd1' }),
      );
      // Another agent may use the same seq and dedupe key.
      const other = await seedRun(db.em());
      const em3 = db.em();
      em3.create(OutboxMessage, { agent: other.agentId, seq: 1, kind: 'k', payload: {}, dedupeKey: 'd1' });
      await em3.flush();
    });

    it('provider_call keeps duplicates (they must stay detectable)', async () => {
      const key = `dup-${tag()}`;
      const em = db.em();
      for (let i = 0; i < 2; i++) {
        em.create(ProviderCall, { provider: 'mock', operation: 'approve', requestKey: key, target: 'u-1', payload: { i } });
      }
      await em.flush();
      expect(await db.em().count(ProviderCall, { operation: 'approve', requestKey: key })).toBe(2);
    });

    it('check constraints refuse a status outside the machine', async () => {
      const g = await seedRun(db.em());
      await expect(db.em().nativeUpdate(Unit, { id: g.unitId }, { status: 'bogus' as UnitStatus })).rejects.toBeInstanceOf(
        CheckConstraintViolationException,
      );
    });
  });

  describe('foreign keys', () => {
    const FK = ForeignKeyConstraintViolationException;

    it('refuse rows pointing at missing parents', async () => {
      const g = await seedRun(db.em());
      const t = tag();
      await expectRefused(
        db,
        FK,
        (em) =>
          void em.create(TaskRun, {
            id: `r-${t}`,
            task: 'no-such-task',
            status: 'launching',
            workflowId: 'w',
            config: {},
            providerType: 'mock',
            blueprintType: 'static-form',
            reward: 1,
          }),
      );
      await expectRefused(db, FK, (em) => void em.create(Assignment, { id: `a-${t}`, taskRun: 'no-such-run', index: 0, data: {} }));
      await expectRefused(
        db,
        FK,
        (em) =>
          void em.create(Unit, {
            id: `u-${t}`,
            assignment: g.assignmentId,
            taskRun: g.runId,
            unitIndex: 5,
            status: 'created',
            pay: 1,
            worker: 'no-such-worker',
          }),
      );
      await expectRefused(
        db,
        FK,
        (em) =>
          void em.create(Agent, {
            id: `g-${t}`,
            unit: g.unitId,
            assignment: g.assignmentId,
            taskRun: g.runId,
            worker: 'no-such-worker',
            status: 'none',
          }),
      );
      await expectRefused(
        db,
        FK,
        (em) => void em.create(GrantedQualification, { id: `gq-${t}`, worker: g.workerId, qualification: 'no-such-qual', value: 1 }),
      );
      await expectRefused(
        db,
        FK,
        (em) => void em.create(OutboxMessage, { agent: 'no-such-agent', seq: 1, kind: 'k', payload: {}, dedupeKey: 'd' }),
      );
    });
  });

  describe('cascades', () => {
    it('deleting a task run removes its assignments, units, agents and everything under them', async () => {
      const g = await seedRun(db.em());
      const em = db.em();
      em.create(OnboardingAgent, { id: `ob-${g.runId}`, taskRun: g.runId, worker: g.workerId, status: 'passed' });
      em.create(OutboxMessage, { agent: g.agentId, seq: 1, kind: 'k', payload: {}, dedupeKey: 'd' });
      em.create(Review, { id: `rv-${g.runId}`, unit: g.unitId, agent: g.agentId, decision: 'approve', requestKey: `rk-${g.runId}` });
      em.create(Bonus, {
        id: `b-${g.runId}`,
        agent: g.agentId,
        unit: g.unitId,
        worker: g.workerId,
        taskRun: g.runId,
        amount: 1,
        reason: 'r',
        requestKey: `bk-${g.runId}`,
      });
      await em.flush();

      expect(await db.em().nativeDelete(TaskRun, { id: g.runId })).toBe(1);
      const check = db.em();
      expect(await check.count(Assignment, { taskRun: g.runId })).toBe(0);
      expect(await check.count(Unit, { taskRun: g.runId })).toBe(0);
      expect(await check.count(Agent, { taskRun: g.runId })).toBe(0);
      expect(await check.count(OnboardingAgent, { taskRun: g.runId })).toBe(0);
      expect(await check.count(OutboxMessage, { agent: g.agentId })).toBe(0);
      expect(await check.count(Review, { unit: g.unitId })).toBe(0);
      expect(await check.count(Bonus, { taskRun: g.runId })).toBe(0);
      // What is not owned by the run stays.
      expect(await check.count(Worker, { id: g.workerId })).toBe(1);
      expect(await check.count(Task, { id: g.taskId })).toBe(1);
    });

    it('deleting a worker removes its grants and agents and clears it from units', async () => {
      const g = await seedRun(db.em());
      const em = db.em();
      em.create(Qualification, { id: `q-${g.runId}`, name: `q ${g.runId}` });
      em.create(GrantedQualification, { id: `gq-${g.runId}`, worker: g.workerId, qualification: `q-${g.runId}`, value: 3 });
      await em.flush();

      expect(await db.em().nativeDelete(Worker, { id: g.workerId })).toBe(1);
      const check = db.em();
      expect(await check.count(GrantedQualification, { id: `gq-${g.runId}` })).toBe(0);
      expect(await check.count(Agent, { id: g.agentId })).toBe(0);
      const unit = await check.findOneOrFail(Unit, g.unitId);
      expect(unit.worker ?? null).toBeNull();
      expect(await check.count(Qualification, { id: `q-${g.runId}` })).toBe(1);
    });

    it('deleting a project keeps its tasks, unlinked; deleting a task removes its runs', async () => {
      const g = await seedRun(db.em());
      await db.em().nativeDelete(Project, { id: g.projectId });
      const task = await db.em().findOneOrFail(Task, g.taskId);
      expect(task.project ?? null).toBeNull();
      await db.em().nativeDelete(Task, { id: g.taskId });
      expect(await db.em().count(TaskRun, { id: g.runId })).toBe(0);
      expect(await db.em().count(Unit, { id: g.unitId })).toBe(0);
    });
  });

  describe('guarded transitions', () => {
    let g: RunGraph;
    let unitIndex = 100;
    beforeAll(async () => {
      g = await seedRun(db.em());
    });

    async function unitIn(status: UnitStatus): Promise<string> {
      const em = db.em();
      const index = unitIndex++;
      const id = `${g.assignmentId}-u${index}`;
      em.create(Unit, { id, assignment: g.assignmentId, taskRun: g.runId, unitIndex: index, status, pay: 1 });
      await em.flush();
      return id;
    }
    async function agentIn(status: AgentStatus): Promise<string> {
      const em = db.em();
      const id = `ag-${tag()}`;
      em.create(Agent, { id, unit: g.unitId, assignment: g.assignmentId, taskRun: g.runId, worker: g.workerId, status });
      await em.flush();
      return id;
    }
    async function taskRunIn(status: TaskRunStatus): Promise<string> {
      const em = db.em();
      const id = `r-${tag()}`;
      em.create(TaskRun, {
        id,
        task: g.taskId,
        status,
        workflowId: `taskrun-${id}`,
        config: {},
        providerType: 'mock',
        blueprintType: 'static-form',
        reward: 1,
      });
      await em.flush();
      return id;
    }
    async function onboardingAgentIn(status: OnboardingAgentStatus): Promise<string> {
      const em = db.em();
      const id = `ob-${tag()}`;
      em.create(OnboardingAgent, { id, taskRun: g.runId, worker: g.workerId, status });
      await em.flush();
      return id;
    }

    it.each(allowedTransitions('unit'))('unit %s -> %s', async (from, to) => {
      const id = await unitIn(from);
      expect(await transitionUnit(db.em(), id, to)).toBe(true);
      expect((await db.em().findOneOrFail(Unit, id)).status).toBe(to);
      expect(await transitionUnit(db.em(), id, to)).toBe(false);
    });

    it.each(allowedTransitions('agent'))('agent %s -> %s', async (from, to) => {
      const id = await agentIn(from);
      expect(await transitionAgent(db.em(), id, to)).toBe(true);
      expect((await db.em().findOneOrFail(Agent, id)).status).toBe(to);
      expect(await transitionAgent(db.em(), id, to)).toBe(false);
    });

    it.each(allowedTransitions('task_run'))('task_run %s -> %s', async (from, to) => {
      const id = await taskRunIn(from);
      expect(await transitionTaskRun(db.em(), id, to)).toBe(true);
      expect((await db.em().findOneOrFail(TaskRun, id)).status).toBe(to);
      expect(await transitionTaskRun(db.em(), id, to)).toBe(false);
    });

    it.each(allowedTransitions('onboarding_agent'))('onboarding_agent %s -> %s', async (from, to) => {
      const id = await onboardingAgentIn(from);
      expect(await transitionOnboardingAgent(db.em(), id, to)).toBe(true);
      expect((await db.em().findOneOrFail(OnboardingAgent, id)).status).toBe(to);
      expect(await transitionOnboardingAgent(db.em(), id, to)).toBe(false);
    });

    const illegalUnit: Array<[UnitStatus, UnitStatus]> = [
      ['completed', 'expired'],
      ['accepted', 'launched'],
      ['created', 'assigned'],
      ['expired', 'launched'],
      ['launched', 'completed'],
    ];
    it.each(illegalUnit)('refuses unit %s -> %s, naming both states', async (from, to) => {
      const id = await unitIn(from);
      const attempt = transitionUnit(db.em(), id, to);
      await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(attempt).rejects.toThrow(`'${from}' -> '${to}'`);
      expect((await db.em().findOneOrFail(Unit, id)).status).toBe(from);
    });

    const illegalAgent: Array<[AgentStatus, AgentStatus]> = [
      ['completed', 'disconnect'],
      ['approved', 'rejected'],
      ['none', 'completed'],
      ['in_task', 'waiting'],
      ['timeout', 'in_task'],
    ];
    it.each(illegalAgent)('refuses agent %s -> %s, naming both states', async (from, to) => {
      const id = await agentIn(from);
      const attempt = transitionAgent(db.em(), id, to);
      await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(attempt).rejects.toThrow(`'${from}' -> '${to}'`);
      expect((await db.em().findOneOrFail(Agent, id)).status).toBe(from);
    });

    const illegalTaskRun: Array<[TaskRunStatus, TaskRunStatus]> = [
      ['completed', 'running'],
      ['failed', 'cancelled'],
      ['draining', 'running'],
      ['running', 'launching'],
    ];
    it.each(illegalTaskRun)('refuses task_run %s -> %s, naming both states', async (from, to) => {
      const id = await taskRunIn(from);
      const attempt = transitionTaskRun(db.em(), id, to);
      await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(attempt).rejects.toThrow(`'${from}' -> '${to}'`);
      expect((await db.em().findOneOrFail(TaskRun, id)).status).toBe(from);
    });

    const illegalOnboarding: Array<[OnboardingAgentStatus, OnboardingAgentStatus]> = [
      ['passed', 'failed'],
      ['failed', 'passed'],
      ['timeout', 'onboarding'],
    ];
    it.each(illegalOnboarding)('refuses onboarding_agent %s -> %s, naming both states', async (from, to) => {
      const id = await onboardingAgentIn(from);
      const attempt = transitionOnboardingAgent(db.em(), id, to);
      await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
      await expect(attempt).rejects.toThrow(`'${from}' -> '${to}'`);
      expect((await db.em().findOneOrFail(OnboardingAgent, id)).status).toBe(from);
    });

    it('applies the patch with the status, and not again when the row already moved', async () => {
      const id = await unitIn('launched');
      const assignedAt = new Date('2031-05-06T07:08:09.000Z');
      expect(await transitionUnit(db.em(), id, 'assigned', { worker: g.workerId, assignedAt, launchBatch: 4 })).toBe(true);
      const unit = await db.em().findOneOrFail(Unit, id);
      expect(unit.worker?.id).toBe(g.workerId);
      expect(unit.assignedAt?.toISOString()).toBe(assignedAt.toISOString());
      expect(unit.launchBatch).toBe(4);
      expect(await transitionUnit(db.em(), id, 'assigned', { assignedAt: new Date(), launchBatch: 9 })).toBe(false);
      const again = await db.em().findOneOrFail(Unit, id);
      expect(again.assignedAt?.toISOString()).toBe(assignedAt.toISOString());
      expect(again.launchBatch).toBe(4);
    });

    it('updates an entity already loaded in the same EntityManager, keeping its unflushed changes', async () => {
      const id = await agentIn('in_task');
      const em = db.em();
      const agent = await em.findOneOrFail(Agent, id);
      agent.state = { draft: 'unsaved' };
      const submission = { answers: [1, 'two', { three: 3 }] };
      expect(await transitionAgent(em, id, 'completed', { submittedAt: new Date(), submission, submitKey: 'sk-1' })).toBe(true);
      expect(agent.status).toBe('completed');
      expect(agent.submittedAt).toBeInstanceOf(Date);
      expect(agent.submission).toEqual(submission);
      expect(agent.state).toEqual({ draft: 'unsaved' });
      // Someone else moves it on before this EntityManager flushes: the flush must not undo that.
      expect(await transitionAgent(db.em(), id, 'approved')).toBe(true);
      await em.flush();
      const stored = await db.em().findOneOrFail(Agent, id);
      expect(stored).toMatchObject({ status: 'approved', state: { draft: 'unsaved' }, submission, submitKey: 'sk-1' });
    });

    it('works inside a transaction, and rolls back with it', async () => {
      const id = await unitIn('created');
      await expect(
        db.em().transactional(async (em) => {
          expect(await transitionUnit(em, id, 'launched', { launchedAt: new Date() })).toBe(true);
          throw new Error('abort on purpose');
        }),
      ).rejects.toThrow('abort on purpose');
      expect((await db.em().findOneOrFail(Unit, id)).status).toBe('created');
      await db.em().transactional(async (em) => {
        expect(await transitionUnit(em, id, 'launched')).toBe(true);
      });
      expect((await db.em().findOneOrFail(Unit, id)).status).toBe('launched');
    });

    it('lets exactly one of two racing writers win', async () => {
      const id = await unitIn('launched');
      const results = await Promise.all([
        transitionUnit(db.em(), id, 'assigned', { worker: g.workerId }),
        transitionUnit(db.em(), id, 'assigned', { worker: g.workerId }),
      ]);
      expect(results.sort()).toEqual([false, true]);
    });

    it('throws RowNotFoundError for a missing row', async () => {
      const attempt = transitionUnit(db.em(), 'no-such-unit', 'launched');
      await expect(attempt).rejects.toBeInstanceOf(RowNotFoundError);
      await expect(attempt).rejects.toThrow(/no unit with that id/);
    });
  });
});
