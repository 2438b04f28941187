/**
 * The local MTurk driven by the official client (@aws-sdk/client-mturk): the wire protocol (AWS JSON
 * 1.1, X-Amz-Target, SigV4 header shape), MTurk's error shapes, statuses, the 24-hour token rule,
 * and the worker side (accept, externalSubmit) with its payment ledger.
 */
import {
  ApproveAssignmentCommand,
  CreateAdditionalAssignmentsForHITCommand,
  CreateHITTypeCommand,
  CreateHITWithHITTypeCommand,
  GetAccountBalanceCommand,
  GetAssignmentCommand,
  GetHITCommand,
  MTurkClient,
  RejectAssignmentCommand,
  RequestError,
  SendBonusCommand,
} from '@aws-sdk/client-mturk';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeMTurk, type FakeMTurkServer } from '../fakes/mturk/server.ts';
import { REPO_ROOT } from './support/cli.ts';

const KEY = { accessKeyId: 'AKIDLOCALMTURKTEST01', secretAccessKey: 'local-secret' };
let clock = Date.now();
let fake: FakeMTurkServer;

function client(credentials = KEY, maxAttempts = 1): MTurkClient {
  return new MTurkClient({ region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts });
}

const question = (url: string): string =>
  `<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"><ExternalURL>${url}</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>`;

async function hitType(mturk: MTurkClient): Promise<string> {
  const out = await mturk.send(
    new CreateHITTypeCommand({ Title: 'Label', Description: 'Label one item', Reward: '0.50', AssignmentDurationInSeconds: 600, AutoApprovalDelayInSeconds: 3600 }),
  );
  return out.HITTypeId!;
}

beforeAll(async () => {
  fake = await startFakeMTurk({ accessKeyIds: [KEY.accessKeyId], balance: 100, now: () => clock });
});
afterAll(async () => {
  await fake.close();
});

