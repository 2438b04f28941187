/**
 * The routes of the JSON API (`/api/v1/...`): each names its method, path, input schemas, answer
 * schema and handler. The handlers call the operator modules (operator/api.ts, review/,
 * qualifications/service.ts, export/) and add nothing of their own but shaping answers.
 * api/server.ts mounts them on the router; api/openapi.ts describes them from the same table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import { exportRunTo } from '../export/exportRun.ts';
import { TaskRun } from '../model/entities.ts';
import { SUBMITTED_AGENT_STATUSES, isFinalTaskRunStatus } from '../model/status.ts';
import type { Operator, RunStatusReport } from '../operator/api.ts';
import type { QualificationService } from '../qualifications/service.ts';
import type { Reviewer } from '../review/operator.ts';
import { reviewRenderer } from '../review/reviewView.ts';
import { submittedUnitsPage } from '../review/units.ts';
import { workerHistories } from '../review/workerHistory.ts';
import { runStatusQuery, taskRunWorkflowId } from '../workflows/definitions.ts';
import type { Credential, OperatorAuth } from './auth.ts';
import type { LoginLimiter } from './loginLimits.ts';
import { ApiError } from './errors.ts';
import * as s from './schemas.ts';

export interface ApiDeps {
  operator: Operator;
  reviewer: Reviewer;
  qualifications: QualificationService;
  auth: OperatorAuth;
  loginLimiter: LoginLimiter;
  log: Logger;
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  credential: Credential | null;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Route {
  method: Method;
  /** OpenAPI style: `/api/v1/runs/{runId}`. */
  path: string;
  summary: string;
  /** False only for logging in. */
  auth: boolean;
  params?: z.ZodObject;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The JSON answer; absent when the handler writes its own (a download). */
  response?: z.ZodType;
  /** HTTP status of success (default 200). */
  status?: number;
  /** A download: content types it answers with. */
  produces?: string[];
  handler(ctx: RouteContext): Promise<unknown>;
}

const doneUnits = (r: RunStatusReport): number => r.units.completed + r.units.accepted + r.units.rejected + r.units.soft_rejected;

