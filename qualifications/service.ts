/**
 * The operator's qualification and worker-block operations (`hitloop qual ...`, `hitloop worker
 * block|unblock`): each changes the database AND tells the worker's provider, so a provider that
 * enforces qualifications itself (MTurk) agrees with hitloop.
 *
 * Idempotency: these operations set a state (a value, a block), so repeating one changes nothing
 * and calls no provider a second time: an operation whose target state is already recorded is
 * answered "unchanged". The provider is called BEFORE the database is changed: a crash in between
 * leaves the database in the old state, so the retried command calls the provider again (setting
 * the same state there twice is harmless) and then records it. The request key is the caller's
 * (`--request-key`) or a fresh one per call.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { findOrCreateWorker } from '../registration/standing.ts';
import type { Database, EntityManager } from '../model/database.ts';
import { Worker } from '../model/entities.ts';
import type { ProviderContext } from '../providers/types.ts';
import { providers } from '../registry/builtins.ts';
import {
  QualificationError,
  clearGrant,
  createQualification,
  grantValue,
  listGrants,
  listQualifications,
  parseGrantValue,
  parseQualificationName,
  requireQualification,
  setGrant,
  type GrantRow,
  type QualificationSummary,
} from './grants.ts';

export interface QualificationServiceDeps {
  db: Database;
  settings: Settings;
  log: Logger;
}

export interface WorkerRef {
  provider: string;
  providerWorkerId: string;
}

export interface GrantOutcome {
  qualification: string;
  worker: WorkerRef & { workerId: string };
  value: number | null;
  previous: number | null;
  /** False when the worker already was in the requested state (nothing was sent to the provider). */
  changed: boolean;
  requestKey: string | null;
}

export interface BlockOutcome {
  worker: WorkerRef & { workerId: string };
  blocked: boolean;
  changed: boolean;
  requestKey: string | null;
}

function parseWorkerRef(ref: WorkerRef): WorkerRef {
  const provider = String(ref.provider ?? '').trim();
  const providerWorkerId = String(ref.providerWorkerId ?? '').trim();
  if (!providers.has(provider)) {
    throw new QualificationError(`unknown provider "${provider}"; known providers: ${providers.types().join(', ')}`);
  }
  if (providerWorkerId === '' || providerWorkerId.length > 200) {
    throw new QualificationError('a worker is named by its provider and its id at that provider (1-200 characters), e.g. `mock worker-1`');
  }
  return { provider, providerWorkerId };
}

function parseRequestKey(key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  if (!/^[A-Za-z0-9._:@+-]{1,200}$/.test(key)) {
    throw new QualificationError(`a request key is 1-200 letters, digits or ._:@+- characters (got ${JSON.stringify(key)})`);
  }
  return key;
}

