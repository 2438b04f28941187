import { randomUUID } from 'node:crypto';
import { startStack } from '../chaos/stack.ts';
import { WorkflowCalls } from '../gateway/workflowCalls.ts';
import { benchConfig, inlineData, waitUntilLaunched } from './setup.ts';
const stack = await startStack({ workDir: '/tmp/hitloop-timeline', logLevel: 'warn' });
await stack.addWorker();
const { runId } = await stack.operator.launch(benchConfig(inlineData(30)));
await waitUntilLaunched(stack, runId, 30);
const calls = new WorkflowCalls(stack.client);
for (let i = 0; i < 8; i++) {
  const t0 = Date.now();
  const r = await calls.requestUnit(runId, { provider: 'mock', providerWorkerId: `t${i}`, registrationKey: randomUUID() });
  console.log('reg', i, Date.now() - t0, r.outcome);
}
await new Promise((r) => setTimeout(r, 1000));
const h = await stack.client.workflow.getHandle(`taskrun-${runId}`).fetchHistory();
const evs = h.events!;
const base = Number(evs[evs.length - 40]!.eventTime!.seconds) * 1000 + Math.floor(evs[evs.length - 40]!.eventTime!.nanos! / 1e6);
for (const e of evs.slice(-40)) {
  const t = Number(e.eventTime!.seconds) * 1000 + Math.floor(e.eventTime!.nanos! / 1e6);
  const type = Object.keys(e).find((k) => k.endsWith('Attributes'));
  console.log(String(t - base).padStart(6), e.eventId?.toString(), type);
}
// assignment workflow of the last
const list = [];
for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'AssignmentWorkflow'` })) list.push(wf);
const ah = await stack.client.workflow.getHandle(list[0]!.workflowId).fetchHistory();
for (const e of ah.events!) {
  const t = Number(e.eventTime!.seconds) * 1000 + Math.floor(e.eventTime!.nanos! / 1e6);
  const type = Object.keys(e).find((k) => k.endsWith('Attributes'));
  console.log('A', String(t - base).padStart(6), e.eventId?.toString(), type);
}
await stack.stop();
