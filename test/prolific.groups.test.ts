/**
 * A run's participant groups (providers/prolific/groups.ts) against the local Prolific and a real
 * database, without Temporal: a grant made while the groups are being set up reaches them, and a
 * crash between recording the groups and filling them is made good by the retry.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskRunActivities, type TaskRunActivities } from '../activities/taskRunActivities.ts';
import { parseTaskRunConfig } from '../config/loadConfig.ts';
import { type FakeProlific, startFakeProlific } from '../fakes/prolific/server.ts';
import { openDatabase, type Database } from '../model/database.ts';
import { ProlificClient } from '../providers/prolific/client.ts';
import { setUpRunGroups } from '../providers/prolific/groups.ts';
import { prolificSettings } from '../providers/prolific/settings.ts';
import type { ProviderContext } from '../providers/types.ts';
import { createQualificationService } from '../qualifications/service.ts';
import type { Settings } from '../config/settings.ts';
import { formConfig } from './support/configs.ts';
import { createTestDatabase } from './support/databases.ts';
import { testLog, testSettings } from './support/stack.ts';

const QUALIFICATION = 'groups-trained';

/** A Prolific client whose next add of group members first runs `before` (another request, in between). */
class InterruptedClient extends ProlificClient {
  before: (() => Promise<void>) | null = null;
  failNextAdd = false;
  override async groupParticipants(groupId: string, method: 'POST' | 'DELETE', participantIds: string[]): Promise<void> {
    const before = this.before;
    this.before = null;
    if (before) await before();
    if (this.failNextAdd) {
      this.failNextAdd = false;
      throw new Error('worker killed while filling the groups');
    }
    return super.groupParticipants(groupId, method, participantIds);
  }
}

describe('Prolific participant groups of a run', () => {
  let fake: FakeProlific;
  let db: Database;
  let drop: () => Promise<void>;
  let settings: Settings;
  let activities: TaskRunActivities;
  let runs = 0;

  beforeAll(async () => {
    fake = await startFakeProlific({ balance: 10_000 });
    const database = await createTestDatabase('sqlite');
    drop = database.drop;
    db = await openDatabase(database.url);
    settings = testSettings({ databaseUrl: database.url });
    Object.assign(settings, { prolificUrl: fake.url, prolificToken: fake.token });
    activities = createTaskRunActivities({ db, settings, log: testLog });
    await createQualificationService({ db, settings, log: testLog }).create({ name: QUALIFICATION });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
    await fake?.close();
  });

  /** A recorded, open run that needs the qualification (so it gets an allow list). */
  async function openRun() {
    const runId = `r-groups-${runs++}`;
    const raw = formConfig({ provider: { type: 'prolific', workspace_id: fake.workspaceId }, qualifications: [{ name: QUALIFICATION, comparator: 'Exists' }] }, 2);
    const env = new MockActivityEnvironment({ activityId: `launch-${runId}`, workflowExecution: { workflowId: `taskrun-${runId}`, runId: 'wf-1' } });
    await env.run(activities.validateTaskRunConfig, { runId, config: raw });
    await env.run(activities.registerTaskRun, { runId, workflowId: `taskrun-${runId}`, config: raw });
    return { runId, config: parseTaskRunConfig(raw), workspaceId: fake.workspaceId };
  }
  const ctx = (): ProviderContext => ({ em: db.em(), settings, log: testLog });
  const client = () => new InterruptedClient(prolificSettings(settings), { backoffMs: 5 });
  const members = (groupId: string | null) => [...fake.groups.get(groupId!)!.participants.keys()].sort();
  const grant = (providerWorkerId: string) =>
    createQualificationService({ db, settings, log: testLog }).grant({ provider: 'prolific', providerWorkerId, name: QUALIFICATION, value: 1 });

  it('a grant made while the groups are being filled reaches the allow list', async () => {
    await grant('early-worker');
    const run = await openRun();
    const api = client();
    // Between the read of who belongs and the adds: the grant finds the groups already recorded.
    api.before = () => grant('late-worker').then(() => undefined);
    const groups = await setUpRunGroups(ctx(), api, 'prolific', run);
    expect(members(groups.allow)).toEqual(['early-worker', 'late-worker']);
    expect(members(groups.block)).toEqual([]);
  });

  it('a crash after the groups were recorded, before they were filled: the retry fills them, and makes no new group', async () => {
    const run = await openRun();
    const api = client();
    api.failNextAdd = true;
    await expect(setUpRunGroups(ctx(), api, 'prolific', run)).rejects.toThrow(/worker killed/);
    const groupsBefore = fake.groups.size;
    const groups = await setUpRunGroups(ctx(), api, 'prolific', run);
    expect(fake.groups.size).toBe(groupsBefore);
    expect(members(groups.allow)).toEqual(['early-worker', 'late-worker']);
    // Done once: a third call is answered from the record, asking Prolific nothing.
    const requests = fake.requests.length;
    expect(await setUpRunGroups(ctx(), api, 'prolific', run)).toEqual(groups);
    expect(fake.requests.length).toBe(requests);
  });
});
