/**
 * What the gateway does with each client packet (already validated by gateway/protocol.ts).
 *
 * Registration is decided by the run's TaskRun workflow (an Update); what an agent does afterwards
 * becomes a signal to its assignment workflow (submit, return, reconnects), sent in the socket's
 * order, except `live` data, which is stored and passed to partners through the database. Every check
 * that can refuse a packet runs before any signal or write, so a refused packet changes nothing.
 * The agent row arbitrates between sockets and gateways (gateway/agentBinding.ts): only the
 * connection bound last acts as the agent, and live state and the submission claim are written
 * there before they are acknowledged.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import type { Database } from '../model/database.ts';
import { OnboardingAgent } from '../model/entities.ts';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { AgentBinding, Refusal } from './agentBinding.ts';
import {
  type UnitRequest,
  type UnitRequestResult,
  agentDisconnectedSignal,
  agentReconnectedSignal,
  agentReturnedSignal,
  agentSubmitSignal,
} from '../workflows/definitions.ts';
import { type BoundAgent, type GatewayConnection } from './connection.ts';
import { isActiveAgentStatus } from '../model/status.ts';
import type { OutboxDelivery } from './outboxDelivery.ts';
import {
  type AgentPacket,
  type ClientPacket,
  type LivePacket,
  type RegisterPacket,
  type ResumePacket,
  type SubmitPacket,
  CLOSE_CODES,
  HEARTBEAT_REPLY,
  RETURN_ACK,
  type GatewayLimits,
  describeIssues,
  encode,
  encodeError,
  newErrorId,
} from './protocol.ts';
import type { RunCatalog } from './runCatalog.ts';
import type { TokenSigner } from './tokens.ts';
import { TemporalUnavailableError, WorkflowGoneError, type WorkflowCalls } from './workflowCalls.ts';
import { agentOfSession, recordAgentSession } from '../providers/agentSessions.ts';
import { identifyWorker } from './workerIdentity.ts';
import type { HitloopMetrics } from '../observability/metrics.ts';

export interface GatewayContext {
  db: Database;
  log: Logger;
  secret: string;
  /** For providers that confirm workers with their own API (their URL and token). */
  settings?: Partial<Settings>;
  calls: WorkflowCalls;
  runs: RunCatalog;
  tokens: TokenSigner;
  delivery: OutboxDelivery;
  binding: AgentBinding;
  limits: GatewayLimits;
  /** Keeps track of work to wait for at shutdown (signals in flight). */
  track(work: Promise<unknown>): void;
  /** Prometheus counters of this gateway (observability/metrics.ts); absent in tests that need none. */
  metrics?: HitloopMetrics;
}

export async function handlePacket(ctx: GatewayContext, conn: GatewayConnection, packet: ClientPacket): Promise<void> {
  switch (packet.type) {
    case 'heartbeat':
      conn.send(HEARTBEAT_REPLY);
      return;
    case 'ack':
      if (conn.agent) ctx.delivery.noteAck(conn, packet.seq);
      else conn.send(encodeError('not_registered', 'nothing to acknowledge: register or resume first', { ref: 'ack' }));
      return;
    case 'register':
      return onRegister(ctx, conn, packet);
    case 'resume':
      return onResume(ctx, conn, packet);
    case 'live':
      return onLive(ctx, conn, packet);
    case 'submit':
      return onSubmit(ctx, conn, packet);
    case 'return':
      return onReturn(ctx, conn);
  }
}

/** The socket closed: a held agent's reconnect window starts, unless a newer socket here took it over. */
export function handleClose(ctx: GatewayContext, conn: GatewayConnection): void {
  conn.closed = true;
  const agent = conn.agent;
  ctx.delivery.detach(conn);
  if (!agent || !conn.isHolding() || ctx.delivery.connectionOf(agent.agentId)) return;
  chainSignal(ctx, conn, 'disconnect', async () => {
    await ctx.calls.signalAssignment(agent.assignmentId, agentDisconnectedSignal, { agentId: agent.agentId, connectionId: conn.id });
  });
}

