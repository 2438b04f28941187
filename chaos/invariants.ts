/**
 * What must hold after a chaos run, checked from the database and from Temporal:
 *   - the run ended `completed` (database row and workflow result);
 *   - every unit is in a final status for a finished run (completed, or reviewed, or expired);
 *   - no unit ever had two agents working at once (their [created, ended] spans do not overlap,
 *     and at most one agent per unit completed);
 *   - every submission a worker got acknowledged is stored once, byte-identical;
 *   - no provider call (launch, expire, bonus, ...) was made twice for the same thing;
 *   - every unit's completion reached the TaskRun workflow exactly once;
 *   - every workflow of the run has closed normally;
 *   - (gateway mode) every outbox message reached its agent in order, none missed.
 */
import type { Client } from '@temporalio/client';
import type { Database } from '../model/database.ts';
import { Agent, Bonus, ProviderCall, TaskRun, Unit } from '../model/entities.ts';
import { ACTIVE_AGENT_STATUSES, SETTLED_UNIT_STATUSES, SUBMITTED_AGENT_STATUSES, SUBMITTED_UNIT_STATUSES } from '../model/status.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import type { Ledger } from './ledger.ts';

/** How long a workflow still running when the run has ended may take to close before it counts as not closed. */
const CLOSE_WAIT_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export interface InvariantResult {
  name: string;
  ok: boolean;
  /** One line: what was checked and found. */
  detail: string;
  violations: string[];
}

const MAX_LISTED = 20;

function result(name: string, violations: string[], detail: string): InvariantResult {
  return { name, ok: violations.length === 0, detail, violations: violations.slice(0, MAX_LISTED) };
}

