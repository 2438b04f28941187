/**
 * hitloop's data model (docs/design.md §1): one `defineEntity` schema per table, the TypeScript type of each
 * entity, and `ALL_ENTITIES` for the ORM. The same definitions serve PostgreSQL and SQLite; the
 * schema itself lives in the migrations generated from these definitions (see model/migrate.ts).
 *
 * Conventions:
 * - Primary keys are readable strings chosen by the caller (`r-abc123`, `<runId>-a<index>`,
 *   `<assignmentId>-u<index>`), except the append-only logs OutboxMessage and ProviderCall.
 * - Relations are `Ref`s: `em.create(Unit, { taskRun: 'r-1', ... })` takes a primary key,
 *   `unit.taskRun.id` needs no query, anything else needs `await unit.taskRun.load()`.
 * - `createdAt` is filled by `em.create` (not by the database, because the two dialects store
 *   dates differently); code inserting plain rows with `em.insert` must pass it.
 * - Statuses change only through the guarded helpers of model/transitions.ts.
 */
/* eslint-disable @typescript-eslint/no-empty-object-type -- `interface X extends InferEntity<typeof X> {}`
   (MikroORM's documented idiom) names the entity type, so errors and hovers say `Unit`, not its expansion. */
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import {
  AGENT_STATUSES,
  ONBOARDING_AGENT_STATUSES,
  TASK_RUN_STATUSES,
  UNIT_STATUSES,
  type AgentStatus,
  type OnboardingAgentStatus,
  type TaskRunStatus,
  type UnitStatus,
} from './status.ts';
import { MONEY_PRECISION, MONEY_SCALE } from './money.ts';

export type { AgentStatus, OnboardingAgentStatus, TaskRunStatus, UnitStatus };

export const UNIT_KINDS = ['normal', 'screening', 'gold'] as const;
export type UnitKind = (typeof UNIT_KINDS)[number];

