/**
 * Telemetry a hitloop process turns on from its environment:
 *
 * - `HITLOOP_SDK_METRICS_ADDRESS` (host:port): the Temporal SDK's own metrics (poll latencies, task
 *   slots, activity and workflow-task counts) served by its runtime in Prometheus format at
 *   http://<address>/metrics. hitloop's metrics are separate (observability/metrics.ts).
 * - `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: traces exported over OTLP/HTTP
 *   through @temporalio/interceptors-opentelemetry: a span around every client call (start, signal,
 *   update: the gateway's and the operator's), every workflow execution, signal and update handled,
 *   activity and child workflow scheduled, and every activity, linked through Temporal headers into
 *   one trace. Workflow spans are made inside the workflow sandbox (the interceptor modules are built
 *   into the bundle: workers/workflowBundle.ts) and leave it through the `exporter` sink.
 */
import { trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks, TelemetryOptions } from '@temporalio/worker';

export function sdkTelemetryOptions(env: NodeJS.ProcessEnv = process.env): TelemetryOptions | undefined {
  const bindAddress = env.HITLOOP_SDK_METRICS_ADDRESS;
  if (!bindAddress) return undefined;
  return { metrics: { prometheus: { bindAddress, countersTotalSuffix: true, useSecondsForDurations: true } } };
}

export interface Tracing {
  /** For Worker.create({ interceptors: { activity } }). */
  activityInterceptors: ActivityInterceptorsFactory[];
  /** For new Client({ interceptors: { workflow } }). */
  clientInterceptors: OpenTelemetryWorkflowClientInterceptor[];
  /** For Worker.create({ sinks }): where the bundle's workflow interceptors send their spans. */
  sinks: WorkflowSinks;
  /** Flushes the spans still buffered. */
  shutdown(): Promise<void>;
}

/** Tracing when an OTLP endpoint is configured, else undefined (nothing is exported, nothing costs). */
export function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  // The exporter reads the endpoint, headers and timeout from the standard OTEL_EXPORTER_OTLP_* variables.
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME ?? serviceName });
  const provider = new BasicTracerProvider({ resource });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter());
  provider.addSpanProcessor(processor);
  // Without a context manager no span is ever "active": the client interceptor would put no trace
  // context in the headers it sends, and workflow and activity spans would start traces of their own.
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  const tracer = trace.getTracer('hitloop');
  return {
    activityInterceptors: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }) })],
    clientInterceptors: [new OpenTelemetryWorkflowClientInterceptor({ tracer })],
    // The same processor as the process's own spans: one batch, one flush on shutdown.
    sinks: { exporter: makeWorkflowExporter(processor, resource) },
    shutdown: () => provider.shutdown(),
  };
}

export type WorkflowSinks = InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }>;

/**
 * The sinks every worker (and replayer) of hitloop's bundle injects: the bundle's tracing
 * interceptors always call `exporter`, which drops the spans when tracing is off (an unregistered
 * sink would log an error per call).
 */
export function workflowSinks(tracing: Tracing | undefined): WorkflowSinks {
  return tracing?.sinks ?? { exporter: { export: { fn: () => {} } } };
}
