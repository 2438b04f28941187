/**
 * Live actions: agent actions per second from the WebSocket into the workflow, acknowledged
 * (`live` -> `live_ack`, which the gateway sends once Temporal has accepted the signal), with p50/p99
 * latency, against a baseline of bare Temporal client signals (`agentAction`) to the same assignment
 * workflows on the same server. Both phases use the same agents, concurrency and pacing; the ratio
 * is what the gateway costs. Both are measured on the Temporal dev server and then on the production
 * cluster (`hitloop stack`'s four services on PostgreSQL), each on a fresh stack, in one run.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { StackTemporalKind } from '../../chaos/stack.ts';
import { agentActionSignal, assignmentWorkflowId } from '../../workflows/definitions.ts';
import { registerOverGateway, type AgentDetails, type ProtocolSocket } from '../../chaos/protocolClient.ts';
import type { Benchmark, BenchContext, BenchOutcome, TableRow } from '../benchmark.ts';
import { waitUntilQuiet } from '../quiet.ts';
import { benchConfig, inlineData, startBenchStack, waitUntilLaunched } from '../setup.ts';
import { round, summarize, type LatencySummary } from '../stats.ts';

/**
 * Each agent sends at most this many actions per second: under the gateway's per-socket flood limit
 * (30/s, docs/protocol.md), so no packet is dropped; the baseline is paced the same way.
 */
const PER_AGENT_RATE = 25;

interface PhaseResult {
  actions: number;
  perSecond: number;
  latency: LatencySummary;
  wallS: number;
  cpu: { workerS: number; gatewayS: number; temporalS: number };
}

interface Comparison {
  /** Which Temporal served the phases, and its version. */
  temporal: string;
  runId: string;
  baseline: PhaseResult;
  gateway: PhaseResult;
  ratio: { throughput: number; p50: number; p99: number };
}

const TEMPORALS: ReadonlyArray<{ kind: StackTemporalKind; label: string }> = [
  { kind: 'dev', label: 'dev server' },
  { kind: 'cluster', label: 'cluster (4 services on PostgreSQL)' },
];

export const liveActionsBenchmark: Benchmark = {
  name: 'live-actions',
  title: 'Agent actions per second, WebSocket -> workflow (acknowledged), against bare client signals; dev server and cluster side by side',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const agents = ctx.quick ? 20 : 100;
    const actionsPerAgent = ctx.quick ? 20 : 40;
    const ceiling = agents * PER_AGENT_RATE;
    const rows: TableRow[] = [];
    const figures: Record<string, unknown> = { agents, actionsPerAgent, perAgentRate: PER_AGENT_RATE, offeredCeilingPerSecond: ceiling };
    for (const { kind, label } of TEMPORALS) {
      ctx.log(`on the ${label}:`);
      const own: BenchContext = { ...ctx, workDir: path.join(ctx.workDir, kind) };
      const c = await compareOn(own, kind, agents, actionsPerAgent);
      // The machine as the first stack found it (run.ts stores it with the figures).
      ctx.machine ??= own.machine;
      figures[kind] = c;
      rows.push(
        {
          benchmark: 'live-actions',
          metric: `${label}: bare client signals (baseline)`,
          value: `${c.baseline.perSecond}/s, p50 ${c.baseline.latency.p50Ms} ms, p99 ${c.baseline.latency.p99Ms} ms`,
          note: `${agents} agents x ${actionsPerAgent}, offered <= ${ceiling}/s; Temporal CPU ${c.baseline.cpu.temporalS} s`,
        },
        {
          benchmark: 'live-actions',
          metric: `${label}: WebSocket live -> live_ack`,
          value: `${c.gateway.perSecond}/s, p50 ${c.gateway.latency.p50Ms} ms, p99 ${c.gateway.latency.p99Ms} ms`,
          note: `ratio to baseline: throughput x${c.ratio.throughput}, p50 x${c.ratio.p50}, p99 x${c.ratio.p99}`,
        },
      );
    }
    return { figures, rows };
  },
};