export const REVIEW_DECISIONS = ['approve', 'reject', 'soft_reject'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

export const BONUS_STATUSES = ['pending', 'paid'] as const;
export type BonusStatus = (typeof BONUS_STATUSES)[number];

/** Why a run stopped; open-ended so later features can add reasons without a migration. */
export type TaskRunEndReason = 'patience' | 'operator' | 'lifetime' | 'completed' | (string & {});

/**
 * What a JSON column holds: any non-null value JSON.stringify keeps; narrow it before use (e.g.
 * with zod). Not `unknown` (nor `{}`), which MikroORM's typings would treat as a mandatory column
 * even when it is nullable.
 */
export type JsonData = string | number | boolean | object;
/** The run config is always an object. */
export type JsonConfig = Record<string, unknown>;

/** `numeric(14,4)` in both dialects, read back as a JS number (amounts stay far below 2^53); what is accepted: model/money.ts. */
const money = () => p.decimal('number').precision(MONEY_PRECISION).scale(MONEY_SCALE);
const createdAt = () => p.datetime().onCreate(() => new Date());
/**
 * bigserial on PostgreSQL, `integer primary key autoincrement` on SQLite. SQLite reports the
 * column back as INTEGER, which MikroORM's schema diff would forever see as a change from bigint.
 */
const autoincrementId = () => p.bigint('number').primary().autoincrement().ignoreSchemaChanges('type');

export const Project = defineEntity({
  name: 'Project',
  tableName: 'project',
  properties: {
    id: p.string().primary(),
    name: p.string().unique(),
    owner: p.string().nullable(),
    budget: money().nullable(),
    createdAt: createdAt(),
  },
});
export interface Project extends InferEntity<typeof Project> {}

export const Task = defineEntity({
  name: 'Task',
  tableName: 'task',
  properties: {
    id: p.string().primary(),
    /** The config's `task_name`: caps such as maximum_units_per_worker count across its runs. */
    name: p.string().unique(),
    project: () => p.manyToOne(Project).ref().nullable().deleteRule('set null'),
    createdAt: createdAt(),
  },
});
export interface Task extends InferEntity<typeof Task> {}

export const TaskRun = defineEntity({
  name: 'TaskRun',
  tableName: 'task_run',
  properties: {
    id: p.string().primary(),
    task: () => p.manyToOne(Task).ref().deleteRule('cascade'),
    status: p.enum(TASK_RUN_STATUSES),
    workflowId: p.string(),
    /** The validated config, frozen at launch. */
    config: p.json<JsonConfig>(),
    providerType: p.string(),
    blueprintType: p.string(),
    reward: money(),
    /** `max_spend`, which an operator may change while the run is live (null: no budget). */
    maxSpend: money().nullable(),
    endReason: p.text().$type<TaskRunEndReason>().nullable(),
    failureReason: p.text().nullable(),
    assignmentCount: p.integer().default(0),
    dataSha256: p.string().nullable(),
    /** `overlap.max` / `overlap.confidence` as changed live (`hitloop set`); absent = the config's. */
    liveOverlap: p.json<{ max?: number; confidence?: number }>().nullable(),
    createdAt: createdAt(),
    endedAt: p.datetime().nullable(),
  },
});
export interface TaskRun extends InferEntity<typeof TaskRun> {}

export const Assignment = defineEntity({
  name: 'Assignment',
  tableName: 'assignment',
  properties: {
    id: p.string().primary(),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    index: p.integer(),
    data: p.json<JsonData>(),
    /** sha256 of the item's data: the same item in another run of the task (overlap: no worker twice on one item). */
    itemKey: p.string().nullable(),
    createdAt: createdAt(),
  },
  uniques: [{ properties: ['taskRun', 'index'] }],
  indexes: [{ properties: ['taskRun', 'itemKey'] }],
});
export interface Assignment extends InferEntity<typeof Assignment> {}

export const Worker = defineEntity({
  name: 'Worker',
  tableName: 'worker',
  properties: {
    id: p.string().primary(),
    provider: p.string(),
    providerWorkerId: p.string(),
    /** Blocked at the provider level (docs/design.md §4); block qualifications are separate. */
    blocked: p.boolean().default(false),
    createdAt: createdAt(),
  },
  uniques: [{ properties: ['provider', 'providerWorkerId'] }],
});
export interface Worker extends InferEntity<typeof Worker> {}

export const Unit = defineEntity({
  name: 'Unit',
  tableName: 'unit',
  properties: {
    id: p.string().primary(),
    assignment: () => p.manyToOne(Assignment).ref().deleteRule('cascade'),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    unitIndex: p.integer(),
    kind: p.enum(UNIT_KINDS).default('normal'),
    status: p.enum(UNIT_STATUSES),
    pay: money(),
    providerUnitId: p.string().nullable(),
    launchBatch: p.integer().nullable(),
    /** The current worker while assigned, else the last one. */
    worker: () => p.manyToOne(Worker).ref().nullable().deleteRule('set null'),
    createdAt: createdAt(),
    launchedAt: p.datetime().nullable(),
    assignedAt: p.datetime().nullable(),
    completedAt: p.datetime().nullable(),
    endedAt: p.datetime().nullable(),
    /** `<request>:<status before>` of the expiry that ended it: a retried expiry reports the same counts. */
    expiredBy: p.string().nullable(),
  },
  uniques: [{ properties: ['assignment', 'unitIndex'] }],
  indexes: [{ properties: ['taskRun', 'status'] }, { properties: ['taskRun', 'launchBatch'] }, { properties: ['worker', 'status'] }],
});
export interface Unit extends InferEntity<typeof Unit> {}

export const Agent = defineEntity({
  name: 'Agent',
  tableName: 'agent',
  properties: {
    id: p.string().primary(),
    unit: () => p.manyToOne(Unit).ref().deleteRule('cascade'),
    assignment: () => p.manyToOne(Assignment).ref().deleteRule('cascade'),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    worker: () => p.manyToOne(Worker).ref().deleteRule('cascade'),
    status: p.enum(AGENT_STATUSES),
    /** The client's register request id: re-registering with it finds this agent again. */
    registrationKey: p.string().nullable(),
    initData: p.json<JsonData>().nullable(),
    /** Live state to resume after a reconnect. */
    state: p.json<JsonData>().nullable(),
    submission: p.json<JsonData>().nullable(),
    submitKey: p.string().nullable(),
    /** When Temporal took the signal of the claimed `submitKey` (before its ack): from then on the claim is as good as stored. */
    submitSentAt: p.datetime().nullable(),
    createdAt: createdAt(),
    startedAt: p.datetime().nullable(),
    submittedAt: p.datetime().nullable(),
    endedAt: p.datetime().nullable(),
    lastSeenAt: p.datetime().nullable(),
    /** The gateway connection bound to the agent last (register or resume): only it may act as the agent. */
    connectionId: p.string().nullable(),
    /** Bytes of `live` data accepted for this agent so far (bounded: docs/protocol.md "Limits"). */
    liveBytes: p.integer().default(0),
    /** The workflow run that decided the agent: a re-run of its decision reports the agent to that run as new. */
    decidedBy: p.string().nullable(),
  },
  uniques: [{ properties: ['worker', 'registrationKey'] }],
  indexes: [{ properties: ['worker', 'status'] }, { properties: ['taskRun', 'status'] }],
});
export interface Agent extends InferEntity<typeof Agent> {}

export const OnboardingAgent = defineEntity({
  name: 'OnboardingAgent',
  tableName: 'onboarding_agent',
  properties: {
    id: p.string().primary(),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    worker: () => p.manyToOne(Worker).ref().deleteRule('cascade'),
    status: p.enum(ONBOARDING_AGENT_STATUSES),
    submission: p.json<JsonData>().nullable(),
    createdAt: createdAt(),
    endedAt: p.datetime().nullable(),
  },
});
export interface OnboardingAgent extends InferEntity<typeof OnboardingAgent> {}

export const Qualification = defineEntity({
  name: 'Qualification',
  tableName: 'qualification',
  properties: {
    id: p.string().primary(),
    name: p.string().unique(),
    description: p.text().nullable(),
    createdAt: createdAt(),
  },
});
export interface Qualification extends InferEntity<typeof Qualification> {}

export const GrantedQualification = defineEntity({
  name: 'GrantedQualification',
  tableName: 'granted_qualification',
  properties: {
    id: p.string().primary(),
    worker: () => p.manyToOne(Worker).ref().deleteRule('cascade'),
    qualification: () => p.manyToOne(Qualification).ref().deleteRule('cascade'),
    value: p.integer(),
    createdAt: createdAt(),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ['worker', 'qualification'] }],
});
export interface GrantedQualification extends InferEntity<typeof GrantedQualification> {}