function refuseBinding(conn: GatewayConnection, ref: string): boolean {
  if (conn.binding) {
    conn.send(encodeError('already_registered', 'a register or resume is already in progress on this socket', { ref }));
    return true;
  }
  if (conn.isHolding()) {
    conn.send(
      encodeError('already_registered', `this socket already works as agent ${conn.agent!.agentId}; submit or return that unit first`, { ref }),
    );
    return true;
  }
  return false;
}

async function onRegister(ctx: GatewayContext, conn: GatewayConnection, p: RegisterPacket): Promise<void> {
  if (refuseBinding(conn, 'register')) return;
  conn.binding = true;
  // A new registration replaces an onboarding left unanswered on this socket.
  conn.onboarding = null;
  try {
    const run = await ctx.runs.get(p.runId);
    if (!run) {
      conn.send(encodeError('unknown_run', `there is no task run "${p.runId}" (or it is still being launched; retry in a few seconds)`, { ref: 'register' }));
      return;
    }
    const identity = await identifyWorker(run.provider, { runId: p.runId, params: p.params, secret: ctx.secret, settings: ctx.settings, log: ctx.log });
    if (!identity.ok) {
      conn.send(encodeError('bad_worker_identity', identity.message, { ref: 'register' }));
      return;
    }
    if (identity.session) {
      // A session carries one unit. Its agent's status lets a page that lost its agent finish at the
      // provider (the MTurk page posts externalSubmit on `completed`).
      const carried = await agentOfSession(ctx.db.em(), { provider: run.provider.type, runId: p.runId, providerWorkerId: identity.providerWorkerId, session: identity.session });
      if (carried?.submitted) {
        const why = `the unit of ${identity.session} (the ${run.provider.type} assignment this page was opened from) was already submitted (agent ${carried.agentId} is ${carried.status}), and an assignment carries one unit; accept new work on ${run.provider.type} to go on`;
        conn.send(encodeError('agent_ended', why, { ref: 'register', status: carried.status }));
        return;
      }
      if (carried) {
        // The page opened again (another tab, another browser) while its agent holds the unit: this
        // socket takes the agent over, as a resume would, and the older one is closed with 4001.
        const { agentId, unitId, assignmentId, workerId } = carried;
        await bindAndAnnounce(ctx, conn, { agentId, runId: p.runId, unitId, assignmentId, workerId }, 0, true, 'register');
        ctx.metrics?.reconnects.inc();
        return;
      }
    }
    const request: UnitRequest = { provider: run.provider.type, providerWorkerId: identity.providerWorkerId, registrationKey: p.registrationKey };
    const started = performance.now();
    let result = await ctx.calls.requestUnit(p.runId, request);
    if (result.outcome === 'onboarding' && (await onboardingDecided(ctx, result.onboardingAgentId))) {
      // Temporal answers a repeated update id with its first result (this onboarding): once the
      // answers are decided, the run is asked again under an id of its own, to follow the decision.
      result = await ctx.calls.requestUnit(p.runId, request, `after-${result.onboardingAgentId}`);
    }
    ctx.metrics?.registrations.inc({ outcome: result.outcome });
    if (result.outcome === 'refused') ctx.metrics?.refusals.inc({ reason: result.reason });
    if (result.outcome === 'assigned') ctx.metrics?.registerToAgent.observe((performance.now() - started) / 1000);
    await answerUnitRequest(ctx, conn, p.runId, request, result, 'register', identity.session);
  } catch (err) {
    ctx.metrics?.registrations.inc({ outcome: 'failed' });
    sendFailure(ctx, conn, err, 'register');
  } finally {
    conn.binding = false;
  }
}

