/**
 * Hostile and careless clients against the real gateway, Temporal and each database (issue 15):
 * strings the database cannot store, object keys that are JavaScript names, two submits at once,
 * live state across a resume, size budgets, two sockets as one agent across gateways, retried
 * registers, onboarding decided once, acknowledged submits across a worker crash, malformed HTTP
 * requests, cross-origin sockets and the task page's content policy.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AgentPacket, OnboardingPacket } from '../gateway/protocol.ts';
import type { Gateway } from '../gateway/server.ts';
import { Agent, Unit } from '../model/entities.ts';
import { createQualificationService } from '../qualifications/service.ts';
import { type AgentConnection, ConnectionLost } from '../simulate/agentConnection.ts';
import { assignmentWorkflowId, requestUnitUpdate, taskRunWorkflowId } from '../workflows/definitions.ts';
import { canonicalJson, connect, expectUnchanged, launchRunning, nextError, register, snapshot, startTestGateway, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { type Dialect, eventually, startStack, type Stack, testLog } from './support/stack.ts';

/** Strings neither database stores exactly, each with its class. */
export const UNSTORABLE: ReadonlyArray<[string, string]> = [
  ['NUL', 'a\u0000b'],
  ['NUL alone', '\u0000'],
  ['lone high surrogate', 'x\ud800'],
  ['lone low surrogate', '\udc00y'],
  ['reversed pair', '\udc00\ud800'],
];

const LIVE_BUDGET = 24 * 1024;
const LIVE_PACKET_LIMIT = 8 * 1024;

