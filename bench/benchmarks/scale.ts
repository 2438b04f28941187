/**
 * Scale: launching a run of 100,000 assignments (one unit each) from a JSONL file: time to create
 * the assignments, time until every unit is launched, the peak memory (VmHWM) of the worker and of
 * a gateway serving registrations meanwhile, and the largest workflow history of the run.
 */
import { Unit, TaskRun } from '../../model/entities.ts';
import { registerOverGateway } from '../../chaos/protocolClient.ts';
import { MemorySampler, mib } from '../../chaos/procStats.ts';
import type { Benchmark, BenchContext, BenchOutcome } from '../benchmark.ts';
import { benchConfig, largestHistory, startBenchStack, writeJsonlData } from '../setup.ts';
import { round } from '../stats.ts';
import { saveRunHistories } from '../histories.ts';

export const scaleBenchmark: Benchmark = {
  name: 'scale',
  title: 'Launch of 100,000 assignments: time, peak memory of worker and gateway, largest history',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const assignments = ctx.quick ? 10_000 : 100_000;
    const registrations = ctx.quick ? 50 : 200;
    const stack = await startBenchStack(ctx, { workers: 1, gateways: 1 });
    const worker = stack.workers[0]!;
    const gateway = stack.gateways[0]!;
    const workerMemory = new MemorySampler(() => worker.pid);
    const gatewayMemory = new MemorySampler(() => gateway.pid);
    try {
      const dataFile = writeJsonlData(ctx.workDir, assignments);
      const startedAt = performance.now();
      const { runId } = await stack.operator.launch(benchConfig(dataFile));
      let createdMs = 0;
      let launched = 0;
      let lastLog = 0;
      for (;;) {
        const em = stack.db.em();
        if (!createdMs) {
          const run = await em.findOne(TaskRun, runId, { fields: ['status'] });
          if (run && run.status !== 'launching') createdMs = performance.now() - startedAt;
        }
        launched = await em.count(Unit, { taskRun: runId, status: 'launched' });
        if (launched >= assignments) break;
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          ctx.log(`${round((performance.now() - startedAt) / 1000)} s: ${launched} units launched; worker RSS ${mib(worker.memory()?.rss ?? 0)} MiB`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      const launchMs = performance.now() - startedAt;
      ctx.log(`${assignments} units launched in ${round(launchMs / 1000)} s (assignments created after ${round(createdMs / 1000)} s)`);
      // The gateway's share: workers arriving on the big run while it is live.
      const gatewayUrl = stack.gatewayUrl(gateway);
      const regStart = performance.now();
      await Promise.all(
        Array.from({ length: 10 }, async (_, lane) => {
          for (let i = lane; i < registrations; i += 10) (await registerOverGateway(gatewayUrl, runId, `scale-${i}`)).close();
        }),
      );
      const regMs = performance.now() - regStart;
      const history = await largestHistory(stack, runId);
      const saved = await saveRunHistories(stack, runId, 'bench-scale', { assignments: 1 });
      const workerPeak = Math.max(workerMemory.stop(), worker.memory()?.peakRss ?? 0);
      const gatewayPeak = Math.max(gatewayMemory.stop(), gateway.memory()?.peakRss ?? 0);
      const figures = {
        runId,
        assignments,
        createAssignmentsS: round(createdMs / 1000, 1),
        launchAllUnitsS: round(launchMs / 1000, 1),
        unitsLaunchedPerSecond: round(assignments / (launchMs / 1000)),
        workerPeakRssMiB: mib(workerPeak),
        gatewayPeakRssMiB: mib(gatewayPeak),
        gatewayRegistrationsDuringRun: registrations,
        gatewayRegistrationsPerSecond: round((registrations / regMs) * 1000),
        largestHistory: history,
        savedHistories: saved,
        temporalCpuS: round(stack.temporal.cpuSeconds(), 1),
        temporalPeakRssMiB: mib(stack.temporal.memory()?.peakRss ?? 0),
      };
      return {
        figures,
        rows: [
          { benchmark: 'scale', metric: `launch ${assignments.toLocaleString('en')} assignments`, value: `${figures.launchAllUnitsS} s`, note: `assignments created in ${figures.createAssignmentsS} s; ${figures.unitsLaunchedPerSecond} units/s` },
          { benchmark: 'scale', metric: 'peak RSS worker / gateway', value: `${figures.workerPeakRssMiB} MiB / ${figures.gatewayPeakRssMiB} MiB`, note: `gateway served ${registrations} registrations on the run` },
          { benchmark: 'scale', metric: 'largest history', value: `${history.events} events`, note: history.workflowId },
        ],
      };
    } finally {
      workerMemory.stop();
      gatewayMemory.stop();
      await stack.stop();
    }
  },
};