/** Tell the worker what the run decided: a unit (bind the socket to its agent), onboarding, or a refusal. */
async function answerUnitRequest(
  ctx: GatewayContext,
  conn: GatewayConnection,
  runId: string,
  request: UnitRequest,
  result: UnitRequestResult,
  ref: string,
  session?: string,
): Promise<void> {
  if (result.outcome === 'refused') {
    conn.send(encode({ v: 1, type: 'refused', reason: result.reason, detail: result.detail }));
    return;
  }
  if (result.outcome === 'onboarding') {
    conn.onboarding = { runId, onboardingAgentId: result.onboardingAgentId, ...request, ...(session ? { session } : {}) };
    conn.send(encode({ v: 1, type: 'onboarding', onboardingAgentId: result.onboardingAgentId, initData: result.initData }));
    return;
  }
  // Before the worker hears of the agent: every agent that can submit has its provider session on record.
  if (session) await recordAgentSession(ctx.db.em(), request.provider, result.agentId, session);
  const bound: BoundAgent = {
    agentId: result.agentId,
    runId,
    unitId: result.unitId,
    assignmentId: result.assignmentId,
    workerId: result.workerId,
  };
  if (conn.closed) {
    // The worker left while the run decided: the unit is theirs, so their reconnect window starts now.
    chainSignal(ctx, conn, 'disconnect', () =>
      ctx.calls.signalAssignment(bound.assignmentId, agentDisconnectedSignal, { agentId: bound.agentId, connectionId: conn.id }),
    );
    return;
  }
  await bindAndAnnounce(ctx, conn, bound, 0, !result.newlyAssigned, ref);
}

async function onboardingDecided(ctx: GatewayContext, onboardingAgentId: string): Promise<boolean> {
  const row = await ctx.db.em().findOne(OnboardingAgent, onboardingAgentId, { fields: ['status'] });
  return row !== null && row.status !== 'onboarding';
}

/** The worker's onboarding answers: the run decides, then answers like a register. */
async function onOnboardingSubmit(ctx: GatewayContext, conn: GatewayConnection, p: SubmitPacket): Promise<void> {
  const onboarding = conn.onboarding!;
  if (conn.binding) {
    conn.send(encodeError('already_submitted', 'the onboarding answers are being decided; wait for the answer', { ref: 'submit', id: p.submitKey }));
    return;
  }
  // Claimed before the first await: answers sent back to back are decided one at a time, in order.
  conn.binding = true;
  try {
    const run = await ctx.runs.get(onboarding.runId);
    if (!run) {
      conn.send(encodeError('unknown_run', `run ${onboarding.runId} is not in the database`, { ref: 'submit', id: p.submitKey }));
      return;
    }
    const parsed = run.onboardingSchema.safeParse(p.data);
    if (!parsed.success) {
      conn.send(
        encodeError('invalid_submission', `the onboarding answers do not fit the form: ${describeIssues(parsed.error.issues)}`, {
          ref: 'submit',
          id: p.submitKey,
        }),
      );
      return;
    }
    const { runId, session, ...submission } = onboarding;
    const result = await ctx.calls.submitOnboarding(runId, { ...submission, submitKey: p.submitKey, data: parsed.data as Record<string, unknown> });
    conn.onboarding = null;
    conn.send(encode({ v: 1, type: 'submit_ack', submitKey: p.submitKey }));
    const { provider, providerWorkerId, registrationKey } = submission;
    await answerUnitRequest(ctx, conn, runId, { provider, providerWorkerId, registrationKey }, result, 'submit', session);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      // The run refused these answers for this onboarding (it ended, or is not this worker's).
      conn.onboarding = null;
      const errorId = newErrorId();
      ctx.log.warn({ err, errorId, connection: conn.id }, 'onboarding answers refused by the run');
      conn.send(
        encodeError('agent_ended', 'this onboarding has ended and takes no answers; register again', { ref: 'submit', id: p.submitKey, errorId }),
      );
    } else {
      sendFailure(ctx, conn, err, 'submit', p.submitKey);
    }
  } finally {
    conn.binding = false;
  }
}

