/**
 * End to end: a 1,000-unit run worked by 50 simulated workers with no think time, from launch to
 * `completed`. Through the gateway (`runSimulation`, the engine of `hitloop simulate`), and, for
 * comparison, with the same number of agents calling Temporal directly (no gateway).
 */
import { randomUUID } from 'node:crypto';
import { TemporalUnavailableError, WorkflowCalls } from '../../gateway/workflowCalls.ts';
import { agentSubmitSignal } from '../../workflows/definitions.ts';
import type { Stack } from '../../chaos/stack.ts';
import { runSimulation } from '../../simulate/simulate.ts';
import type { Benchmark, BenchContext, BenchOutcome, TableRow } from '../benchmark.ts';
import { saveRunHistories } from '../histories.ts';
import { benchConfig, inlineData, largestHistory, startBenchStack } from '../setup.ts';
import { round } from '../stats.ts';

/** Direct agents: register through the update, submit by signal, until the run refuses them. */
async function directWorkers(stack: Stack, runId: string, workers: number): Promise<void> {
  const calls = new WorkflowCalls(stack.client);
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let n = 0; ; n++) {
        const result = await calls.requestUnit(runId, { provider: 'mock', providerWorkerId: `e2e-direct-${w}`, registrationKey: randomUUID() });
        if (result.outcome === 'refused') {
          if (result.reason === 'run_not_running') return;
          // Units are all taken but not all submitted: ask again shortly.
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        if (result.outcome !== 'assigned') throw new Error(`worker e2e-direct-${w} got ${result.outcome}: the benchmark run has no onboarding`);
        // As the gateway does: the assignment workflow may start just after the answer (the fast path),
        // and a page sends a packet refused as "Temporal unavailable" again.
        const submit = { agentId: result.agentId, submitKey: `s-${result.agentId}`, data: { label: n % 2 ? 'positive' : 'negative' } };
        for (;;) {
          try {
            await calls.signalAssignment(result.assignmentId, agentSubmitSignal, submit);
            break;
          } catch (err) {
            if (!(err instanceof TemporalUnavailableError)) throw err;
          }
        }
      }
    }),
  );
}

export const endToEndBenchmark: Benchmark = {
  name: 'end-to-end',
  title: '1,000-unit run, 50 simulated workers, no think time: launch -> completed',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const units = ctx.quick ? 200 : 1000;
    const workers = ctx.quick ? 20 : 50;
    const figures: Record<string, unknown> = { units, workers };
    const rows: TableRow[] = [];
    for (const mode of ['gateway', 'direct'] as const) {
      const stack = await startBenchStack(ctx, { workers: 1, gateways: mode === 'gateway' ? 1 : 0 });
      try {
        const started = performance.now();
        const { runId } = await stack.operator.launch(benchConfig(inlineData(units)));
        const agents = mode === 'gateway' ? gatewayWorkers(stack, runId, workers) : directWorkers(stack, runId, workers);
        const final = await stack.operator.wait(runId, { pollMs: 250 });
        const ms = performance.now() - started;
        await agents;
        if (final.status !== 'completed' || final.units.completed !== units) {
          throw new Error(`run ${runId} (${mode}) ended ${final.status} with ${final.units.completed}/${units} completed units`);
        }
        const history = await largestHistory(stack, runId);
        const saved = mode === 'gateway' ? await saveRunHistories(stack, runId, 'bench-e2e', { assignments: 1 }) : [];
        figures[mode] = { runId, seconds: round(ms / 1000, 1), unitsPerSecond: round(units / (ms / 1000)), largestHistory: history, savedHistories: saved };
        ctx.log(`${mode}: ${units} units in ${round(ms / 1000, 1)} s (${round(units / (ms / 1000))} units/s)`);
        rows.push({
          benchmark: 'end-to-end',
          metric: `${units} units, ${workers} workers, ${mode === 'gateway' ? 'through the gateway' : 'direct to Temporal (no gateway)'}`,
          value: `${round(ms / 1000, 1)} s`,
          note: `${round(units / (ms / 1000))} units/s; largest history ${history.events} events`,
        });
      } finally {
        await stack.stop();
      }
    }
    return { figures, rows };
  },
};

/** `hitloop simulate`'s engine: scripted workers over the real protocol, no think time. */
async function gatewayWorkers(stack: Stack, runId: string, workers: number): Promise<void> {
  const summary = await runSimulation({ gatewayUrl: stack.gateways.map((g) => stack.gatewayUrl(g)), runId, workers, thinkMs: 0, pollMs: 100, seed: 1, timeoutMs: 1_800_000 });
  if (summary.errors.length > 0 || summary.timedOut) {
    throw new Error(`simulation of run ${runId}: ${summary.timedOut ? 'timed out; ' : ''}${summary.errors.slice(0, 3).join('; ')}`);
  }
}
