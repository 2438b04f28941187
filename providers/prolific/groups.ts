/**
 * Per-run participant groups (docs/design.md §5). A published Prolific study's eligibility is frozen,
 * but the members of the participant groups its filters name are not: each run's study is created with
 * a block list (blocked workers, holders of the run's `block_qualification`) and, when its
 * `qualifications` need a grant, an allow list (the workers who meet them). Grants, revokes, blocks
 * and unblocks made while the run is open update its groups, so Prolific shows the study to the
 * participants hitloop would accept. hitloop still checks every registration itself (registration/decision.ts).
 */
import { GrantedQualification, ProviderCall, TaskRun, Worker } from '../../model/entities.ts';
import { FINAL_TASK_RUN_STATUSES } from '../../model/status.ts';
import type { TaskRunConfig } from '../../config/taskRunConfig.ts';
import { grantsOf, grantsOfWorkers } from '../../qualifications/grants.ts';
import { firstUnmetRequirement, meetsRequirement } from '../../qualifications/requirements.ts';
import type { EntityManager } from '../../model/database.ts';
import type { ProviderContext } from '../types.ts';
import type { ProlificClient } from './client.ts';

export const ALLOWLIST_FILTER = 'participant_group_allowlist';
export const BLOCKLIST_FILTER = 'participant_group_blocklist';
const RUN_GROUPS = 'runGroups';
/** Participants added or removed per request. */
const MEMBERS_PER_CALL = 500;

export interface RunGroups {
  allow: string | null;
  block: string;
}

/** What decides a worker's membership: their provider block and their grants. */
interface Standing {
  blocked: boolean;
  grants: Map<string, number>;
}

/** A change being made now (the database may not show it yet: providers are told first). */
export type StandingChange = { grant: { name: string; value: number } } | { revoke: string } | { blocked: boolean };

export function runGroupName(runId: string, kind: 'allow' | 'block'): string {
  return `hitloop:${runId}:${kind}`;
}

/**
 * An allow list only when every worker who meets the requirements holds a grant (a requirement
 * that fails without one): a list of grant holders is then complete. Otherwise (only `DoesNotExist`,
 * say) those who fail them go to the block list instead.
 */
function needsAllowList(config: TaskRunConfig): boolean {
  return config.qualifications.some((r) => !meetsRequirement(r, new Map()));
}

function membership(config: TaskRunConfig, standing: Standing): { allow: boolean; block: boolean } {
  const meets = firstUnmetRequirement(config.qualifications, standing.grants) === undefined;
  const allowList = needsAllowList(config);
  const blockedByQualification = config.block_qualification !== undefined && standing.grants.has(config.block_qualification);
  return { allow: allowList && meets, block: standing.blocked || blockedByQualification || (!allowList && !meets) };
}

/** The study filters that put a run's groups into effect. */
export function groupFilters(groups: RunGroups): Array<{ filter_id: string; selected_values: string[] }> {
  return [
    ...(groups.allow ? [{ filter_id: ALLOWLIST_FILTER, selected_values: [groups.allow] }] : []),
    { filter_id: BLOCKLIST_FILTER, selected_values: [groups.block] },
  ];
}

/** A worker's grants, as eligibility reads them (the provider's entity manager is the database's SQL one). */
const grantsOfWorker = async (ctx: ProviderContext, workerId: string): Promise<Map<string, number>> =>
  new Map(await grantsOf(ctx.em as EntityManager, workerId));

async function addMembers(api: ProlificClient, groupId: string, participantIds: string[]): Promise<void> {
  for (let i = 0; i < participantIds.length; i += MEMBERS_PER_CALL) {
    await api.groupParticipants(groupId, 'POST', participantIds.slice(i, i + MEMBERS_PER_CALL));
  }
}

/** The run's groups as recorded; `filled` once the members of the moment were added. */
interface RecordedGroups extends RunGroups {
  filled?: boolean;
}

/**
 * The run's groups, made once: found by name after a crash between creating and recording them.
 * They are recorded BEFORE they are filled, so a grant or block made meanwhile either reaches them
 * through applyToRunGroups (which finds the record) or is already in the database when the members
 * are read. `filled` marks the end, so a crash between recording and filling fills them on the retry.
 */