/** Both phases (bare signals, then WebSocket live actions) on a stack of its own with the given Temporal. */
async function compareOn(ctx: BenchContext, kind: StackTemporalKind, agents: number, actionsPerAgent: number): Promise<Comparison> {
  const stack = await startBenchStack(ctx, { workers: 1, gateways: 1, temporal: kind });
  const sockets: Array<ProtocolSocket & { agent: AgentDetails }> = [];
  try {
    const temporal = execFileSync(stack.temporal.cliPath, ['--version'], { encoding: 'utf8' }).trim();
    const { runId } = await stack.operator.launch(benchConfig(inlineData(agents)));
    await waitUntilLaunched(stack, runId, agents);
    const gatewayUrl = stack.gatewayUrl(stack.gateways[0]!);
    for (let i = 0; i < agents; i++) sockets.push(await registerOverGateway(gatewayUrl, runId, `live-${i}`));
    // Actions count only from in_task on: wait for each agent's status message.
    await Promise.all(sockets.map((s) => s.waitForStatus('in_task', 60_000)));
    await waitUntilQuiet(stack);

    const measure = async (send: (agent: number, actionId: string) => Promise<void>): Promise<PhaseResult> => {
      const cpu0 = { w: stack.workers[0]!.cpuSeconds() ?? 0, g: stack.gateways[0]!.cpuSeconds() ?? 0, t: stack.temporal.cpuSeconds() };
      const latencies: number[] = [];
      const start = performance.now();
      await Promise.all(
        sockets.map(async (_s, agent) => {
          for (let k = 0; k < actionsPerAgent; k++) {
            const due = start + (k * 1000) / PER_AGENT_RATE;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            const t0 = performance.now();
            await send(agent, `a-${randomUUID()}`);
            latencies.push(performance.now() - t0);
          }
        }),
      );
      const wallMs = performance.now() - start;
      const result: PhaseResult = {
        actions: latencies.length,
        perSecond: round((latencies.length / wallMs) * 1000),
        latency: summarize(latencies),
        wallS: round(wallMs / 1000, 2),
        cpu: {
          workerS: round((stack.workers[0]!.cpuSeconds() ?? 0) - cpu0.w, 2),
          gatewayS: round((stack.gateways[0]!.cpuSeconds() ?? 0) - cpu0.g, 2),
          temporalS: round(stack.temporal.cpuSeconds() - cpu0.t, 2),
        },
      };
      await waitUntilQuiet(stack);
      return result;
    };

    const baseline = await measure(async (agent, actionId) => {
      const a = sockets[agent]!.agent;
      await stack.client.workflow.getHandle(assignmentWorkflowId(a.assignmentId)).signal(agentActionSignal, { agentId: a.agentId, actionId, data: { draft: actionId } });
    });
    ctx.log(`${kind}: baseline (client signals): ${baseline.perSecond}/s p50 ${baseline.latency.p50Ms} ms p99 ${baseline.latency.p99Ms} ms`);
    const gateway = await measure(async (agent, actionId) => {
      const s = sockets[agent]!;
      s.send({ type: 'live', actionId, data: { draft: actionId } });
      const answer = await s.next((p) => (p.type === 'live_ack' && p.actionId === actionId) || (p.type === 'error' && p.id === actionId), 60_000, `live_ack of ${actionId}`);
      if (answer.type !== 'live_ack') throw new Error(`live action ${actionId} refused by the gateway: ${JSON.stringify(answer)}`);
    });
    ctx.log(`${kind}: gateway (WebSocket live): ${gateway.perSecond}/s p50 ${gateway.latency.p50Ms} ms p99 ${gateway.latency.p99Ms} ms`);
    const ratio = {
      throughput: round(gateway.perSecond / baseline.perSecond, 2),
      p50: round(gateway.latency.p50Ms / baseline.latency.p50Ms, 2),
      p99: round(gateway.latency.p99Ms / baseline.latency.p99Ms, 2),
    };
    return { temporal, runId, baseline, gateway, ratio };
  } finally {
    for (const s of sockets) s.close();
    await stack.stop();
  }
}
