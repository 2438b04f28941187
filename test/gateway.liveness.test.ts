/**
 * Gateway liveness (gateway/liveness.ts) with real gateway processes (`node gateway/main.ts`) on one
 * database, SQLite and PostgreSQL: gateway A is killed with SIGKILL while it holds agents, so it can
 * send no `agentDisconnected`. Gateway B notices A's heartbeat stopped and starts those agents'
 * reconnect windows in its place:
 * - an agent that never comes back ends `disconnect` and its unit goes back to the pool one reconnect
 *   window after the crash (not at the end of the 15-minute assignment), and another worker takes it
 *   through B;
 * - agents that resume on B, before B noticed A died or after it started their window, keep their
 *   units and submit them.
 * Below those, the database side alone (both dialects, the signal sender recorded): leases written
 * before a socket's signals go and removed after; two sweepers racing over a dead gateway's leases
 * send one disconnect per dead connection; a gateway that only stalled is not declared dead while
 * it beats, and once declared dead it closes the sockets it held and carries on as a new incarnation.
 */
import type { SignalDefinition } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayConnection } from '../gateway/connection.ts';
import { DeadGatewaySweep } from '../gateway/deadGatewaySweep.ts';
import { InstanceLease } from '../gateway/instanceLease.ts';
import { DEFAULT_LIMITS } from '../gateway/protocol.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { Agent, Assignment, GatewayInstance, GatewayLease, Task, TaskRun, Unit, Worker } from '../model/entities.ts';
import type { AgentStatus } from '../model/status.ts';
import type { AgentConnection } from '../simulate/agentConnection.ts';
import type { AssignmentStateView } from '../workflows/definitions.ts';
import { type GatewayProcess, connect, launchRunning, nextError, register, startGatewayProcess, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { livenessSettings } from '../gateway/livenessSettings.ts';
import { createTestDatabase } from './support/databases.ts';
import { type Dialect, eventually, startStack, type Stack, testLog } from './support/stack.ts';
import { startTestTemporal } from './support/temporal.ts';

/** Short liveness intervals for the gateway processes: A is declared dead ~2 s after it stops beating. */
const HEARTBEAT_MS = 400;
const DEAD_AFTER_MS = 2_000;
/** Far beyond the test: a unit released before this came through the reconnect window. */
const ASSIGNMENT_SECONDS = 900;

/** `hitloop gateway` as a process of its own (so it can be SIGKILLed), with short liveness intervals. */
function startLivenessGateway(stack: Stack): Promise<GatewayProcess> {
  return startGatewayProcess(stack, {
    env: { HITLOOP_GATEWAY_HEARTBEAT_MS: String(HEARTBEAT_MS), HITLOOP_GATEWAY_DEAD_AFTER_MS: String(DEAD_AFTER_MS) },
  });
}

describe('gateway liveness settings', () => {
  it('take code over environment over defaults, and refuse values that would declare live gateways dead', () => {
    expect(livenessSettings({}, {})).toEqual({ heartbeatMs: 5_000, deadAfterMs: 20_000 });
    expect(livenessSettings({}, { HITLOOP_GATEWAY_HEARTBEAT_MS: '250' })).toEqual({ heartbeatMs: 250, deadAfterMs: 1_000 });
    expect(livenessSettings({ deadAfterMs: 900 }, { HITLOOP_GATEWAY_HEARTBEAT_MS: '300', HITLOOP_GATEWAY_DEAD_AFTER_MS: '5000' })).toEqual({
      heartbeatMs: 300,
      deadAfterMs: 900,
    });
    expect(() => livenessSettings({}, { HITLOOP_GATEWAY_HEARTBEAT_MS: '1.5s' })).toThrow(
      /HITLOOP_GATEWAY_HEARTBEAT_MS must be a whole number of milliseconds > 0; got '1.5s'/,
    );
    expect(() => livenessSettings({}, { HITLOOP_GATEWAY_HEARTBEAT_MS: '1000', HITLOOP_GATEWAY_DEAD_AFTER_MS: '1500' })).toThrow(
      /at least 2 heartbeat intervals .* set 1500 ms: raise HITLOOP_GATEWAY_DEAD_AFTER_MS/,
    );
    expect(() => livenessSettings({ heartbeatMs: 10 }, {})).toThrow(/at least 50 ms; the gateway options set 10 ms/);
  });
});

describe('gateway liveness: a gateway killed with SIGKILL', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  describe.each<Dialect>(['sqlite', 'postgresql'])('%s', (dialect) => {
    let stack: Stack;
    let b: GatewayProcess;
    const gateways: GatewayProcess[] = [];
    const sockets: AgentConnection[] = [];

    async function open(gateway: GatewayProcess): Promise<AgentConnection> {
      const conn = await connect(gateway.wsUrl);
      sockets.push(conn);
      return conn;
    }

    async function startGateway(): Promise<GatewayProcess> {
      const g = await startLivenessGateway(stack);
      gateways.push(g);
      return g;
    }

    async function assignmentAgent(assignmentId: string, agentId: string) {
      const view = await stack.env.client.workflow.getHandle(`assignment-${assignmentId}`).query<AssignmentStateView>('assignmentState');
      const agent = view.agents.find((a) => a.agentId === agentId);
      if (!agent) throw new Error(`assignment ${assignmentId} has no agent ${agentId}: ${JSON.stringify(view)}`);
      return agent;
    }

    /** The lease gateway A wrote for the agent (its incarnation says which heartbeat row is A's). */
    async function leaseOf(agentId: string): Promise<GatewayLease> {
      return eventually(async () => (await stack.db.em().findOne(GatewayLease, { agentId })) ?? undefined, `a lease for agent ${agentId}`);
    }

    /** B has claimed and handled every lease of A's incarnation, then forgotten A's heartbeat row. */
    async function untilSwept(incarnation: string): Promise<void> {
      await eventually(
        async () => {
          const leases = await stack.db.em().count(GatewayLease, { instance: incarnation });
          const rows = await stack.db.em().count(GatewayInstance, { id: incarnation });
          return leases === 0 && rows === 0 ? true : undefined;
        },
        `gateway B to sweep the leases of the dead gateway ${incarnation}`,
        90_000,
      );
    }

    beforeAll(async () => {
      stack = await startStack(dialect, { env });
      b = await startGateway();
    });
    afterAll(async () => {
      for (const s of sockets) if (!s.closed) s.close();
      for (const g of gateways) await g.stop();
      await stack?.stop();
    });

    it('an agent that never comes back ends `disconnect` one reconnect window after the crash; its unit goes back to the pool and another worker takes it through B', async () => {
      const runId = await launchRunning(
        stack,
        formConfig({ reconnect_window_seconds: 2, assignment_duration_seconds: ASSIGNMENT_SECONDS }, 1),
      );
      const a = await startGateway();
      const wanda = await register(await open(a), runId, 'wanda');
      await untilStatus(wanda.conn, 'in_task');
      const lease = await leaseOf(wanda.agentId);
      expect(lease).toMatchObject({ assignmentId: wanda.assignmentId, claimedBy: null });

      const killedAt = Date.now();
      await a.kill();
      await eventually(async () => (wanda.conn.closed ? true : undefined), "wanda's socket to die with gateway A");

      // Wanda never comes back. Her unit is released by the reconnect window, long before the assignment ends.
      const ended = await eventually(
        async () => {
          const row = await stack.db.em().findOneOrFail(Agent, wanda.agentId);
          return row.status === 'disconnect' || row.status === 'timeout' ? row.status : undefined;
        },
        'wanda to be released',
        90_000,
      );
      const releasedAfterMs = Date.now() - killedAt;
      expect(ended).toBe('disconnect');
      expect((await stack.db.em().findOneOrFail(Unit, wanda.unitId)).status).toBe('launched');
      expect(releasedAfterMs).toBeLessThan((ASSIGNMENT_SECONDS * 1000) / 10);
      console.info(
        `[${dialect}] killed gateway A: wanda's unit back in the pool after ${releasedAfterMs} ms (window 2 s, heartbeat ${HEARTBEAT_MS} ms, dead after ${DEAD_AFTER_MS} ms)`,
      );
      await untilSwept(lease.instance);

      // Xavier takes the unit through B and submits it.
      const xavier = await register(await open(b), runId, 'xavier');
      expect(xavier.unitId).toBe(wanda.unitId);
      await untilStatus(xavier.conn, 'in_task');
      xavier.conn.send({ type: 'submit', submitKey: 'xavier-1', data: { label: 'positive' } });
      await untilStatus(xavier.conn, 'completed');
      expect((await stack.db.em().findOneOrFail(Unit, wanda.unitId)).status).toBe('completed');

      // Wanda, too late, is told how her agent ended.
      const late = await open(b);
      late.resume(runId, wanda.agentId, wanda.token, wanda.conn.lastSeq);
      expect(await nextError(late)).toMatchObject({ code: 'agent_ended', status: 'disconnect' });
    });

    it('agents that resume on B within the window keep their units: one before B noticed the crash, one after B started its window', async () => {
      const runId = await launchRunning(
        stack,
        formConfig({ reconnect_window_seconds: 60, assignment_duration_seconds: ASSIGNMENT_SECONDS }, 2),
      );
      const a = await startGateway();
      const yara = await register(await open(a), runId, 'yara');
      const zed = await register(await open(a), runId, 'zed');
      await untilStatus(yara.conn, 'in_task');
      await untilStatus(zed.conn, 'in_task');
      const lease = await leaseOf(yara.agentId);
      expect((await leaseOf(zed.agentId)).instance).toBe(lease.instance);

      await a.kill();
      await eventually(async () => (yara.conn.closed && zed.conn.closed ? true : undefined), 'the sockets to die with gateway A');

      // Yara resumes on B at once: the disconnect B later sends for her dead connection is older than her resume.
      const yaraBack = await open(b);
      yaraBack.resume(runId, yara.agentId, yara.token, yara.conn.lastSeq);
      expect(await yaraBack.expect((p) => p.type === 'agent')).toMatchObject({ agentId: yara.agentId, resumed: true, status: 'in_task' });
      const resumedBeforeSweep = !(await stack.db.em().findOne(GatewayInstance, lease.instance))?.declaredDeadBy;

      // Zed waits until B has started his reconnect window, then resumes within it.
      await eventually(
        async () => {
          const view = await assignmentAgent(zed.assignmentId, zed.agentId);
          return !view.connected && view.reconnectDeadline !== null ? true : undefined;
        },
        "gateway B to start zed's reconnect window",
        90_000,
      );
      const zedBack = await open(b);
      zedBack.resume(runId, zed.agentId, zed.token, zed.conn.lastSeq);
      expect(await zedBack.expect((p) => p.type === 'agent')).toMatchObject({ agentId: zed.agentId, resumed: true, status: 'in_task' });

      await untilSwept(lease.instance);
      for (const agent of [yara, zed]) {
        await eventually(async () => {
          const view = await assignmentAgent(agent.assignmentId, agent.agentId);
          return view.connected && view.reconnectDeadline === null ? view : undefined;
        }, `agent ${agent.agentId} to be connected with no reconnect window running`);
      }
      console.info(`[${dialect}] yara resumed ${resumedBeforeSweep ? 'before' : 'after'} gateway B declared A dead`);

      for (const agent of [yara, zed]) {
        expect((await stack.db.em().findOneOrFail(Agent, agent.agentId)).status).toBe('in_task');
        expect((await stack.db.em().findOneOrFail(Unit, agent.unitId)).status).toBe('assigned');
      }
      yaraBack.send({ type: 'submit', submitKey: 'yara-1', data: { label: 'positive' } });
      zedBack.send({ type: 'submit', submitKey: 'zed-1', data: { label: 'negative' } });
      await untilStatus(yaraBack, 'completed');
      await untilStatus(zedBack, 'completed');
      const final = await stack.operator.wait(runId, { pollMs: 200 });
      expect(final).toMatchObject({ status: 'completed', units: { completed: 2 } });
    });
  });
});