async function onResume(ctx: GatewayContext, conn: GatewayConnection, p: ResumePacket): Promise<void> {
  if (refuseBinding(conn, 'resume')) return;
  const claims = ctx.tokens.verify(p.token);
  if (!claims) {
    conn.send(encodeError('invalid_token', 'the agent token is not genuine (malformed, altered or signed with another secret)', { ref: 'resume' }));
    return;
  }
  if (claims.runId !== p.runId || claims.agentId !== p.agentId) {
    conn.send(
      encodeError('token_mismatch', `this token belongs to agent ${claims.agentId} of run ${claims.runId}, not agent ${p.agentId} of run ${p.runId}`, {
        ref: 'resume',
      }),
    );
    return;
  }
  conn.binding = true;
  try {
    await bindAndAnnounce(ctx, conn, claims, p.lastSeq, true, 'resume');
    ctx.metrics?.reconnects.inc();
  } catch (err) {
    sendFailure(ctx, conn, err, 'resume');
  } finally {
    conn.binding = false;
  }
}

/** Bind the socket to the agent (if it still holds its unit), send its details, start delivery. */
async function bindAndAnnounce(
  ctx: GatewayContext,
  conn: GatewayConnection,
  bound: BoundAgent,
  lastSeq: number,
  reconnecting: boolean,
  ref: string,
): Promise<void> {
  if (conn.closed) return;
  const row = await ctx.binding.bind(bound.agentId, conn.id);
  if (conn.closed && row && isActiveAgentStatus(row.status)) {
    // Closed while being bound: this connection's reconnect window starts (a newer one ignores it).
    chainSignal(ctx, conn, 'disconnect', () =>
      ctx.calls.signalAssignment(bound.assignmentId, agentDisconnectedSignal, { agentId: bound.agentId, connectionId: conn.id }),
    );
    return;
  }
  if (!row) {
    conn.send(encodeError('invalid_token', `agent ${bound.agentId} does not exist`, { ref }));
    return;
  }
  if (!isActiveAgentStatus(row.status)) {
    conn.send(encodeError('agent_ended', `agent ${bound.agentId} has ended (${row.status}); register again for new work`, { ref, status: row.status }));
    return;
  }
  // A claimed submission is as good as stored once Temporal took its signal (the workflow is on it).
  // A claim whose signal never left (its gateway died in between) is not: the agent is told `in_task`,
  // with the claim on this connection, so the page sends the same submit again.
  const status = row.status === 'in_task' && row.submitKey !== null && row.submitSent ? 'completed' : row.status;
  // Temporal answers a retried register from memory (newly assigned, as the first time): the row
  // knows better. A connection was bound to the agent before: this is a reconnect.
  const rebinding = reconnecting || row.connectionId !== null;
  if (conn.agent) ctx.delivery.detach(conn);
  conn.bind(bound, status, lastSeq);
  conn.submitKey = row.submitKey;
  if (rebinding) {
    chainSignal(ctx, conn, 'reconnect', () =>
      ctx.calls.signalAssignment(bound.assignmentId, agentReconnectedSignal, { agentId: bound.agentId, connectionId: conn.id }),
    );
  }
  const packet: AgentPacket = {
    v: 1,
    type: 'agent',
    agentId: bound.agentId,
    runId: bound.runId,
    unitId: bound.unitId,
    assignmentId: bound.assignmentId,
    status,
    initData: row.initData,
    state: row.state,
    token: ctx.tokens.sign(bound),
    resumed: rebinding,
  };
  conn.send(encode(packet));
  const replaced = ctx.delivery.attach(conn);
  if (replaced) replaced.ws.close(CLOSE_CODES.replaced, 'another connection resumed this agent');
}

/** Checks common to packets that act as the bound agent; false (error sent) when it may not act. */
function mayAct(conn: GatewayConnection, ref: string, id?: string): boolean {
  if (!conn.agent) {
    conn.send(encodeError('not_registered', `"${ref}" needs an agent: register or resume first`, { ref, ...(id ? { id } : {}) }));
    return false;
  }
  if (!conn.isHolding()) {
    conn.send(
      encodeError('agent_ended', `agent ${conn.agent.agentId} has ended (${conn.status}); register again for new work`, {
        ref,
        status: conn.status,
        ...(id ? { id } : {}),
      }),
    );
    return false;
  }
  return true;
}

