/**
 * The `mturk` provider on a real stack (Temporal, database, hitloop worker) against the local MTurk:
 * HIT type and HITs with their tokens and annotations, identity by GetAssignment (forged links
 * refused), review and bonus reaching MTurk once, spend with MTurk's fee, and the faults of the
 * issue: bad credentials, throttling, a launch retried after the HIT was made, a bonus repeated
 * after a crash, a reject after MTurk approved (refused, the unit left as it was), a balance below the
 * run's worst case; units released by a worker who still holds the HIT offered again; review asking
 * MTurk only about the units reviewed, on a run of 300 units.
 */
import { type HIT, ListHITsCommand } from '@aws-sdk/client-mturk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeMTurkServer } from '../fakes/mturk/server.ts';
import { WorkflowCalls } from '../gateway/workflowCalls.ts';
import { Agent, ProviderCall, Review, Unit } from '../model/entities.ts';
import { recordAgentSession } from '../providers/agentSessions.ts';
import { ensureQualification } from '../qualifications/grants.ts';
import { mturkClient } from '../providers/mturk/client.ts';
import { clearMTurkIdentityCache, identifyMTurkWorker } from '../providers/mturk/identity.ts';
import { mturkProvider, notifyMTurkWorkers } from '../providers/mturk/provider.ts';
import type { ProviderContext } from '../providers/types.ts';
import { createReviewer, type Reviewer } from '../review/operator.ts';
import { agentReturnedSignal, agentSubmitSignal } from '../workflows/definitions.ts';
import type { AgentPacket } from '../gateway/protocol.ts';
import { connect, nextError, startTestGateway, untilStatus } from './gateway.helpers.ts';
import { formConfig } from './support/configs.ts';
import { waitForUnitStatus } from './support/completeUnits.ts';
import { MTURK_SANDBOX, TEST_AWS_KEY, startLocalMTurk, useAwsKey } from './support/localMTurk.ts';
import { eventually, startStack, testLog, type Stack } from './support/stack.ts';

let fake: FakeMTurkServer;
let stack: Stack;
let reviewer: Reviewer;

beforeAll(async () => {
  fake = await startLocalMTurk({ balance: 1000 });
  stack = await startStack('sqlite');
  reviewer = createReviewer({ client: stack.env.client, db: stack.db, settings: stack.settings });
});
afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

const ctx = (): ProviderContext => ({ em: stack.db.em(), settings: stack.settings, log: testLog });
const hitsOf = (runId: string) => [...fake.mturk.hits.values()].filter((h) => h.Question.includes(`/task/${runId}`));