/** JSON with object keys sorted: PostgreSQL's jsonb keeps values exactly but not key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export async function checkInvariants(args: {
  db: Database;
  client: Client;
  runId: string;
  ledger: Ledger;
  units: number;
  /** Whether outbox deliveries were recorded (gateway mode). */
  checkDeliveries: boolean;
}): Promise<InvariantResult[]> {
  const { db, client, runId, ledger } = args;
  const em = db.em();
  const out: InvariantResult[] = [];

  // The run ends completed.
  {
    const violations: string[] = [];
    const row = await em.findOne(TaskRun, runId);
    if (row?.status !== 'completed') violations.push(`database: task_run ${runId} is ${row?.status ?? 'missing'} (end reason ${row?.endReason ?? '-'}, failure ${row?.failureReason ?? '-'})`);
    const handle = client.workflow.getHandle(taskRunWorkflowId(runId));
    const described = await handle.describe();
    if (described.status.name !== 'COMPLETED') violations.push(`Temporal: the TaskRun workflow is ${described.status.name}`);
    else {
      const outcome = (await handle.result()) as { status?: string; units?: Record<string, number> };
      if (outcome.status !== 'completed') violations.push(`Temporal: the TaskRun workflow returned status ${outcome.status}`);
    }
    out.push(result('run ends completed', violations, `database ${row?.status ?? 'missing'}, workflow ${described.status.name}`));
  }

  // Every unit final.
  const units = await em.find(Unit, { taskRun: runId }, { orderBy: { id: 'asc' } });
  {
    const counts: Record<string, number> = {};
    for (const u of units) counts[u.status] = (counts[u.status] ?? 0) + 1;
    const violations = units.filter((u) => !SETTLED_UNIT_STATUSES.includes(u.status)).map((u) => `unit ${u.id} is ${u.status}`);
    if (units.length !== args.units) violations.unshift(`the run has ${units.length} units, expected ${args.units}`);
    out.push(result('every unit final', violations, `${units.length} units: ${JSON.stringify(counts)}`));
  }

  // No unit ever had two agents working at once.
  const agents = await em.find(Agent, { taskRun: runId }, { orderBy: { createdAt: 'asc' } });
  {
    const violations: string[] = [];
    const byUnit = new Map<string, typeof agents>();
    for (const a of agents) {
      const list = byUnit.get(a.unit.id) ?? [];
      list.push(a);
      byUnit.set(a.unit.id, list);
    }
    let multi = 0;
    for (const [unitId, list] of byUnit) {
      if (list.length > 1) multi += 1;
      const submitted = list.filter((a) => SUBMITTED_AGENT_STATUSES.includes(a.status));
      if (submitted.length > 1) violations.push(`unit ${unitId}: ${submitted.length} agents submitted (${submitted.map((a) => a.id).join(', ')})`);
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1]!;
        const next = list[i]!;
        const prevEnd = prev.endedAt ?? prev.submittedAt;
        if (!prevEnd) violations.push(`unit ${unitId}: agent ${prev.id} (${prev.status}) never ended, yet agent ${next.id} got the unit at ${next.createdAt.toISOString()}`);
        else if (next.createdAt.getTime() < prevEnd.getTime()) {
          violations.push(`unit ${unitId}: agent ${next.id} started ${next.createdAt.toISOString()} before agent ${prev.id} ended ${prevEnd.toISOString()}`);
        }
      }
    }
    const open = agents.filter((a) => (ACTIVE_AGENT_STATUSES as readonly string[]).includes(a.status));
    for (const a of open) violations.push(`agent ${a.id} of unit ${a.unit.id} still holds it (${a.status}) after the run ended`);
    out.push(result('no unit had two agents at once', violations, `${agents.length} agents on ${byUnit.size} units; ${multi} units had more than one agent over time`));
  }

  // Acknowledged submissions stored exactly once, byte-identical.
  {
    const violations: string[] = [];
    const byId = new Map(agents.map((a) => [a.id, a]));
    const stored = agents.filter((a) => a.submission !== null && a.submission !== undefined).map((a) => ({ id: a.id, text: JSON.stringify(a.submission) }));
    for (const ack of ledger.acked) {
      const agent = byId.get(ack.agentId);
      if (!agent) {
        violations.push(`acked submission ${ack.submitKey}: agent ${ack.agentId} does not exist`);
        continue;
      }
      if (!SUBMITTED_AGENT_STATUSES.includes(agent.status)) violations.push(`acked submission ${ack.submitKey}: agent ${agent.id} is ${agent.status}, not completed (submission lost)`);
      if (agent.submitKey !== ack.submitKey) violations.push(`acked submission ${ack.submitKey}: agent ${agent.id} stored submit key ${agent.submitKey ?? 'none'}`);
      if (agent.submission === null || agent.submission === undefined) {
        violations.push(`acked submission ${ack.submitKey}: agent ${agent.id} has no stored submission`);
      } else if (canonicalJson(agent.submission) !== canonicalJson(JSON.parse(ack.dataJson))) {
        violations.push(`acked submission ${ack.submitKey}: stored ${JSON.stringify(agent.submission)} differs from sent ${ack.dataJson}`);
      }
      const copies = stored.filter((s) => s.text.includes(ack.nonce)).length;
      if (copies !== 1) violations.push(`acked submission ${ack.submitKey}: stored ${copies} times (nonce ${ack.nonce})`);
      const unit = units.find((u) => u.id === agent.unit.id);
      if (unit && !SUBMITTED_UNIT_STATUSES.includes(unit.status)) {
        violations.push(`acked submission ${ack.submitKey}: its unit ${unit.id} is ${unit.status}`);
      }
    }
    out.push(
      result(
        'acked submissions stored once, byte-identical',
        violations,
        `${ledger.acked.length} acknowledged submissions checked against ${stored.length} stored; ${ledger.unacked.length} sent without an ack`,
      ),
    );
  }

  // No provider call (and no bonus) made twice.
  {
    // Agent sessions (providers/agentSessions.ts) are the gateway's records, not calls to the provider.
    const calls = await em.find(ProviderCall, { operation: { $ne: 'agentSession' } }, { orderBy: { id: 'asc' } });
    const byTarget = new Map<string, number>();
    const byKey = new Map<string, number>();
    for (const c of calls) {
      const t = `${c.provider}/${c.operation}/${c.target}`;
      byTarget.set(t, (byTarget.get(t) ?? 0) + 1);
      const k = `${c.provider}/${c.operation}/${c.requestKey}`;
      byKey.set(k, (byKey.get(k) ?? 0) + 1);
    }
    const violations = [
      ...[...byTarget].filter(([, n]) => n > 1).map(([t, n]) => `${t} called ${n} times`),
      ...[...byKey].filter(([, n]) => n > 1).map(([k, n]) => `request key ${k} recorded ${n} times`),
    ];
    const perOperation: Record<string, number> = {};
    for (const c of calls) perOperation[c.operation] = (perOperation[c.operation] ?? 0) + 1;
    const bonuses = await em.count(Bonus, { taskRun: runId });
    out.push(result('no provider call or bonus made twice', violations, `${calls.length} provider calls ${JSON.stringify(perOperation)}; ${bonuses} bonuses`));
  }

  // Each unit's completion reached the TaskRun workflow exactly once (its counts decide when the run ends).
  {
    const violations: string[] = [];
    const seen = new Map<string, number>();
    const executions: string[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = '${taskRunWorkflowId(runId)}'` })) executions.push(wf.runId);
    for (const execution of executions) {
      const history = await client.workflow.getHandle(taskRunWorkflowId(runId), execution).fetchHistory();
      for (const e of history.events ?? []) {
        const signal = e.workflowExecutionSignaledEventAttributes;
        if (signal?.signalName !== 'unitCompleted') continue;
        const payload = signal.input?.payloads?.[0]?.data;
        const unitId = payload ? (JSON.parse(Buffer.from(payload).toString('utf8')) as { unitId?: string }).unitId : undefined;
        if (unitId) seen.set(unitId, (seen.get(unitId) ?? 0) + 1);
      }
    }
    for (const u of units) {
      const n = seen.get(u.id) ?? 0;
      if (u.status === 'completed' && n !== 1) violations.push(`unit ${u.id}: ${n} unitCompleted signals`);
      if (u.status !== 'completed' && n !== 0) violations.push(`unit ${u.id} is ${u.status} but got ${n} unitCompleted signals`);
    }
    out.push(result('each completion signalled to the run once', violations, `${[...seen.values()].reduce((a, b) => a + b, 0)} unitCompleted signals over ${executions.length} TaskRun execution(s)`));
  }

  // Every workflow of the run closed normally.
  {
    const violations: string[] = [];
    const statuses: Record<string, number> = {};
    const query = `WorkflowId = '${taskRunWorkflowId(runId)}' OR WorkflowId STARTS_WITH 'assignment-${runId}-'`;
    for await (const wf of client.workflow.list({ query })) {
      let status = wf.status.name;
      if (status === 'RUNNING') {
        // The list is read from Temporal's visibility store, which lags (more so on a loaded host, right
        // after a server restart), and an assignment takes its last workflow task after telling the run
        // of its last unit: wait a bounded while for it to close, then read its own record.
        const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
        await Promise.race([handle.result().catch(() => undefined), sleep(CLOSE_WAIT_MS)]);
        status = (await handle.describe()).status.name;
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== 'COMPLETED' && status !== 'CONTINUED_AS_NEW') violations.push(`${wf.workflowId} (${wf.runId}) is ${status}`);
    }
    out.push(result('every workflow closed normally', violations, JSON.stringify(statuses)));
  }

  if (args.checkDeliveries) {
    const violations: string[] = [];
    let messages = 0;
    let repeats = 0;
    for (const [agentId, record] of ledger.deliveries) {
      const firstSeen: number[] = [];
      const seen = new Set<number>();
      for (const seq of record.seqs) {
        if (seen.has(seq)) repeats += 1;
        else {
          seen.add(seq);
          firstSeen.push(seq);
        }
      }
      messages += seen.size;
      firstSeen.forEach((seq, i) => {
        if (seq !== i + 1) violations.push(`agent ${agentId}: message #${i + 1} to arrive had seq ${seq} (seqs ${record.seqs.join(',')})`);
      });
    }
    out.push(
      result(
        'outbox messages reached agents in order, none missed',
        violations,
        `${messages} messages to ${ledger.deliveries.size} agents; ${repeats} repeated deliveries (the protocol lets clients drop those)`,
      ),
    );
  }
  return out;
}