export async function setUpRunGroups(
  ctx: ProviderContext,
  api: ProlificClient,
  provider: string,
  run: { runId: string; config: TaskRunConfig; workspaceId: string },
): Promise<RunGroups> {
  const key = { provider, operation: RUN_GROUPS, requestKey: run.runId };
  let recorded = await ctx.em.findOne(ProviderCall, key);
  const groupsOf = (payload: RecordedGroups): RunGroups => ({ allow: payload.allow, block: payload.block });
  if (recorded && (recorded.payload as unknown as RecordedGroups).filled) return groupsOf(recorded.payload as unknown as RecordedGroups);
  if (!recorded) {
    const existing = await api.participantGroups(run.workspaceId);
    const ensure = async (kind: 'allow' | 'block'): Promise<string> => {
      const name = runGroupName(run.runId, kind);
      const found = existing.find((g) => g.name === name);
      if (found) return found.id;
      const what = kind === 'allow' ? 'who meet its qualifications' : 'blocked from it';
      return (await api.createParticipantGroup(name, run.workspaceId, `hitloop run ${run.runId}: participants ${what}`)).id;
    };
    const made: RecordedGroups = { allow: needsAllowList(run.config) ? await ensure('allow') : null, block: await ensure('block'), filled: false };
    await ctx.em.insert(ProviderCall, { ...key, target: run.runId, payload: { ...made }, createdAt: new Date() });
    recorded = await ctx.em.findOneOrFail(ProviderCall, key);
  }
  const groups = groupsOf(recorded.payload as unknown as RecordedGroups);
  const members = await membersNow(ctx, provider, run.config);
  if (groups.allow) await addMembers(api, groups.allow, members.allow);
  await addMembers(api, groups.block, members.block);
  await ctx.em.nativeUpdate(ProviderCall, key, { payload: { ...groups, filled: true } });
  return groups;
}

/** Who belongs in a run's groups now: only workers with a block or a grant that matters can. */
async function membersNow(ctx: ProviderContext, provider: string, config: TaskRunConfig): Promise<{ allow: string[]; block: string[] }> {
  const names = [...config.qualifications.map((q) => q.name), ...(config.block_qualification ? [config.block_qualification] : [])];
  const granted =
    names.length === 0
      ? []
      : await ctx.em.find(GrantedQualification, { qualification: { name: { $in: names } }, worker: { provider } }, { populate: ['worker'] });
  const blocked = await ctx.em.find(Worker, { provider, blocked: true });
  const candidates = new Map<string, Worker>();
  for (const w of [...granted.map((g) => g.worker.getEntity()), ...blocked]) candidates.set(w.id, w);
  const grants = await grantsOfWorkers(ctx.em as EntityManager, [...candidates.keys()]);
  const allow: string[] = [];
  const block: string[] = [];
  for (const worker of candidates.values()) {
    const want = membership(config, { blocked: worker.blocked, grants: grants.get(worker.id) ?? new Map() });
    if (want.allow) allow.push(worker.providerWorkerId);
    if (want.block) block.push(worker.providerWorkerId);
  }
  return { allow: allow.sort(), block: block.sort() };
}

/**
 * A grant, revoke, block or unblock of `providerWorkerId` reaches the groups of every run still open:
 * the worker is added to or removed from each as their standing after the change says. Adding a
 * member twice or removing a non-member changes nothing, so a retry is safe.
 */
export async function applyToRunGroups(
  ctx: ProviderContext,
  api: () => ProlificClient,
  provider: string,
  providerWorkerId: string,
  change: StandingChange,
): Promise<void> {
  const rows = await ctx.em.find(ProviderCall, { provider, operation: RUN_GROUPS });
  if (rows.length === 0) return;
  const open = await ctx.em.find(
    TaskRun,
    { id: { $in: rows.map((r) => r.target) }, status: { $nin: [...FINAL_TASK_RUN_STATUSES] } },
    { fields: ['id', 'config'] },
  );
  if (open.length === 0) return;
  const worker = await ctx.em.findOne(Worker, { provider, providerWorkerId });
  const standing: Standing = { blocked: worker?.blocked ?? false, grants: worker ? await grantsOfWorker(ctx, worker.id) : new Map() };
  if ('grant' in change) standing.grants.set(change.grant.name, change.grant.value);
  else if ('revoke' in change) standing.grants.delete(change.revoke);
  else standing.blocked = change.blocked;
  const client = api();
  for (const run of open) {
    const groups = rows.find((r) => r.target === run.id)!.payload as unknown as RecordedGroups;
    const want = membership(run.config as unknown as TaskRunConfig, standing);
    if (groups.allow) await client.groupParticipants(groups.allow, want.allow ? 'POST' : 'DELETE', [providerWorkerId]);
    await client.groupParticipants(groups.block, want.block ? 'POST' : 'DELETE', [providerWorkerId]);
  }
}
