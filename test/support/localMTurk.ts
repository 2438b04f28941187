/**
 * The local MTurk for tests: started on a free port, with the process pointed at it
 * (HITLOOP_MTURK_ENDPOINT and AWS credentials in the environment, as the AWS default chain reads
 * them). Workers and the gateway run in the test process, so they see the same environment.
 */
import { startFakeMTurk, type FakeMTurkServer, type FakeMTurkServerOptions } from '../../fakes/mturk/server.ts';
import { MTURK_ENDPOINT_ENV, resetMTurkClients } from '../../providers/mturk/client.ts';
import { clearMTurkIdentityCache } from '../../providers/mturk/identity.ts';

export const TEST_AWS_KEY = { accessKeyId: 'AKIDHITLOOPTESTKEY01', secretAccessKey: 'hitloop-test-secret' };

export async function startLocalMTurk(options: FakeMTurkServerOptions = {}): Promise<FakeMTurkServer> {
  const fake = await startFakeMTurk({ accessKeyIds: [TEST_AWS_KEY.accessKeyId], ...options });
  useAwsKey(TEST_AWS_KEY.accessKeyId, TEST_AWS_KEY.secretAccessKey);
  process.env[MTURK_ENDPOINT_ENV] = fake.url;
  return fake;
}

/** Credentials for the next MTurk clients (the AWS default chain reads the environment first). */
export function useAwsKey(accessKeyId: string, secretAccessKey: string): void {
  process.env.AWS_ACCESS_KEY_ID = accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = secretAccessKey;
  resetMTurkClients();
  clearMTurkIdentityCache();
}

/** A ready-to-use `provider:` of a run config on the local MTurk. */
export const MTURK_SANDBOX = { type: 'mturk', sandbox: true } as const;
