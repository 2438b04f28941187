/**
 * Onboarding, screening and gold units through the WebSocket gateway, as workers meet them: over
 * real sockets, a real Temporal server and each database. Onboarding pass (on to a unit in the same
 * session), fail (refused now and on return), pre-granted 0 and 1; the screening cap of 2 with a
 * place freed by a dropped connection, a failed screen blocking and a passed one leading to real
 * units; gold units that look like any other and are counted; and the run's submissions reviewed
 * and exported exactly as sent.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRunTo } from '../export/exportRun.ts';
import type { ExportRow } from '../export/rows.ts';
import type { Gateway } from '../gateway/server.ts';
import type { AgentPacket, OnboardingPacket, RefusedPacket } from '../gateway/protocol.ts';
import { GrantedQualification, OnboardingAgent, Qualification, Unit, Worker } from '../model/entities.ts';
import { createQualificationService } from '../qualifications/service.ts';
import { createReviewer } from '../review/operator.ts';
import type { AgentConnection } from '../simulate/agentConnection.ts';
import { connect, register, startTestGateway, untilStatus, type Registered } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { waitForUnitStatus } from './support/completeUnits.ts';
import { eventually, startStack, testLog, type Dialect, type Stack } from './support/stack.ts';

const FORM = { type: 'static-form', fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }] };

describe.each<Dialect>(['sqlite', 'postgresql'])('onboarding, screening and gold through the gateway on %s', (dialect) => {
  let stack: Stack;
  let gateway: Gateway;
  const sockets: AgentConnection[] = [];
  beforeAll(async () => {
    stack = await startStack(dialect);
    gateway = await startTestGateway(stack);
  });
  afterAll(async () => {
    for (const s of sockets) if (!s.closed) s.close();
    await gateway?.close();
    await stack?.stop();
  });

  const open = async (): Promise<AgentConnection> => {
    const conn = await connect(gateway);
    sockets.push(conn);
    return conn;
  };

  async function launchRunning(config: Record<string, unknown>): Promise<string> {
    const { runId } = await stack.operator.launch(config);
    await eventually(async () => ((await stack.operator.status(runId)).units.launched > 0 ? true : undefined), `run ${runId} launched`);
    return runId;
  }

  /** Register and expect a refusal (the gateway's `refused` packet). */
  async function refusedFor(conn: AgentConnection, runId: string, worker: string): Promise<RefusedPacket> {
    conn.register(runId, { worker_id: worker }, randomUUID());
    const reply = await conn.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'error', 60_000, 'register answer');
    if (reply.type !== 'refused') throw new Error(`expected a refusal for ${worker}, got ${JSON.stringify(reply)}`);
    return reply;
  }

  async function submitAndWait(agent: Pick<Registered, 'conn' | 'agentId'>, data: Record<string, unknown>): Promise<void> {
    await untilStatus(agent.conn, 'in_task');
    agent.conn.send({ type: 'submit', submitKey: `s-${agent.agentId}`, data });
    await untilStatus(agent.conn, 'completed');
  }

  async function grantOf(worker: string, qualification: string): Promise<number | undefined> {
    const em = stack.db.em();
    const w = await em.findOne(Worker, { provider: 'mock', providerWorkerId: worker });
    const q = await em.findOne(Qualification, { name: qualification });
    return w && q ? (await em.findOne(GrantedQualification, { worker: w.id, qualification: q.id }))?.value : undefined;
  }

  it('onboarding: pass continues to a unit in the same session, fail is refused now and on return, pre-grants 0 and 1', async () => {
    const task = `gw-onboard-${dialect}`;
    const qualification = `${task}-onboarded`;
    const quals = createQualificationService({ db: stack.db, settings: stack.settings, log: testLog });
    await quals.create({ name: qualification });
    await quals.grant({ name: qualification, provider: 'mock', providerWorkerId: 'gw-pre-0', value: 0 });
    await quals.grant({ name: qualification, provider: 'mock', providerWorkerId: 'gw-pre-1', value: 1 });
    const runId = await launchRunning(
      formConfig(
        {
          task_name: task,
          onboarding_qualification: qualification,
          blueprint: { ...FORM, onboarding: { fields: [{ name: 'answer', type: 'text' }], expected: { answer: '42' } } },
        },
        3,
      ),
    );
    const onboardingOf = async (conn: AgentConnection, worker: string, registrationKey: string): Promise<OnboardingPacket> => {
      conn.register(runId, { worker_id: worker }, registrationKey);
      const reply = await conn.expect((p) => p.type === 'onboarding' || p.type === 'agent' || p.type === 'refused' || p.type === 'error');
      if (reply.type !== 'onboarding') throw new Error(`expected onboarding for ${worker}, got ${JSON.stringify(reply)}`);
      return reply as OnboardingPacket;
    };

    // Pass: the socket drops during onboarding; registering again with the same key brings the
    // same onboarding back; the right answer leads straight to a unit, worked in the same session.
    const key = randomUUID();
    const dropped = await open();
    const first = await onboardingOf(dropped, 'gw-ann', key);
    expect(first.initData).toEqual({ onboarding: true, fields: [expect.objectContaining({ name: 'answer' })], instructions: null });
    dropped.drop();
    const ann = await open();
    expect((await onboardingOf(ann, 'gw-ann', key)).onboardingAgentId).toBe(first.onboardingAgentId);
    ann.send({ type: 'submit', submitKey: 'ob-1', data: { answer: '42' } });
    await ann.expect((p) => p.type === 'submit_ack');
    const unit = await ann.expect((p) => p.type === 'agent');
    expect(unit).toMatchObject({ initData: { data: { text: 'sentence 0' } } });
    await submitAndWait({ conn: ann, agentId: (unit as AgentPacket).agentId }, { label: 'positive' });
    expect(await grantOf('gw-ann', qualification)).toBe(1);
    // Onboarded: the next registration is a unit at once.
    expect(await register(ann, runId, 'gw-ann')).toMatchObject({ unitId: `${runId}-a1-u0` });

    // Fail: refused with not_qualified, and again when the worker comes back.
    const bob = await open();
    await onboardingOf(bob, 'gw-bob', randomUUID());
    bob.send({ type: 'submit', submitKey: 'ob-2', data: { answer: 'no idea' } });
    await bob.expect((p) => p.type === 'submit_ack');
    expect(await bob.expect((p) => p.type === 'refused')).toMatchObject({ reason: 'not_qualified' });
    expect(await grantOf('gw-bob', qualification)).toBe(0);
    expect(await refusedFor(await open(), runId, 'gw-bob')).toMatchObject({ reason: 'not_qualified' });

    // Pre-granted 0: refused without onboarding. Pre-granted 1: no onboarding at all.
    expect(await refusedFor(await open(), runId, 'gw-pre-0')).toMatchObject({ reason: 'not_qualified' });
    expect(await register(await open(), runId, 'gw-pre-1')).toMatchObject({ unitId: `${runId}-a2-u0` });
    const attempts = await stack.db.em().find(OnboardingAgent, { taskRun: runId }, { orderBy: { createdAt: 'asc' } });
    expect(attempts.map((a) => a.status).sort()).toEqual(['failed', 'passed']);
    await stack.operator.shutdown(runId);
  });

  it('screening: cap of 2, a place freed by a dropped socket, failed screen blocked, passed screen on to real units', async () => {
    const runId = await launchRunning(
      formConfig(
        {
          task_name: `gw-screen-${dialect}`,
          block_qualification: `gw-screen-${dialect}-blocked`,
          reconnect_window_seconds: 1,
          blueprint: { ...FORM, screening: { expected: { label: 'positive' } } },
          screening: {
            enabled: true,
            max_screening_units: 2,
            passed_qualification: `gw-screen-${dialect}-passed`,
            data: [{ text: 'screen' }],
          },
        },
        2,
      ),
    );
    const a = await register(await open(), runId, 'gw-a');
    const b = await register(await open(), runId, 'gw-b');
    expect(a.initData).toMatchObject({ data: { text: 'screen' } });
    const cConn = await open();
    expect(await refusedFor(cConn, runId, 'gw-c')).toMatchObject({
      reason: 'no_units_available',
      detail: expect.stringContaining('screening'),
    });

    // b's browser crashes: past the reconnect window its screening place is free for c.
    await untilStatus(b.conn, 'in_task');
    b.conn.drop();
    await waitForUnitStatus(stack.db, b.unitId, 'expired');
    const c = await register(cConn, runId, 'gw-c');
    expect(c.initData).toMatchObject({ data: { text: 'screen' } });

    await submitAndWait(a, { label: 'positive' });
    await submitAndWait(c, { label: 'negative' });
    expect(await grantOf('gw-a', `gw-screen-${dialect}-passed`)).toBe(1);
    expect(await grantOf('gw-c', `gw-screen-${dialect}-blocked`)).toBe(1);

    // The same sockets register again: c is blocked, a gets the run's real units.
    expect(await refusedFor(c.conn, runId, 'gw-c')).toMatchObject({ reason: 'blocked' });
    const real = await register(a.conn, runId, 'gw-a');
    expect(real.unitId).toBe(`${runId}-a0-u0`);
    expect(real.initData).toMatchObject({ data: { text: 'sentence 0' } });
    await submitAndWait(real, { label: 'negative' });
    await submitAndWait(await register(a.conn, runId, 'gw-a'), { label: 'positive' });
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final).toMatchObject({ status: 'completed', units: expect.objectContaining({ completed: 4, expired: 1 }) });
  });

  it('gold units look like any other, are counted, and the run is reviewed and exported exactly as submitted', async () => {
    const task = `gw-gold-${dialect}`;
    const runId = await launchRunning(
      formConfig(
        {
          task_name: task,
          blueprint: FORM,
          gold: {
            enabled: true,
            data: [{ input: { text: 'gold' }, expected: { label: 'positive' } }],
            min_golds: 1,
            max_incorrect_golds: 0,
          },
        },
        3,
      ),
    );
    // A worker who gets the gold wrong is out (max_incorrect_golds 0).
    const other = await open();
    const careless = await register(other, runId, 'gw-gold-careless');
    await submitAndWait(careless, { label: 'negative' });
    expect(await refusedFor(other, runId, 'gw-gold-careless')).toMatchObject({ reason: 'not_qualified' });

    // A careful one: the gold first, then the real units.
    const conn = await open();
    const submitted = new Map<string, Record<string, unknown>>();
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const agent = await register(conn, runId, 'gw-gold-worker');
      expect(agent.unitId).toMatch(new RegExp(`^${runId}-a\\d+-u0$`));
      expect(JSON.stringify(agent.initData)).not.toContain('expected');
      const text = (agent.initData as { data: { text: string } }).data.text;
      texts.push(text);
      const data = { label: text === 'gold' ? 'positive' : i % 2 ? 'positive' : 'negative' };
      await submitAndWait(agent, data);
      submitted.set(agent.unitId, data);
    }
    expect(texts).toEqual(['gold', 'sentence 0', 'sentence 1', 'sentence 2']);
    expect(await grantOf('gw-gold-worker', `${task}-correct-golds`)).toBe(1);
    expect(await grantOf('gw-gold-worker', `${task}-incorrect-golds`)).toBe(0);
    expect(await grantOf('gw-gold-careless', `${task}-incorrect-golds`)).toBe(1);
    expect(await stack.db.em().count(Unit, { taskRun: runId, kind: 'gold' })).toBe(2);

    await stack.operator.wait(runId, { pollMs: 200 });
    const reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
    const reviewed = await reviewer.review(runId, { decision: 'approve', all: true });
    expect(reviewed).toHaveLength(5);
    const chunks: string[] = [];
    await exportRunTo(stack.db, runId, new Writable({ write: (c, _e, done) => (chunks.push(String(c)), done()) }), { format: 'jsonl' });
    const rows = chunks
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as ExportRow);
    // The real units only, each with exactly what the worker sent over the socket.
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.data).toEqual(submitted.get(row.unit_id));
      expect(row).toMatchObject({ unit_status: 'accepted', review_decision: 'approve', provider_worker_id: 'gw-gold-worker' });
    }
  });
});
