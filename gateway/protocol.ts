/**
 * The gateway's wire protocol, version 1 (docs/protocol.md is the prose of this file).
 *
 * Every frame is one JSON object with `v` (the protocol version) and `type`. Client packets are
 * validated with zod before anything else happens; server packets are typed here and built by the
 * `encode*` helpers, some of them by string concatenation because they are sent very often.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { storableJsonObject, storableString } from '../model/storableJson.ts';
import type { RefusalReason } from '../workflows/definitions.ts';

export const PROTOCOL_VERSION = 1;

/** The WebSocket path on the gateway's port. */
export const WEBSOCKET_PATH = '/ws';

// ---------------------------------------------------------------------------------------------
// Limits (defaults; a gateway may be started with others)
// ---------------------------------------------------------------------------------------------

export const DEFAULT_LIMITS = {
  /** Largest frame accepted; a bigger one closes the socket with 1009. */
  maxFrameBytes: 256 * 1024,
  /** Packets per second a socket may send on average ... */
  packetsPerSecond: 30,
  /** ... with bursts up to this many. */
  packetBurst: 60,
  /** Packets dropped for flooding before the socket is closed with 1008. */
  floodCloseAfter: 200,
  /**
   * Largest `data` of one `live` packet (bytes of its JSON), and the most `live` data one agent may
   * send in all: live data goes into the assignment workflow's history, which Temporal bounds.
   */
  maxLiveDataBytes: 64 * 1024,
  maxLiveBytesPerAgent: 4 * 1024 * 1024,
} as const;
export type GatewayLimits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

// ---------------------------------------------------------------------------------------------
// Client -> gateway
// ---------------------------------------------------------------------------------------------

const v = z.literal(PROTOCOL_VERSION);
// Every string that crosses the protocol is one the databases store exactly (model/storableJson.ts).
const id = storableString().min(1).max(200);
const runId = storableString().min(1).max(100);
const jsonObject = storableJsonObject();

export const RegisterPacketSchema = z.strictObject({
  v,
  type: z.literal('register'),
  runId,
  /** The query parameters of the worker's task link: the provider reads the worker's identity from them. */
  params: z.record(storableString().max(100), storableString().max(1000)).refine((p) => Object.keys(p).length <= 30, 'at most 30 parameters'),
  /** Chosen by the client once per page load: retrying a register returns the same agent. */
  registrationKey: id,
});

export const ResumePacketSchema = z.strictObject({
  v,
  type: z.literal('resume'),
  runId,
  agentId: id,
  token: storableString().min(1).max(2000),
  /** The highest `seq` the client has processed; the gateway sends what follows it. */
  lastSeq: z.number().int().min(0),
});

export const LivePacketSchema = z.strictObject({
  v,
  type: z.literal('live'),
  /** Unique per agent: a packet replayed after a reconnect is applied once. */
  actionId: id,
  data: jsonObject,
});

export const SubmitPacketSchema = z.strictObject({
  v,
  type: z.literal('submit'),
  /** Unique per submission attempt: a resent submit is stored once. */
  submitKey: id,
  data: jsonObject,
});

export const ReturnPacketSchema = z.strictObject({ v, type: z.literal('return') });

export const AckPacketSchema = z.strictObject({ v, type: z.literal('ack'), seq: z.number().int().min(1) });

export const HeartbeatPacketSchema = z.strictObject({ v, type: z.literal('heartbeat') });

export const CLIENT_PACKET_SCHEMAS = {
  register: RegisterPacketSchema,
  resume: ResumePacketSchema,
  live: LivePacketSchema,
  submit: SubmitPacketSchema,
  return: ReturnPacketSchema,
  ack: AckPacketSchema,
  heartbeat: HeartbeatPacketSchema,
} as const;

export type ClientPacketType = keyof typeof CLIENT_PACKET_SCHEMAS;
export type RegisterPacket = z.infer<typeof RegisterPacketSchema>;
export type ResumePacket = z.infer<typeof ResumePacketSchema>;
export type LivePacket = z.infer<typeof LivePacketSchema>;
export type SubmitPacket = z.infer<typeof SubmitPacketSchema>;
export type AckPacket = z.infer<typeof AckPacketSchema>;
export type ClientPacket = { [K in ClientPacketType]: z.infer<(typeof CLIENT_PACKET_SCHEMAS)[K]> }[ClientPacketType];

// ---------------------------------------------------------------------------------------------
// Gateway -> client
// ---------------------------------------------------------------------------------------------