export function apiRoutes(deps: ApiDeps): Route[] {
  const { operator, reviewer, qualifications, auth } = deps;

  async function runRow(report: RunStatusReport, liveLifetime?: number): Promise<z.output<typeof s.RunSchema> & { config: Partial<TaskRunConfig> | null }> {
    const run = await operator.db.em().findOne(TaskRun, report.runId, { fields: ['config', 'createdAt'] });
    const config = (run?.config ?? null) as Partial<TaskRunConfig> | null;
    const lifetime = liveLifetime ?? config?.task_lifetime_seconds;
    const secondsLeft =
      run && lifetime && !isFinalTaskRunStatus(report.status)
        ? Math.max(0, Math.round((run.createdAt.getTime() + lifetime * 1000 - Date.now()) / 1000))
        : null;
    return {
      ...report,
      doneUnits: doneUnits(report),
      maxSpend: config?.max_spend ?? null,
      createdAt: run ? run.createdAt.toISOString() : null,
      secondsLeft,
      config,
    };
  }

  async function liveLimits(runId: string): Promise<z.output<typeof s.RunLimitsSchema> | null> {
    try {
      const view = await operator.client.workflow.getHandle(taskRunWorkflowId(runId)).query(runStatusQuery);
      return view.limits;
    } catch {
      return null;
    }
  }

  const runId = (ctx: RouteContext): string => ctx.params.runId!;
  async function requireRun(id: string): Promise<void> {
    if (!(await operator.db.em().findOne(TaskRun, id, { fields: ['id'] }))) {
      throw new ApiError(404, 'not_found', `there is no task run "${id}"; the runs page lists them`);
    }
  }

  return [
    {
      method: 'POST',
      path: '/api/v1/session',
      summary: 'Log in with the operator password: sets the session cookie, answers its CSRF token',
      auth: false,
      body: s.LoginSchema,
      response: s.SessionSchema,
      status: 201,
      async handler(ctx) {
        const { password } = ctx.body as z.output<typeof s.LoginSchema>;
        if (!auth.enabled) throw new ApiError(503, 'console_disabled', 'the operator console is off: set HITLOOP_OPERATOR_PASSWORD and restart the gateway');
        const address = deps.loginLimiter.addressOf(ctx.req);
        await deps.loginLimiter.admit(address);
        if (!auth.passwordMatches(password)) {
          await deps.loginLimiter.failed(address);
          throw new ApiError(401, 'wrong_password', 'that is not the operator password; try again');
        }
        await deps.loginLimiter.succeeded(address);
        const session = auth.newSession();
        ctx.res.setHeader('set-cookie', session.cookie);
        return { authenticated: true, via: 'session', csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/session',
      summary: 'Who is logged in, and the session\'s CSRF token (for a reloaded page)',
      auth: true,
      response: s.SessionSchema,
      async handler(ctx) {
        const c = ctx.credential!;
        return c.kind === 'session'
          ? { authenticated: true, via: 'session', csrfToken: auth.csrfToken(c.sessionId), expiresAt: new Date(c.expiresAt).toISOString() }
          : { authenticated: true, via: 'token', csrfToken: null, expiresAt: null };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/session',
      summary: 'Log out: clears the session cookie',
      auth: true,
      response: z.looseObject({ loggedOut: z.literal(true) }),
      async handler(ctx) {
        ctx.res.setHeader('set-cookie', auth.clearCookie());
        return { loggedOut: true };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/runs',
      summary: 'Every task run, one row per run (however often it continued as new)',
      auth: true,
      response: s.RunListSchema,
      async handler() {
        const reports = await operator.runs();
        const rows = await Promise.all(reports.map((r) => runRow(r)));
        return { runs: rows.map(({ config: _config, ...row }) => row) };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/runs/{runId}',
      summary: 'One run: status, units by status, spend, live caps, time left',
      auth: true,
      params: s.RunParams,
      response: s.RunDetailSchema,
      async handler(ctx) {
        const report = await operator.status(runId(ctx));
        const limits = isFinalTaskRunStatus(report.status) ? null : await liveLimits(report.runId);
        const { config, ...row } = await runRow(report, limits?.task_lifetime_seconds);
        return { ...row, limits, taskTitle: config?.task_title ?? null };
      },
    },
    {
      method: 'PATCH',
      path: '/api/v1/runs/{runId}/limits',
      summary: 'Change caps while the run is live (as `hitloop set`); a refused change changes nothing',
      auth: true,
      params: s.RunParams,
      body: s.LimitsChangeSchema,
      response: s.LimitsResultSchema,
      async handler(ctx) {
        return { limits: await operator.changeLimits(runId(ctx), ctx.body as z.output<typeof s.LimitsChangeSchema>) };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/runs/{runId}/shutdown',
      summary: 'Shut the run down: expire what is left, wait for work in flight; answers the final status',
      auth: true,
      params: s.RunParams,
      body: s.ShutdownSchema,
      response: s.RunSchema,
      async handler(ctx) {
        const { reason } = ctx.body as z.output<typeof s.ShutdownSchema>;
        const { config: _config, ...row } = await runRow(await operator.shutdown(runId(ctx), reason));
        return row;
      },
    },
    {
      method: 'GET',
      path: '/api/v1/runs/{runId}/units',
      summary: 'Submitted units of a run, a page at a time, with their workers\' history',
      auth: true,
      params: s.RunParams,
      query: s.UnitPageQuery,
      response: s.UnitPageSchema,
      async handler(ctx) {
        const q = ctx.query as z.output<typeof s.UnitPageQuery>;
        await requireRun(runId(ctx));
        const agentStatuses =
          q.status === 'awaiting' ? (['completed'] as const) : q.status === 'reviewed' ? SUBMITTED_AGENT_STATUSES.filter((x) => x !== 'completed') : SUBMITTED_AGENT_STATUSES;
        const em = operator.db.em();
        const units = await submittedUnitsPage(
          em,
          runId(ctx),
          { agentStatuses, kinds: ['normal', 'screening', 'gold'], ...(q.worker ? { worker: q.worker } : {}) },
          { offset: q.offset, limit: q.limit + 1, by: q.by },
        );
        const page = units.slice(0, q.limit);
        const run = await em.findOne(TaskRun, runId(ctx), { fields: ['config'] });
        const view = reviewRenderer((run?.config ?? null) as TaskRunConfig | null);
        return {
          units: page.map((unit) => ({ ...unit, view: view(unit) })),
          offset: q.offset,
          limit: q.limit,
          more: units.length > q.limit,
          workers: await workerHistories(em, runId(ctx), page.map((u) => u.workerId)),
        };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/runs/{runId}/reviews',
      summary: 'Approve, reject or soft-reject units (at most 200 per request); each unit once per request key',
      auth: true,
      params: s.RunParams,
      body: s.ReviewRequestSchema,
      response: s.ReviewResultsSchema,
      async handler(ctx) {
        const b = ctx.body as z.output<typeof s.ReviewRequestSchema>;
        const results = await reviewer.review(runId(ctx), {
          decision: b.decision,
          unitIds: b.unitIds,
          requestKey: b.requestKey,
          ...(b.note ? { note: b.note } : {}),
        });
        return { results };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/runs/{runId}/bonuses',
      summary: 'Pay a bonus on a submitted unit, once per request key',
      auth: true,
      params: s.RunParams,
      body: s.BonusRequestSchema,
      response: s.ReviewResultSchema,
      async handler(ctx) {
        const b = ctx.body as z.output<typeof s.BonusRequestSchema>;
        return reviewer.bonus(runId(ctx), { unitId: b.unitId, amount: b.amount, reason: b.reason, requestKey: b.requestKey });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/runs/{runId}/export',
      summary: 'Download the submitted units of a run as JSON Lines or CSV',
      auth: true,
      params: s.RunParams,
      query: s.ExportQuery,
      produces: ['application/x-ndjson', 'text/csv'],
      async handler(ctx) {
        const { format } = ctx.query as z.output<typeof s.ExportQuery>;
        const id = runId(ctx);
        await requireRun(id);
        ctx.res.writeHead(200, {
          'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
          'content-disposition': `attachment; filename="${id.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}"`,
          'cache-control': 'no-store',
        });
        await exportRunTo(operator.db, id, ctx.res, { format });
        ctx.res.end();
        return undefined;
      },
    },
    {
      method: 'GET',
      path: '/api/v1/qualifications',
      summary: 'Every qualification and every grant',
      auth: true,
      response: s.QualificationListSchema,
      handler: () => qualifications.list(),
    },
    {
      method: 'POST',
      path: '/api/v1/qualifications',
      summary: 'Create a qualification',
      auth: true,
      body: s.QualificationCreateSchema,
      response: z.looseObject({ name: z.string(), description: z.string().nullable(), grants: z.number().int(), createdAt: z.string() }),
      status: 201,
      handler: (ctx) => qualifications.create(ctx.body as z.output<typeof s.QualificationCreateSchema>),
    },
    {
      method: 'POST',
      path: '/api/v1/qualifications/{name}/grants',
      summary: 'Grant a qualification value to a worker (also at their provider); the same state again changes nothing',
      auth: true,
      params: s.QualificationParams,
      body: s.GrantRequestSchema,
      response: s.GrantResultSchema,
      handler: (ctx) => qualifications.grant({ ...(ctx.body as z.output<typeof s.GrantRequestSchema>), name: ctx.params.name! }),
    },
    {
      method: 'POST',
      path: '/api/v1/qualifications/{name}/revocations',
      summary: 'Revoke a worker\'s grant of a qualification (also at their provider)',
      auth: true,
      params: s.QualificationParams,
      body: s.RevokeRequestSchema,
      response: s.GrantResultSchema,
      handler: (ctx) => qualifications.revoke({ ...(ctx.body as z.output<typeof s.RevokeRequestSchema>), name: ctx.params.name! }),
    },
    {
      method: 'POST',
      path: '/api/v1/workers/blocks',
      summary: 'Block or unblock a worker everywhere (refused with `blocked` by every run)',
      auth: true,
      body: s.BlockRequestSchema,
      response: s.BlockResultSchema,
      handler(ctx) {
        const { blocked, ...ref } = ctx.body as z.output<typeof s.BlockRequestSchema>;
        return blocked ? qualifications.block(ref) : qualifications.unblock(ref);
      },
    },
  ];
}
