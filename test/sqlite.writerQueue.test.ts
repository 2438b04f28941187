/**
 * Several handles on one SQLite file in one process (`hitloop dev` opens one each for its worker,
 * gateway and operator): node:sqlite is synchronous, so a statement waiting for the file's write lock
 * blocks the whole event loop, and the transaction holding the lock, in the same process, can never
 * finish while it waits. The handles share one writer queue per file instead (model/sqliteDialect.ts):
 * a write from one handle waits, without blocking, for another handle's transaction to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../model/database.ts';
import { Task } from '../model/entities.ts';
import { createTestDatabase } from './support/databases.ts';

describe('one SQLite file, several handles in one process', () => {
  let database: { url: string; drop(): Promise<void> };
  let a: Database;
  let b: Database;
  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    a = await openDatabase(database.url);
    b = await openDatabase(database.url);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it("a write waits for another handle's open transaction instead of failing with `database is locked`", async () => {
    let releaseA!: () => void;
    const aMayCommit = new Promise<void>((resolve) => (releaseA = resolve));
    let aInside!: () => void;
    const aIsInside = new Promise<void>((resolve) => (aInside = resolve));
    // A takes the write lock and then awaits real I/O (a timer here; a network call in general).
    const first = a.em().transactional(async (em) => {
      await em.insert(Task, { id: 'task-a', name: 'held by a', createdAt: new Date() });
      aInside();
      await aMayCommit;
      await em.insert(Task, { id: 'task-a2', name: 'held by a, second', createdAt: new Date() });
    });
    await aIsInside;
    // B writes while A's transaction is open; A is let go a little later, from the event loop.
    const second = b.em().insert(Task, { id: 'task-b', name: 'written by b', createdAt: new Date() });
    setTimeout(releaseA, 200);
    await Promise.all([first, second]);
    const names = (await b.em().find(Task, {}, { orderBy: { id: 'asc' } })).map((t) => t.id);
    expect(names).toEqual(['task-a', 'task-a2', 'task-b']);
  });

  it("a statement of one caller never runs inside another caller's open transaction on the same handle", async () => {
    let releaseA!: () => void;
    const aMayEnd = new Promise<void>((resolve) => (releaseA = resolve));
    let aInside!: () => void;
    const aIsInside = new Promise<void>((resolve) => (aInside = resolve));
    // A's transaction ends in a rollback after awaiting the event loop; B's write, made meanwhile
    // on the same handle, is its own and must stay.
    const first = a.em().transactional(async (em) => {
      await em.insert(Task, { id: 'task-rolled-back', name: 'rolled back', createdAt: new Date() });
      aInside();
      await aMayEnd;
      throw new Error('A changes its mind');
    });
    await aIsInside;
    const second = a.em().insert(Task, { id: 'task-kept', name: 'kept', createdAt: new Date() });
    setTimeout(releaseA, 200);
    await expect(first).rejects.toThrow('A changes its mind');
    await second;
    const ids = (await b.em().find(Task, { id: { $in: ['task-rolled-back', 'task-kept'] } })).map((t) => t.id);
    expect(ids).toEqual(['task-kept']);
  });
});