function onLive(ctx: GatewayContext, conn: GatewayConnection, p: LivePacket): void {
  if (!mayAct(conn, 'live', p.actionId)) return;
  const agent = conn.agent!;
  const bytes = Buffer.byteLength(JSON.stringify(p.data));
  if (bytes > ctx.limits.maxLiveDataBytes) {
    conn.send(
      encodeError('too_large', `live data of ${bytes} bytes is over the limit of ${ctx.limits.maxLiveDataBytes} bytes; send less at a time`, {
        ref: 'live',
        id: p.actionId,
      }),
    );
    return;
  }
  chainSignal(
    ctx,
    conn,
    'live',
    async () => {
      // Stored before the ack (a resume shows at least the last acknowledged state), and passed to
      // the partners here rather than through the workflow: live data stays out of its history.
      const refusal = await ctx.binding.recordLive(agent.agentId, conn.id, p.data, bytes, ctx.limits.maxLiveBytesPerAgent);
      if (refusal) return refuse(conn, refusal, 'live', p.actionId);
      await ctx.binding.forwardLive(agent.agentId, agent.assignmentId, p.actionId, p.data);
      conn.send(encode({ v: 1, type: 'live_ack', actionId: p.actionId }));
    },
    p.actionId,
  );
}

async function onSubmit(ctx: GatewayContext, conn: GatewayConnection, p: SubmitPacket): Promise<void> {
  if (conn.onboarding && !conn.isHolding()) return onOnboardingSubmit(ctx, conn, p);
  // The submission this agent claimed, sent again (no ack came before a reconnect): answered again,
  // stored once. Any other key, once one is claimed, is refused.
  const again = conn.agent !== null && p.submitKey === conn.submitKey;
  if (!again) {
    if (conn.agent && (conn.submitted || conn.status === 'completed')) {
      conn.send(encodeError('already_submitted', `agent ${conn.agent.agentId} has already submitted this unit`, { ref: 'submit', id: p.submitKey }));
      return;
    }
    if (!mayAct(conn, 'submit', p.submitKey)) return;
    if (conn.status !== 'in_task') {
      conn.send(
        encodeError('not_in_task', `the task has not started yet (agent status ${conn.status}); submit after the "in_task" status message`, {
          ref: 'submit',
          id: p.submitKey,
        }),
      );
      return;
    }
  }
  const agent = conn.agent!;
  // Claimed before the first await, so a second submit sent before this one is decided is refused.
  conn.submitted = true;
  const unclaim = (): void => {
    if (!again) conn.submitted = false;
  };
  const run = await ctx.runs.get(agent.runId);
  if (!run) {
    unclaim();
    conn.send(encodeError('unknown_run', `run ${agent.runId} is not in the database`, { ref: 'submit', id: p.submitKey }));
    return;
  }
  const parsed = run.submissionSchema.safeParse(p.data);
  if (!parsed.success) {
    unclaim();
    conn.send(encodeError('invalid_submission', `the submission does not fit the form: ${describeIssues(parsed.error.issues)}`, { ref: 'submit', id: p.submitKey }));
    return;
  }
  chainSignal(
    ctx,
    conn,
    'submit',
    async () => {
      // The agent row takes one submission key, whatever socket or gateway sends it (agentBinding.ts).
      const claim = await ctx.binding.claimSubmission(agent.agentId, conn.id, p.submitKey);
      if (claim === 'stored') {
        conn.send(encode({ v: 1, type: 'submit_ack', submitKey: p.submitKey }));
        return;
      }
      if (claim) {
        if (claim !== 'already_submitted') unclaim();
        return refuse(conn, claim, 'submit', p.submitKey);
      }
      conn.submitKey = p.submitKey;
      try {
        await ctx.calls.signalAssignment(agent.assignmentId, agentSubmitSignal, {
          agentId: agent.agentId,
          submitKey: p.submitKey,
          data: parsed.data as Record<string, unknown>,
        });
      } catch (err) {
        // Not acknowledged: the claim goes (unless an earlier send of it may have been), so a
        // resumed page is not told its work was taken.
        if (!again) {
          conn.submitted = false;
          conn.submitKey = null;
          await ctx.binding.releaseSubmission(agent.agentId, p.submitKey);
        }
        throw err;
      }
      // Before the ack: a resume from now on reports the agent completed.
      await ctx.binding.submissionSent(agent.agentId, p.submitKey);
      conn.send(encode({ v: 1, type: 'submit_ack', submitKey: p.submitKey }));
    },
    p.submitKey,
  );
}

