/**
 * Assignment: how fast workers get units. Registrations per second sustained and the latency from
 * register to agent details, at 1, 10 and 100 concurrent arrivals, through the gateway (a new
 * WebSocket per arrival: connect, `register`, wait for `agent`) and, for comparison, straight
 * through the `requestUnit` update with the gateway's own retrying client (no WebSocket). Each level
 * is printed next to bare Temporal client signals (`agentAction` to one assignment workflow) at the
 * same concurrency, measured in the same run: the ratio to what Temporal itself does on this machine.
 */
import { randomUUID } from 'node:crypto';
import { Unit } from '../../model/entities.ts';
import type { Client as BenchClient } from '@temporalio/client';
import { WorkflowCalls } from '../../gateway/workflowCalls.ts';
import { registerOverGateway } from '../../chaos/protocolClient.ts';
import type { Benchmark, BenchContext, BenchOutcome, TableRow } from '../benchmark.ts';
import { benchConfig, inlineData, startBenchStack, waitUntilLaunched } from '../setup.ts';
import { closedLoop, round, summarize } from '../stats.ts';
import { fetchAllRuns } from '../../test/support/histories.ts';
import { agentActionSignal, assignmentWorkflowId, taskRunWorkflowId } from '../../workflows/definitions.ts';
import { PHASES, PHASE_MEANING, registrationPhases } from '../registrationPhases.ts';

const LEVELS = [1, 10, 100] as const;

type Mode = 'gateway' | 'direct';