export function createQualificationService(deps: QualificationServiceDeps) {
  const { db } = deps;
  const ctx = (em: EntityManager): ProviderContext => ({ em, settings: deps.settings, log: deps.log });

  async function existingWorker(em: EntityManager, ref: WorkerRef): Promise<Worker | null> {
    return em.findOne(Worker, { provider: ref.provider, providerWorkerId: ref.providerWorkerId });
  }

  const describeWorker = (w: Worker) => ({ workerId: w.id, provider: w.provider, providerWorkerId: w.providerWorkerId });

  return {
    async create(input: { name: string; description?: string }): Promise<QualificationSummary> {
      const q = await createQualification(db.em(), { name: input.name, description: input.description ?? null });
      return { name: q.name, description: q.description ?? null, grants: 0, createdAt: q.createdAt.toISOString() };
    },

    /** Grant `value` (an integer) to a worker; the worker is recorded if hitloop has not met them yet. */
    async grant(input: WorkerRef & { name: string; value: unknown; requestKey?: string }): Promise<GrantOutcome> {
      const name = parseQualificationName(input.name);
      const value = parseGrantValue(input.value);
      const ref = parseWorkerRef(input);
      const given = parseRequestKey(input.requestKey);
      const em = db.em();
      const qualification = await requireQualification(em, name);
      const worker = await findOrCreateWorker(em, ref.provider, ref.providerWorkerId);
      const previous = await grantValue(em, worker.id, qualification.id);
      if (previous === value) {
        return { qualification: name, worker: describeWorker(worker), value, previous, changed: false, requestKey: null };
      }
      const requestKey = given ?? `qual-grant:${randomUUID()}`;
      await providers
        .get(worker.provider)
        .grantQualification(ctx(em), { workerId: worker.providerWorkerId, qualification: name, value, requestKey });
      await setGrant(em, { workerId: worker.id, qualificationId: qualification.id, value });
      deps.log.info({ qualification: name, workerId: worker.id, value, previous }, 'qualification granted');
      return { qualification: name, worker: describeWorker(worker), value, previous: previous ?? null, changed: true, requestKey };
    },

    /** Remove a worker's grant (e.g. a failed onboarding's 0, so the worker may onboard again). */
    async revoke(input: WorkerRef & { name: string; requestKey?: string }): Promise<GrantOutcome> {
      const name = parseQualificationName(input.name);
      const ref = parseWorkerRef(input);
      const given = parseRequestKey(input.requestKey);
      const em = db.em();
      const qualification = await requireQualification(em, name);
      const worker = await existingWorker(em, ref);
      const previous = worker ? await grantValue(em, worker.id, qualification.id) : undefined;
      if (!worker || previous === undefined) {
        throw new QualificationError(`worker ${ref.provider} ${ref.providerWorkerId} holds no "${name}" grant; nothing to revoke`);
      }
      const requestKey = given ?? `qual-revoke:${randomUUID()}`;
      await providers
        .get(worker.provider)
        .revokeQualification(ctx(em), { workerId: worker.providerWorkerId, qualification: name, requestKey });
      await clearGrant(em, { workerId: worker.id, qualificationId: qualification.id });
      deps.log.info({ qualification: name, workerId: worker.id, previous }, 'qualification revoked');
      return { qualification: name, worker: describeWorker(worker), value: null, previous, changed: true, requestKey };
    },

    async list(): Promise<{ qualifications: QualificationSummary[]; grants: GrantRow[] }> {
      const em = db.em();
      return { qualifications: await listQualifications(em), grants: await listGrants(em) };
    },

    /** One worker's grants; a worker hitloop has not met has none. */
    async listForWorker(input: WorkerRef): Promise<GrantRow[]> {
      const ref = parseWorkerRef(input);
      const em = db.em();
      const worker = await existingWorker(em, ref);
      return worker ? listGrants(em, { workerId: worker.id }) : [];
    },

    async grantsOf(input: { name: string }): Promise<GrantRow[]> {
      const em = db.em();
      const qualification = await requireQualification(em, parseQualificationName(input.name));
      return listGrants(em, { qualificationId: qualification.id });
    },

    /**
     * Block a worker at the provider level: refused with `blocked` by every run (docs/design.md §3), and
     * blocked at the provider. A run's `block_qualification` is the softer, per-task block.
     */
    async block(input: WorkerRef & { reason?: string; requestKey?: string }): Promise<BlockOutcome> {
      return setBlocked(input, true);
    },

    async unblock(input: WorkerRef & { requestKey?: string }): Promise<BlockOutcome> {
      return setBlocked(input, false);
    },
  };

  async function setBlocked(input: WorkerRef & { reason?: string; requestKey?: string }, blocked: boolean): Promise<BlockOutcome> {
    const ref = parseWorkerRef(input);
    const given = parseRequestKey(input.requestKey);
    const em = db.em();
    const worker = blocked ? await findOrCreateWorker(em, ref.provider, ref.providerWorkerId) : await existingWorker(em, ref);
    if (!worker)
      throw new QualificationError(`hitloop has never seen worker ${ref.provider} ${ref.providerWorkerId}, so they are not blocked`);
    if (worker.blocked === blocked) return { worker: describeWorker(worker), blocked, changed: false, requestKey: null };
    const requestKey = given ?? `${blocked ? 'block' : 'unblock'}:${randomUUID()}`;
    const provider = providers.get(worker.provider);
    const request = { workerId: worker.providerWorkerId, requestKey, ...(input.reason ? { reason: input.reason } : {}) };
    if (blocked) await provider.blockWorker(ctx(em), request);
    else await provider.unblockWorker(ctx(em), request);
    await em.nativeUpdate(Worker, { id: worker.id }, { blocked });
    deps.log.info({ workerId: worker.id, blocked }, blocked ? 'worker blocked' : 'worker unblocked');
    return { worker: describeWorker(worker), blocked, changed: true, requestKey };
  }
}

export type QualificationService = ReturnType<typeof createQualificationService>;