describe('local MTurk through @aws-sdk/client-mturk', () => {

  it('answers GetAccountBalance to a signed request and refuses an unknown access key like AWS', async () => {
    const balance = await client().send(new GetAccountBalanceCommand({}));
    expect(balance.AvailableBalance).toBe('100.00');
    const bad = client({ accessKeyId: 'AKIDNOTKNOWNTOMTURK1', secretAccessKey: 'x' });
    await expect(bad.send(new GetAccountBalanceCommand({}))).rejects.toMatchObject({ name: 'UnrecognizedClientException' });
    expect(fake.authFailures).toContain('UnrecognizedClientException');
  });

  it('refuses a request without a SigV4 Authorization header', async () => {
    const res = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'MTurkRequesterServiceV20170117.GetAccountBalance' },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
    const forged = await fetch(fake.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'MTurkRequesterServiceV20170117.GetAccountBalance',
        authorization: 'AWS4-HMAC-SHA256 Credential=AKIDLOCALMTURKTEST01/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc',
      },
      body: '{}',
    });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ __type: 'IncompleteSignatureException' });
  });

  it('creates a HIT once per UniqueRequestToken for 24 hours, with a RequestError naming the HIT on a repeat', async () => {
    const mturk = client();
    const HITTypeId = await hitType(mturk);
    const request = { HITTypeId, LifetimeInSeconds: 3600, MaxAssignments: 1, Question: question('http://127.0.0.1:9/task/r'), RequesterAnnotation: 'u-1', UniqueRequestToken: 'launch:u-1' };
    const first = await mturk.send(new CreateHITWithHITTypeCommand(request));
    expect(first.HIT).toMatchObject({ HITStatus: 'Assignable', RequesterAnnotation: 'u-1', MaxAssignments: 1 });
    const repeat = await mturk.send(new CreateHITWithHITTypeCommand(request)).catch((err: unknown) => err);
    expect(repeat).toBeInstanceOf(RequestError);
    expect((repeat as RequestError).TurkErrorCode).toBe('AWS.MechanicalTurk.DuplicateRequest');
    expect((repeat as RequestError).message).toContain(first.HIT!.HITId!);
    expect(fake.mturk.hits.size).toBe(1);
    clock += 24 * 60 * 60 * 1000 + 1;
    const later = await mturk.send(new CreateHITWithHITTypeCommand(request));
    expect(later.HIT!.HITId).not.toBe(first.HIT!.HITId);
  });

  it('refuses a Question that is not an ExternalQuestion and a HIT type that does not exist', async () => {
    const mturk = client();
    const HITTypeId = await hitType(mturk);
    await expect(mturk.send(new CreateHITWithHITTypeCommand({ HITTypeId, LifetimeInSeconds: 60, Question: '<HTMLQuestion/>' }))).rejects.toBeInstanceOf(RequestError);
    await expect(
      mturk.send(new CreateHITWithHITTypeCommand({ HITTypeId: '3HTNOPE', LifetimeInSeconds: 60, Question: question('http://x/') })),
    ).rejects.toMatchObject({ name: 'RequestError', TurkErrorCode: 'AWS.MechanicalTurk.HITTypeDoesNotExist' });
  });

  it('retries ThrottlingException with the SDK\'s backoff and then answers', async () => {
    fake.mturk.throttleNext(2);
    const before = fake.mturk.calls.get('GetAccountBalance') ?? 0;
    const out = await client(KEY, 5).send(new GetAccountBalanceCommand({}));
    expect(out.AvailableBalance).toBeDefined();
    expect((fake.mturk.calls.get('GetAccountBalance') ?? 0) - before).toBe(3);
  });

  it('walks an assignment through accept, externalSubmit, reject, approve with OverrideRejection, and pays a bonus once', async () => {
    const mturk = client();
    const HITTypeId = await hitType(mturk);
    const { HIT } = await mturk.send(new CreateHITWithHITTypeCommand({ HITTypeId, LifetimeInSeconds: 3600, MaxAssignments: 1, Question: question('http://127.0.0.1:9/t') }));
    const accepted = fake.mturk.accept(HIT!.HITId!, 'A1WORKERONE');
    expect((await mturk.send(new GetHITCommand({ HITId: HIT!.HITId! }))).HIT!.HITStatus).toBe('Unassignable');
    await expect(mturk.send(new ApproveAssignmentCommand({ AssignmentId: accepted.AssignmentId }))).rejects.toMatchObject({
      TurkErrorCode: 'AWS.MechanicalTurk.InvalidAssignmentState',
    });

    const form = new URLSearchParams({ assignmentId: accepted.AssignmentId, label: 'cat' });
    const submitted = await fetch(`${fake.url}/mturk/externalSubmit`, { method: 'POST', body: form });
    expect(submitted.status).toBe(200);
    const got = await mturk.send(new GetAssignmentCommand({ AssignmentId: accepted.AssignmentId }));
    expect(got.Assignment).toMatchObject({ AssignmentStatus: 'Submitted', WorkerId: 'A1WORKERONE' });
    expect(got.Assignment!.Answer).toContain('<FreeText>cat</FreeText>');
    expect(got.HIT!.HITStatus).toBe('Reviewable');

    await mturk.send(new RejectAssignmentCommand({ AssignmentId: accepted.AssignmentId, RequesterFeedback: 'blank answer' }));
    await expect(mturk.send(new RejectAssignmentCommand({ AssignmentId: accepted.AssignmentId, RequesterFeedback: 'again' }))).rejects.toBeInstanceOf(RequestError);
    await expect(mturk.send(new ApproveAssignmentCommand({ AssignmentId: accepted.AssignmentId }))).rejects.toBeInstanceOf(RequestError);
    await mturk.send(new ApproveAssignmentCommand({ AssignmentId: accepted.AssignmentId, OverrideRejection: true }));
    await expect(mturk.send(new RejectAssignmentCommand({ AssignmentId: accepted.AssignmentId, RequesterFeedback: 'late' }))).rejects.toMatchObject({
      TurkErrorCode: 'AWS.MechanicalTurk.InvalidAssignmentState',
    });

    const bonus = { AssignmentId: accepted.AssignmentId, WorkerId: 'A1WORKERONE', BonusAmount: '0.25', Reason: 'careful', UniqueRequestToken: 'bonus-1' };
    await mturk.send(new SendBonusCommand(bonus));
    await expect(mturk.send(new SendBonusCommand(bonus))).rejects.toMatchObject({ TurkErrorCode: 'AWS.MechanicalTurk.DuplicateRequest' });
    const paid = fake.mturk.ledger.filter((e) => e.assignmentId === accepted.AssignmentId);
    expect(paid.map((e) => [e.kind, e.amount, e.fee])).toEqual([
      ['reward', 0.5, 0.1],
      ['bonus', 0.25, 0.05],
    ]);

    const resubmit = await fetch(`${fake.url}/mturk/externalSubmit`, { method: 'POST', body: form });
    expect(resubmit.status).toBe(400);
  });

  it('adds assignments to a HIT once per token, never from below 10 to 10 or more, and frees the slot of an abandoned assignment', async () => {
    const mturk = client();
    const { HIT } = await mturk.send(
      new CreateHITWithHITTypeCommand({ HITTypeId: await hitType(mturk), MaxAssignments: 1, LifetimeInSeconds: 3600, Question: question('https://example.org/task/r-extend') }),
    );
    const hitId = HIT!.HITId!;
    const held = fake.mturk.accept(hitId, 'A1HOLDER');
    expect(fake.mturk.hitOf(hitId).HITStatus).toBe('Unassignable');

    await mturk.send(new CreateAdditionalAssignmentsForHITCommand({ HITId: hitId, NumberOfAdditionalAssignments: 1, UniqueRequestToken: 'extend-1' }));
    expect(fake.mturk.hitOf(hitId)).toMatchObject({ MaxAssignments: 2, HITStatus: 'Assignable' });
    const repeated = await mturk
      .send(new CreateAdditionalAssignmentsForHITCommand({ HITId: hitId, NumberOfAdditionalAssignments: 1, UniqueRequestToken: 'extend-1' }))
      .catch((err: unknown) => err);
    expect(repeated).toBeInstanceOf(RequestError);
    expect(repeated).toMatchObject({ TurkErrorCode: 'AWS.MechanicalTurk.DuplicateRequest' });
    expect(fake.mturk.hitOf(hitId).MaxAssignments).toBe(2);

    const tooMany = await mturk.send(new CreateAdditionalAssignmentsForHITCommand({ HITId: hitId, NumberOfAdditionalAssignments: 8 })).catch((err: unknown) => err);
    expect(tooMany).toMatchObject({ name: 'RequestError', TurkErrorCode: 'AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease' });
    await mturk.send(new CreateAdditionalAssignmentsForHITCommand({ HITId: hitId, NumberOfAdditionalAssignments: 7 }));
    expect(fake.mturk.hitOf(hitId).MaxAssignments).toBe(9);

    // A worker works a HIT once; an accepted assignment past its deadline is abandoned and its slot free.
    const other = fake.mturk.accept(hitId, 'A2OTHER');
    fake.mturk.externalSubmit({ assignmentId: other.AssignmentId, label: 'x' });
    expect(() => fake.mturk.accept(hitId, 'A2OTHER')).toThrow(/already worked on HIT/);
    clock += 601_000;
    await expect(mturk.send(new GetAssignmentCommand({ AssignmentId: held.AssignmentId }))).rejects.toMatchObject({ name: 'RequestError' });
    expect(fake.mturk.accept(hitId, 'A1HOLDER').AssignmentId).not.toBe(held.AssignmentId);
  });
});

