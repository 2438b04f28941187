/**
 * The Prolific client reads whole lists: Prolific pages them (`_links.next.href`), and a poll that
 * read only the first page of a big study's submissions would miss who returned. A next page off the
 * API's own address is refused, so the token is never sent anywhere else.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProlific, startFakeProlific } from '../fakes/prolific/server.ts';
import { ProlificApiError, ProlificClient } from '../providers/prolific/client.ts';
import { prolificSettings } from '../providers/prolific/settings.ts';

describe('Prolific client lists', () => {
  let fake: FakeProlific;
  let client: ProlificClient;

  beforeAll(async () => {
    fake = await startFakeProlific({ pageSize: 2 });
    client = new ProlificClient(prolificSettings({ prolificUrl: fake.url, prolificToken: fake.token }), { backoffMs: 5 });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('follows every page of a list', async () => {
    const targets = Array.from({ length: 5 }, (_, i) => `https://example.org/hook/${i}`);
    for (const target of targets) await client.subscribe(fake.workspaceId, 'submission.status.change', target);
    const before = fake.requests.length;
    const hooks = await client.hooks();
    expect(hooks.map((h) => h.target_url)).toEqual(targets);
    // Five items, two per page: three pages asked for.
    expect(fake.requests.slice(before).filter((r) => r.startsWith('GET /api/v1/hooks/subscriptions/'))).toHaveLength(3);
  });

  it('follows the pages of a list asked with a query', async () => {
    const names = ['a', 'b', 'c'].map((n) => `group ${n}`);
    for (const name of names) await client.createParticipantGroup(name, fake.workspaceId, 'test');
    const groups = await client.participantGroups(fake.workspaceId);
    expect(groups.map((g) => g.name).sort()).toEqual(names);
  });

  it('refuses a next page outside the API, without sending the token there', async () => {
    let tokenSeenElsewhere = false;
    const elsewhere = http.createServer((req, res) => {
      if (req.headers.authorization) tokenSeenElsewhere = true;
      res.end('{}');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    const api = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ results: [], _links: { next: { href: `${elsewhereUrl}/api/v1/hooks/subscriptions/?page=2` } } }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const lying = new ProlificClient(prolificSettings({ prolificUrl: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, prolificToken: 't' }));
      const failure = await lying.hooks().catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ProlificApiError);
      expect((failure as Error).message).toMatch(/named a next page outside/);
      expect(tokenSeenElsewhere).toBe(false);
    } finally {
      await new Promise((resolve) => api.close(resolve));
      await new Promise((resolve) => elsewhere.close(resolve));
    }
  });
});