export const Review = defineEntity({
  name: 'Review',
  tableName: 'review',
  properties: {
    id: p.string().primary(),
    unit: () => p.manyToOne(Unit).ref().deleteRule('cascade'),
    agent: () => p.manyToOne(Agent).ref().deleteRule('cascade'),
    decision: p.enum(REVIEW_DECISIONS),
    note: p.text().nullable(),
    /** The operator's idempotency key: the same request never reviews twice. */
    requestKey: p.string().unique(),
    createdAt: createdAt(),
  },
});
export interface Review extends InferEntity<typeof Review> {}

export const Bonus = defineEntity({
  name: 'Bonus',
  tableName: 'bonus',
  properties: {
    id: p.string().primary(),
    agent: () => p.manyToOne(Agent).ref().deleteRule('cascade'),
    unit: () => p.manyToOne(Unit).ref().deleteRule('cascade'),
    worker: () => p.manyToOne(Worker).ref().deleteRule('cascade'),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    amount: money(),
    reason: p.text(),
    /** The operator's idempotency key: a bonus is never paid twice for one request. */
    requestKey: p.string().unique(),
    status: p.enum(BONUS_STATUSES).default('pending'),
    providerRef: p.string().nullable(),
    createdAt: createdAt(),
    paidAt: p.datetime().nullable(),
  },
});
export interface Bonus extends InferEntity<typeof Bonus> {}

/**
 * A worker has been given a unit of this item (docs/design.md §2, overlap): written in the
 * registration's transaction, never removed, so no worker gets a second unit of one item of a task,
 * whatever reconnects, returns, runs or concurrency happen. The unique key is the rule itself.
 */
export const ItemClaim = defineEntity({
  name: 'ItemClaim',
  tableName: 'item_claim',
  properties: {
    id: autoincrementId(),
    task: () => p.manyToOne(Task).ref().deleteRule('cascade'),
    itemKey: p.string(),
    worker: () => p.manyToOne(Worker).ref().deleteRule('cascade'),
    unitId: p.string(),
    createdAt: createdAt(),
  },
  uniques: [{ properties: ['task', 'itemKey', 'worker'] }],
});
export interface ItemClaim extends InferEntity<typeof ItemClaim> {}