describe('hitloop fake mturk', () => {
  it('starts the local MTurk by hand, prints where it is, answers the SDK and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'cli', 'main.ts'), 'fake', 'mturk', '--port', '0', '--balance', '42', '--access-key', KEY.accessKeyId], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /local MTurk at (http:\/\/\S+)/.exec(out);
          if (match) resolve(match[1]!);
        });
        child.once('exit', () => reject(new Error(`hitloop fake mturk exited: ${out}`)));
      });
      expect(out).toContain(`HITLOOP_MTURK_ENDPOINT=${url}`);
      const mturk = new MTurkClient({ region: 'us-east-1', endpoint: url, credentials: KEY, maxAttempts: 1 });
      expect((await mturk.send(new GetAccountBalanceCommand({}))).AvailableBalance).toBe('42.00');
      mturk.destroy();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

/**
 * scripts/test always provides boto3 (scripts/boto3-venv, HITLOOP_BOTO3_PYTHON), so under it this
 * runs; a bare `npx vitest` runs it when the system python3 has boto3.
 */
const BOTO3_PYTHON = process.env.HITLOOP_BOTO3_PYTHON ?? 'python3';
const hasBoto3 = ((): boolean => {
  if (process.env.HITLOOP_BOTO3_PYTHON) return true;
  try {
    execFileSync(BOTO3_PYTHON, ['-c', 'import boto3'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasBoto3)('local MTurk through boto3 (a second official client)', () => {
  it('answers boto3 with the same shapes: balance, HIT type, HIT, and a RequestError for a repeated token', async () => {
    const script = `
import json, sys, boto3
from botocore.exceptions import ClientError
c = boto3.client('mturk', region_name='us-east-1', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key='x')
out = {'balance': c.get_account_balance()['AvailableBalance']}
t = c.create_hit_type(Title='t', Description='d', Reward='0.10', AssignmentDurationInSeconds=60)['HITTypeId']
q = '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"><ExternalURL>http://127.0.0.1:9/task/r</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>'
hit = c.create_hit_with_hit_type(HITTypeId=t, MaxAssignments=1, LifetimeInSeconds=60, Question=q, UniqueRequestToken='boto3-token')['HIT']
out['status'] = hit['HITStatus']
out['expiration_is_datetime'] = hasattr(hit['Expiration'], 'year')
try:
    c.create_hit_with_hit_type(HITTypeId=t, MaxAssignments=1, LifetimeInSeconds=60, Question=q, UniqueRequestToken='boto3-token')
except ClientError as e:
    out['repeat'] = [e.response['Error']['Code'], e.response.get('TurkErrorCode') or e.response['Error'].get('TurkErrorCode')]
print(json.dumps(out))
`;
    // Not execFileSync: the local MTurk answers from this process's event loop.
    const { stdout } = await promisify(execFile)(BOTO3_PYTHON, ['-c', script, fake.url, KEY.accessKeyId], { encoding: 'utf8' });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out).toEqual({ balance: expect.any(String), status: 'Assignable', expiration_is_datetime: true, repeat: ['RequestError', expect.anything()] });
  });
});