async function launchedRun(overrides: Record<string, unknown>, units: number): Promise<string> {
  const { runId } = await stack.operator.launch(formConfig({ provider: MTURK_SANDBOX, ...overrides }, units));
  // A large run takes a while to launch on a loaded machine: wait as long as its size asks.
  await eventually(async () => ((await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' })) === units ? true : undefined), `${units} launched units`, Math.max(60_000, units * 1000));
  return runId;
}

/** Launch a run the provider cannot set up: the run's workflow fails with the provider's reason. */
async function failedRun(overrides: Record<string, unknown>, units: number): Promise<{ failureReason: string }> {
  const { workflowId } = await stack.operator.launch(formConfig({ provider: MTURK_SANDBOX, ...overrides }, units));
  const failure = await stack.env.client.workflow
    .getHandle(workflowId)
    .result()
    .then(
      () => new Error('the run did not fail'),
      (err: unknown) => err as Error,
    );
  const causes: string[] = [];
  for (let e: unknown = failure; e instanceof Error; e = e.cause) causes.push(e.message);
  return { failureReason: causes.join(' <- ') };
}

/** A worker accepts a HIT at MTurk: the assignment, and the parameters MTurk opens the task page with. */
function acceptHit(hitId: string, workerId: string) {
  const accepted = fake.mturk.accept(hitId, workerId);
  return { accepted, params: { assignmentId: accepted.AssignmentId, hitId, workerId, hitloop_mturk: 'sandbox', turkSubmitTo: fake.url } };
}

/** A task page opened from `params` over a real WebSocket: registered, and its agent in the task. */
async function openPage(gateway: Awaited<ReturnType<typeof startTestGateway>>, runId: string, params: Record<string, string>, registrationKey: string) {
  const conn = await connect(gateway);
  conn.register(runId, params, registrationKey);
  const agent = await conn.expect<AgentPacket>((p) => p.type === 'agent', 60_000, 'the agent');
  await untilStatus(conn, 'in_task');
  return { conn, agent };
}

/** A worker accepts one of the run's HITs at MTurk, opens the page and registers as the gateway does it (identity, a unit, the agent's session). */
async function takeHit(runId: string, hitId: string, workerId: string) {
  const { accepted, params } = acceptHit(hitId, workerId);
  const identity = await identifyMTurkWorker({ runId, params, secret: stack.settings.secret });
  expect(identity).toEqual({ ok: true, providerWorkerId: workerId, session: accepted.AssignmentId });
  const result = await new WorkflowCalls(stack.env.client).requestUnit(runId, { provider: 'mturk', providerWorkerId: workerId, registrationKey: `reg-${accepted.AssignmentId}` });
  if (result.outcome !== 'assigned') throw new Error(`no unit for ${workerId}: ${JSON.stringify(result)}`);
  await recordAgentSession(stack.db.em(), 'mturk', result.agentId, accepted.AssignmentId);
  return { accepted, result };
}

/** The run's HITs as MTurk lists them to a requester (ListHITs through the official client, every page). */
async function listedHitsOf(runId: string): Promise<HIT[]> {
  const mturk = mturkClient(true);
  const hits: HIT[] = [];
  let NextToken: string | undefined;
  do {
    const page = await mturk.send(new ListHITsCommand({ MaxResults: 100, NextToken }));
    hits.push(...(page.HITs ?? []).filter((h) => h.Question?.includes(`/task/${runId}`)));
    NextToken = page.NextToken;
  } while (NextToken);
  return hits;
}

/** takeHit, then the unit is submitted and the page posts externalSubmit. */
async function workOneHit(runId: string, hitId: string, workerId: string, label: string): Promise<{ unitId: string; assignmentId: string }> {
  const { accepted, result } = await takeHit(runId, hitId, workerId);
  await new WorkflowCalls(stack.env.client).signalAssignment(result.assignmentId, agentSubmitSignal, { agentId: result.agentId, submitKey: `submit-${result.agentId}`, data: { label } });
  await waitForUnitStatus(stack.db, result.unitId, 'completed');
  fake.mturk.externalSubmit({ assignmentId: accepted.AssignmentId, label });
  return { unitId: result.unitId, assignmentId: accepted.AssignmentId };
}

describe('mturk provider against the local MTurk', () => {
  it('makes one HIT type and one HIT per unit, checks workers with GetAssignment, reviews, pays bonuses once and counts the fee', async () => {
    const runId = await launchedRun({ task_tags: ['label', 'text'] }, 3);
    const units = await stack.db.em().find(Unit, { taskRun: runId }, { orderBy: { id: 'asc' } });
    const hits = hitsOf(runId);
    expect(hits).toHaveLength(3);
    expect(hits.map((h) => h.RequesterAnnotation).sort()).toEqual(units.map((u) => u.id).sort());
    expect(units.map((u) => u.providerUnitId).sort()).toEqual(hits.map((h) => h.HITId).sort());
    const type = fake.mturk.hitTypes.get(hits[0]!.HITTypeId)!;
    expect(type).toMatchObject({ Title: 'Label a sentence', Reward: '0.50', Keywords: 'label, text', AutoApprovalDelayInSeconds: 259_200 });
    expect(fake.mturk.externalUrl(hits[0]!.HITId)).toContain(`/task/${runId}?hitloop_mturk=sandbox`);

    // A launch retried after a crash (HIT made, unit not yet marked launched) finds the HIT by its token and annotation.
    const first = units[0]!;
    const again = await mturkProvider.launchUnit(ctx(), { runId, unitId: first.id, reward: 0.5, taskUrl: `${stack.settings.gatewayUrl}/task/${runId}`, requestKey: `launch:${first.id}` });
    expect(again.providerUnitId).toBe(first.providerUnitId);
    expect(hitsOf(runId)).toHaveLength(3);

    const done = await workOneHit(runId, hits[0]!.HITId, 'A1ALICEWORKER', 'positive');

    // Forged links: another worker's assignment, an unknown assignment, another HIT, the preview.
    const other = fake.mturk.accept(hits[1]!.HITId, 'A2BOBWORKER');
    const ask = (params: Record<string, string>) => identifyMTurkWorker({ runId, params: { hitloop_mturk: 'sandbox', ...params }, secret: 'x' });
    await expect(ask({ assignmentId: other.AssignmentId, hitId: hits[1]!.HITId, workerId: 'A1ALICEWORKER' })).resolves.toMatchObject({ ok: false, message: expect.stringContaining('another worker') });
    await expect(ask({ assignmentId: '3ASNOTREAL', hitId: hits[1]!.HITId, workerId: 'A2BOBWORKER' })).resolves.toMatchObject({ ok: false, message: expect.stringContaining('does not know') });
    await expect(ask({ assignmentId: other.AssignmentId, hitId: hits[2]!.HITId, workerId: 'A2BOBWORKER' })).resolves.toMatchObject({ ok: false });
    await expect(ask({ assignmentId: 'ASSIGNMENT_ID_NOT_AVAILABLE', hitId: hits[1]!.HITId })).resolves.toMatchObject({ ok: false, message: expect.stringContaining('preview') });
    await expect(ask({ assignmentId: 'x<script>', hitId: hits[1]!.HITId, workerId: 'A2BOBWORKER' })).resolves.toMatchObject({ ok: false });
    await expect(identifyMTurkWorker({ runId: 'r-another', params: { assignmentId: other.AssignmentId, hitId: hits[1]!.HITId, workerId: 'A2BOBWORKER', hitloop_mturk: 'sandbox' }, secret: 'x' })).resolves.toMatchObject({
      ok: false,
      message: expect.stringContaining('not one of this task run'),
    });

    // Review: approve reaches MTurk (reward and 20 % fee in the ledger).
    await reviewer.review(runId, { decision: 'approve', unitIds: [done.unitId], note: 'thanks' });
    expect(fake.mturk.assignments.get(done.assignmentId)).toMatchObject({ AssignmentStatus: 'Approved', RequesterFeedback: 'thanks' });

    // Bonus: once per request, and once even when the provider is asked again after a crash.
    const bonus = await reviewer.bonus(runId, { unitId: done.unitId, amount: 0.25, reason: 'careful work' });
    expect(bonus.repeated).toBe(false);
    const repeated = await reviewer.bonus(runId, { unitId: done.unitId, amount: 0.25, reason: 'careful work' });
    expect(repeated.repeated).toBe(true);
    const request = { workerId: 'A1ALICEWORKER', unitId: done.unitId, amount: 0.3, reason: 'retried', requestKey: 'bonus-after-crash' };
    const paidOnce = await mturkProvider.payBonus(ctx(), request);
    const paidAgain = await mturkProvider.payBonus(ctx(), request);
    expect(paidAgain).toEqual(paidOnce);
    const ledger = fake.mturk.ledger.filter((e) => e.assignmentId === done.assignmentId);
    expect(ledger.map((e) => [e.kind, e.amount, e.fee])).toEqual([
      ['reward', 0.5, 0.1],
      ['bonus', 0.25, 0.05],
      ['bonus', 0.3, 0.06],
    ]);

    // A reject after MTurk approved (auto-approval, or an earlier approve) is refused with what to do instead.
    await expect(mturkProvider.rejectWork(ctx(), { workerId: 'A1ALICEWORKER', unitId: done.unitId, requestKey: 'late-reject' })).rejects.toThrow(/already approved at MTurk.*soft-reject/);
    expect(fake.mturk.assignments.get(done.assignmentId)!.AssignmentStatus).toBe('Approved');

    // Spend: three payable units and the bonus, plus MTurk's 20 %.
    const status = await stack.operator.status(runId);
    expect(status.spend).toBeCloseTo((3 * 0.5 + 0.25) * 1.2, 4);
    expect(await stack.db.em().count(ProviderCall, { provider: 'mturk', operation: 'bindAssignment' })).toBe(1);
  });

  it('rejects with feedback and approves later with OverrideRejection', async () => {
    const runId = await launchedRun({}, 1);
    const [hit] = hitsOf(runId);
    const done = await workOneHit(runId, hit!.HITId, 'A3CAROLWORKER', 'negative');
    await reviewer.review(runId, { decision: 'reject', unitIds: [done.unitId], note: 'the label is wrong' });
    expect(fake.mturk.assignments.get(done.assignmentId)).toMatchObject({ AssignmentStatus: 'Rejected', RequesterFeedback: 'the label is wrong' });
    await mturkProvider.approveWork(ctx(), { workerId: 'A3CAROLWORKER', unitId: done.unitId, requestKey: 'approve-after-reject' });
    expect(fake.mturk.assignments.get(done.assignmentId)!.AssignmentStatus).toBe('Approved');
  });

  it('maps qualification requirements one to one, creating missing qualification types, with the locale and ActionsGuarded', async () => {
    for (const name of ['mt-skill', 'mt-bands', 'masters']) await ensureQualification(stack.db.em(), name, `test ${name}`);
    const failed = await failedRun(
      {
        provider: { ...MTURK_SANDBOX, qualification_type_ids: { masters: '2F1QJWKUDD8XADTFD2Q0G6UTO95ALH' } },
        qualifications: [
          { name: 'mt-skill', comparator: 'GreaterThanOrEqualTo', value: 2 },
          { name: 'mt-bands', comparator: 'In', value: [1, 3] },
          { name: 'masters', comparator: 'Exists' },
        ],
      },
      1,
    );
    // The Masters id is not one the local MTurk knows: the HIT type is refused, and the run fails saying so.
    expect(failed.failureReason).toMatch(/MTurk refused to create the HIT type: QualificationType 2F1QJWKUDD8XADTFD2Q0G6UTO95ALH does not exist/);
    const created = [...fake.mturk.qualificationTypes.values()].map((q) => q.Name);
    expect(created).toEqual(expect.arrayContaining(['mt-skill', 'mt-bands']));
    expect(created).not.toContain('masters');

    const ok = await launchedRun(
      {
        provider: { ...MTURK_SANDBOX, locale: { places: [{ country: 'US' }, { country: 'CA' }] }, actions_guarded: 'DiscoverPreviewAndAccept' },
        qualifications: [
          { name: 'mt-skill', comparator: 'GreaterThanOrEqualTo', value: 2 },
          { name: 'mt-bands', comparator: 'In', value: [1, 3] },
        ],
      },
      1,
    );
    const type = fake.mturk.hitTypes.get(hitsOf(ok)[0]!.HITTypeId)!;
    const skill = [...fake.mturk.qualificationTypes.values()].find((q) => q.Name === 'mt-skill')!.QualificationTypeId;
    expect(type.QualificationRequirements).toEqual(
      expect.arrayContaining([
        { QualificationTypeId: skill, Comparator: 'GreaterThanOrEqualTo', IntegerValues: [2], ActionsGuarded: 'DiscoverPreviewAndAccept' },
        { QualificationTypeId: '00000000000000000071', Comparator: 'In', LocaleValues: [{ Country: 'US' }, { Country: 'CA' }], ActionsGuarded: 'DiscoverPreviewAndAccept' },
      ]),
    );
    expect(type.QualificationRequirements).toHaveLength(3);
    // The same hitloop qualification is one MTurk qualification type, however many runs use it.
    expect([...fake.mturk.qualificationTypes.values()].filter((q) => q.Name === 'mt-skill')).toHaveLength(1);
  });

  it('blocks and unblocks workers, grants and revokes qualifications, notifies workers, and expires HITs at shutdown', async () => {
    await mturkProvider.blockWorker(ctx(), { workerId: 'A5BLOCKEDWORKER', reason: 'copied answers', requestKey: 'block-1' });
    expect(fake.mturk.blocks.get('A5BLOCKEDWORKER')).toBe('copied answers');
    const runId = await launchedRun({}, 2);
    const [hit] = hitsOf(runId);
    expect(() => fake.mturk.accept(hit!.HITId, 'A5BLOCKEDWORKER')).toThrow(/blocked/);
    await mturkProvider.unblockWorker(ctx(), { workerId: 'A5BLOCKEDWORKER', requestKey: 'unblock-1' });
    expect(fake.mturk.blocks.has('A5BLOCKEDWORKER')).toBe(false);

    await mturkProvider.grantQualification(ctx(), { workerId: 'A6QUALWORKER', qualification: 'mt-granted', value: 3, requestKey: 'grant-1' });
    const typeId = [...fake.mturk.qualificationTypes.values()].find((q) => q.Name === 'mt-granted')!.QualificationTypeId;
    expect(fake.mturk.grants.get(`${typeId}/A6QUALWORKER`)).toBe(3);
    await mturkProvider.revokeQualification(ctx(), { workerId: 'A6QUALWORKER', qualification: 'mt-granted', requestKey: 'revoke-1' });
    expect(fake.mturk.grants.has(`${typeId}/A6QUALWORKER`)).toBe(false);

    await notifyMTurkWorkers(true, ['A6QUALWORKER'], 'New HITs', 'More sentences to label.');
    expect(fake.mturk.notifications.at(-1)).toEqual({ subject: 'New HITs', message: 'More sentences to label.', workerIds: ['A6QUALWORKER'] });

    await stack.operator.shutdown(runId);
    await eventually(async () => (hitsOf(runId).every((h) => h.HITStatus === 'Reviewable') ? true : undefined), 'the run\'s HITs to be expired at MTurk');
  });

  it('launches through throttling without a duplicate HIT', async () => {
    fake.mturk.throttleNext(4);
    const runId = await launchedRun({}, 3);
    expect(hitsOf(runId)).toHaveLength(3);
    expect(new Set(hitsOf(runId).map((h) => h.RequesterAnnotation)).size).toBe(3);
  });

  it('fails a run clearly on bad credentials and on a balance below its worst case', async () => {
    useAwsKey('AKIDNOTKNOWNBYMTURK1', 'wrong');
    try {
      const failed = await failedRun({}, 2);
      expect(failed.failureReason).toMatch(/MTurk refused the AWS credentials.*AWS_PROFILE/);
      expect(failed.failureReason).not.toContain('wrong');
    } finally {
      useAwsKey(TEST_AWS_KEY.accessKeyId, TEST_AWS_KEY.secretAccessKey);
    }

    const before = fake.mturk.hits.size;
    fake.mturk.balance = 1;
    try {
      const failed = await failedRun({}, 4);
      expect(failed.failureReason).toContain('$1.00, less than this run\'s worst case of $2.40');
      expect(fake.mturk.hits.size).toBe(before);
    } finally {
      fake.mturk.balance = 1000;
    }
  });
  it('refuses a reject of work MTurk already approved and leaves the unit as it was; soft-reject still works', async () => {
    const runId = await launchedRun({}, 1);
    const [hit] = hitsOf(runId);
    const done = await workOneHit(runId, hit!.HITId, 'A4DANWORKER', 'positive');
    // MTurk approved it on its own (auto-approval) before the operator's reject.
    fake.mturk.call('ApproveAssignment', { AssignmentId: done.assignmentId });
    await expect(reviewer.review(runId, { decision: 'reject', unitIds: [done.unitId], note: 'the label is wrong' })).rejects.toThrow(
      /already approved at MTurk.*MTurk cannot reject it, and the unit was left as it was.*soft-reject/,
    );
    expect((await stack.db.em().findOneOrFail(Unit, done.unitId)).status).toBe('completed');
    expect((await stack.db.em().findOneOrFail(Agent, { unit: done.unitId })).status).toBe('completed');
    expect(await stack.db.em().count(Review, { unit: done.unitId })).toBe(0);
    expect(fake.mturk.assignments.get(done.assignmentId)!.AssignmentStatus).toBe('Approved');

    const [soft] = await reviewer.review(runId, { decision: 'soft_reject', unitIds: [done.unitId] });
    expect(soft).toMatchObject({ unitStatus: 'soft_rejected', agentStatus: 'soft_rejected' });
    expect(fake.mturk.ledger.filter((e) => e.assignmentId === done.assignmentId).map((e) => e.kind)).toEqual(['reward']);
  });

  it('offers a unit again when its worker leaves it still holding the HIT: one more assignment per release, a new HIT once the HIT has 9', async () => {
    const runId = await launchedRun({}, 1);
    const [hit] = hitsOf(runId);
    const [unit] = await stack.db.em().find(Unit, { taskRun: runId });

    // The worker gives the unit back in hitloop but keeps the MTurk assignment: the HIT gets a second slot.
    const { accepted, result } = await takeHit(runId, hit!.HITId, 'A7ERINWORKER');
    expect(fake.mturk.hitOf(hit!.HITId).HITStatus).toBe('Unassignable');
    await new WorkflowCalls(stack.env.client).signalAssignment(result.assignmentId, agentReturnedSignal, { agentId: result.agentId });
    await waitForUnitStatus(stack.db, result.unitId, 'launched');
    await eventually(async () => (fake.mturk.hitOf(hit!.HITId).MaxAssignments === 2 ? true : undefined), 'a second assignment on the HIT');
    expect(fake.mturk.hitOf(hit!.HITId).HITStatus).toBe('Assignable');
    expect(fake.mturk.assignments.get(accepted.AssignmentId)!.AssignmentStatus).toBe('Accepted');

    // The same release again (a retry after a crash) adds nothing.
    const release = { runId, unitId: unit!.id, providerUnitId: hit!.HITId, agentId: result.agentId, reason: 'returned' as const, requestKey: `reoffer:${result.agentId}` };
    await expect(mturkProvider.reofferUnit!(ctx(), release)).resolves.toEqual({ providerUnitId: hit!.HITId });
    expect(fake.mturk.hitOf(hit!.HITId).MaxAssignments).toBe(2);

    // Another worker takes the new slot and completes the unit; the first one's assignment never pays.
    const done = await workOneHit(runId, hit!.HITId, 'A8FRANKWORKER', 'negative');
    expect(done.unitId).toBe(unit!.id);
    await reviewer.review(runId, { decision: 'approve', unitIds: [done.unitId] });
    expect(fake.mturk.ledger.filter((e) => e.hitId === hit!.HITId).map((e) => e.assignmentId)).toEqual([done.assignmentId]);

    // A worker who also returned the HIT at MTurk freed its slot: nothing to add.
    fake.mturk.returnAssignment(accepted.AssignmentId);
    await recordAgentSession(stack.db.em(), 'mturk', 'agent-returned-at-mturk', accepted.AssignmentId);
    await mturkProvider.reofferUnit!(ctx(), { ...release, agentId: 'agent-returned-at-mturk', requestKey: 'reoffer:agent-returned-at-mturk' });
    expect(fake.mturk.hitOf(hit!.HITId).MaxAssignments).toBe(2);

    // Releases up to 9 assignments extend the HIT; MTurk never extends a HIT made with fewer than 10
    // to 10 or more (and would charge 40 % on it), so the next release gets a HIT of its own (the full one
    // expired), which is the unit's HIT from then on.
    for (let i = 3; i <= 9; i++) await mturkProvider.reofferUnit!(ctx(), { ...release, agentId: `agent-left-${i}`, requestKey: `reoffer:agent-left-${i}` });
    expect(fake.mturk.hitOf(hit!.HITId).MaxAssignments).toBe(9);
    expect(() => fake.mturk.call('CreateAdditionalAssignmentsForHIT', { HITId: hit!.HITId, NumberOfAdditionalAssignments: 1 })).toThrow(/cannot be extended to 10 or more/);
    const { providerUnitId: secondId } = await mturkProvider.reofferUnit!(ctx(), { ...release, agentId: 'agent-left-10', requestKey: 'reoffer:agent-left-10' });
    await expect(mturkProvider.reofferUnit!(ctx(), { ...release, agentId: 'agent-left-10', requestKey: 'reoffer:agent-left-10' })).resolves.toEqual({ providerUnitId: secondId });
    const hits = hitsOf(runId);
    expect(hits).toHaveLength(2);
    expect(secondId).not.toBe(hit!.HITId);
    expect(fake.mturk.hitOf(secondId)).toMatchObject({ RequesterAnnotation: unit!.id, MaxAssignments: 1, HITStatus: 'Assignable', Question: hit!.Question });
    expect(fake.mturk.hitOf(hit!.HITId).Expiration).toBeLessThanOrEqual(Date.now());
    await mturkProvider.reofferUnit!(ctx(), { ...release, providerUnitId: secondId, agentId: 'agent-left-11', requestKey: 'reoffer:agent-left-11' });
    expect(fake.mturk.hitOf(secondId).MaxAssignments).toBe(2);
    expect(hitsOf(runId)).toHaveLength(2);

    await mturkProvider.expireUnit(ctx(), { runId, unitId: unit!.id, providerUnitId: secondId, requestKey: 'expire-second' });
    expect(fake.mturk.hitOf(secondId).HITStatus).toBe('Reviewable');
  });

  it('expires every HIT of a run when the run ends: a slot added by a re-offer does not outlive the run', async () => {
    const runId = await launchedRun({}, 1);
    const [hit] = hitsOf(runId);
    // A worker gives the unit back in hitloop but keeps the MTurk assignment: the HIT gets a second slot.
    const { accepted, result } = await takeHit(runId, hit!.HITId, 'A7GRETAWORKER');
    await new WorkflowCalls(stack.env.client).signalAssignment(result.assignmentId, agentReturnedSignal, { agentId: result.agentId });
    await waitForUnitStatus(stack.db, result.unitId, 'launched');
    await eventually(async () => (fake.mturk.hitOf(hit!.HITId).MaxAssignments === 2 ? true : undefined), 'a second assignment on the HIT');
    // Another worker takes that slot and completes the unit: the run is done.
    await workOneHit(runId, hit!.HITId, 'A8HENRYWORKER', 'positive');
    const outcome = (await stack.env.client.workflow.getHandle(`taskrun-${runId}`).result()) as { status: string };
    expect(outcome.status).toBe('completed');

    const listed = await listedHitsOf(runId);
    expect(listed.map((h) => h.HITId)).toEqual([hit!.HITId]);
    expect(listed[0]!.Expiration!.getTime()).toBeLessThanOrEqual(Date.now());
    // The first worker returns the assignment at MTurk: its slot frees, but the HIT stays closed.
    fake.mturk.returnAssignment(accepted.AssignmentId);
    const [afterReturn] = await listedHitsOf(runId);
    expect(afterReturn!.NumberOfAssignmentsAvailable).toBe(1);
    expect(afterReturn!.HITStatus).not.toBe('Assignable');
    expect(() => fake.mturk.accept(hit!.HITId, 'A9IRISWORKER')).toThrow(/no longer available/);
  });

  it('gives an MTurk assignment one unit: a new registration from an assignment whose unit is stored is answered with that agent\'s end, and MTurk\'s Submitted is refused', async () => {
    const runId = await launchedRun({}, 2);
    const [hit] = hitsOf(runId);
    const { accepted, params } = acceptHit(hit!.HITId, 'A6ONEUNITWORKER');
    const gateway = await startTestGateway(stack);
    try {
      const { conn, agent } = await openPage(gateway, runId, params, 'first-page-load');
      conn.send({ type: 'submit', submitKey: 'one-unit', data: { label: 'positive' } });
      await conn.expect((p) => p.type === 'submit_ack', 60_000, 'the submit_ack');
      await waitForUnitStatus(stack.db, agent.unitId, 'completed');
      conn.close();

      // The page lost its agent (new tab, storage cleared) before posting externalSubmit: the identity
      // cache confirms the assignment, but its one unit is stored, so no second unit; the page hears
      // that the unit ended completed, which makes it post externalSubmit.
      const again = await connect(gateway);
      again.register(runId, params, 'second-page-load');
      const answer = await nextError(again, 'agent_ended');
      expect(answer).toMatchObject({ ref: 'register', status: 'completed' });
      expect(answer.message).toContain(`the unit of ${accepted.AssignmentId}`);
      expect(answer.message).toContain('an assignment carries one unit');
      expect(await stack.db.em().count(Agent, { taskRun: runId })).toBe(1);
      expect(await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' })).toBe(1);
      again.close();

      // Once MTurk has it Submitted, GetAssignment alone refuses it (a process that never confirmed it).
      fake.mturk.externalSubmit({ assignmentId: accepted.AssignmentId, label: 'positive' });
      clearMTurkIdentityCache();
      await expect(identifyMTurkWorker({ runId, params, secret: stack.settings.secret })).resolves.toEqual({
        ok: false,
        message: 'this assignment was already submitted on MTurk, and an assignment carries one unit; accept a new HIT to work again',
      });
    } finally {
      await gateway.close();
    }
  });

  it('takes a second tab of one MTurk assignment to the agent holding its unit, with its state, and closes the first tab with 4001: no second unit', async () => {
    // Two units at once would be allowed to the worker: only the assignment's one-unit rule stands in the way.
    const runId = await launchedRun({ allowed_concurrent: 2 }, 2);
    const [hit] = hitsOf(runId);
    const { params } = acceptHit(hit!.HITId, 'A6TWOTABSWORKER');
    const gateway = await startTestGateway(stack);
    try {
      const { conn: first, agent } = await openPage(gateway, runId, params, 'first-tab');
      first.send({ type: 'live', actionId: 'draft-1', data: { draft: 'positive' } });
      await first.expect((p) => p.type === 'live_ack', 60_000, 'the live_ack');
      const firstClosed = new Promise<number>((resolve) => first.ws.once('close', (code) => resolve(code)));

      // The same task page opened in a second tab: a register of its own (another key), same assignment.
      const second = await connect(gateway);
      second.register(runId, params, 'second-tab');
      const again = await second.expect<AgentPacket>((p) => p.type === 'agent', 60_000, 'the agent in the second tab');
      expect(again).toMatchObject({ agentId: agent.agentId, unitId: agent.unitId, status: 'in_task', state: { draft: 'positive' }, resumed: true });
      expect(await firstClosed).toBe(4001);
      expect(await stack.db.em().count(Agent, { taskRun: runId })).toBe(1);

      second.send({ type: 'submit', submitKey: 'two-tabs', data: { label: 'positive' } });
      await second.expect((p) => p.type === 'submit_ack', 60_000, 'the submit_ack');
      await untilStatus(second, 'completed');
      expect((await stack.db.em().findOneOrFail(Unit, agent.unitId)).status).toBe('completed');
      expect(await stack.db.em().count(Unit, { taskRun: runId, status: 'launched' })).toBe(1);
      second.close();
    } finally {
      await gateway.close();
    }
  });

  it('reviews units of a 300-unit run asking MTurk only about their own assignments (the rule without a session lists every HIT)', { timeout: 600_000 }, async () => {
    const size = 300;
    const runId = await launchedRun({}, size);
    const hits = hitsOf(runId);
    expect(hits).toHaveLength(size);
    // Twenty units worked through a HIT each, five workers at a time; one more by an agent with no recorded session.
    const done: Array<{ unitId: string; assignmentId: string }> = [];
    for (let i = 0; i < 20; i += 5) {
      done.push(...(await Promise.all(hits.slice(i, i + 5).map((h, j) => workOneHit(runId, h.HITId, `A9SCALE${j}`, 'positive')))));
    }
    const legacy = await workOneHit(runId, hits[20]!.HITId, 'A9LEGACY', 'negative');
    const legacyAgent = await stack.db.em().findOneOrFail(Agent, { unit: legacy.unitId, submittedAt: { $ne: null } });
    expect(await stack.db.em().nativeDelete(ProviderCall, { provider: 'mturk', operation: 'agentSession', requestKey: `agent:${legacyAgent.id}` })).toBe(1);

    fake.mturk.calls.clear();
    await reviewer.review(runId, { decision: 'approve', unitIds: done.map((d) => d.unitId), timeoutMs: 300_000 });
    const calls = Object.fromEntries(fake.mturk.calls);
    console.info(`approve of ${done.length} units of a ${size}-unit run: MTurk calls ${JSON.stringify(calls)}`);
    expect(calls).toEqual({ GetAssignment: done.length, ApproveAssignment: done.length });
    const paid = new Set(fake.mturk.ledger.filter((e) => e.kind === 'reward').map((e) => e.assignmentId));
    expect(done.every((d) => paid.has(d.assignmentId))).toBe(true);

    // The older rule, for an agent registered before sessions were recorded: every HIT of the run is listed.
    fake.mturk.calls.clear();
    await reviewer.review(runId, { decision: 'approve', unitIds: [legacy.unitId], timeoutMs: 300_000 });
    const legacyCalls = Object.fromEntries(fake.mturk.calls);
    console.info(`approve of 1 unit without a recorded session: MTurk calls ${JSON.stringify(legacyCalls)}`);
    expect(legacyCalls.ListAssignmentsForHIT).toBe(size);
    expect(fake.mturk.assignments.get(legacy.assignmentId)!.AssignmentStatus).toBe('Approved');
  });
});
