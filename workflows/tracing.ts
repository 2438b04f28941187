/**
 * Workflow interceptors built into the bundle (workers/workflowBundle.ts): OpenTelemetry spans of
 * workflow code (execution, signals and updates handled, activities and children scheduled), beside
 * the client's and the activities' spans of the same trace. The spans leave the sandbox through the
 * `exporter` sink (observability/telemetry.ts), which drops them when tracing is off.
 *
 * Not a workflow. Tracing wraps every command in an async span, which moves commands against timers
 * started at the same time: a history written without it does not replay with it. So an execution
 * is traced only when it began with this code (`patched`); one begun before keeps running untraced.
 */
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
import { patched, type WorkflowInterceptors } from '@temporalio/workflow';

export const WORKFLOW_TRACING_PATCH = 'otel-workflow-tracing';

export const interceptors = (): WorkflowInterceptors => {
  // Decided once per execution, by its first intercepted call (its start: `execute`); read-only
  // calls (queries, update validators) may not record a marker, so they only read the decision.
  let decided: boolean | undefined;
  const traced = (): boolean => (decided ??= patched(WORKFLOW_TRACING_PATCH));
  const alreadyTraced = (): boolean => decided === true;
  // Built only for traced executions: an untraced one runs exactly as before this module existed.
  let otel: { inbound: OpenTelemetryInboundInterceptor; outbound: OpenTelemetryOutboundInterceptor } | undefined;
  const tracer = () => (otel ??= { inbound: new OpenTelemetryInboundInterceptor(), outbound: new OpenTelemetryOutboundInterceptor() });

  return {
    inbound: [
      {
        execute: (input, next) => (traced() ? tracer().inbound.execute(input, next) : next(input)),
        handleSignal: (input, next) => (traced() ? tracer().inbound.handleSignal(input, next) : next(input)),
        handleUpdate: (input, next) => (traced() ? tracer().inbound.handleUpdate(input, next) : next(input)),
        validateUpdate: (input, next) => (alreadyTraced() ? tracer().inbound.validateUpdate(input, next) : next(input)),
        handleQuery: (input, next) => (alreadyTraced() ? tracer().inbound.handleQuery(input, next) : next(input)),
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => (traced() ? tracer().outbound.scheduleActivity(input, next) : next(input)),
        scheduleLocalActivity: (input, next) => (traced() ? tracer().outbound.scheduleLocalActivity(input, next) : next(input)),
        startChildWorkflowExecution: (input, next) => (traced() ? tracer().outbound.startChildWorkflowExecution(input, next) : next(input)),
        continueAsNew: (input, next) => (traced() ? tracer().outbound.continueAsNew(input, next) : next(input)),
        signalWorkflow: (input, next) => (traced() ? tracer().outbound.signalWorkflow(input, next) : next(input)),
        getLogAttributes: (input, next) => (alreadyTraced() ? tracer().outbound.getLogAttributes(input, next) : next(input)),
      },
    ],
    internals: [new OpenTelemetryInternalsInterceptor()],
  };
};
