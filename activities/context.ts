/**
 * What every activity is given by the worker process that hosts it: the database, the runtime
 * settings and a logger. Activities are built by factories over these, so tests can host them too.
 */
import type { Logger } from 'pino';
import { ApplicationFailure } from '@temporalio/activity';
import type { Settings } from '../config/settings.ts';
import type { Database, EntityManager } from '../model/database.ts';
import type { ProviderContext } from '../providers/types.ts';

export interface ActivityDeps {
  db: Database;
  settings: Settings;
  log: Logger;
}

export function providerContext(deps: ActivityDeps, em: EntityManager): ProviderContext {
  return { em, settings: deps.settings, log: deps.log };
}

/** A failure retrying cannot fix (bad input): the workflow sees it at once, with this message. */
export function permanentFailure(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}
