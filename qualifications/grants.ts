/**
 * Qualifications in the database (docs/design.md §3): named integer-valued properties, and the grants of
 * them to workers, one value per (worker, qualification). Everything here takes the caller's
 * EntityManager, so activities can grant inside the transaction that decides why.
 * No provider calls here: see ./service.ts for the operator's grants, which also tell the provider.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EntityManager } from '../model/database.ts';
import type { Worker } from '../model/entities.ts';
import { GrantedQualification, Qualification } from '../model/entities.ts';

export class QualificationError extends Error {
  override name = 'QualificationError';
}

/** Same rule as a run config's qualification names, plus a length a column and a CLI line can hold. */
export const qualificationNameSchema = z
  .string({ error: 'a qualification name must be a string' })
  .trim()
  .min(1, 'a qualification name must not be empty')
  .max(200, 'a qualification name must be at most 200 characters');

export const grantValueSchema = z.int({ error: 'a qualification value must be an integer' });

export function parseQualificationName(name: unknown): string {
  const parsed = qualificationNameSchema.safeParse(name);
  if (!parsed.success)
    throw new QualificationError(`${parsed.error.issues[0]?.message ?? 'invalid qualification name'} (got ${JSON.stringify(name)})`);
  return parsed.data;
}

/** An integer from a number or a command-line string ("3", "-1"); anything else is refused clearly. */
export function parseGrantValue(value: unknown): number {
  const candidate = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  const parsed = grantValueSchema.safeParse(candidate);
  if (!parsed.success || !Number.isSafeInteger(parsed.data)) {
    throw new QualificationError(`a qualification value must be an integer such as 0, 1 or 5 (got ${JSON.stringify(value)})`);
  }
  return parsed.data;
}

export async function findQualification(em: EntityManager, name: string): Promise<Qualification | null> {
  return em.findOne(Qualification, { name });
}

/** The qualification named `name`, or an error saying how to create it. */
export async function requireQualification(em: EntityManager, name: string): Promise<Qualification> {
  const found = await findQualification(em, name);
  if (!found) {
    throw new QualificationError(`there is no qualification named "${name}"; create it first with \`hitloop qual create ${name}\``);
  }
  return found;
}

/** Create a qualification; a second one of the same name is refused (names are how configs refer to them). */
export async function createQualification(em: EntityManager, input: { name: string; description?: string | null }): Promise<Qualification> {
  const name = parseQualificationName(input.name);
  if (await findQualification(em, name)) {
    throw new QualificationError(`a qualification named "${name}" already exists; \`hitloop qual list\` shows it`);
  }
  await em.insert(Qualification, { id: `q-${randomUUID()}`, name, description: input.description ?? null, createdAt: new Date() }, {
    onConflictAction: 'ignore',
    onConflictFields: ['name'],
  } as never);
  return requireQualification(em, name);
}

/**
 * The qualification, created when missing. For the qualifications a run grants by itself (onboarding,
 * screening, gold counts): the config naming them is enough, the operator need not create them first.
 */
export async function ensureQualification(em: EntityManager, name: string, description: string): Promise<Qualification> {
  const found = await findQualification(em, name);
  if (found) return found;
  // Two runs may create it at once: the unique name lets one insert win, and both read that one.
  await em.insert(Qualification, { id: `q-${randomUUID()}`, name, description, createdAt: new Date() }, {
    onConflictAction: 'ignore',
    onConflictFields: ['name'],
  } as never);
  return requireQualification(em, name);
}

/** A worker's grants by qualification name. */
export async function grantsByName(em: EntityManager, workerId: string): Promise<Map<string, number>> {
  const grants = await em.find(GrantedQualification, { worker: workerId }, { populate: ['qualification'] });
  return new Map(grants.map((g) => [g.qualification.getEntity().name, g.value]));
}

export async function grantValue(em: EntityManager, workerId: string, qualificationId: string): Promise<number | undefined> {
  const grant = await em.findOne(GrantedQualification, { worker: workerId, qualification: qualificationId }, { fields: ['value'] });
  return grant?.value;
}