describe.each<Dialect>(['sqlite', 'postgresql'])('gateway leases and the dead-gateway sweep, database only (%s)', (dialect) => {
  let db: Database;
  let dropDatabase: () => Promise<void>;
  const started: InstanceLease[] = [];

  /** A run with one agent per status given, each on a unit of its own assignment. */
  async function seedAgents(statuses: AgentStatus[]): Promise<Array<{ agentId: string; assignmentId: string }>> {
    const em = db.em();
    const t = Math.random().toString(36).slice(2, 8);
    em.create(Task, { id: `k-${t}`, name: `task ${t}` });
    em.create(TaskRun, {
      id: `r-${t}`,
      task: `k-${t}`,
      status: 'running',
      workflowId: `taskrun-r-${t}`,
      config: {},
      providerType: 'mock',
      blueprintType: 'static-form',
      reward: 1,
    });
    em.create(Worker, { id: `w-${t}`, provider: 'mock', providerWorkerId: `pw-${t}` });
    const agents = statuses.map((status, i) => {
      const assignmentId = `r-${t}-a${i}`;
      em.create(Assignment, { id: assignmentId, taskRun: `r-${t}`, index: i, data: {} });
      em.create(Unit, {
        id: `${assignmentId}-u0`,
        assignment: assignmentId,
        taskRun: `r-${t}`,
        unitIndex: 0,
        status: 'assigned',
        pay: 1,
        worker: `w-${t}`,
      });
      em.create(Agent, {
        id: `${assignmentId}-g0`,
        unit: `${assignmentId}-u0`,
        assignment: assignmentId,
        taskRun: `r-${t}`,
        worker: `w-${t}`,
        status,
      });
      return { agentId: `${assignmentId}-g0`, assignmentId };
    });
    await em.flush();
    return agents;
  }

  /** What a crashed gateway leaves behind: its heartbeat row, and a lease per socket it held. */
  async function crashedGateway(id: string, leases: Array<{ agentId: string; assignmentId: string }>): Promise<void> {
    const em = db.em();
    const now = new Date();
    em.create(GatewayInstance, { id, beat: 7, startedAt: now, beatAt: now });
    leases.forEach((l, i) => em.create(GatewayLease, { instance: id, connectionId: `${id}-conn-${i + 1}`, ...l, boundAt: now }));
    await em.flush();
  }

  async function startLease(instanceId: string, heartbeatMs = 50): Promise<InstanceLease> {
    const lease = new InstanceLease({ db, log: testLog, instanceId, heartbeatMs });
    await lease.start();
    started.push(lease);
    return lease;
  }

  /** A socket of a gateway, with the close codes it was sent (no network needed). */
  function socket(id: string, hold: (conn: GatewayConnection) => Promise<void>) {
    const closes: number[] = [];
    const ws = { close: (code: number) => closes.push(code) };
    return { conn: new GatewayConnection(id, ws as never, DEFAULT_LIMITS, hold), closes };
  }

  /** The signal sender, recorded: the database logic is under test here, not Temporal. */
  function recordingCalls() {
    const sent: Array<{ assignmentId: string; signal: string; agentId: string; connectionId: string }> = [];
    return {
      sent,
      async signalAssignment<Args extends unknown[]>(assignmentId: string, signal: SignalDefinition<Args>, ...args: Args): Promise<void> {
        await new Promise((r) => setTimeout(r, 5));
        sent.push({ assignmentId, signal: signal.name, ...(args[0] as { agentId: string; connectionId: string }) });
      },
    };
  }

  beforeAll(async () => {
    const database = await createTestDatabase(dialect);
    dropDatabase = database.drop;
    db = await openDatabase(database.url);
  });
  afterAll(async () => {
    for (const lease of started) await lease.stop();
    await db?.close();
    await dropDatabase?.();
  });

  it("writes a socket's lease before the socket's signals go, and removes it once the socket's last signal is sent", async () => {
    const [agent] = await seedAgents(['in_task']);
    const lease = await startLease('gw-lease', 60_000);
    const { conn } = socket('gw-lease-1', (c) => lease.hold(c));
    conn.bind({ ...agent!, runId: 'r', unitId: 'u', workerId: 'w' }, 'in_task', 0);
    // What a signal chained now (the reconnect) would see when it runs.
    const seenBySignal = await conn.signalChain.then(() => db.em().find(GatewayLease, { instance: lease.incarnation }));
    expect(seenBySignal).toMatchObject([
      { connectionId: 'gw-lease-1', agentId: agent!.agentId, assignmentId: agent!.assignmentId, claimedBy: null },
    ]);
    lease.release(conn);
    await eventually(
      async () => ((await db.em().count(GatewayLease, { instance: lease.incarnation })) === 0 ? true : undefined),
      'the lease to be removed',
    );
    await lease.stop();
    expect(await db.em().count(GatewayInstance, { id: lease.incarnation })).toBe(0);
  });

  it("two sweepers racing over a dead gateway's leases send one disconnect per dead connection, with its id, and only for agents still holding a unit", async () => {
    const agents = await seedAgents(['in_task', 'waiting', 'completed']);
    await crashedGateway('gw-dead.1', agents);
    const one = await startLease('gw-one');
    const two = await startLease('gw-two');
    const calls = recordingCalls();
    const sweepers = [one, two].map(
      (self) => new DeadGatewaySweep({ db, log: testLog, calls, self, intervalMs: 60_000, deadAfterMs: 200 }),
    );
    // Both see the dead gateway's beat now, and keep sweeping at once until its row is gone.
    const rounds = [];
    while ((await db.em().count(GatewayInstance, { id: 'gw-dead.1' })) > 0) {
      rounds.push(...(await Promise.all(sweepers.map((s) => s.sweep()))));
      await new Promise((r) => setTimeout(r, 50));
      if (rounds.length > 200)
        throw new Error(`the dead gateway was not swept after ${rounds.length} rounds: ${JSON.stringify(rounds.slice(-4))}`);
    }
    expect(rounds.flatMap((r) => r.declaredDead)).toEqual(['gw-dead.1']);
    expect(calls.sent.sort((x, y) => x.connectionId.localeCompare(y.connectionId))).toEqual([
      { assignmentId: agents[0]!.assignmentId, signal: 'agentDisconnected', agentId: agents[0]!.agentId, connectionId: 'gw-dead.1-conn-1' },
      { assignmentId: agents[1]!.assignmentId, signal: 'agentDisconnected', agentId: agents[1]!.agentId, connectionId: 'gw-dead.1-conn-2' },
    ]);
    expect(rounds.reduce((n, r) => n + r.dropped, 0)).toBe(1);
    expect(await db.em().count(GatewayLease, { instance: 'gw-dead.1' })).toBe(0);
    // The live gateways were never judged dead: they beat all along.
    expect(
      await db.em().find(GatewayInstance, { id: { $in: [one.incarnation, two.incarnation] } }, { fields: ['declaredDeadBy'] }),
    ).toMatchObject([{ declaredDeadBy: null }, { declaredDeadBy: null }]);
  });

  it('a gateway that keeps beating is never declared dead; one declared dead while it was only stalled closes the sockets it held and carries on as a new incarnation', async () => {
    const [agent] = await seedAgents(['in_task']);
    const zombie = await startLease('gw-zombie');
    const first = zombie.incarnation;
    const observer = await startLease('gw-observer');
    const calls = recordingCalls();
    const sweeper = new DeadGatewaySweep({ db, log: testLog, calls, self: observer, intervalMs: 60_000, deadAfterMs: 1_000 });
    const { conn, closes } = socket('gw-zombie-1', (c) => zombie.hold(c));
    conn.bind({ ...agent!, runId: 'r', unitId: 'u', workerId: 'w' }, 'in_task', 0);
    await conn.signalChain;

    // Beating every 50 ms, it outlives the dead-after delay more than twice over.
    for (let i = 0; i < 25; i++) {
      expect((await sweeper.sweep()).declaredDead).toEqual([]);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Its event loop stalls past the delay (as a sweeper would see it), then comes back.
    await db.em().nativeUpdate(GatewayInstance, { id: first }, { declaredDeadBy: observer.incarnation, declaredDeadAt: new Date() });
    await eventually(
      async () => (zombie.incarnation !== first && closes.length > 0 ? true : undefined),
      'the zombie gateway to notice and fence itself',
    );
    expect(closes).toEqual([1001]);
    expect(await db.em().findOne(GatewayInstance, zombie.incarnation)).toMatchObject({ declaredDeadBy: null });
    // The sweeper disconnects the connection it held, once; the old row then goes.
    await eventually(async () => {
      await sweeper.sweep();
      return (await db.em().count(GatewayInstance, { id: first })) === 0 ? true : undefined;
    }, "the zombie's old incarnation to be swept");
    expect(calls.sent).toEqual([
      { assignmentId: agent!.assignmentId, signal: 'agentDisconnected', agentId: agent!.agentId, connectionId: 'gw-zombie-1' },
    ]);
  });
});
