/**
 * One exported row per submitted unit: the assignment's input, the worker, the agent's timings,
 * the review state and the submitted data, with stable snake_case column names.
 */
import type { SubmittedUnit } from '../review/units.ts';

export interface ExportRow {
  run_id: string;
  assignment_id: string;
  assignment_index: number;
  unit_id: string;
  unit_index: number;
  unit_kind: string;
  unit_status: string;
  pay: number;
  worker_id: string;
  provider: string;
  provider_worker_id: string;
  agent_id: string;
  agent_status: string;
  accepted_at: string;
  started_at: string | null;
  submitted_at: string | null;
  duration_seconds: number | null;
  review_decision: string | null;
  review_note: string | null;
  reviewed_at: string | null;
  /** Bonuses paid on the unit. */
  bonus_total: number;
  /** The assignment's input, as the data source gave it. */
  input: unknown;
  /** What the worker submitted, exactly. */
  data: unknown;
}

/** Columns holding one value each, in output order; `input` and `data` come after them. */
export const SCALAR_COLUMNS = [
  'run_id',
  'assignment_id',
  'assignment_index',
  'unit_id',
  'unit_index',
  'unit_kind',
  'unit_status',
  'pay',
  'worker_id',
  'provider',
  'provider_worker_id',
  'agent_id',
  'agent_status',
  'accepted_at',
  'started_at',
  'submitted_at',
  'duration_seconds',
  'review_decision',
  'review_note',
  'reviewed_at',
  'bonus_total',
] as const satisfies ReadonlyArray<keyof ExportRow>;

export function exportRow(u: SubmittedUnit): ExportRow {
  const paid = u.bonuses.filter((b) => b.status === 'paid').reduce((sum, b) => sum + b.amount, 0);
  return {
    run_id: u.runId,
    assignment_id: u.assignmentId,
    assignment_index: u.assignmentIndex,
    unit_id: u.unitId,
    unit_index: u.unitIndex,
    unit_kind: u.unitKind,
    unit_status: u.unitStatus,
    pay: u.pay,
    worker_id: u.workerId,
    provider: u.provider,
    provider_worker_id: u.providerWorkerId,
    agent_id: u.agentId,
    agent_status: u.agentStatus,
    accepted_at: u.acceptedAt,
    started_at: u.startedAt,
    submitted_at: u.submittedAt,
    duration_seconds: u.durationSeconds,
    review_decision: u.review?.decision ?? null,
    review_note: u.review?.note ?? null,
    reviewed_at: u.review?.reviewedAt ?? null,
    bonus_total: Math.round(paid * 10_000) / 10_000,
    input: u.assignmentData,
    data: u.data,
  };
}