export const assignmentBenchmark: Benchmark = {
  name: 'assignment',
  title: 'Registrations per second and register -> agent details latency',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const perLevel: Record<number, number> = ctx.quick ? { 1: 20, 10: 100, 100: 200 } : { 1: 100, 10: 500, 100: 1000 };
    const modes: Mode[] = ['direct', 'gateway'];
    // One more unit: the agent the bare signals go to.
    const total = modes.length * LEVELS.reduce((sum, c) => sum + perLevel[c]! + warmup(c), 0) + 1;
    const stack = await startBenchStack(ctx, { workers: 1, gateways: 1 });
    const figures: Record<string, unknown> = {};
    const rows: TableRow[] = [];
    try {
      const { runId } = await stack.operator.launch(benchConfig(inlineData(total)));
      ctx.log(`run ${runId}: launching ${total} units`);
      await waitUntilLaunched(stack, runId, total);
      const calls = new WorkflowCalls(stack.client);
      const gatewayUrl = stack.gatewayUrl(stack.gateways[0]!);
      const target = await calls.requestUnit(runId, { provider: 'mock', providerWorkerId: 'bench-signal-target', registrationKey: randomUUID() });
      if (target.outcome !== 'assigned') throw new Error(`the signal target was not assigned a unit: ${JSON.stringify(target)}`);
      const targetHandle = stack.client.workflow.getHandle(assignmentWorkflowId(target.assignmentId));
      // Its workflow starts just after the answer (docs/design.md §6): bare signals go to it once it runs.
      await calls.signalAssignment(target.assignmentId, agentActionSignal, { agentId: target.agentId, actionId: randomUUID(), data: {} });
      const bareSignals: Record<string, { perSecond: number; latency: ReturnType<typeof summarize> }> = {};
      for (const c of LEVELS) {
        const signal = async (): Promise<void> => {
          const actionId = randomUUID();
          await targetHandle.signal(agentActionSignal, { agentId: target.agentId, actionId, data: { draft: actionId } });
        };
        await closedLoop(warmup(c), c, signal);
        const { latenciesMs, wallMs } = await closedLoop(perLevel[c]!, c, signal);
        bareSignals[`c${c}`] = { perSecond: round((latenciesMs.length / wallMs) * 1000), latency: summarize(latenciesMs) };
        ctx.log(`bare Temporal signals c=${c}: ${bareSignals[`c${c}`]!.perSecond}/s p50 ${bareSignals[`c${c}`]!.latency.p50Ms} ms`);
      }
      figures.bareSignals = bareSignals;
      // Bare workflow starts (signal-with-start, as the hand-over does) on a task queue no worker polls:
      // the server's cost of a new assignment workflow, without running it.
      const bareStarts: Record<string, { perSecond: number; latency: ReturnType<typeof summarize> }> = {};
      const idle = `bench-idle-${randomUUID().slice(0, 8)}`;
      for (const c of LEVELS) {
        const start = async (): Promise<void> => {
          await stack.client.workflow.signalWithStart('AssignmentWorkflow', {
            workflowId: `bench-start-${randomUUID()}`,
            taskQueue: idle,
            args: [{}],
            signal: agentActionSignal,
            signalArgs: [{ agentId: 'none', actionId: 'none', data: {} }],
          });
        };
        await closedLoop(warmup(c), c, start);
        const { latenciesMs, wallMs } = await closedLoop(perLevel[c]!, c, start);
        bareStarts[`c${c}`] = { perSecond: round((latenciesMs.length / wallMs) * 1000), latency: summarize(latenciesMs) };
        ctx.log(`bare Temporal signal-with-start c=${c}: ${bareStarts[`c${c}`]!.perSecond}/s p50 ${bareStarts[`c${c}`]!.latency.p50Ms} ms`);
      }
      figures.bareStarts = bareStarts;
      let arrival = 0;
      const oneAtATime: Partial<Record<Mode, { from: number; to: number }>> = {};
      /** Assignments answered in the level being measured, with when (epoch ms): their workflows' start is compared with it. */
      let answered: Array<{ assignmentId: string; atMs: number }> = [];
      const register = async (mode: Mode): Promise<void> => {
        const workerId = `bench-${mode}-${arrival++}`;
        if (mode === 'direct') {
          const result = await calls.requestUnit(runId, { provider: 'mock', providerWorkerId: workerId, registrationKey: randomUUID() });
          if (result.outcome !== 'assigned') throw new Error(`registration of ${workerId} was not assigned a unit: ${JSON.stringify(result)}`);
          answered.push({ assignmentId: result.assignmentId, atMs: Date.now() });
        } else {
          const agent = await registerOverGateway(gatewayUrl, runId, workerId);
          answered.push({ assignmentId: agent.agent.assignmentId, atMs: Date.now() });
          agent.close();
        }
      };
      for (const mode of modes) {
        const byLevel: Record<string, unknown> = {};
        for (const c of LEVELS) {
          await closedLoop(warmup(c), c, () => register(mode));
          // The warm-up's hand-overs finish before the level starts (docs/design.md §6: they follow the answers).
          await handOverLag(stack.client, answered);
          answered = [];
          const cpuBefore = { worker: stack.workers[0]!.cpuSeconds() ?? 0, gateway: stack.gateways[0]!.cpuSeconds() ?? 0, temporal: stack.temporal.cpuSeconds() };
          const from = Date.now();
          const { latenciesMs, wallMs } = await closedLoop(perLevel[c]!, c, () => register(mode));
          if (c === 1) oneAtATime[mode] = { from, to: Date.now() };
          const latency = summarize(latenciesMs);
          const perSecond = round((latenciesMs.length / wallMs) * 1000);
          // Answers do not wait for the assignment's workflow to start: how long after the answer it did,
          // and the rate counting until the last of them had started.
          const lag = await handOverLag(stack.client, answered);
          const startedPerSecond = round((latenciesMs.length / (wallMs + Math.max(0, lag.lastStartedAtMs - (from + wallMs)))) * 1000);
          answered = [];
          const cpu = {
            workerS: round((stack.workers[0]!.cpuSeconds() ?? 0) - cpuBefore.worker, 2),
            gatewayS: round((stack.gateways[0]!.cpuSeconds() ?? 0) - cpuBefore.gateway, 2),
            temporalS: round(stack.temporal.cpuSeconds() - cpuBefore.temporal, 2),
            wallS: round(wallMs / 1000, 2),
          };
          const bare = bareSignals[`c${c}`]!;
          const ratio = round(perSecond / bare.perSecond, 2);
          const handOver = { answerToStart: lag.latency, startedPerSecond };
          byLevel[`c${c}`] = { registrations: latenciesMs.length, perSecond, latency, cpu, ratioToBareSignals: ratio, handOver };
          ctx.log(
            `${mode} c=${c}: ${perSecond}/s p50 ${latency.p50Ms} ms p99 ${latency.p99Ms} ms, x${ratio} of bare signals (cpu s: worker ${cpu.workerS}, gateway ${cpu.gatewayS}, temporal ${cpu.temporalS}, wall ${cpu.wallS}); ` +
              `assignment workflow started p50 ${lag.latency.p50Ms} ms p99 ${lag.latency.p99Ms} ms after the answer, ${startedPerSecond}/s counting until the last started`,
          );
          rows.push({
            benchmark: 'assignment',
            metric: `${mode === 'gateway' ? 'WebSocket register' : 'requestUnit update (no gateway)'}, ${c} concurrent`,
            value: `${perSecond}/s, p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms`,
            note:
              `${latenciesMs.length} registrations; bare signals ${bare.perSecond}/s p50 ${bare.latency.p50Ms} ms (x${ratio}); ` +
              `workflow started +${lag.latency.p50Ms}/+${lag.latency.p99Ms} ms (p50/p99), ${startedPerSecond}/s with starts; bare starts ${bareStarts[`c${c}`]!.perSecond}/s`,
          });
        }
        figures[mode] = byLevel;
      }
      // Where one registration's time goes (concurrency 1), from the TaskRun workflow's history.
      const histories = (await fetchAllRuns(stack.client, taskRunWorkflowId(runId))).map((r) => r.history);
      const phases: Record<string, unknown> = {};
      for (const mode of modes) {
        const window = oneAtATime[mode];
        if (!window) continue;
        const breakdown = registrationPhases(histories, window.from, window.to);
        phases[mode] = breakdown;
        const how =
          (breakdown.decidedBy.localActivity > 0 ? 'decided by a local activity' : 'decided by an activity') +
          (breakdown.answeredBeforeChildStart > 0 ? `, ${breakdown.answeredBeforeChildStart} answered before their assignment workflow started` : '');
        ctx.log(`${mode} c=1, where the time goes (p50 of ${breakdown.phases.acceptedToCompleted?.count ?? 0}, ${how}):`);
        for (const phase of PHASES) {
          const summary = breakdown.phases[phase];
          if (summary) ctx.log(`  ${String(summary.p50Ms).padStart(7)} ms  ${PHASE_MEANING[phase]}`);
        }
      }
      figures.phasesAtConcurrency1 = phases;
      const direct = (phases.direct as ReturnType<typeof registrationPhases> | undefined)?.phases;
      if (direct?.acceptedToCompleted) {
        const parts = PHASES.filter((p) => p !== 'acceptedToCompleted' && direct[p]).map((p) => `${p} ${direct[p]!.p50Ms}`);
        rows.push({
          benchmark: 'assignment',
          metric: 'one registration, server-side phases (p50)',
          value: direct.oneTask ? `${direct.oneTask.p50Ms} ms in one workflow task` : `${direct.acceptedToCompleted.p50Ms} ms accepted->completed`,
          note: `${parts.join(', ')} ms`,
        });
      }
      const assigned = await stack.db.em().count(Unit, { taskRun: runId, status: 'assigned' });
      figures.unitsAssigned = assigned;
      figures.runId = runId;
      if (assigned !== total) throw new Error(`expected ${total} assigned units after the benchmark, found ${assigned}`);
      return { figures, rows };
    } finally {
      await stack.stop();
    }
  },
};

/**
 * When each answered assignment's workflow started, relative to its answer (waits until all have
 * started). A workflow that existed before the answer (a partner's) counts 0.
 */
async function handOverLag(
  client: BenchClient,
  answered: ReadonlyArray<{ assignmentId: string; atMs: number }>,
): Promise<{ latency: ReturnType<typeof summarize>; lastStartedAtMs: number }> {
  const lags: number[] = [];
  let lastStartedAtMs = 0;
  for (const { assignmentId, atMs } of answered) {
    const handle = client.workflow.getHandle(assignmentWorkflowId(assignmentId));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const startedAt = await handle.describe().then(
        (d) => d.startTime.getTime(),
        () => null,
      );
      if (startedAt !== null) {
        lags.push(Math.max(0, startedAt - atMs));
        lastStartedAtMs = Math.max(lastStartedAtMs, startedAt);
        break;
      }
      if (Date.now() > deadline) throw new Error(`assignment ${assignmentId}: its workflow had not started 120 s after the answer`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { latency: summarize(lags), lastStartedAtMs };
}

/** Registrations before measuring each level: workflow caches, connections and JIT warmed up. */
function warmup(concurrency: number): number {
  return Math.max(5, concurrency);
}
