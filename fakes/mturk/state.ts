/**
 * The state and operations of the local MTurk (a stand-in for the Requester API 2017-01-17, kept in
 * memory). Operations take and return the JSON shapes of the real API (names as in
 * @aws-sdk/client-mturk); a refusal is a `MTurkFault` that the server turns into MTurk's error JSON
 * (`RequestError` / `ServiceFault`, both with `Message` and `TurkErrorCode`).
 *
 * What it keeps honest: statuses (HIT: Assignable -> Unassignable -> Reviewable / Disposed; assignment:
 * Accepted -> Submitted -> Approved / Rejected, Rejected -> Approved with OverrideRejection; an
 * accepted assignment past its deadline is abandoned and frees its slot), the 24-hour
 * UniqueRequestToken rule on CreateHIT*, CreateAdditionalAssignmentsForHIT and SendBonus, the rule
 * that a HIT made with fewer than 10 assignments is never extended to 10 or more, one assignment per
 * worker per HIT, blocks, qualification requirements at accept time, and a ledger of every payment
 * with MTurk's fee (40 % on HITs of 10+ assignments).
 */
import { randomBytes } from 'node:crypto';
import { MTURK_LARGE_HIT_ASSIGNMENTS as LARGE_HIT_ASSIGNMENTS, mturkFee } from '../../providers/mturk/fees.ts';

export const TOKEN_MEMORY_MS = 24 * 60 * 60 * 1000;

export class MTurkFault extends Error {
  readonly type: 'RequestError' | 'ServiceFault' | 'ThrottlingException';
  readonly turkErrorCode: string | undefined;

  constructor(type: MTurkFault['type'], message: string, turkErrorCode?: string) {
    super(message);
    this.type = type;
    this.turkErrorCode = turkErrorCode;
  }
}

const refuse = (message: string, code = 'AWS.MechanicalTurk.InvalidParameterValue'): never => {
  throw new MTurkFault('RequestError', message, code);
};

type Json = Record<string, unknown>;

interface HitType {
  HITTypeId: string;
  Title: string;
  Description: string;
  Keywords: string;
  Reward: string;
  AssignmentDurationInSeconds: number;
  AutoApprovalDelayInSeconds: number;
  QualificationRequirements: Json[];
}

interface Hit {
  HITId: string;
  HITTypeId: string;
  HITGroupId: string;
  Question: string;
  RequesterAnnotation?: string;
  MaxAssignments: number;
  CreationTime: number;
  Expiration: number;
  HITStatus: 'Assignable' | 'Unassignable' | 'Reviewable' | 'Reviewing' | 'Disposed';
}

export interface FakeAssignment {
  AssignmentId: string;
  WorkerId: string;
  HITId: string;
  /** `Accepted` while the worker works (real MTurk only reports Submitted, Approved, Rejected). */
  AssignmentStatus: 'Accepted' | 'Submitted' | 'Approved' | 'Rejected';
  AcceptTime: number;
  Deadline: number;
  SubmitTime?: number;
  ApprovalTime?: number;
  RejectionTime?: number;
  Answer?: string;
  RequesterFeedback?: string;
}

export interface LedgerEntry {
  kind: 'reward' | 'bonus';
  workerId: string;
  assignmentId: string;
  hitId: string;
  amount: number;
  fee: number;
  at: number;
  token?: string;
}

interface QualType {
  QualificationTypeId: string;
  Name: string;
  Description: string;
  QualificationTypeStatus: 'Active' | 'Inactive';
  CreationTime: number;
}

export interface FakeMTurkOptions {
  /** Starting balance in dollars. */
  balance?: number;
  /** Clock in ms (tests move it to pass the 24-hour token rule). */
  now?: () => number;
}

const id = (prefix: string, length = 30): string =>
  `${prefix}${randomBytes(length).toString('base64url').replace(/[^A-Za-z0-9]/g, '').toUpperCase()}`.slice(0, length);

