/**
 * Ids derived from the registration itself (run, worker, registration key), never from the order in
 * which a batch was decided: a retried register, a retried activity and a replayed workflow all
 * name the same agent or onboarding attempt.
 */
import { createHash } from 'node:crypto';

function registrationDigest(runId: string, workerId: string, registrationKey: string): string {
  return createHash('sha256').update(`${runId}\0${workerId}\0${registrationKey}`).digest('base64url').slice(0, 22);
}

/** The agent a registration gets (normal, screening or gold unit alike). */
export function agentIdFor(runId: string, workerId: string, registrationKey: string): string {
  return `ag-${registrationDigest(runId, workerId, registrationKey)}`;
}

/**
 * The id of a registration's onboarding attempt, so that a retried register finds the attempt it
 * started. `attempt` > 0 only after an operator cleared a decided attempt.
 */
export function onboardingAgentIdFor(runId: string, workerId: string, registrationKey: string, attempt = 0): string {
  const digest = registrationDigest(runId, workerId, registrationKey);
  return attempt === 0 ? `ob-${digest}` : `ob-${digest}-${attempt}`;
}
