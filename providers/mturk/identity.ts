/**
 * Who opens an MTurk task page. MTurk loads the ExternalURL with `assignmentId`, `hitId`,
 * `workerId` and `turkSubmitTo`; anyone can type those into a link, so before a unit is bound the
 * gateway asks MTurk (GetAssignment) whether that assignment exists, belongs to that worker and
 * HIT, and whether the HIT is one of this run's (its ExternalURL is this run's task page). A
 * confirmed answer is cached per process: a reload or a registration after a released unit on the
 * same assignment does not ask again. An assignment carries one unit: one MTurk reports Submitted
 * (or reviewed) is refused here; one whose unit hitloop stored already, which the cache cannot know
 * of, is refused by the gateway (`agentOfSession` in providers/agentSessions.ts). The
 * preview (`assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`) never registers. The assignment id is the
 * agent's session (providers/agentSessions.ts): review pays through it.
 */
import { GetAssignmentCommand } from '@aws-sdk/client-mturk';
import type { WorkerIdentity, WorkerIdentityRequest } from '../types.ts';
import { isCredentialError, isRequestError, mturkClient } from './client.ts';

export const PREVIEW_ASSIGNMENT_ID = 'ASSIGNMENT_ID_NOT_AVAILABLE';
/** The query parameter the ExternalURL carries on sandbox runs, so the gateway asks the sandbox. */
export const SANDBOX_PARAM = 'hitloop_mturk';
const MTURK_ID = /^[A-Z0-9]{1,64}$/;
const CACHE_LIMIT = 10_000;

/** assignmentId -> the confirmed worker, HIT and run. */
const confirmed = new Map<string, { workerId: string; hitId: string; runId: string }>();

/** Forget confirmed assignments (tests). */
export function clearMTurkIdentityCache(): void {
  confirmed.clear();
}

function taskPageRunId(question: string | undefined): string | null {
  const match = /<ExternalURL>\s*([^<]+?)\s*<\/ExternalURL>/.exec(question ?? '');
  if (!match) return null;
  try {
    const url = new URL(match[1]!.replace(/&amp;/g, '&'));
    const task = /\/task\/([^/]+)\/?$/.exec(url.pathname);
    return task ? decodeURIComponent(task[1]!) : null;
  } catch {
    return null;
  }
}

export async function identifyMTurkWorker({ runId, params }: WorkerIdentityRequest): Promise<WorkerIdentity> {
  const { assignmentId, hitId, workerId } = params;
  if (assignmentId === PREVIEW_ASSIGNMENT_ID) return { ok: false, message: 'this is a preview of the HIT: accept it on MTurk to start working' };
  if (!assignmentId || !hitId || !workerId) {
    return { ok: false, message: 'this link is missing assignmentId, hitId or workerId; open the task from the HIT on MTurk' };
  }
  if (!MTURK_ID.test(assignmentId) || !MTURK_ID.test(hitId) || !MTURK_ID.test(workerId)) {
    return { ok: false, message: 'assignmentId, hitId and workerId must be MTurk ids (capital letters and digits); open the task from the HIT on MTurk' };
  }
  const known = confirmed.get(assignmentId);
  if (known) {
    if (known.workerId === workerId && known.hitId === hitId && known.runId === runId) return { ok: true, providerWorkerId: workerId, session: assignmentId };
    return { ok: false, message: 'this assignment belongs to another worker or HIT; open the task from your own HIT on MTurk' };
  }
  let answer;
  try {
    answer = await mturkClient(params[SANDBOX_PARAM] === 'sandbox').send(new GetAssignmentCommand({ AssignmentId: assignmentId }));
  } catch (err) {
    if (isRequestError(err)) return { ok: false, message: 'MTurk does not know this assignment; open the task from the HIT you accepted on MTurk' };
    if (isCredentialError(err)) return { ok: false, message: 'the task cannot check assignments with MTurk right now (the requester\'s setup is incomplete); try again later' };
    return { ok: false, message: 'MTurk could not be asked about this assignment right now; reload the page in a minute' };
  }
  const { Assignment, HIT } = answer;
  if (Assignment?.WorkerId !== workerId || Assignment.HITId !== hitId) {
    return { ok: false, message: 'this assignment belongs to another worker or HIT; open the task from your own HIT on MTurk' };
  }
  if (taskPageRunId(HIT?.Question) !== runId) return { ok: false, message: 'this HIT is not one of this task run\'s; open the task from its own HIT' };
  if (Assignment.AssignmentStatus === 'Approved' || Assignment.AssignmentStatus === 'Rejected') {
    return { ok: false, message: 'this assignment was already reviewed; accept a new HIT to work again' };
  }
  if (Assignment.AssignmentStatus === 'Submitted') {
    return { ok: false, message: 'this assignment was already submitted on MTurk, and an assignment carries one unit; accept a new HIT to work again' };
  }
  if (confirmed.size >= CACHE_LIMIT) confirmed.delete(confirmed.keys().next().value!);
  confirmed.set(assignmentId, { workerId, hitId, runId });
  return { ok: true, providerWorkerId: workerId, session: assignmentId };
}