/** An item's aggregated answer (docs/design.md §3), rewritten after each of its submissions. */
export const ItemAggregate = defineEntity({
  name: 'ItemAggregate',
  tableName: 'item_aggregate',
  properties: {
    assignment: () => p.oneToOne(Assignment).ref().primary().deleteRule('cascade'),
    taskRun: () => p.manyToOne(TaskRun).ref().deleteRule('cascade'),
    method: p.string(),
    /** Per aggregated field: { label, confidence, votes, tied }. */
    fields: p.json<JsonData>(),
    /** The lowest confidence over the fields: what dynamic overlap compares with its threshold. */
    confidence: p.double().nullable(),
    submitted: p.integer(),
    units: p.integer(),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [{ properties: ['taskRun'] }],
});
export interface ItemAggregate extends InferEntity<typeof ItemAggregate> {}

/** A workflow -> agent message, kept until the gateway has delivered it and the agent acknowledged it. */
export const OutboxMessage = defineEntity({
  name: 'OutboxMessage',
  tableName: 'outbox_message',
  properties: {
    id: autoincrementId(),
    agent: () => p.manyToOne(Agent).ref().deleteRule('cascade'),
    /** Per agent, from 1: the order the agent sees messages in and the cursor it resumes from. */
    seq: p.integer(),
    kind: p.text(),
    payload: p.json<JsonData>(),
    /** Set by the sending activity, so a retried activity inserts its message once. */
    dedupeKey: p.text(),
    createdAt: createdAt(),
    ackedAt: p.datetime().nullable(),
  },
  uniques: [{ properties: ['agent', 'seq'] }, { properties: ['agent', 'dedupeKey'] }],
});
export interface OutboxMessage extends InferEntity<typeof OutboxMessage> {}

/**
 * What the mock / local provider was asked to do. Deliberately not unique on the request key:
 * a duplicated provider call must stay visible to the tests that look for one.
 */
export const ProviderCall = defineEntity({
  name: 'ProviderCall',
  tableName: 'provider_call',
  properties: {
    id: autoincrementId(),
    provider: p.string(),
    operation: p.string(),
    requestKey: p.string(),
    target: p.text(),
    payload: p.json<JsonData>(),
    createdAt: createdAt(),
  },
  indexes: [{ properties: ['operation', 'requestKey'] }],
});
export interface ProviderCall extends InferEntity<typeof ProviderCall> {}

/**
 * One gateway process's heartbeat (gateway/instanceLease.ts). `id` names one incarnation of a
 * gateway (its instance id plus a random suffix), so a restarted process never inherits the row of
 * its predecessor. `beat` counts heartbeats: the other gateways compare it with itself over their
 * own clocks, never `beatAt` across hosts. A row declared dead is removed once its leases are swept.
 */
export const GatewayInstance = defineEntity({
  name: 'GatewayInstance',
  tableName: 'gateway_instance',
  properties: {
    id: p.string().primary(),
    beat: p.integer().default(0),
    startedAt: p.datetime(),
    /** For operators reading the table; liveness is judged from `beat`. */
    beatAt: p.datetime(),
    /** The gateway that saw this one stop beating and took over its agents (null while alive). */
    declaredDeadBy: p.string().nullable(),
    declaredDeadAt: p.datetime().nullable(),
  },
});
export interface GatewayInstance extends InferEntity<typeof GatewayInstance> {}

/**
 * A gateway holds an agent's socket: written before the agent's reconnect signal, removed once the
 * socket's disconnect signal is sent. Leases of a dead gateway are claimed (`claimedBy`) by a live
 * one, which sends the disconnect the dead one could not. Plain ids, no foreign keys: a lease may
 * outlive its gateway's row on purpose (that is how a dead gateway's leases are recognised).
 */
export const GatewayLease = defineEntity({
  name: 'GatewayLease',
  tableName: 'gateway_lease',
  properties: {
    /** The holding gateway's incarnation (GatewayInstance.id). */
    instance: p.string().primary(),
    connectionId: p.string().primary(),
    agentId: p.string(),
    assignmentId: p.string(),
    boundAt: p.datetime(),
    claimedBy: p.string().nullable(),
  },
  indexes: [{ properties: ['claimedBy'] }],
});
export interface GatewayLease extends InferEntity<typeof GatewayLease> {}

export const ALL_ENTITIES = [
  Project,
  Task,
  TaskRun,
  Assignment,
  Worker,
  Unit,
  Agent,
  OnboardingAgent,
  Qualification,
  GrantedQualification,
  Review,
  Bonus,
  OutboxMessage,
  ProviderCall,
  GatewayInstance,
  GatewayLease,
  ItemClaim,
  ItemAggregate,
] as const;