/** Stable error codes of `error` packets (docs/protocol.md explains each). */
export const ERROR_CODES = [
  'bad_json',
  'bad_packet',
  'unknown_type',
  'unsupported_version',
  'rate_limited',
  'not_registered',
  'already_registered',
  'unknown_run',
  'bad_worker_identity',
  'invalid_token',
  'token_mismatch',
  'agent_ended',
  'not_in_task',
  'invalid_submission',
  'already_submitted',
  'too_large',
  'quota_exceeded',
  'temporal_unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Close codes the gateway uses besides the standard 1000/1001/1006. */
export const CLOSE_CODES = {
  /** Standard: a frame was over the size limit. */
  frameTooLarge: 1009,
  /** Standard policy violation: the socket kept flooding after `rate_limited` errors. */
  flood: 1008,
  /** The gateway is shutting down; reconnect (to any instance) and resume. */
  goingAway: 1001,
  /** Another socket resumed or registered the same agent (on any gateway); this one is stale. */
  replaced: 4001,
} as const;

export interface AgentPacket {
  v: 1;
  type: 'agent';
  agentId: string;
  runId: string;
  unitId: string;
  assignmentId: string;
  /** The agent's status when the packet was sent; later changes arrive as `status` messages. */
  status: string;
  initData: unknown;
  /** The agent's latest live state (its last `live` data), to restore a page after a reconnect. */
  state: unknown;
  /** Signed agent token: keep it to `resume` after a reconnect. */
  token: string;
  /** True when this is an agent the worker already had (a retried register or a resume). */
  resumed: boolean;
}

/**
 * The worker must pass the run's onboarding first: show `initData` (the onboarding form) and send
 * the answers with `submit`; the answer is `submit_ack`, then `agent` (passed: a unit) or `refused`.
 */
export interface OnboardingPacket {
  v: 1;
  type: 'onboarding';
  onboardingAgentId: string;
  initData: unknown;
}

export interface RefusedPacket {
  v: 1;
  type: 'refused';
  reason: RefusalReason;
  detail: string;
}

/** A workflow -> agent message from the outbox; acknowledge it with `ack`. */
export interface MessagePacket {
  v: 1;
  type: 'message';
  seq: number;
  /** `status` (payload `{status, reason?}`), `live` (payload `{from, data}`), or a later kind. */
  kind: string;
  payload: unknown;
}

export interface ErrorPacket {
  v: 1;
  type: 'error';
  code: ErrorCode;
  message: string;
  /** The `type` of the packet this error answers, when known. */
  ref?: string;
  /** The `actionId` or `submitKey` of that packet, when it had one. */
  id?: string;
  /** For `agent_ended`: the agent's final status. */
  status?: string;
  /** For faults (`internal`): the id under which the gateway logged the details. */
  errorId?: string;
}

export type ServerPacket =
  | AgentPacket
  | OnboardingPacket
  | RefusedPacket
  | MessagePacket
  | ErrorPacket
  | { v: 1; type: 'live_ack'; actionId: string }
  | { v: 1; type: 'submit_ack'; submitKey: string }
  | { v: 1; type: 'return_ack' }
  | { v: 1; type: 'heartbeat' };

export function encode(packet: ServerPacket): string {
  return JSON.stringify(packet);
}

export const HEARTBEAT_REPLY = encode({ v: 1, type: 'heartbeat' });
export const RETURN_ACK = encode({ v: 1, type: 'return_ack' });

/**
 * An outbox message as a frame, without parsing its payload: `payloadJson` is the stored JSON text.
 * Only the gateway's own values (a number and a kind from the database) are spliced in.
 */
export function encodeMessage(seq: number, kind: string, payloadJson: string): string {
  return `{"v":1,"type":"message","seq":${seq},"kind":${JSON.stringify(kind)},"payload":${payloadJson}}`;
}

/** A short id to quote in an answer and log with a fault's details (never shown to the client). */
export const newErrorId = (): string => randomBytes(6).toString('hex');

export function encodeError(code: ErrorCode, message: string, extra: Omit<ErrorPacket, 'v' | 'type' | 'code' | 'message'> = {}): string {
  return encode({ v: 1, type: 'error', code, message, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

export type ParseResult = { ok: true; packet: ClientPacket } | { ok: false; code: ErrorCode; message: string; ref?: string; id?: string };

/** One client frame to a validated packet, or the error to answer it with. Never throws. */
export function parseClientPacket(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'bad_json', message: `the frame is not valid JSON (${(err as Error).message})` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'bad_packet', message: 'a packet must be a JSON object with "v" and "type"' };
  }
  const record = raw as Record<string, unknown>;
  if (record.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      code: 'unsupported_version',
      message: `this gateway speaks protocol version ${PROTOCOL_VERSION}; the packet has "v": ${JSON.stringify(record.v) ?? 'missing'}`,
    };
  }
  const type = record.type;
  if (typeof type !== 'string' || !Object.hasOwn(CLIENT_PACKET_SCHEMAS, type)) {
    return {
      ok: false,
      code: 'unknown_type',
      message: `unknown packet type ${JSON.stringify(type) ?? 'missing'}; known types: ${Object.keys(CLIENT_PACKET_SCHEMAS).join(', ')}`,
    };
  }
  const result = CLIENT_PACKET_SCHEMAS[type as ClientPacketType].safeParse(raw);
  if (!result.success) {
    const id = typeof record.actionId === 'string' ? record.actionId : typeof record.submitKey === 'string' ? record.submitKey : undefined;
    return { ok: false, code: 'bad_packet', message: `invalid "${type}" packet: ${describeIssues(result.error.issues)}`, ref: type, ...(id ? { id } : {}) };
  }
  return { ok: true, packet: result.data as ClientPacket };
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(packet)'}: ${issue.message}`)
    .join('; ');
}