const str = (input: Json, key: string): string => {
  const value = input[key];
  if (typeof value !== 'string' || value === '') refuse(`Value null at '${key}' failed to satisfy constraint: Member must not be null`, 'AWS.MechanicalTurk.MissingParameter');
  return value as string;
};
const num = (input: Json, key: string): number => {
  const value = input[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) refuse(`Value at '${key}' must be a number`, 'AWS.MechanicalTurk.MissingParameter');
  return value as number;
};
const money = (value: string, key: string): number => {
  if (!/^\d+(\.\d{1,2})?$/.test(value)) refuse(`${key} ${JSON.stringify(value)} is not a valid amount (dollars with at most 2 decimals)`);
  return Number(value);
};
const seconds = (ms: number): number => ms / 1000;

export class FakeMTurk {
  balance: number;
  readonly now: () => number;
  readonly hitTypes = new Map<string, HitType>();
  readonly hits = new Map<string, Hit>();
  readonly assignments = new Map<string, FakeAssignment>();
  readonly qualificationTypes = new Map<string, QualType>();
  /** `${typeId}/${workerId}` -> integer value. */
  readonly grants = new Map<string, number>();
  readonly blocks = new Map<string, string>();
  readonly notifications: Array<{ subject: string; message: string; workerIds: string[] }> = [];
  readonly ledger: LedgerEntry[] = [];
  /** `${operation}/${token}` -> when it was used and what it made. */
  readonly #tokens = new Map<string, { at: number; ref: string }>();
  /** Requests per operation, for tests that prove what was (not) asked twice. */
  readonly calls = new Map<string, number>();
  /** Faults to answer the next requests with, in order (a test's way to inject throttling or outages). */
  readonly pendingFaults: MTurkFault[] = [];

  constructor(options: FakeMTurkOptions = {}) {
    this.balance = options.balance ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Answer the next `count` requests with ThrottlingException. */
  throttleNext(count: number): void {
    for (let i = 0; i < count; i++) this.pendingFaults.push(new MTurkFault('ThrottlingException', 'Rate exceeded'));
  }

  call(operation: string, input: Json): Json {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const fault = this.pendingFaults.shift();
    if (fault) throw fault;
    this.#expireOverdue();
    const handler = this.#operations[operation];
    if (!handler) throw new MTurkFault('RequestError', `Operation ${operation} is not supported by the local MTurk`, 'AWS.MechanicalTurk.UnsupportedOperation');
    return handler(input);
  }

  readonly #operations: Record<string, (input: Json) => Json> = {
    GetAccountBalance: () => ({ AvailableBalance: this.balance.toFixed(2) }),

    CreateHITType: (input) => {
      const HITTypeId = id('3HT');
      const type: HitType = {
        HITTypeId,
        Title: str(input, 'Title'),
        Description: str(input, 'Description'),
        Keywords: typeof input.Keywords === 'string' ? input.Keywords : '',
        Reward: str(input, 'Reward'),
        AssignmentDurationInSeconds: num(input, 'AssignmentDurationInSeconds'),
        AutoApprovalDelayInSeconds: typeof input.AutoApprovalDelayInSeconds === 'number' ? input.AutoApprovalDelayInSeconds : 2_592_000,
        QualificationRequirements: Array.isArray(input.QualificationRequirements) ? (input.QualificationRequirements as Json[]) : [],
      };
      money(type.Reward, 'Reward');
      if (type.AssignmentDurationInSeconds < 30 || type.AssignmentDurationInSeconds > 31_536_000) {
        refuse('AssignmentDurationInSeconds must be between 30 and 31536000');
      }
      for (const requirement of type.QualificationRequirements) {
        const typeId = String(requirement.QualificationTypeId ?? '');
        if (!this.qualificationTypes.has(typeId) && !typeId.startsWith('00000000000000000')) {
          refuse(`QualificationType ${typeId} does not exist`, 'AWS.MechanicalTurk.QualificationTypeDoesNotExist');
        }
      }
      // Real MTurk answers the same id for identical properties; so does this one.
      for (const existing of this.hitTypes.values()) {
        if (JSON.stringify({ ...existing, HITTypeId: '' }) === JSON.stringify({ ...type, HITTypeId: '' })) return { HITTypeId: existing.HITTypeId };
      }
      this.hitTypes.set(HITTypeId, type);
      return { HITTypeId };
    },

    CreateHITWithHITType: (input) => {
      const type = this.hitTypes.get(str(input, 'HITTypeId')) ?? refuse(`HITType ${String(input.HITTypeId)} does not exist`, 'AWS.MechanicalTurk.HITTypeDoesNotExist');
      const lifetime = num(input, 'LifetimeInSeconds');
      const question = str(input, 'Question');
      if (!/<ExternalQuestion[\s>]/.test(question) || !/<ExternalURL>\s*https?:\/\/[^<]+<\/ExternalURL>/.test(question)) {
        refuse('Question must be an ExternalQuestion with an http(s) ExternalURL (the local MTurk serves no other question form)');
      }
      return this.#once('CreateHIT', input.UniqueRequestToken, (ref) => `The HIT with ID "${ref}" already exists. (UniqueRequestToken was used before)`, () => {
        const HITId = id('3HI');
        const now = this.now();
        this.hits.set(HITId, {
          HITId,
          HITTypeId: type.HITTypeId,
          HITGroupId: `G${type.HITTypeId.slice(3)}`,
          Question: question,
          RequesterAnnotation: typeof input.RequesterAnnotation === 'string' ? input.RequesterAnnotation : undefined,
          MaxAssignments: typeof input.MaxAssignments === 'number' ? input.MaxAssignments : 1,
          CreationTime: now,
          Expiration: now + lifetime * 1000,
          HITStatus: 'Assignable',
        });
        return HITId;
      }, (HITId) => ({ HIT: this.#hitJson(HITId) }));
    },

    CreateAdditionalAssignmentsForHIT: (input) => {
      const hit = this.#hit(str(input, 'HITId'));
      const more = num(input, 'NumberOfAdditionalAssignments');
      if (!Number.isInteger(more) || more < 1) refuse('NumberOfAdditionalAssignments must be a whole number of 1 or more');
      if (hit.HITStatus === 'Disposed') refuse(`HIT ${hit.HITId} is disposed`, 'AWS.MechanicalTurk.InvalidHITState');
      // MTurk's rule: a HIT made with fewer than 10 assignments never reaches 10 (those cost a 40 % fee).
      if (hit.MaxAssignments < LARGE_HIT_ASSIGNMENTS && hit.MaxAssignments + more >= LARGE_HIT_ASSIGNMENTS) {
        refuse(
          `HIT ${hit.HITId} has ${hit.MaxAssignments} assignments; a HIT created with fewer than ${LARGE_HIT_ASSIGNMENTS} assignments cannot be extended to ${LARGE_HIT_ASSIGNMENTS} or more`,
          'AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease',
        );
      }
      return this.#once('CreateAdditionalAssignmentsForHIT', input.UniqueRequestToken, (ref) => `HIT ${ref} was already extended for this request (UniqueRequestToken was used before)`, () => {
        hit.MaxAssignments += more;
        this.#reopen(hit);
        return hit.HITId;
      }, () => ({}));
    },

