/**
 * Connections: memory per idle connected agent on one gateway. Agents connect and register (each
 * holds a unit), then stay connected without sending anything (the gateway's pings are answered by
 * the WebSocket layer). The gateway's RSS is read from /proc at 0, 1,000 and 10,000 agents.
 */
import { registerOverGateway, type ProtocolSocket } from '../../chaos/protocolClient.ts';
import { mib } from '../../chaos/procStats.ts';
import type { ManagedProcess } from '../../chaos/managedProcess.ts';
import type { Benchmark, BenchContext, BenchOutcome, TableRow } from '../benchmark.ts';
import { benchConfig, inlineData, startBenchStack, waitUntilLaunched, writeJsonlData } from '../setup.ts';
import { round } from '../stats.ts';

/** Registrations in flight while connecting agents. */
const LANES = 20;
/** Agents registered before the baseline reading: the gateway's caches and code paths are warm. */
const WARMUP = 20;

/** RSS once the gateway has settled: the smallest of a few readings a second apart. */
async function settledRss(gateway: ManagedProcess): Promise<number> {
  await new Promise((r) => setTimeout(r, 3000));
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    least = Math.min(least, gateway.memory()?.rss ?? Number.POSITIVE_INFINITY);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return least;
}

export const connectionsBenchmark: Benchmark = {
  name: 'connections',
  title: 'Memory per idle connected agent on one gateway',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const levels = ctx.quick ? [200, 1000] : [1000, 10_000];
    const top = levels.at(-1)!;
    const stack = await startBenchStack(ctx, { workers: 1, gateways: 1 });
    const gateway = stack.gateways[0]!;
    const sockets: ProtocolSocket[] = [];
    try {
      const total = top + WARMUP;
      const data = total > 2000 ? writeJsonlData(ctx.workDir, total) : inlineData(total);
      const { runId } = await stack.operator.launch(benchConfig(data));
      await waitUntilLaunched(stack, runId, total);
      const url = stack.gatewayUrl(gateway);
      let next = 0;
      const connectUpTo = async (count: number): Promise<void> => {
        const started = performance.now();
        await Promise.all(
          Array.from({ length: LANES }, async () => {
            while (next < count) {
              const i = next++;
              sockets.push(await registerOverGateway(url, runId, `idle-${i}`));
              if (sockets.length % 1000 === 0) ctx.log(`  ${sockets.length} agents connected, ${round((performance.now() - started) / 1000)} s into this step`);
            }
          }),
        );
        ctx.log(`${sockets.length} agents connected (${round((performance.now() - started) / 1000)} s for this step)`);
      };
      await connectUpTo(WARMUP);
      const base = await settledRss(gateway);
      ctx.log(`baseline gateway RSS with ${WARMUP} agents: ${mib(base)} MiB`);
      const readings: Array<{ agents: number; rssMiB: number; perAgentKiB: number; marginalKiB: number | null }> = [];
      let previous: { agents: number; rss: number } | null = null;
      for (const level of levels) {
        await connectUpTo(level + WARMUP);
        const rss = await settledRss(gateway);
        const perAgentKiB = round((rss - base) / level / 1024, 1);
        // Against the previous level: the cost of one more agent once the heap has grown.
        const marginalKiB = previous ? round((rss - previous.rss) / (level - previous.agents) / 1024, 1) : null;
        readings.push({ agents: level, rssMiB: mib(rss), perAgentKiB, marginalKiB });
        previous = { agents: level, rss };
        ctx.log(`${level} idle agents: gateway RSS ${mib(rss)} MiB, ${perAgentKiB} KiB per agent${marginalKiB === null ? '' : ` (${marginalKiB} KiB each beyond the previous level)`}`);
      }
      const rows: TableRow[] = readings.map((r) => ({
        benchmark: 'connections',
        metric: `${r.agents.toLocaleString('en')} idle agents on one gateway`,
        value: `${r.perAgentKiB} KiB per agent`,
        note: `gateway RSS ${r.rssMiB} MiB (baseline ${mib(base)} MiB)${r.marginalKiB === null ? '' : `; ${r.marginalKiB} KiB per agent beyond the previous level`}`,
      }));
      return { figures: { runId, warmupAgents: WARMUP, baselineRssMiB: mib(base), readings, gatewayPeakRssMiB: mib(gateway.memory()?.peakRss ?? 0) }, rows };
    } finally {
      for (const s of sockets) s.drop();
      await stack.stop();
    }
  },
};
