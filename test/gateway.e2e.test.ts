/**
 * End to end over real WebSocket connections, a real Temporal server and PostgreSQL (outbox via
 * LISTEN/NOTIFY): simulated workers complete a run through two gateways; live updates cross between
 * gateways; a reconnect within the window resumes and receives what it missed exactly once; a
 * reconnect after the window is refused and the unit is relaunched; 200 registrations race for 50
 * units and no unit is given twice.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../gateway/server.ts';
import { Agent, OutboxMessage, Unit } from '../model/entities.ts';
import type { AgentConnection } from '../simulate/agentConnection.ts';
import { runSimulation } from '../simulate/simulate.ts';
import { connect, launchRunning, nextError, register, startTestGateway, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

describe('gateway end to end (PostgreSQL, two gateways)', () => {
  let stack: Stack;
  let one: Gateway;
  let two: Gateway;
  const sockets: AgentConnection[] = [];

  async function open(gateway: Gateway): Promise<AgentConnection> {
    const conn = await connect(gateway);
    sockets.push(conn);
    return conn;
  }

  beforeAll(async () => {
    stack = await startStack('postgresql');
    // A slow poll: deliveries across gateways must come from NOTIFY, not from polling.
    one = await startTestGateway(stack, { pollIntervalMs: 60_000, instanceId: 'gw-one' });
    two = await startTestGateway(stack, { pollIntervalMs: 60_000, instanceId: 'gw-two' });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await one?.close();
    await two?.close();
    await stack?.stop();
  });

  it('simulated workers split over two gateways complete a run; every unit is submitted exactly once', async () => {
    const runId = await launchRunning(stack, formConfig({ max_num_concurrent_units: 6 }, 24), 'some-launched');
    const summary = await runSimulation({ gatewayUrl: [one.url, two.url], runId, workers: 6, thinkMs: 20, timeoutMs: 180_000 });
    expect(summary.errors).toEqual([]);
    expect(summary.timedOut).toBe(false);
    expect(summary.submitted).toBe(24);
    expect(summary.workers.map((w) => w.finishedBecause)).toEqual(Array(6).fill('run_not_running'));
    // Both gateways carried agents.
    expect(new Set(summary.workers.filter((w) => w.submitted > 0).map((w) => Number(w.workerId.slice(4)) % 2)).size).toBe(2);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
    expect(final.units.completed).toBe(24);
    const agents = await stack.db.em().find(Agent, { taskRun: runId, status: 'completed' });
    expect(agents).toHaveLength(24);
    expect(new Set(agents.map((a) => a.unit.id)).size).toBe(24);
    for (const a of agents) expect(a.submission).toMatchObject({ label: expect.stringMatching(/^(positive|negative)$/) });
  });

  it('pairs of simulated workers exchange live updates, drop their connections and resume on the other gateway, and complete the run', async () => {
    const runId = await launchRunning(stack, formConfig({ units_per_assignment: 2 }, 12), 'some-launched');
    const summary = await runSimulation({
      gatewayUrl: [one.url, two.url],
      runId,
      workers: 6,
      thinkMs: 50,
      dropRate: 0.5,
      liveActions: 2,
      seed: 7,
      timeoutMs: 180_000,
    });
    expect(summary.errors).toEqual([]);
    expect(summary.submitted).toBe(24);
    expect(summary.drops).toBeGreaterThan(0);
    // Every dropped agent came back within the window and carried on.
    expect(summary.resumes).toBe(summary.drops);
    expect(summary.ended).toEqual({});
    expect(summary.liveSent).toBe(48);
    expect(summary.liveReceived).toBeGreaterThan(0);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final).toMatchObject({ status: 'completed', units: { completed: 24 } });
    const agents = await stack.db.em().find(Agent, { taskRun: runId });
    expect(agents).toHaveLength(24);
    expect(agents.every((a) => a.status === 'completed' && a.submission !== null)).toBe(true);
  });

  it('live updates reach the workflow and the partner on the other gateway; a reconnect within the window gets what it missed exactly once', async () => {
    const runId = await launchRunning(stack, formConfig({ units_per_assignment: 2 }, 1), 'some-launched');
    const a = await register(await open(one), runId, 'pat');
    const b = await register(await open(two), runId, 'quinn');
    expect(b.assignmentId).toBe(a.assignmentId);
    await untilStatus(a.conn, 'in_task');
    await untilStatus(b.conn, 'in_task');

    a.conn.send({ type: 'live', actionId: 'hello', data: { text: 'hi from pat' } });
    await b.conn.until(() => b.conn.lives.length === 1, 30_000, "pat's message at quinn");
    expect(b.conn.lives[0]).toMatchObject({ from: a.agentId, data: { text: 'hi from pat' } });
    await eventually(async () => {
      const row = await stack.db.em().findOneOrFail(Agent, a.agentId);
      return (row.state as { text?: string } | null)?.text === 'hi from pat' ? true : undefined;
    }, "the workflow to record pat's live state");

    // Pat's connection drops; Quinn talks meanwhile; Pat comes back on the other gateway.
    await a.conn.until(() => a.conn.lastSeq > 0);
    const lastSeq = a.conn.lastSeq;
    a.conn.drop();
    await eventually(
      async () =>
        (
          (await stack.env.client.workflow.getHandle(`assignment-${a.assignmentId}`).query('assignmentState')) as {
            agents: Array<{ agentId: string; connected: boolean }>;
          }
        ).agents.find((x) => x.agentId === a.agentId)?.connected === false
          ? true
          : undefined,
      'the workflow to see pat disconnected',
    );
    for (let i = 0; i < 3; i++) {
      b.conn.send({ type: 'live', actionId: `missed-${i}`, data: { text: `missed ${i}` } });
      await b.conn.expect((p) => p.type === 'live_ack' && p.actionId === `missed-${i}`);
    }
    await eventually(
      async () => ((await stack.db.em().count(OutboxMessage, { agent: a.agentId, kind: 'live' })) === 3 ? true : undefined),
      'the missed messages in the outbox',
    );

    const back = await open(two);
    back.resume(runId, a.agentId, a.token, lastSeq);
    const agentPacket = await back.expect((p) => p.type === 'agent');
    expect(agentPacket).toMatchObject({ agentId: a.agentId, resumed: true, status: 'in_task', state: { text: 'hi from pat' } });
    await back.until(() => back.lives.length === 3, 30_000, 'the three missed messages');
    expect(back.lives.map((l) => l.data.text)).toEqual(['missed 0', 'missed 1', 'missed 2']);
    const total = await stack.db.em().count(OutboxMessage, { agent: a.agentId });
    // Each missed message exactly once, in order, and nothing from before the drop again.
    expect(back.seqsReceived).toEqual(Array.from({ length: total - lastSeq }, (_, i) => lastSeq + 1 + i));
    await eventually(
      async () =>
        (
          (await stack.env.client.workflow.getHandle(`assignment-${a.assignmentId}`).query('assignmentState')) as {
            agents: Array<{ agentId: string; connected: boolean }>;
          }
        ).agents.find((x) => x.agentId === a.agentId)?.connected === true
          ? true
          : undefined,
      'the workflow to see pat back',
    );

    back.send({ type: 'submit', submitKey: 'pat-1', data: { label: 'positive' } });
    b.conn.send({ type: 'submit', submitKey: 'quinn-1', data: { label: 'negative' } });
    await untilStatus(back, 'completed');
    await untilStatus(b.conn, 'completed');
    expect(back.seqsReceived).toEqual([...new Set(back.seqsReceived)]);
    const final = await stack.operator.wait(runId, { pollMs: 200 });
    expect(final.status).toBe('completed');
  });

  it('a reconnect after the window is refused and the unit goes back to the pool for another worker', async () => {
    const runId = await launchRunning(stack, formConfig({ reconnect_window_seconds: 1 }, 1), 'some-launched');
    const rita = await register(await open(one), runId, 'rita');
    await untilStatus(rita.conn, 'in_task');
    rita.conn.drop();
    await eventually(
      async () => ((await stack.db.em().findOneOrFail(Agent, rita.agentId)).status === 'disconnect' ? true : undefined),
      'rita to be disconnected',
    );
    await eventually(
      async () => ((await stack.db.em().findOneOrFail(Unit, rita.unitId)).status === 'launched' ? true : undefined),
      'the unit to be launched again',
    );

    const late = await open(two);
    late.send({ type: 'resume', runId, agentId: rita.agentId, token: rita.token, lastSeq: 0 });
    expect(await nextError(late)).toMatchObject({ code: 'agent_ended', status: 'disconnect' });
    const sam = await register(await open(two), runId, 'sam');
    expect(sam.unitId).toBe(rita.unitId);
    // Rita may work again, as a new agent on a unit she has not had (none is left here).
    late.send({ type: 'register', runId, params: { worker_id: 'rita' }, registrationKey: randomUUID() });
    expect(await late.expect((p) => p.type === 'refused')).toMatchObject({ reason: 'no_units_available' });
  });

  it('200 registrations racing for 50 units: 50 assigned, each unit once, 150 refused; a retried register is the same agent', async () => {
    const runId = await launchRunning(stack, formConfig({}, 50), 'some-launched');
    const conns = await Promise.all(Array.from({ length: 200 }, (_, i) => open(i % 2 === 0 ? one : two)));
    const keys = conns.map(() => randomUUID());
    conns.forEach((c, i) => c.send({ type: 'register', runId, params: { worker_id: `racer-${i}` }, registrationKey: keys[i]! }));
    const replies = await Promise.all(
      conns.map((c) => c.expect((p) => p.type === 'agent' || p.type === 'refused' || p.type === 'error', 180_000, 'register answer')),
    );
    const assigned = replies.filter((r) => r.type === 'agent');
    const refused = replies.filter((r) => r.type === 'refused');
    expect(replies.filter((r) => r.type === 'error')).toEqual([]);
    expect(assigned).toHaveLength(50);
    expect(refused).toHaveLength(150);
    for (const r of refused) expect(r).toMatchObject({ reason: 'no_units_available' });
    expect(new Set(assigned.map((a) => (a.type === 'agent' ? a.unitId : ''))).size).toBe(50);
    expect(await stack.db.em().count(Agent, { taskRun: runId })).toBe(50);
    expect(await stack.db.em().count(Unit, { taskRun: runId, status: 'assigned' })).toBe(50);

    // The same worker and key again, on the other gateway: the same agent, no new row.
    const i = replies.findIndex((r) => r.type === 'agent');
    const again = await register(await open(i % 2 === 0 ? two : one), runId, `racer-${i}`, keys[i]!);
    expect(again.agentId).toBe((replies[i] as { agentId: string }).agentId);
    expect(await stack.db.em().count(Agent, { taskRun: runId })).toBe(50);
    for (const c of conns) c.close();
    await stack.operator.shutdown(runId);
  });
});
