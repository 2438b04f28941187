/**
 * Fuzzing the packet schemas through the real gateway (issue 15): seeded random and hostile JSON
 * (NUL, lone surrogates, `__proto__`/`constructor` keys, deep and odd values, garbage frames, wrong
 * types) sent by a worker who holds a unit, one packet at a time, each answer checked. Afterwards:
 * the stored state is the last acknowledged live data exactly, an acknowledged submission is stored,
 * the gateway never answered `internal` nor dropped the socket, and the run still serves others.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientPacket, type ServerPacket } from '../gateway/protocol.ts';
import type { Gateway } from '../gateway/server.ts';
import { Agent } from '../model/entities.ts';
import type { AgentConnection } from '../simulate/agentConnection.ts';
import { canonicalJson, connect, launchRunning, register, startTestGateway, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { type Dialect, startStack, type Stack } from './support/stack.ts';

const SEED = 20261129;
const PACKETS = 160;

const hostileChar = fc.constantFrom('\u0000', '\ud800', '\udc00', '\ud83d\ude00', 'é', 'a', '"', '\\', '\n', '\u2028', '\uffff');
const hostileString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: hostileChar, maxLength: 6 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', ''),
);
const hostileKey = fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'toString', 'prototype'));

const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    hostileString,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('json'), { maxKeys: 4 }),
  ),
}));
const object = fc.dictionary(hostileKey, json, { maxKeys: 5 });

/** A frame: a packet object (JSON-encoded when sent) or raw text. */
type Frame = { packet: Record<string, unknown> } | { raw: string };

const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ v: fc.constant(1), type: fc.constant('live'), actionId: fc.oneof(fc.uuid(), hostileString), data: object }).map((packet) => ({ packet })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ v: fc.constant(1), type: fc.constant('submit'), submitKey: fc.oneof(fc.uuid(), hostileString), data: fc.oneof(object, fc.record({ label: fc.constantFrom('positive', 'bogus') })) })
      .map((packet) => ({ packet })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ v: fc.constant(1), type: fc.constant('register'), runId: hostileString, params: fc.dictionary(hostileKey, hostileString, { maxKeys: 3 }), registrationKey: hostileString })
      .map((packet) => ({ packet })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ v: fc.constant(1), type: fc.constant('resume'), runId: hostileString, agentId: hostileString, token: hostileString, lastSeq: fc.oneof(fc.integer(), fc.double()) })
      .map((packet) => ({ packet })),
  },
  { weight: 1, arbitrary: fc.record({ v: fc.constant(1), type: fc.constant('ack'), seq: fc.oneof(fc.integer(), hostileString) }).map((packet) => ({ packet })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ v: fc.oneof(fc.constant(1), json), type: hostileString.filter((t) => t !== 'return'), extra: json }, { requiredKeys: ['type'] })
      .map((packet) => ({ packet })),
  },
  { weight: 2, arbitrary: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.json({ maxDepth: 3 })).map((raw) => ({ raw })) },
  { weight: 1, arbitrary: object.map((extra) => ({ packet: { v: 1, type: 'live', actionId: 'x', data: {}, ...extra } })) },
);

describe.each<Dialect>(['sqlite', 'postgresql'])('fuzzed packets through the gateway on %s', (dialect) => {
  let stack: Stack;
  let gateway: Gateway;
  const sockets: AgentConnection[] = [];

  beforeAll(async () => {
    stack = await startStack(dialect);
    gateway = await startTestGateway(stack, { limits: { packetsPerSecond: 1000, packetBurst: 1000 } });
  });
  afterAll(async () => {
    for (const s of sockets) if (!s.closed) s.close();
    await gateway?.close();
    await stack?.stop();
  });

  it(`${PACKETS} seeded hostile frames: nothing acknowledged is lost, no fault, and the run keeps serving others`, async () => {
    const runId = await launchRunning(stack, formConfig({}, 3));
    const conn = await connect(gateway);
    sockets.push(conn);
    const agent = await register(conn, runId, 'fuzzer');
    await untilStatus(conn, 'in_task');

    const frames = fc.sample(frame, { seed: SEED, numRuns: PACKETS });
    let lastAckedLive: unknown;
    let ackedSubmit: unknown;
    const codes = new Map<string, number>();
    for (const f of frames) {
      const text = 'raw' in f ? f.raw : JSON.stringify(f.packet);
      conn.sendRaw(text);
      // The gateway's own parser says whether an answer is due (acks and heartbeats get none we see).
      const parsed = parseClientPacket(text);
      if (parsed.ok && (parsed.packet.type === 'ack' || parsed.packet.type === 'heartbeat')) continue;
      const answer = await conn.expect((p: ServerPacket) => p.type === 'error' || p.type === 'live_ack' || p.type === 'submit_ack' || p.type === 'agent' || p.type === 'refused', 60_000, `an answer to ${text.slice(0, 200)}`);
      if (answer.type === 'error') {
        codes.set(answer.code, (codes.get(answer.code) ?? 0) + 1);
        expect(answer.code, `answer to ${text.slice(0, 200)}`).not.toBe('internal');
      } else if (answer.type === 'live_ack') {
        expect(parsed.ok && parsed.packet.type === 'live').toBe(true);
        lastAckedLive = (parsed as { packet: { data: unknown } }).packet.data;
      } else if (answer.type === 'submit_ack') {
        ackedSubmit = (parsed as { packet: { data: unknown } }).packet.data;
      } else {
        throw new Error(`unexpected ${answer.type} answering ${text.slice(0, 200)}`);
      }
    }
    expect(conn.closed).toBe(false);
    // The fuzz did exercise both sides: accepted live data and refusals.
    expect(lastAckedLive).toBeDefined();
    expect(codes.get('bad_packet') ?? 0).toBeGreaterThan(10);

    const row = await stack.db.em().findOneOrFail(Agent, agent.agentId);
    expect(canonicalJson(row.state)).toBe(canonicalJson(lastAckedLive));
    if (ackedSubmit === undefined) {
      conn.send({ type: 'submit', submitKey: 'after-fuzz', data: { label: 'negative' } });
      ackedSubmit = { label: 'negative' };
    }
    await untilStatus(conn, 'completed');
    const stored = await stack.db.em().findOneOrFail(Agent, agent.agentId);
    expect(stored.status).toBe('completed');
    expect(canonicalJson(stored.submission)).toBe(canonicalJson(ackedSubmit));

    // Another worker is served as usual.
    const other = await connect(gateway);
    sockets.push(other);
    await register(other, runId, 'bystander');
    await untilStatus(other, 'in_task');
    other.send({ type: 'submit', submitKey: 'ok', data: { label: 'positive' } });
    await untilStatus(other, 'completed');
    await stack.operator.shutdown(runId);
  });
});