/** Set the worker's value of a qualification (insert or update); returns the value it had before. */
export async function setGrant(
  em: EntityManager,
  input: { workerId: string; qualificationId: string; value: number },
): Promise<{ previous: number | undefined }> {
  const previous = await grantValue(em, input.workerId, input.qualificationId);
  if (previous === input.value) return { previous };
  const now = new Date();
  if (previous === undefined) {
    // A racing grant of the same pair loses the insert and falls through to the update below.
    await em.insert(
      GrantedQualification,
      {
        id: `gq-${randomUUID()}`,
        worker: input.workerId,
        qualification: input.qualificationId,
        value: input.value,
        createdAt: now,
        updatedAt: now,
      },
      { onConflictAction: 'ignore', onConflictFields: ['worker', 'qualification'] } as never,
    );
  }
  await em.nativeUpdate(
    GrantedQualification,
    { worker: input.workerId, qualification: input.qualificationId },
    { value: input.value, updatedAt: now },
  );
  return { previous };
}

/** Add `delta` to the worker's value (a missing grant counts as 0); returns the new value. */
export async function addToGrant(em: EntityManager, input: { workerId: string; qualificationId: string; delta: number }): Promise<number> {
  const previous = (await grantValue(em, input.workerId, input.qualificationId)) ?? 0;
  const value = previous + input.delta;
  await setGrant(em, { workerId: input.workerId, qualificationId: input.qualificationId, value });
  return value;
}

/** Remove the worker's grant; returns the value it had, or undefined when there was none. */
export async function clearGrant(
  em: EntityManager,
  input: { workerId: string; qualificationId: string },
): Promise<{ previous: number | undefined }> {
  const previous = await grantValue(em, input.workerId, input.qualificationId);
  if (previous !== undefined) await em.nativeDelete(GrantedQualification, { worker: input.workerId, qualification: input.qualificationId });
  return { previous };
}

export interface QualificationSummary {
  name: string;
  description: string | null;
  /** Workers holding a grant of it. */
  grants: number;
  createdAt: string;
}

export async function listQualifications(em: EntityManager): Promise<QualificationSummary[]> {
  const quals = await em.find(Qualification, {}, { orderBy: { name: 'asc' } });
  const rows: Array<{ qualification_id: string; n: number | string }> = await em
    .getConnection()
    .execute('select qualification_id, count(*) as n from granted_qualification group by qualification_id');
  const counts = new Map(rows.map((r) => [r.qualification_id, Number(r.n)]));
  return quals.map((q) => ({
    name: q.name,
    description: q.description ?? null,
    grants: counts.get(q.id) ?? 0,
    createdAt: q.createdAt.toISOString(),
  }));
}

export interface GrantRow {
  qualification: string;
  value: number;
  workerId: string;
  provider: string;
  providerWorkerId: string;
  updatedAt: string;
}

/** Grants, optionally of one worker and/or one qualification, ordered by worker then qualification. */
export async function listGrants(em: EntityManager, filter: { workerId?: string; qualificationId?: string } = {}): Promise<GrantRow[]> {
  const grants = await em.find(
    GrantedQualification,
    {
      ...(filter.workerId ? { worker: filter.workerId } : {}),
      ...(filter.qualificationId ? { qualification: filter.qualificationId } : {}),
    },
    { populate: ['qualification', 'worker'] },
  );
  return grants
    .map((g) => {
      const worker: Worker = g.worker.getEntity();
      return {
        qualification: g.qualification.getEntity().name,
        value: g.value,
        workerId: worker.id,
        provider: worker.provider,
        providerWorkerId: worker.providerWorkerId,
        updatedAt: g.updatedAt.toISOString(),
      };
    })
    .sort(
      (a, b) =>
        a.provider.localeCompare(b.provider) ||
        a.providerWorkerId.localeCompare(b.providerWorkerId) ||
        a.qualification.localeCompare(b.qualification),
    );
}

/** The worker's grants by qualification name. */
export async function grantsOf(em: EntityManager, workerId: string): Promise<Map<string, number>> {
  return (await grantsOfWorkers(em, [workerId])).get(workerId) ?? new Map();
}

/** The grants of each of `workerIds` (qualification name -> value), in one query; a worker without any is absent. */
export async function grantsOfWorkers(em: EntityManager, workerIds: readonly string[]): Promise<Map<string, Map<string, number>>> {
  const byWorker = new Map<string, Map<string, number>>();
  if (workerIds.length === 0) return byWorker;
  const grants = await em.find(GrantedQualification, { worker: { $in: [...workerIds] } }, { populate: ['qualification'] });
  for (const g of grants) {
    const of = byWorker.get(g.worker.id) ?? new Map<string, number>();
    of.set(g.qualification.getEntity().name, g.value);
    byWorker.set(g.worker.id, of);
  }
  return byWorker;
}