    GetHIT: (input) => ({ HIT: this.#hitJson(this.#hit(str(input, 'HITId')).HITId) }),

    ListHITs: (input) => {
      const all = [...this.hits.keys()];
      const start = input.NextToken ? Number(input.NextToken) : 0;
      const size = Math.min(typeof input.MaxResults === 'number' ? input.MaxResults : 10, 100);
      const page = all.slice(start, start + size);
      return { HITs: page.map((h) => this.#hitJson(h)), NumResults: page.length, NextToken: start + size < all.length ? String(start + size) : undefined };
    },

    UpdateExpirationForHIT: (input) => {
      const hit = this.#hit(str(input, 'HITId'));
      const at = num(input, 'ExpireAt') * 1000;
      if (hit.HITStatus === 'Disposed') refuse(`HIT ${hit.HITId} is disposed`, 'AWS.MechanicalTurk.InvalidHITState');
      hit.Expiration = at;
      this.#expireOverdue();
      return {};
    },

    ListAssignmentsForHIT: (input) => {
      const hit = this.#hit(str(input, 'HITId'));
      const wanted = Array.isArray(input.AssignmentStatuses) ? (input.AssignmentStatuses as string[]) : ['Submitted', 'Approved', 'Rejected'];
      const list = [...this.assignments.values()].filter((a) => a.HITId === hit.HITId && wanted.includes(a.AssignmentStatus));
      return { Assignments: list.map((a) => this.#assignmentJson(a)), NumResults: list.length };
    },

    GetAssignment: (input) => {
      const assignment = this.#assignment(str(input, 'AssignmentId'));
      return { Assignment: this.#assignmentJson(assignment), HIT: this.#hitJson(assignment.HITId) };
    },

    ApproveAssignment: (input) => {
      const a = this.#assignment(str(input, 'AssignmentId'));
      if (a.AssignmentStatus === 'Approved') refuse(`This operation can be called with a status of: Submitted (assignment ${a.AssignmentId} is Approved)`, 'AWS.MechanicalTurk.InvalidAssignmentState');
      if (a.AssignmentStatus === 'Rejected' && input.OverrideRejection !== true) {
        refuse(`Assignment ${a.AssignmentId} was rejected; approve it with OverrideRejection`, 'AWS.MechanicalTurk.InvalidAssignmentState');
      }
      if (a.AssignmentStatus === 'Accepted') refuse(`Assignment ${a.AssignmentId} has not been submitted`, 'AWS.MechanicalTurk.InvalidAssignmentState');
      const hit = this.hits.get(a.HITId)!;
      this.#pay('reward', a, Number(this.hitTypes.get(hit.HITTypeId)!.Reward), hit.MaxAssignments);
      a.AssignmentStatus = 'Approved';
      a.ApprovalTime = this.now();
      if (typeof input.RequesterFeedback === 'string') a.RequesterFeedback = input.RequesterFeedback;
      return {};
    },

    RejectAssignment: (input) => {
      const a = this.#assignment(str(input, 'AssignmentId'));
      const feedback = str(input, 'RequesterFeedback');
      if (a.AssignmentStatus !== 'Submitted') {
        refuse(`This operation can be called with a status of: Submitted (assignment ${a.AssignmentId} is ${a.AssignmentStatus})`, 'AWS.MechanicalTurk.InvalidAssignmentState');
      }
      a.AssignmentStatus = 'Rejected';
      a.RejectionTime = this.now();
      a.RequesterFeedback = feedback;
      return {};
    },

    SendBonus: (input) => {
      const a = this.#assignment(str(input, 'AssignmentId'));
      const workerId = str(input, 'WorkerId');
      const amount = money(str(input, 'BonusAmount'), 'BonusAmount');
      str(input, 'Reason');
      if (a.WorkerId !== workerId) refuse(`Assignment ${a.AssignmentId} does not belong to worker ${workerId}`);
      if (a.AssignmentStatus === 'Accepted') refuse(`Assignment ${a.AssignmentId} has not been submitted`, 'AWS.MechanicalTurk.InvalidAssignmentState');
      const hit = this.hits.get(a.HITId)!;
      this.#once('SendBonus', input.UniqueRequestToken, () => 'This bonus was already paid (UniqueRequestToken was used before)', () => {
        this.#pay('bonus', a, amount, hit.MaxAssignments, typeof input.UniqueRequestToken === 'string' ? input.UniqueRequestToken : undefined);
        return a.AssignmentId;
      }, () => ({}));
      return {};
    },

    ListBonusPayments: (input) => {
      const bonuses = this.ledger.filter(
        (e) => e.kind === 'bonus' && (input.AssignmentId ? e.assignmentId === input.AssignmentId : e.hitId === input.HITId),
      );
      return {
        BonusPayments: bonuses.map((e) => ({ WorkerId: e.workerId, AssignmentId: e.assignmentId, BonusAmount: e.amount.toFixed(2), GrantTime: seconds(e.at) })),
        NumResults: bonuses.length,
      };
    },

    CreateQualificationType: (input) => {
      const name = str(input, 'Name');
      if ([...this.qualificationTypes.values()].some((q) => q.Name === name)) {
        refuse(`You have already created a QualificationType with this name. A QualificationType's name must be unique among all of the QualificationTypes created by the same user. (${name})`, 'AWS.MechanicalTurk.QualificationTypeAlreadyExists');
      }
      const type: QualType = {
        QualificationTypeId: id('3QT'),
        Name: name,
        Description: str(input, 'Description'),
        QualificationTypeStatus: input.QualificationTypeStatus === 'Inactive' ? 'Inactive' : 'Active',
        CreationTime: this.now(),
      };
      this.qualificationTypes.set(type.QualificationTypeId, type);
      return { QualificationType: { ...type, CreationTime: seconds(type.CreationTime) } };
    },

    ListQualificationTypes: (input) => {
      const query = typeof input.Query === 'string' ? input.Query.toLowerCase() : '';
      const list = [...this.qualificationTypes.values()].filter((q) => q.Name.toLowerCase().includes(query));
      return { QualificationTypes: list.map((q) => ({ ...q, CreationTime: seconds(q.CreationTime) })), NumResults: list.length };
    },

    AssociateQualificationWithWorker: (input) => {
      const typeId = str(input, 'QualificationTypeId');
      if (!this.qualificationTypes.has(typeId)) refuse(`QualificationType ${typeId} does not exist`, 'AWS.MechanicalTurk.QualificationTypeDoesNotExist');
      this.grants.set(`${typeId}/${str(input, 'WorkerId')}`, typeof input.IntegerValue === 'number' ? input.IntegerValue : 1);
      return {};
    },

    DisassociateQualificationFromWorker: (input) => {
      this.grants.delete(`${str(input, 'QualificationTypeId')}/${str(input, 'WorkerId')}`);
      return {};
    },

    CreateWorkerBlock: (input) => {
      this.blocks.set(str(input, 'WorkerId'), str(input, 'Reason'));
      return {};
    },

    DeleteWorkerBlock: (input) => {
      this.blocks.delete(str(input, 'WorkerId'));
      return {};
    },

    ListWorkerBlocks: () => ({ WorkerBlocks: [...this.blocks].map(([WorkerId, Reason]) => ({ WorkerId, Reason })), NumResults: this.blocks.size }),

    NotifyWorkers: (input) => {
      const workerIds = Array.isArray(input.WorkerIds) ? (input.WorkerIds as string[]) : [];
      if (workerIds.length === 0 || workerIds.length > 100) refuse('WorkerIds must list 1 to 100 workers');
      this.notifications.push({ subject: str(input, 'Subject'), message: str(input, 'MessageText'), workerIds });
      return { NotifyWorkersFailureStatuses: [] };
    },
  };

  // ------------------------------------------------------------ the worker's side (the web site)

  /** A worker accepts a HIT (the "Accept" button): an assignment in status Accepted. */
  accept(hitId: string, workerId: string): FakeAssignment {
    this.#expireOverdue();
    const hit = this.#hit(hitId);
    if (this.blocks.has(workerId)) refuse(`Worker ${workerId} is blocked by this requester`, 'AWS.MechanicalTurk.WorkerBlocked');
    // A worker works a HIT once: their accepted assignment is theirs to reopen, a submitted one ends it for them.
    const mine = [...this.assignments.values()].find((a) => a.HITId === hitId && a.WorkerId === workerId);
    if (mine?.AssignmentStatus === 'Accepted') return mine;
    if (mine) refuse(`Worker ${workerId} has already worked on HIT ${hitId}`, 'AWS.MechanicalTurk.HITAlreadyWorked');
    if (hit.HITStatus !== 'Assignable') refuse(`HIT ${hitId} is no longer available (${hit.HITStatus})`, 'AWS.MechanicalTurk.HITNotAssignable');
    const type = this.hitTypes.get(hit.HITTypeId)!;
    for (const requirement of type.QualificationRequirements) {
      if (!this.#meets(workerId, requirement)) refuse(`Worker ${workerId} does not meet the qualification requirements of this HIT`, 'AWS.MechanicalTurk.QualificationNotMet');
    }
    const now = this.now();
    const assignment: FakeAssignment = {
      AssignmentId: id('3AS'),
      WorkerId: workerId,
      HITId: hitId,
      AssignmentStatus: 'Accepted',
      AcceptTime: now,
      Deadline: now + type.AssignmentDurationInSeconds * 1000,
    };
    this.assignments.set(assignment.AssignmentId, assignment);
    if (this.#taken(hit) >= hit.MaxAssignments) hit.HITStatus = 'Unassignable';
    return assignment;
  }

  /** A worker returns an accepted HIT (the "Return" button): the assignment is gone and the HIT assignable again. */
  returnAssignment(assignmentId: string): void {
    const a = this.#assignment(assignmentId);
    if (a.AssignmentStatus !== 'Accepted') refuse(`Assignment ${assignmentId} was already submitted`, 'AWS.MechanicalTurk.InvalidAssignmentState');
    this.assignments.delete(assignmentId);
    this.#reopen(this.hits.get(a.HITId)!);
  }

  /** The form a task page posts to `{turkSubmitTo}/mturk/externalSubmit`. */
  externalSubmit(fields: Record<string, string>): FakeAssignment {
    const assignmentId = fields.assignmentId ?? refuse('the form has no assignmentId field', 'AWS.MechanicalTurk.MissingParameter');
    const a = this.assignments.get(assignmentId) ?? refuse(`Assignment ${assignmentId} does not exist`, 'AWS.MechanicalTurk.AssignmentDoesNotExist');
    if (a.AssignmentStatus !== 'Accepted') refuse(`Assignment ${assignmentId} was already submitted`, 'AWS.MechanicalTurk.InvalidAssignmentState');
    if (this.now() > a.Deadline) refuse(`Assignment ${assignmentId} is past its deadline`, 'AWS.MechanicalTurk.AssignmentExpired');
    const answers = Object.entries(fields)
      .filter(([key]) => key !== 'assignmentId')
      .map(([key, value]) => `<Answer><QuestionIdentifier>${xml(key)}</QuestionIdentifier><FreeText>${xml(value)}</FreeText></Answer>`)
      .join('');
    a.Answer = `<?xml version="1.0" encoding="ASCII"?><QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd">${answers}</QuestionFormAnswers>`;
    a.AssignmentStatus = 'Submitted';
    a.SubmitTime = this.now();
    const hit = this.hits.get(a.HITId)!;
    if (this.#done(hit) >= hit.MaxAssignments) hit.HITStatus = 'Reviewable';
    return a;
  }

  /** The ExternalURL of a HIT. */
  externalUrl(hitId: string): string {
    const match = /<ExternalURL>\s*([^<]+?)\s*<\/ExternalURL>/.exec(this.#hit(hitId).Question);
    return unxml(match![1]!);
  }

  hitOf(hitId: string): Hit {
    return this.#hit(hitId);
  }

  // ------------------------------------------------------------ helpers

  /** Run `act` once per token for 24 hours; a repeat inside that time is refused, naming what the first made. */
  #once(operation: string, token: unknown, repeated: (ref: string) => string, act: () => string, answer: (ref: string) => Json): Json {
    if (token === undefined) return answer(act());
    if (typeof token !== 'string' || token.length < 1 || token.length > 64) refuse('UniqueRequestToken must be 1 to 64 characters');
    const key = `${operation}/${token as string}`;
    const previous = this.#tokens.get(key);
    if (previous && this.now() - previous.at < TOKEN_MEMORY_MS) refuse(repeated(previous.ref), 'AWS.MechanicalTurk.DuplicateRequest');
    const ref = act();
    this.#tokens.set(key, { at: this.now(), ref });
    return answer(ref);
  }

  #pay(kind: LedgerEntry['kind'], a: FakeAssignment, amount: number, maxAssignments: number, token?: string): void {
    const fee = mturkFee(amount, maxAssignments);
    if (amount + fee > this.balance) refuse(`Your account balance (${this.balance.toFixed(2)}) is too low for this payment of ${amount.toFixed(2)} plus ${fee.toFixed(2)} fees`, 'AWS.MechanicalTurk.InsufficientFunds');
    this.balance = Math.round((this.balance - amount - fee) * 100) / 100;
    this.ledger.push({ kind, workerId: a.WorkerId, assignmentId: a.AssignmentId, hitId: a.HITId, amount, fee, at: this.now(), token });
  }

  #meets(workerId: string, requirement: Json): boolean {
    const typeId = String(requirement.QualificationTypeId);
    if (!this.qualificationTypes.has(typeId)) return true; // system qualifications (locale, Masters) are not modelled
    const value = this.grants.get(`${typeId}/${workerId}`);
    const values = Array.isArray(requirement.IntegerValues) ? (requirement.IntegerValues as number[]) : [];
    const [first] = values;
    switch (requirement.Comparator) {
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'EqualTo':
        return value === first;
      case 'NotEqualTo':
        return value !== first;
      case 'GreaterThan':
        return value !== undefined && value > first!;
      case 'GreaterThanOrEqualTo':
        return value !== undefined && value >= first!;
      case 'LessThan':
        return value !== undefined && value < first!;
      case 'LessThanOrEqualTo':
        return value !== undefined && value <= first!;
      default:
        return false;
    }
  }

  #taken(hit: Hit): number {
    return [...this.assignments.values()].filter((a) => a.HITId === hit.HITId).length;
  }

  #done(hit: Hit): number {
    return [...this.assignments.values()].filter((a) => a.HITId === hit.HITId && a.AssignmentStatus !== 'Accepted').length;
  }

  /** A HIT with a free slot before its expiry takes workers again (after a return, an abandonment or an extension). */
  #reopen(hit: Hit): void {
    if ((hit.HITStatus === 'Unassignable' || hit.HITStatus === 'Reviewable') && this.#taken(hit) < hit.MaxAssignments && hit.Expiration > this.now()) {
      hit.HITStatus = 'Assignable';
    }
  }

  #expireOverdue(): void {
    const now = this.now();
    // An accepted assignment not submitted by its deadline is abandoned: it is gone and its slot free again.
    for (const a of [...this.assignments.values()]) {
      if (a.AssignmentStatus === 'Accepted' && a.Deadline <= now) {
        this.assignments.delete(a.AssignmentId);
        this.#reopen(this.hits.get(a.HITId)!);
      }
    }
    for (const hit of this.hits.values()) {
      if ((hit.HITStatus === 'Assignable' || hit.HITStatus === 'Unassignable') && hit.Expiration <= now) {
        const open = [...this.assignments.values()].some((a) => a.HITId === hit.HITId && a.AssignmentStatus === 'Accepted' && a.Deadline > now);
        if (!open) hit.HITStatus = 'Reviewable';
      }
    }
  }

  #hit(hitId: string): Hit {
    return this.hits.get(hitId) ?? refuse(`Hit ${hitId} does not exist. (${this.now()})`, 'AWS.MechanicalTurk.HitDoesNotExist');
  }