function onReturn(ctx: GatewayContext, conn: GatewayConnection): void {
  if (!mayAct(conn, 'return')) return;
  const agent = conn.agent!;
  chainSignal(ctx, conn, 'return', async () => {
    const refusal = await ctx.binding.check(agent.agentId, conn.id);
    if (refusal) return refuse(conn, refusal, 'return');
    await ctx.calls.signalAssignment(agent.assignmentId, agentReturnedSignal, { agentId: agent.agentId });
    conn.send(RETURN_ACK);
  });
}

/** Answer a packet the agent row refused (gateway/agentBinding.ts); a replaced socket is closed. */
function refuse(conn: GatewayConnection, refusal: Refusal, ref: string, id?: string): void {
  const extra = { ref, ...(id ? { id } : {}) };
  const agentId = conn.agent?.agentId ?? '';
  switch (refusal) {
    case 'replaced':
      conn.send(encodeError('agent_ended', `agent ${agentId} is now open on another connection (another tab or device); this one is closed`, extra));
      conn.ws.close(CLOSE_CODES.replaced, 'another connection took over this agent');
      return;
    case 'gone':
    case 'ended':
      conn.send(encodeError('agent_ended', `agent ${agentId} no longer holds its unit; register again for new work`, extra));
      return;
    case 'quota':
      conn.send(encodeError('quota_exceeded', 'this agent has sent as much live data as one agent may; it can still submit or return its unit', extra));
      return;
    case 'already_submitted':
      conn.send(encodeError('already_submitted', `agent ${agentId} has already submitted this unit`, extra));
      return;
    case 'not_in_task':
      conn.send(encodeError('not_in_task', 'the task has not started yet; submit after the "in_task" status message', extra));
      return;
  }
}

/** Run `work` after the socket's earlier signals; a failure is answered with an error packet. */
function chainSignal(ctx: GatewayContext, conn: GatewayConnection, ref: string, work: () => Promise<void>, id?: string): void {
  const next = conn.signalChain.then(work).catch((err: unknown) => sendFailure(ctx, conn, err, ref, id));
  conn.signalChain = next;
  ctx.track(next);
}

function sendFailure(ctx: GatewayContext, conn: GatewayConnection, err: unknown, ref: string, id?: string): void {
  const extra = { ref, ...(id ? { id } : {}) };
  if (err instanceof WorkflowGoneError) {
    conn.send(encodeError('agent_ended', 'the assignment of this agent has ended; register again for new work', extra));
  } else if (err instanceof TemporalUnavailableError) {
    ctx.log.warn({ err, connection: conn.id }, 'Temporal unavailable');
    conn.send(encodeError('temporal_unavailable', 'the workflow service is not answering; retry the packet in a moment', extra));
  } else {
    const errorId = newErrorId();
    ctx.log.error({ err, errorId, connection: conn.id, ref }, 'packet handling failed');
    conn.send(encodeError('internal', `the gateway failed to handle "${ref}"; retry, and report error ${errorId} if it keeps failing`, { ...extra, errorId }));
  }
}
