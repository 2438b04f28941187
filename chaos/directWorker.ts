/**
 * A simulated worker without a gateway, for chaos runs of the workflows alone: it registers through
 * the `requestUnit` update and submits through the assignment's signal, with the gateway's own
 * retrying Temporal calls (gateway/workflowCalls.ts). A submission counts as acknowledged once
 * Temporal accepted its signal: the same point at which the gateway sends `submit_ack`.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { TemporalUnavailableError, WorkflowCalls, WorkflowGoneError } from '../gateway/workflowCalls.ts';
import { agentSubmitSignal } from '../workflows/definitions.ts';
import type { Ledger } from './ledger.ts';
import type { SeededRandom } from './random.ts';
import type { WorkerBehaviour, WorkerEnvironment } from './simulatedWorker.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runDirectWorker(
  workerId: string,
  env: Omit<WorkerEnvironment, 'gatewayUrls'> & { client: Client },
  rng: SeededRandom,
  behaviour: WorkerBehaviour,
): Promise<void> {
  const ledger: Ledger = env.ledger;
  const calls = new WorkflowCalls(env.client);
  let registrationKey: string | null = null;
  while (!env.stopped()) {
    await env.gate();
    if (env.stopped()) return;
    registrationKey ??= randomUUID();
    let result;
    try {
      result = await calls.requestUnit(env.runId, { provider: 'mock', providerWorkerId: workerId, registrationKey });
    } catch (err) {
      // Same key next time: a registration that went through meanwhile is found again.
      ledger.count(`registerError:${(err as Error).name}`);
      if (!(err instanceof TemporalUnavailableError)) ledger.anomaly(`${workerId}: register failed: ${(err as Error).message}`);
      await sleep(1000);
      continue;
    }
    registrationKey = null;
    if (result.outcome === 'refused') {
      ledger.count(`refused:${result.reason}`);
      if (result.reason === 'run_not_running') return;
      await sleep(rng.int(100, 400));
      continue;
    }
    if (result.outcome !== 'assigned') {
      ledger.anomaly(`${workerId}: registration answered ${result.outcome}; the chaos run has no onboarding`);
      return;
    }
    ledger.count(result.newlyAssigned ? 'assigned' : 'registrationsRetriedToSameAgent');
    await sleep(rng.int(behaviour.thinkMs[0], behaviour.thinkMs[1]));
    if (rng.chance(behaviour.abandonRate)) {
      // Never submitted: the unit must come back after assignment_duration_seconds.
      ledger.count('abandoned');
      continue;
    }
    const nonce = `${workerId}-${result.agentId}-${rng.int(0, 1e9)}`;
    const data = { label: rng.pick(['positive', 'negative']), comment: `${nonce} · ünïcødé ✓ "quoted" \\ slash\nline two 🚀` };
    const submitKey = `submit-${result.agentId}`;
    for (;;) {
      try {
        await calls.signalAssignment(result.assignmentId, agentSubmitSignal, { agentId: result.agentId, submitKey, data });
        ledger.acked.push({ workerId, agentId: result.agentId, unitId: result.unitId, submitKey, dataJson: JSON.stringify(data), nonce, ackedAt: new Date() });
        break;
      } catch (err) {
        if (err instanceof WorkflowGoneError) {
          ledger.unacked.push({ agentId: result.agentId, submitKey, nonce, why: 'assignment workflow closed' });
          break;
        }
        ledger.count(`submitError:${(err as Error).name}`);
        await sleep(1000);
      }
    }
  }
}