  #assignment(assignmentId: string): FakeAssignment {
    return this.assignments.get(assignmentId) ?? refuse(`Assignment ${assignmentId} does not exist. (${this.now()})`, 'AWS.MechanicalTurk.AssignmentDoesNotExist');
  }

  #hitJson(hitId: string): Json {
    const hit = this.hits.get(hitId)!;
    const type = this.hitTypes.get(hit.HITTypeId)!;
    const list = [...this.assignments.values()].filter((a) => a.HITId === hitId);
    return {
      HITId: hit.HITId,
      HITTypeId: hit.HITTypeId,
      HITGroupId: hit.HITGroupId,
      CreationTime: seconds(hit.CreationTime),
      Title: type.Title,
      Description: type.Description,
      Question: hit.Question,
      Keywords: type.Keywords,
      HITStatus: hit.HITStatus,
      MaxAssignments: hit.MaxAssignments,
      Reward: type.Reward,
      AutoApprovalDelayInSeconds: type.AutoApprovalDelayInSeconds,
      Expiration: seconds(hit.Expiration),
      AssignmentDurationInSeconds: type.AssignmentDurationInSeconds,
      RequesterAnnotation: hit.RequesterAnnotation,
      QualificationRequirements: type.QualificationRequirements,
      NumberOfAssignmentsPending: list.filter((a) => a.AssignmentStatus === 'Accepted').length,
      NumberOfAssignmentsAvailable: Math.max(0, hit.MaxAssignments - list.length),
      NumberOfAssignmentsCompleted: list.filter((a) => a.AssignmentStatus !== 'Accepted').length,
    };
  }

  #assignmentJson(a: FakeAssignment): Json {
    return {
      AssignmentId: a.AssignmentId,
      WorkerId: a.WorkerId,
      HITId: a.HITId,
      AssignmentStatus: a.AssignmentStatus,
      AcceptTime: seconds(a.AcceptTime),
      Deadline: seconds(a.Deadline),
      SubmitTime: a.SubmitTime === undefined ? undefined : seconds(a.SubmitTime),
      ApprovalTime: a.ApprovalTime === undefined ? undefined : seconds(a.ApprovalTime),
      RejectionTime: a.RejectionTime === undefined ? undefined : seconds(a.RejectionTime),
      Answer: a.Answer,
      RequesterFeedback: a.RequesterFeedback,
    };
  }
}

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function unxml(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'");
}