describe.each<Dialect>(['sqlite', 'postgresql'])('hostile clients through the gateway on %s', (dialect) => {
  let stack: Stack;
  let gwA: Gateway;
  let gwB: Gateway;
  const sockets: AgentConnection[] = [];

  beforeAll(async () => {
    stack = await startStack(dialect);
    const limits = { packetsPerSecond: 1000, packetBurst: 1000, maxLiveDataBytes: LIVE_PACKET_LIMIT, maxLiveBytesPerAgent: LIVE_BUDGET };
    gwA = await startTestGateway(stack, { limits, heartbeatMs: 300, deadAfterMs: 60_000 });
    gwB = await startTestGateway(stack, { limits, heartbeatMs: 300, deadAfterMs: 60_000, allowedOrigins: ['https://tasks.example.org'] });
  });
  afterAll(async () => {
    for (const s of sockets) if (!s.closed) s.close();
    await gwA?.close();
    await gwB?.close();
    await stack?.stop();
  });

  async function open(gateway: Gateway = gwA): Promise<AgentConnection> {
    const conn = await connect(gateway);
    sockets.push(conn);
    return conn;
  }

  async function working(runId: string, workerId: string, gateway: Gateway = gwA) {
    const agent = await register(await open(gateway), runId, workerId);
    await untilStatus(agent.conn, 'in_task');
    return agent;
  }

  async function agentRow(agentId: string) {
    return stack.db.em().findOneOrFail(Agent, agentId);
  }

  /** Resume on a new socket of `gateway`; the agent packet. */
  async function resumeOn(gateway: Gateway, runId: string, agent: { agentId: string; token: string }): Promise<{ conn: AgentConnection; packet: AgentPacket }> {
    const conn = await open(gateway);
    conn.resume(runId, agent.agentId, agent.token, 0);
    const packet = await conn.expect<AgentPacket>((p) => p.type === 'agent' || p.type === 'error', 60_000, 'resume answer');
    if (packet.type !== 'agent') throw new Error(`resume answered ${JSON.stringify(packet)}`);
    return { conn, packet };
  }

  it('strings the database cannot store are refused with bad_packet naming the field; nothing changes and the run serves others', async () => {
    const runId = await launchRunning(stack, formConfig({}, 3));
    const agent = await working(runId, 'careful');
    const stranger = await open();
    const before = await snapshot(stack.db);
    for (const [what, bad] of UNSTORABLE) {
      const cases: Array<[Record<string, unknown>, AgentConnection, string]> = [
        [{ type: 'register', runId, params: { worker_id: 'w1' }, registrationKey: bad }, stranger, 'registrationKey'],
        [{ type: 'register', runId, params: { worker_id: bad }, registrationKey: 'k' }, stranger, 'params.worker_id'],
        [{ type: 'register', runId, params: { [bad]: 'w1' }, registrationKey: 'k' }, stranger, 'params'],
        [{ type: 'register', runId: bad, params: { worker_id: 'w1' }, registrationKey: 'k' }, stranger, 'runId'],
        [{ type: 'resume', runId, agentId: agent.agentId, token: bad, lastSeq: 0 }, stranger, 'token'],
        [{ type: 'live', actionId: bad, data: {} }, agent.conn, 'actionId'],
        [{ type: 'live', actionId: 'a', data: { draft: bad } }, agent.conn, 'data.draft'],
        [{ type: 'live', actionId: 'a', data: { nested: [{ [bad]: 1 }] } }, agent.conn, 'data.nested.0'],
        [{ type: 'submit', submitKey: bad, data: { label: 'positive' } }, agent.conn, 'submitKey'],
        [{ type: 'submit', submitKey: 's', data: { label: 'positive', note: bad } }, agent.conn, 'data.note'],
      ];
      for (const [packet, conn, field] of cases) {
        conn.send(packet);
        const error = await nextError(conn);
        expect(error.code, `${what} in ${field}`).toBe('bad_packet');
        expect(error.message, `${what} in ${field}`).toContain(field);
      }
    }
    // Numbers JSON cannot carry back (1e400 parses as Infinity) and nesting past the bound.
    agent.conn.sendRaw('{"v":1,"type":"live","actionId":"n","data":{"x":1e400}}');
    expect(await nextError(agent.conn)).toMatchObject({ code: 'bad_packet', message: expect.stringContaining('data.x') });
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    agent.conn.send({ type: 'live', actionId: 'deep', data: deep as Record<string, unknown> });
    expect(await nextError(agent.conn)).toMatchObject({ code: 'bad_packet', message: expect.stringContaining('nested deeper') });
    await expectUnchanged(stack.db, before);

    // The run's workflow refuses such a request itself, whoever sends it: it can never stall the run.
    const handle = stack.env.client.workflow.getHandle(taskRunWorkflowId(runId));
    for (const [, bad] of UNSTORABLE) {
      await expect(handle.executeUpdate(requestUnitUpdate, { args: [{ provider: 'mock', providerWorkerId: 'w-bad', registrationKey: bad }] })).rejects.toThrow();
      await expect(handle.executeUpdate(requestUnitUpdate, { args: [{ provider: 'mock', providerWorkerId: bad, registrationKey: 'k' }] })).rejects.toThrow();
    }
    const other = await working(runId, 'next-in-line', gwB);
    other.conn.send({ type: 'submit', submitKey: 'ok', data: { label: 'negative' } });
    await untilStatus(other.conn, 'completed');
    await stack.operator.shutdown(runId);
    await eventually(async () => ((await stack.operator.status(runId)).status === 'cancelled' ? true : undefined), 'the shutdown to finish');
  });

  it('keys such as __proto__, constructor and toString round-trip exactly in live state, and a partner receives them', async () => {
    const runId = await launchRunning(stack, formConfig({ units_per_assignment: 2 }, 1));
    const [a, b] = await Promise.all([register(await open(), runId, 'proto-a'), register(await open(gwB), runId, 'proto-b')]);
    await Promise.all([untilStatus(a.conn, 'in_task'), untilStatus(b.conn, 'in_task')]);
    const text =
      '{"__proto__":{"polluted":true},"constructor":"c","toString":"t","hasOwnProperty":1,"valueOf":[null],"nested":{"__proto__":[1,{"constructor":{}}]},"":"empty","é\\ud83d\\ude00":"pair"}';
    a.conn.sendRaw(`{"v":1,"type":"live","actionId":"p1","data":${text}}`);
    await a.conn.expect((p) => p.type === 'live_ack' && p.actionId === 'p1');
    // Exactly the same keys and values; objects are unordered (PostgreSQL's jsonb sorts their keys).
    const exact = canonicalJson;
    const expected = exact(JSON.parse(text));
    await b.conn.until(() => b.conn.lives.some((l) => exact(l.data) === expected), 60_000, 'the partner to receive the live data exactly');
    const { packet } = await resumeOn(gwB, runId, a);
    expect(exact(packet.state)).toBe(expected);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await stack.operator.shutdown(runId);
  });

  it('two different submits in quick succession: the first is acknowledged and stored, the second refused, on one socket and across gateways', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const one = await working(runId, 'double-1');
    one.conn.send({ type: 'submit', submitKey: 'first', data: { label: 'positive' } });
    one.conn.send({ type: 'submit', submitKey: 'second', data: { label: 'negative' } });
    await one.conn.expect((p) => p.type === 'submit_ack' && p.submitKey === 'first');
    expect(await nextError(one.conn)).toMatchObject({ code: 'already_submitted', id: 'second' });
    await untilStatus(one.conn, 'completed');
    expect(await agentRow(one.agentId)).toMatchObject({ submitKey: 'first', submission: { label: 'positive' } });

    // The same agent on two gateways: the one bound last alone may submit; once acked, no other key is.
    const two = await working(runId, 'double-2');
    const { conn: twin } = await resumeOn(gwB, runId, two);
    two.conn.send({ type: 'submit', submitKey: 'stale', data: { label: 'positive' } });
    twin.send({ type: 'submit', submitKey: 'fresh', data: { label: 'negative' } });
    await twin.expect((p) => p.type === 'submit_ack' && p.submitKey === 'fresh');
    expect(two.conn.queued().some((p) => p.type === 'submit_ack')).toBe(false);
    twin.send({ type: 'submit', submitKey: 'again', data: { label: 'positive' } });
    expect(await nextError(twin)).toMatchObject({ code: 'already_submitted', id: 'again' });
    await untilStatus(twin, 'completed');
    expect(await agentRow(two.agentId)).toMatchObject({ submitKey: 'fresh', submission: { label: 'negative' } });
    await stack.operator.shutdown(runId);
  });

  it('a resume shows the last acknowledged live state: right after one live_ack, and after a flood of 300', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const agent = await working(runId, 'flooder');
    agent.conn.send({ type: 'live', actionId: 'only', data: { draft: 'just acked' } });
    await agent.conn.expect((p) => p.type === 'live_ack' && p.actionId === 'only');
    agent.conn.drop();
    const first = await resumeOn(gwB, runId, agent);
    expect(first.packet.state).toEqual({ draft: 'just acked' });

    for (let i = 1; i <= 300; i++) first.conn.send({ type: 'live', actionId: `f-${i}`, data: { n: i } });
    let lastAcked = 0;
    await first.conn.until(
      () => {
        for (const p of first.conn.queued()) if (p.type === 'live_ack') lastAcked = Math.max(lastAcked, Number(p.actionId.slice(2)));
        return lastAcked === 300;
      },
      120_000,
      'all 300 live_acks',
    );
    first.conn.drop();
    const second = await resumeOn(gwA, runId, agent);
    expect(second.packet.state).toEqual({ n: 300 });
    // None of it went through the assignment workflow's history (which Temporal bounds).
    const history = await stack.env.client.workflow.getHandle(assignmentWorkflowId(agent.assignmentId)).fetchHistory();
    const signals = (history.events ?? []).map((e) => e.workflowExecutionSignaledEventAttributes?.signalName).filter(Boolean);
    expect(signals).not.toContain('agentAction');
    expect(history.events!.length).toBeLessThan(100);
    await stack.operator.shutdown(runId);
  });

  it('live data past the size bounds is refused with a clear error; the agent can still submit and its unit completes', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const agent = await working(runId, 'big-sender');
    agent.conn.send({ type: 'live', actionId: 'huge', data: { blob: 'x'.repeat(LIVE_PACKET_LIMIT + 1) } });
    expect(await nextError(agent.conn, 'too_large')).toMatchObject({ id: 'huge', message: expect.stringContaining(`${LIVE_PACKET_LIMIT} bytes`) });
    // Budget: packets of ~6 KiB until the agent's total is spent.
    const perPacket = Buffer.byteLength(JSON.stringify({ blob: 'y'.repeat(6 * 1024), sent: 1 }));
    let sent = 0;
    for (;;) {
      const actionId = `chunk-${++sent}`;
      agent.conn.send({ type: 'live', actionId, data: { blob: 'y'.repeat(6 * 1024), sent } });
      const answer = await agent.conn.expect((p) => (p.type === 'live_ack' && p.actionId === actionId) || (p.type === 'error' && p.id === actionId));
      if (answer.type === 'error') {
        expect(answer.code).toBe('quota_exceeded');
        break;
      }
      expect(sent).toBeLessThan(10);
    }
    expect(sent).toBe(Math.floor(LIVE_BUDGET / perPacket) + 1);
    const row = await agentRow(agent.agentId);
    expect(row.liveBytes).toBeLessThanOrEqual(LIVE_BUDGET);
    expect((row.state as { sent: number }).sent).toBe(sent - 1);
    agent.conn.send({ type: 'submit', submitKey: 'done', data: { label: 'positive' } });
    await untilStatus(agent.conn, 'completed');
    expect((await stack.db.em().findOneOrFail(Unit, agent.unitId)).status).toBe('completed');
    await stack.operator.shutdown(runId);
  });

  it('after a resume on another gateway the old socket is told and closed (4001) and nothing it sends is acknowledged', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const agent = await working(runId, 'two-tabs');
    const oldClosed = new Promise<number>((resolve) => agent.conn.ws.once('close', (code) => resolve(code)));
    const { conn: fresh } = await resumeOn(gwB, runId, agent);
    // The old socket may already be closed by the gateway's own check; if not, its packet is refused.
    const answer = await Promise.resolve()
      .then(() => agent.conn.send({ type: 'live', actionId: 'from-old', data: { draft: 'old tab' } }))
      .then(() => agent.conn.expect((p) => p.type === 'live_ack' || p.type === 'error', 30_000, 'an answer to the old socket'))
      .catch((err: unknown) => err);
    if (!(answer instanceof ConnectionLost)) expect(answer).toMatchObject({ type: 'error', code: 'agent_ended' });
    expect(await oldClosed).toBe(4001);
    expect((await agentRow(agent.agentId)).state).toBeNull();
    fresh.send({ type: 'live', actionId: 'from-new', data: { draft: 'new tab' } });
    await fresh.expect((p) => p.type === 'live_ack' && p.actionId === 'from-new');
    expect((await agentRow(agent.agentId)).state).toEqual({ draft: 'new tab' });

    // Without any packet from the old socket: the gateway notices by itself and closes it.
    const quiet = await working(runId, 'quiet-tab');
    const quietClosed = new Promise<number>((resolve) => quiet.conn.ws.once('close', (code) => resolve(code)));
    await resumeOn(gwB, runId, quiet);
    expect(await quietClosed).toBe(4001);
    await stack.operator.shutdown(runId);
  });

  it('a retried register (same key, another gateway) is the same agent with resumed: true; a first register says false', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const key = randomUUID();
    const firstConn = await open();
    firstConn.register(runId, { worker_id: 'retrier' }, key);
    const first = await firstConn.expect<AgentPacket>((p) => p.type === 'agent' || p.type === 'error' || p.type === 'refused');
    expect(first).toMatchObject({ type: 'agent', resumed: false });
    const conn = await open(gwB);
    conn.register(runId, { worker_id: 'retrier' }, key);
    const again = await conn.expect<AgentPacket>((p) => p.type === 'agent' || p.type === 'error' || p.type === 'refused');
    expect(again).toMatchObject({ type: 'agent', agentId: first.agentId, resumed: true });
    const fresh = await open();
    fresh.register(runId, { worker_id: 'newcomer' }, randomUUID());
    expect(await fresh.expect((p) => p.type === 'agent')).toMatchObject({ resumed: false });
    await stack.operator.shutdown(runId);
  });

  it('onboarding: after a pass the same key brings the unit, not the form; answers sent back to back are decided once, in order', async () => {
    const qualification = `hostile-onboarded-${dialect}`;
    await createQualificationService({ db: stack.db, settings: stack.settings, log: testLog }).create({ name: qualification });
    const runId = await launchRunning(
      stack,
      formConfig(
        {
          onboarding_qualification: qualification,
          blueprint: {
            type: 'static-form',
            fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }],
            onboarding: { fields: [{ name: 'answer', type: 'text' }], expected: { answer: '42' } },
          },
        },
        3,
      ),
    );
    const key = randomUUID();
    const conn = await open();
    conn.register(runId, { worker_id: 'learner' }, key);
    await conn.expect<OnboardingPacket>((p) => p.type === 'onboarding');
    conn.send({ type: 'submit', submitKey: 'ob-1', data: { answer: '42' } });
    conn.send({ type: 'submit', submitKey: 'ob-2', data: { answer: 'wrong' } });
    await conn.expect((p) => p.type === 'submit_ack' && p.submitKey === 'ob-1');
    expect(await nextError(conn)).toMatchObject({ code: 'already_submitted', id: 'ob-2' });
    const unit = await conn.expect<AgentPacket>((p) => p.type === 'agent' || p.type === 'refused');
    expect(unit.type).toBe('agent');
    // The page reloads before it saw the unit: the same key brings that unit, never the form again.
    const reload = await open(gwB);
    reload.register(runId, { worker_id: 'learner' }, key);
    expect(await reload.expect((p) => p.type === 'agent' || p.type === 'onboarding' || p.type === 'refused')).toMatchObject({
      type: 'agent',
      agentId: unit.agentId,
      resumed: true,
    });

    // One worker, two sessions (two keys) at once: one onboarding, one verdict for both answers.
    const [s1, s2] = [await open(), await open(gwB)];
    s1.register(runId, { worker_id: 'two-faced' }, randomUUID());
    s2.register(runId, { worker_id: 'two-faced' }, randomUUID());
    const [o1, o2] = await Promise.all([s1, s2].map((s) => s.expect<OnboardingPacket>((p) => p.type === 'onboarding')));
    expect(o1!.onboardingAgentId).toBe(o2!.onboardingAgentId);
    s1.send({ type: 'submit', submitKey: 'wrong', data: { answer: 'no idea' } });
    s2.send({ type: 'submit', submitKey: 'right', data: { answer: '42' } });
    const verdicts = await Promise.all([s1, s2].map((s) => s.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'error')));
    expect(verdicts[0]!.type).toBe(verdicts[1]!.type);
    const later = await open();
    later.register(runId, { worker_id: 'two-faced' }, randomUUID());
    const laterAnswer = await later.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'onboarding');
    if (verdicts[0]!.type === 'refused') expect(laterAnswer).toMatchObject({ type: 'refused', reason: 'not_qualified' });
    else expect(laterAnswer.type === 'onboarding' || (laterAnswer.type === 'refused' && laterAnswer.reason === 'not_qualified')).toBe(false);
    await stack.operator.shutdown(runId);
  });

  it('after a worker crash, an agent whose submit was acknowledged does not resume as in_task, and the submission is stored', async () => {
    const runId = await launchRunning(stack, formConfig({}, 2));
    const agent = await working(runId, 'crash-victim');
    await stack.stopWorker();
    let resumed: AgentConnection | undefined;
    try {
      agent.conn.send({ type: 'submit', submitKey: 'before-crash', data: { label: 'negative' } });
      await agent.conn.expect((p) => p.type === 'submit_ack');
      agent.conn.drop();
      const { conn, packet } = await resumeOn(gwB, runId, agent);
      resumed = conn;
      expect(packet.status).not.toBe('in_task');
      expect(packet.status).toBe('completed');
      // A client that missed the ack sends the same submission again: acknowledged again; another is not.
      conn.send({ type: 'submit', submitKey: 'before-crash', data: { label: 'negative' } });
      await conn.expect((p) => p.type === 'submit_ack' && p.submitKey === 'before-crash');
      conn.send({ type: 'submit', submitKey: 'another', data: { label: 'positive' } });
      expect(await nextError(conn)).toMatchObject({ code: 'already_submitted', id: 'another' });
    } finally {
      await stack.startWorker();
    }
    await eventually(async () => ((await agentRow(agent.agentId)).status === 'completed' ? true : undefined), 'the submission to be stored');
    expect(await agentRow(agent.agentId)).toMatchObject({ submitKey: 'before-crash', submission: { label: 'negative' } });
    // Once stored, the same submission sent again on that socket is still acknowledged (stored once).
    await untilStatus(resumed!, 'completed');
    resumed!.send({ type: 'submit', submitKey: 'before-crash', data: { label: 'negative' } });
    await resumed!.expect((p) => p.type === 'submit_ack' && p.submitKey === 'before-crash');
    await stack.operator.shutdown(runId);
  });

  it('malformed HTTP requests are clean 4xx without internals; the task page carries its content and frame policy', async () => {
    const runId = await launchRunning(stack, formConfig({}, 1));
    for (const bad of ['%00', 'a%00b', '%ED%A0%80', '%E0%A4%A', '%uD800', 'x'.repeat(101), `${runId}%00`]) {
      const res = await fetch(`${gwA.url}/task/${bad}`);
      const body = await res.text();
      expect(res.status, bad).toBeGreaterThanOrEqual(400);
      expect(res.status, bad).toBeLessThan(500);
      expect(body, bad).not.toMatch(/SQL|sqlite|postgres|select |stack|at .*\.ts|\/work\//i);
    }
    const page = await fetch(`${gwA.url}/task/${runId}?worker_id=w`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    await stack.operator.shutdown(runId);
  });

  it('WebSockets from pages of other origins are refused; the gateway origin, configured origins and non-browser clients are served', async () => {
    const tryOrigin = (gateway: Gateway, origin?: string): Promise<'open' | number> =>
      new Promise((resolve) => {
        const ws = new WebSocket(gateway.wsUrl, origin ? { origin } : {});
        ws.once('open', () => {
          ws.close();
          resolve('open');
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => undefined);
      });
    expect(await tryOrigin(gwA, 'https://evil.example')).toBe(403);
    expect(await tryOrigin(gwA, 'null')).toBe(403);
    expect(await tryOrigin(gwA, new URL(gwA.url).origin)).toBe('open');
    expect(await tryOrigin(gwA)).toBe('open');
    expect(await tryOrigin(gwB, 'https://tasks.example.org')).toBe('open');
    expect(await tryOrigin(gwB, 'https://evil.example')).toBe(403);
  });
});
