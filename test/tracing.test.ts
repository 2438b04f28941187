/**
 * Tracing of one run end to end, over OTLP/HTTP to a receiver in this test: the client that starts
 * the run, the workflow code (spans made in the workflow sandbox by the bundle's interceptors,
 * workflows/tracing.ts), the activities (a real worker process) and the gateway's registration update
 * (a real gateway process) land in one trace, parent to child. The traced TaskRun history then
 * replays against the bundle: a traced execution is as deterministic as an untraced one. Both
 * processes log JSON records only (the production stack runs the same entry points).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHAOS_OPTIONS, chaosConfig } from '../chaos/harness.ts';
import { registerOverGateway } from '../chaos/protocolClient.ts';
import { startStack, type Stack } from '../chaos/stack.ts';
import { connectOperator, type Operator } from '../operator/api.ts';
import { startTracing, workflowSinks, type Tracing } from '../observability/telemetry.ts';
import { ensureWorkflowBundle } from '../workers/workflowBundle.ts';
import { taskRunWorkflowId } from '../workflows/definitions.ts';
import { WORKFLOW_TRACING_PATCH } from '../workflows/tracing.ts';
import { checkJsonLog } from './support/jsonLogs.ts';
import { eventually } from './support/stack.ts';

interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
}

interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans?: Array<{ spans?: Array<{ name: string; traceId: string; spanId: string; parentSpanId?: string }> }>;
  }>;
}

/** An OTLP/HTTP traces endpoint (JSON, what @opentelemetry/exporter-trace-otlp-http sends) that keeps every span. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; requests: string[]; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJson;
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) spans.push({ service, name: s.name, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '' });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('tracing over OTLP: client, workflow and activity spans of one run', () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let stack: Stack;
  let tracing: Tracing;
  let client: Client;
  let operator: Operator;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hitloop-tracing-'));

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // Short export delay: the spans reach the receiver soon after they end.
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' };
    // info: the processes write records all along, and the test reads their logs at the end.
    stack = await startStack({ workDir, dialect: 'sqlite', workerEnv: otel, gatewayEnv: otel, logLevel: 'info' });
    await stack.addWorker();
    await stack.addGateway();
    // This process is the operator's client: traced like the gateway's.
    Object.assign(process.env, otel);
    tracing = startTracing('hitloop-test-operator')!;
    client = new Client({ connection: stack.client.connection, interceptors: { workflow: tracing.clientInterceptors } });
    operator = await connectOperator(stack.settings, { client, db: stack.db });
  }, 300_000);

  afterAll(async () => {
    await operator?.close();
    await tracing?.shutdown();
    await stack?.stop();
    await receiver?.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }, 120_000);

  /** Waits for a span; on time-out, says which spans did arrive. */
  const waitForSpan = async (find: () => ReceivedSpan | undefined, what: string): Promise<ReceivedSpan> => {
    try {
      return await eventually(async () => find(), what, 120_000);
    } catch (err) {
      const seen = [...new Set(receiver.spans.map((s) => `${s.service} ${s.name} trace ${s.traceId.slice(0, 8)} span ${s.spanId.slice(0, 8)} parent ${s.parentSpanId.slice(0, 8) || '-'}`))].sort();
      throw new Error(`${(err as Error).message}; spans received:\n  ${seen.join('\n  ')}`, { cause: err });
    }
  };

  it('links the start, the workflow run, its activities and a registration through the gateway in one trace; the traced history replays', { timeout: 300_000 }, async () => {
    const options = { ...DEFAULT_CHAOS_OPTIONS, seed: 1, assignments: 2, workers: 1 };
    const { runId } = await operator.launch(chaosConfig(options));
    const start = await waitForSpan(
      () => receiver.spans.find((s) => s.service === 'hitloop-test-operator' && s.name === 'StartWorkflow:TaskRunWorkflow'),
      'the client span of the start',
    );
    const inTrace = (): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === start.traceId);

    // A registration through the gateway (once the run offers units): its update is a client span of the gateway process.
    await eventually(async () => ((await operator.status(runId)).units.launched > 0 ? true : undefined), 'a launched unit', 120_000);
    const socket = await registerOverGateway(stack.gatewayUrl(stack.gateways[0]!), runId, 'traced-worker');
    // Its unit is submitted, so the shutdown below has no work in flight to wait for.
    await socket.waitForStatus('in_task', 120_000);
    const submitKey = `submit-${socket.agent.agentId}`;
    socket.send({ type: 'submit', submitKey, data: { label: 'positive' } });
    const ack = await socket.next((p) => p.type === 'submit_ack' || p.type === 'error', 120_000, 'submit_ack');
    expect(ack.type, JSON.stringify(ack)).toBe('submit_ack');
    socket.close();
    const handled = await waitForSpan(
      () => {
        const sent = receiver.spans.filter((s) => s.service === 'hitloop-gateway' && s.name === 'StartWorkflowUpdate:requestUnit');
        return receiver.spans.find((s) => s.name === 'HandleUpdate:requestUnit' && sent.some((u) => u.traceId === s.traceId));
      },
      "the gateway's requestUnit update and the workflow's handling of it, in one trace",
    );
    expect(handled.service).toBe('hitloop-worker');

    // The run ends (shut down): its RunWorkflow span ends too, and is exported.
    await operator.shutdown(runId);
    await client.workflow.getHandle(taskRunWorkflowId(runId)).result();
    const run = await waitForSpan(
      () => inTrace().find((s) => s.name === 'RunWorkflow:TaskRunWorkflow'),
      'the workflow span of the run, in the trace of its start',
    );
    expect(run.service).toBe('hitloop-worker');
    expect(run.parentSpanId).toBe(start.spanId);
    const scheduled = await waitForSpan(
      () => inTrace().find((s) => s.name === 'StartActivity:validateTaskRunConfig'),
      'the workflow span scheduling the first activity',
    );
    const executed = await waitForSpan(
      () => inTrace().find((s) => s.name === 'RunActivity:validateTaskRunConfig'),
      'the activity span of the first activity',
    );
    expect(executed.service).toBe('hitloop-worker');
    expect(executed.parentSpanId).toBe(scheduled.spanId);
    // Every workflow span of the trace descends from the start.
    const byId = new Map(inTrace().map((s) => [s.spanId, s]));
    const rootOf = (s: ReceivedSpan): ReceivedSpan => {
      let at = s;
      while (at.parentSpanId && byId.has(at.parentSpanId)) at = byId.get(at.parentSpanId)!;
      return at;
    };
    const workflowSpans = inTrace().filter((s) => s.name.startsWith('StartActivity:') || s.name.startsWith('StartChildWorkflow:'));
    expect(workflowSpans.length).toBeGreaterThan(1);
    for (const s of workflowSpans) expect(rootOf(s).spanId, s.name).toBe(start.spanId);
    expect(receiver.requests.every((r) => r.startsWith('POST /v1/traces application/json'))).toBe(true);

    // The traced execution carries the patch marker and replays against the bundle.
    const history = await client.workflow.getHandle(taskRunWorkflowId(runId)).fetchHistory();
    const patches = (history.events ?? [])
      .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
      .flatMap((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((p) => p.payloads ?? []))
      .map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
    expect(patches.some((data) => data.includes(WORKFLOW_TRACING_PATCH))).toBe(true);
    await Worker.runReplayHistory({ workflowBundle: await ensureWorkflowBundle(), sinks: workflowSinks(undefined) }, history, taskRunWorkflowId(runId));
  });

  it('the worker and gateway processes log nothing but JSON records', () => {
    for (const p of [...stack.workers, ...stack.gateways]) {
      const check = checkJsonLog(p.spec.logFile);
      expect(check.others, p.spec.name).toEqual([]);
      expect(check.records, `${p.spec.name}: records`).toBeGreaterThan(0);
    }
  });
});
