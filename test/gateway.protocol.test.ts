/**
 * The gateway's protocol against a real Temporal server and SQLite: the happy path (register, live
 * update, submit, acks, return), the HTTP side, and every bad input of issue 4 item 8, each answered
 * with a clear error packet or a documented close code and leaving the database unchanged.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentPacket } from '../gateway/protocol.ts';
import type { Gateway } from '../gateway/server.ts';
import { TokenSigner } from '../gateway/tokens.ts';
import { Agent, OutboxMessage, Unit } from '../model/entities.ts';
import { type AgentConnection, ConnectionLost } from '../simulate/agentConnection.ts';
import {
  connect,
  expectUnchanged,
  launchRunning,
  nextError,
  register,
  snapshot,
  startTestGateway,
  untilStatus,
} from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { eventually, startStack, type Stack } from './support/stack.ts';

const FRAME_LIMIT = 16 * 1024;

describe('gateway protocol (SQLite)', () => {
  let stack: Stack;
  let gateway: Gateway;
  const sockets: AgentConnection[] = [];

  async function open(): Promise<AgentConnection> {
    const conn = await connect(gateway);
    sockets.push(conn);
    return conn;
  }

  /** A worker who has taken a unit and whose task has started. */
  async function working(runId: string, workerId: string) {
    const conn = await open();
    const agent = await register(conn, runId, workerId);
    await untilStatus(conn, 'in_task');
    return agent;
  }

  beforeAll(async () => {
    stack = await startStack('sqlite');
    gateway = await startTestGateway(stack, {
      limits: { maxFrameBytes: FRAME_LIMIT, packetsPerSecond: 20, packetBurst: 20, floodCloseAfter: 40 },
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await gateway?.close();
    await stack?.stop();
  });

  describe('happy path', () => {
    it('registers, passes a live update to the workflow, stores the submission once, and records acks', async () => {
      const runId = await launchRunning(stack, formConfig({}, 2));
      const conn = await open();
      const agent = await register(conn, runId, 'alice');
      expect(agent.initData).toMatchObject({ data: { text: 'sentence 0' }, fields: [{ name: 'label', type: 'select' }] });
      await untilStatus(conn, 'in_task');

      conn.send({ type: 'live', actionId: 'draft-1', data: { draft: 'positive' } });
      await conn.expect((p) => p.type === 'live_ack' && p.actionId === 'draft-1');
      await eventually(async () => {
        const row = await stack.db.em().findOneOrFail(Agent, agent.agentId);
        return JSON.stringify(row.state) === JSON.stringify({ draft: 'positive' }) ? true : undefined;
      }, 'the live update to be recorded as the agent state');

      conn.send({ type: 'submit', submitKey: 'k1', data: { label: 'positive' } });
      await conn.expect((p) => p.type === 'submit_ack' && p.submitKey === 'k1');
      await untilStatus(conn, 'completed');
      const row = await stack.db.em().findOneOrFail(Agent, agent.agentId);
      expect(row.submission).toEqual({ label: 'positive' });
      expect((await stack.db.em().findOneOrFail(Unit, agent.unitId)).status).toBe('completed');

      // Every message delivered was acknowledged and recorded as such.
      await eventually(async () => {
        const unacked = await stack.db.em().count(OutboxMessage, { agent: agent.agentId, ackedAt: null });
        return unacked === 0 ? true : undefined;
      }, 'the acks to be written');
      expect(conn.seqsReceived).toEqual([...new Set(conn.seqsReceived)]);
      expect(conn.lastSeq).toBe(await stack.db.em().count(OutboxMessage, { agent: agent.agentId }));
    });

    it('gives the same agent to a retried register (same registration key) and never a duplicate', async () => {
      const runId = await launchRunning(stack, formConfig({}, 3));
      const key = randomUUID();
      const first = await register(await open(), runId, 'bob', key);
      const again = await register(await open(), runId, 'bob', key);
      expect(again.agentId).toBe(first.agentId);
      expect(again.unitId).toBe(first.unitId);
      expect(await stack.db.em().count(Agent, { taskRun: runId })).toBe(1);
    });

    it('returns a unit: the agent ends as returned and the unit goes back to the pool for the next worker', async () => {
      const runId = await launchRunning(stack, formConfig({}, 1));
      const carol = await working(runId, 'carol');
      carol.conn.send({ type: 'return' });
      await carol.conn.expect((p) => p.type === 'return_ack');
      await untilStatus(carol.conn, 'returned');
      await eventually(
        async () => ((await stack.db.em().findOneOrFail(Unit, carol.unitId)).status === 'launched' ? true : undefined),
        'the unit to be launched again',
      );
      const dave = await register(await open(), runId, 'dave');
      expect(dave.unitId).toBe(carol.unitId);
    });

    it('a second socket resuming the same agent replaces the first (closed with 4001) without a disconnect', async () => {
      const runId = await launchRunning(stack, formConfig({}, 1));
      const kim = await working(runId, 'kim');
      const second = await open();
      second.resume(runId, kim.agentId, kim.token, kim.conn.lastSeq);
      await second.expect((p) => p.type === 'agent');
      const closed = await kim.conn.until(() => false, 10_000, 'the close').catch((err: unknown) => err);
      expect((closed as ConnectionLost).code).toBe(4001);
      const view = (await stack.env.client.workflow.getHandle(`assignment-${kim.assignmentId}`).query('assignmentState')) as {
        agents: Array<{ agentId: string; connected: boolean }>;
      };
      expect(view.agents.find((a) => a.agentId === kim.agentId)?.connected).toBe(true);
      second.send({ type: 'submit', submitKey: 'kim-1', data: { label: 'positive' } });
      await untilStatus(second, 'completed');
    });

    it('a submit claimed but never signalled (its gateway died in between) is no submission: a resume shows in_task, and the same submit sent again is stored; an acknowledged one resumes as completed', async () => {
      const runId = await launchRunning(stack, formConfig({}, 2));
      // The claim a gateway writes before it signals the workflow, left behind by a gateway killed before the signal.
      const lena = await working(runId, 'lena');
      await stack.db.em().nativeUpdate(Agent, { id: lena.agentId }, { submitKey: 'lena-lost' });
      lena.conn.close();
      const back = await open();
      back.resume(runId, lena.agentId, lena.token, lena.conn.lastSeq);
      const resumed = await back.expect<AgentPacket>((p) => p.type === 'agent');
      expect(resumed.status).toBe('in_task');
      back.send({ type: 'submit', submitKey: 'lena-lost', data: { label: 'negative' } });
      await back.expect((p) => p.type === 'submit_ack' && p.submitKey === 'lena-lost');
      await untilStatus(back, 'completed');
      expect(await stack.db.em().findOneOrFail(Agent, lena.agentId)).toMatchObject({ status: 'completed', submitKey: 'lena-lost', submission: { label: 'negative' } });

      // Acknowledged, so Temporal holds the signal: a resume says completed, even before the workflow stored it.
      const mona = await working(runId, 'mona');
      mona.conn.send({ type: 'submit', submitKey: 'mona-1', data: { label: 'positive' } });
      await mona.conn.expect((p) => p.type === 'submit_ack');
      await eventually(async () => ((await stack.db.em().findOneOrFail(Agent, mona.agentId)).status === 'completed' ? true : undefined), "mona's submission stored");
      // The row as it is between the ack and the workflow's write.
      await stack.db.em().nativeUpdate(Agent, { id: mona.agentId }, { status: 'in_task' });
      mona.conn.close();
      const again = await open();
      again.resume(runId, mona.agentId, mona.token, 0);
      expect((await again.expect<AgentPacket>((p) => p.type === 'agent')).status).toBe('completed');
    });

    it("drops a socket that answers no ping, and the agent's reconnect window starts", async () => {
      const runId = await launchRunning(stack, formConfig({}, 1));
      const quick = await startTestGateway(stack, { pingIntervalMs: 200 });
      try {
        const silent = await connect(quick.wsUrl, { answerPings: false });
        sockets.push(silent);
        // Answers pings until it has its agent (a register may take longer than a ping round on a busy machine).
        let registered = false;
        silent.ws.on('ping', () => {
          if (!registered) silent.ws.pong();
        });
        const lee = await register(silent, runId, 'lee');
        registered = true;
        const lost = await silent.until(() => false, 30_000, 'the gateway to drop the silent socket').catch((err: unknown) => err);
        expect(lost).toBeInstanceOf(ConnectionLost);
        await eventually(async () => {
          const view = (await stack.env.client.workflow.getHandle(`assignment-${lee.assignmentId}`).query('assignmentState')) as {
            agents: Array<{ agentId: string; connected: boolean; reconnectDeadline: string | null }>;
          };
          const agent = view.agents.find((a) => a.agentId === lee.agentId);
          return agent && !agent.connected && agent.reconnectDeadline ? true : undefined;
        }, 'the workflow to see lee disconnected');
      } finally {
        await quick.close();
      }
    });

    it('onboarding: the form comes first; a pass leads to a unit, a fail is refused as not_qualified from then on', async () => {
      const qualification = `onboarded-${randomUUID().slice(0, 8)}`;
      const runId = await launchRunning(
        stack,
        formConfig(
          {
            onboarding_qualification: qualification,
            blueprint: {
              type: 'static-form',
              fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }],
              onboarding: { fields: [{ name: 'q', type: 'select', options: ['yes', 'no'] }], expected: { q: 'yes' } },
            },
          },
          2,
        ),
      );
      const olga = await open();
      olga.register(runId, { worker_id: 'olga' }, randomUUID());
      const form = await olga.expect((p) => p.type === 'onboarding');
      expect(form).toMatchObject({ initData: { onboarding: true, fields: [{ name: 'q' }] } });
      expect(JSON.stringify(form)).not.toContain('expected');

      const before = await snapshot(stack.db);
      olga.send({ type: 'submit', submitKey: 'o-0', data: { q: 'maybe' } });
      expect(await nextError(olga)).toMatchObject({ code: 'invalid_submission', id: 'o-0' });
      await expectUnchanged(stack.db, before);

      olga.send({ type: 'submit', submitKey: 'o-1', data: { q: 'yes' } });
      await olga.expect((p) => p.type === 'submit_ack' && p.submitKey === 'o-1');
      const agent = await olga.expect((p) => p.type === 'agent');
      expect(agent).toMatchObject({ initData: { data: { text: 'sentence 0' } } });
      await untilStatus(olga, 'in_task');

      const oscar = await open();
      oscar.register(runId, { worker_id: 'oscar' }, randomUUID());
      await oscar.expect((p) => p.type === 'onboarding');
      oscar.send({ type: 'submit', submitKey: 'x-1', data: { q: 'no' } });
      await oscar.expect((p) => p.type === 'submit_ack');
      expect(await oscar.expect((p) => p.type === 'refused')).toMatchObject({ reason: 'not_qualified' });
      oscar.register(runId, { worker_id: 'oscar' }, randomUUID());
      expect(await oscar.expect((p) => p.type === 'refused' || p.type === 'onboarding')).toMatchObject({
        type: 'refused',
        reason: 'not_qualified',
      });
    });

    it('answers heartbeats and serves health, readiness, task pages and assets over HTTP', async () => {
      const runId = await launchRunning(stack, formConfig({}, 1));
      const conn = await open();
      conn.send({ type: 'heartbeat' });
      await conn.until(() => conn.ws.readyState === conn.ws.OPEN);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${gateway.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });
      const page = await fetch(`${gateway.url}/task/${runId}?worker_id=x`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('<select id="hl-field-label" name="label"');
      expect(html).toContain('/assets/static-form.js');
      expect((await fetch(`${gateway.url}/task/no-such-run`)).status).toBe(404);
      const script = await fetch(`${gateway.url}/assets/hitloop-client.js`);
      expect(script.status).toBe(200);
      expect(script.headers.get('content-type')).toMatch(/javascript/);
      expect((await fetch(`${gateway.url}/assets/../server.ts`)).status).toBe(404);
    });
  });

  describe('bad input changes nothing', () => {
    let runId: string;
    beforeAll(async () => {
      runId = await launchRunning(stack, formConfig({}, 20));
    });

    it('malformed JSON: bad_json', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.sendRaw('{"v":1,"type":"register",');
      const error = await nextError(conn);
      expect(error.code).toBe('bad_json');
      expect(error.message).toMatch(/not valid JSON/);
      await expectUnchanged(stack.db, before);
    });

    it('unknown packet type: unknown_type, naming the known ones', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.send({ type: 'grant_me_bonus', amount: 100 });
      const error = await nextError(conn);
      expect(error.code).toBe('unknown_type');
      expect(error.message).toContain('register');
      await expectUnchanged(stack.db, before);
    });

    it('wrong protocol version: unsupported_version', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.sendRaw(JSON.stringify({ v: 2, type: 'heartbeat' }));
      expect((await nextError(conn)).code).toBe('unsupported_version');
      await expectUnchanged(stack.db, before);
    });

    it('wrong field types and unknown fields: bad_packet naming the field', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.send({ type: 'register', runId: 42, params: { worker_id: 'eve' }, registrationKey: 'k' });
      const error = await nextError(conn);
      expect(error).toMatchObject({ code: 'bad_packet', ref: 'register' });
      expect(error.message).toContain('runId');
      conn.send({ type: 'register', runId, params: { worker_id: 7 }, registrationKey: 'k' });
      expect((await nextError(conn)).message).toContain('params.worker_id');
      await expectUnchanged(stack.db, before);
      const eve = await working(runId, 'eve');
      const snap = await snapshot(stack.db);
      // Acting for another agent is not even expressible: the packet has no room for an agent id.
      eve.conn.send({ type: 'submit', submitKey: 's', data: { label: 'positive' }, agentId: 'someone-else' });
      expect((await nextError(eve.conn)).code).toBe('bad_packet');
      eve.conn.send({ type: 'submit', submitKey: 's', data: 'positive' });
      expect((await nextError(eve.conn)).message).toContain('data');
      await expectUnchanged(stack.db, snap);
    });

    it('a frame over the size limit closes the socket with 1009', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.send({ type: 'live', actionId: 'big', data: { blob: 'x'.repeat(FRAME_LIMIT + 10) } });
      const closed = await conn.until(() => false, 10_000, 'the close').catch((err: unknown) => err);
      expect(closed).toBeInstanceOf(ConnectionLost);
      expect((closed as ConnectionLost).code).toBe(1009);
      await expectUnchanged(stack.db, before);
    });

    it('a flood of packets: rate_limited errors, then a close with 1008', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      for (let i = 0; i < 200 && !conn.closed; i++) conn.sendRaw(JSON.stringify({ v: 1, type: 'live', actionId: `f${i}`, data: {} }));
      const error = await nextError(conn, 'rate_limited').catch((err: unknown) => err);
      // The limit error is sent before the close; a very fast close may beat our reading it.
      if (!(error instanceof ConnectionLost)) expect((error as { message: string }).message).toMatch(/too many packets/);
      const closed = await conn.until(() => false, 10_000, 'the close').catch((err: unknown) => err);
      expect((closed as ConnectionLost).code).toBe(1008);
      await expectUnchanged(stack.db, before);
    });

    it('acting before registering: not_registered', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.send({ type: 'submit', submitKey: 'x', data: { label: 'positive' } });
      expect((await nextError(conn)).code).toBe('not_registered');
      conn.send({ type: 'live', actionId: 'x', data: {} });
      expect((await nextError(conn)).code).toBe('not_registered');
      await expectUnchanged(stack.db, before);
    });

    it('a link without a worker identity, or for an unknown run: bad_worker_identity, unknown_run', async () => {
      const conn = await open();
      const before = await snapshot(stack.db);
      conn.send({ type: 'register', runId, params: {}, registrationKey: 'k' });
      expect((await nextError(conn)).code).toBe('bad_worker_identity');
      conn.send({ type: 'register', runId: 'r-nope', params: { worker_id: 'frank' }, registrationKey: 'k' });
      expect((await nextError(conn)).code).toBe('unknown_run');
      await expectUnchanged(stack.db, before);
    });

    it('an agent token for another agent or another run: token_mismatch; forged tokens: invalid_token', async () => {
      const gina = await working(runId, 'gina');
      const hank = await working(runId, 'hank');
      const before = await snapshot(stack.db);
      const thief = await open();
      thief.send({ type: 'resume', runId, agentId: hank.agentId, token: gina.token, lastSeq: 0 });
      expect(await nextError(thief)).toMatchObject({ code: 'token_mismatch', ref: 'resume' });
      thief.send({ type: 'resume', runId: 'r-other', agentId: gina.agentId, token: gina.token, lastSeq: 0 });
      expect((await nextError(thief)).code).toBe('token_mismatch');
      const [body, sig] = gina.token.split('.');
      const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, string>;
      const altered = `${Buffer.from(JSON.stringify({ ...claims, a: hank.agentId })).toString('base64url')}.${sig}`;
      thief.send({ type: 'resume', runId, agentId: hank.agentId, token: altered, lastSeq: 0 });
      expect((await nextError(thief)).code).toBe('invalid_token');
      const otherSecret = new TokenSigner('not-the-secret').sign({
        agentId: hank.agentId,
        runId,
        workerId: 'w',
        assignmentId: 'a',
        unitId: 'u',
      });
      thief.send({ type: 'resume', runId, agentId: hank.agentId, token: otherSecret, lastSeq: 0 });
      expect((await nextError(thief)).code).toBe('invalid_token');
      // Still unbound: it cannot act as anyone.
      thief.send({ type: 'submit', submitKey: 'steal', data: { label: 'negative' } });
      expect((await nextError(thief)).code).toBe('not_registered');
      await expectUnchanged(stack.db, before);
    });

    it('a submission that does not fit the form: invalid_submission', async () => {
      const ivy = await working(runId, 'ivy');
      const before = await snapshot(stack.db);
      ivy.conn.send({ type: 'submit', submitKey: 'bad', data: { label: 'maybe' } });
      const error = await nextError(ivy.conn);
      expect(error).toMatchObject({ code: 'invalid_submission', ref: 'submit', id: 'bad' });
      expect(error.message).toContain('label');
      ivy.conn.send({ type: 'submit', submitKey: 'bad2', data: { label: 'positive', extra: 1 } });
      expect((await nextError(ivy.conn)).code).toBe('invalid_submission');
      await expectUnchanged(stack.db, before);
    });

    it('a submit for a unit already submitted: already_submitted; a replayed token after the unit ended: agent_ended', async () => {
      const jack = await working(runId, 'jack');
      jack.conn.send({ type: 'submit', submitKey: 'first', data: { label: 'negative' } });
      await jack.conn.expect((p) => p.type === 'submit_ack');
      await untilStatus(jack.conn, 'completed');
      await eventually(
        async () => ((await stack.db.em().count(OutboxMessage, { agent: jack.agentId, ackedAt: null })) === 0 ? true : undefined),
        'acks',
      );
      const before = await snapshot(stack.db);

      jack.conn.send({ type: 'submit', submitKey: 'second', data: { label: 'positive' } });
      expect(await nextError(jack.conn)).toMatchObject({ code: 'already_submitted', id: 'second' });

      const replay = await open();
      replay.send({ type: 'resume', runId, agentId: jack.agentId, token: jack.token, lastSeq: 0 });
      expect(await nextError(replay)).toMatchObject({ code: 'agent_ended', status: 'completed', ref: 'resume' });
      replay.send({ type: 'submit', submitKey: 'third', data: { label: 'positive' } });
      expect((await nextError(replay)).code).toBe('not_registered');
      await expectUnchanged(stack.db, before);
      expect((await stack.db.em().findOneOrFail(Agent, jack.agentId)).submission).toEqual({ label: 'negative' });
    });
  });
});
