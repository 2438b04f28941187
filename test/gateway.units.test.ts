/**
 * The gateway's pure parts, without servers: packet parsing, frames, agent tokens, signed local
 * links, the static-form page's escaping, and the simulator's answers against the form's schema.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { staticFormBlueprint } from '../blueprints/staticForm.ts';
import { renderStaticFormPage } from '../blueprints/staticFormPage.ts';
import { encodeMessage, parseClientPacket } from '../gateway/protocol.ts';
import { TokenSigner } from '../gateway/tokens.ts';
import { identifyWorker } from '../gateway/workerIdentity.ts';
import { registrationUpdateId } from '../gateway/workflowCalls.ts';
import { mockProvider } from '../providers/mock.ts';
import { localProvider, localWorkerLink, localWorkerParams } from '../providers/local.ts';
import { simulatedAnswer } from '../simulate/answers.ts';
import { gatewayWebSocketUrl } from '../simulate/simulate.ts';

describe('packet parsing', () => {
  it('accepts every client packet type in its documented shape', () => {
    const packets = [
      { v: 1, type: 'register', runId: 'r-1', params: { worker_id: 'a' }, registrationKey: 'k' },
      { v: 1, type: 'resume', runId: 'r-1', agentId: 'a1', token: 't.s', lastSeq: 0 },
      { v: 1, type: 'live', actionId: 'x', data: { n: 1 } },
      { v: 1, type: 'submit', submitKey: 's', data: { label: 'positive' } },
      { v: 1, type: 'return' },
      { v: 1, type: 'ack', seq: 3 },
      { v: 1, type: 'heartbeat' },
    ];
    for (const p of packets) expect(parseClientPacket(JSON.stringify(p))).toEqual({ ok: true, packet: p });
  });

  it('answers each kind of bad frame with its error code and a message saying what is wrong', () => {
    expect(parseClientPacket('not json')).toMatchObject({ ok: false, code: 'bad_json' });
    expect(parseClientPacket('[1,2]')).toMatchObject({ ok: false, code: 'bad_packet' });
    expect(parseClientPacket('{"type":"heartbeat"}')).toMatchObject({ ok: false, code: 'unsupported_version', message: expect.stringContaining('missing') });
    expect(parseClientPacket('{"v":1,"type":"toString"}')).toMatchObject({ ok: false, code: 'unknown_type' });
    expect(parseClientPacket('{"v":1,"type":"ack","seq":0}')).toMatchObject({ ok: false, code: 'bad_packet', ref: 'ack', message: expect.stringContaining('seq') });
    expect(parseClientPacket('{"v":1,"type":"ack","seq":1.5}')).toMatchObject({ ok: false, code: 'bad_packet' });
    const tooMany = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`p${i}`, 'x']));
    expect(parseClientPacket(JSON.stringify({ v: 1, type: 'register', runId: 'r', params: tooMany, registrationKey: 'k' }))).toMatchObject({
      ok: false,
      code: 'bad_packet',
    });
    expect(parseClientPacket('{"v":1,"type":"live","actionId":"a7","data":[]}')).toMatchObject({ ok: false, code: 'bad_packet', id: 'a7' });
  });

  it('splices stored payload JSON into message frames without re-encoding it', () => {
    const frame = encodeMessage(7, 'status', '{"status":"in_task"}');
    expect(JSON.parse(frame)).toEqual({ v: 1, type: 'message', seq: 7, kind: 'status', payload: { status: 'in_task' } });
    expect(JSON.parse(encodeMessage(1, 'we"ird', '{}')).kind).toBe('we"ird');
  });
});

describe('agent tokens', () => {
  const signer = new TokenSigner('secret-1');
  const claims = { agentId: 'a1', runId: 'r-1', workerId: 'w-1', assignmentId: 'r-1-a0', unitId: 'r-1-a0-u0' };

  it('verifies its own tokens and refuses altered, foreign and malformed ones', () => {
    const token = signer.sign(claims);
    expect(signer.verify(token)).toEqual(claims);
    expect(new TokenSigner('secret-2').verify(token)).toBeNull();
    const [body, sig] = token.split('.') as [string, string];
    const forgedBody = Buffer.from(JSON.stringify({ t: 1, a: 'a2', r: 'r-1', w: 'w-1', s: 'r-1-a0', u: 'r-1-a0-u0' })).toString('base64url');
    expect(signer.verify(`${forgedBody}.${sig}`)).toBeNull();
    expect(signer.verify(`${body}.${sig.slice(0, -2)}`)).toBeNull();
    expect(signer.verify('')).toBeNull();
    expect(signer.verify('a.b.c')).toBeNull();
    expect(signer.verify(body)).toBeNull();
  });

  it('refuses to work without a secret', () => {
    expect(() => new TokenSigner('')).toThrow(/HITLOOP_SECRET/);
  });
});

describe('worker identity', () => {
  it('local links are signed per run and per worker', async () => {
    const params = localWorkerParams('s3cret', 'r-1', 'alice');
    await expect(identifyWorker(localProvider, { runId: 'r-1', params, secret: 's3cret' })).resolves.toEqual({ ok: true, providerWorkerId: 'alice' });
    await expect(identifyWorker(localProvider, { runId: 'r-2', params, secret: 's3cret' })).resolves.toMatchObject({ ok: false });
    await expect(identifyWorker(localProvider, { runId: 'r-1', params: { ...params, worker: 'bob' }, secret: 's3cret' })).resolves.toMatchObject({ ok: false });
    await expect(identifyWorker(localProvider, { runId: 'r-1', params, secret: 'other' })).resolves.toMatchObject({ ok: false });
    await expect(identifyWorker(localProvider, { runId: 'r-1', params: { worker: 'alice' }, secret: 's3cret' })).resolves.toMatchObject({
      ok: false,
      message: expect.stringContaining('incomplete'),
    });
    const link = new URL(localWorkerLink('http://gw.example:3000/', 's3cret', 'r-1', 'alice'));
    expect(link.pathname).toBe('/task/r-1');
    expect(Object.fromEntries(link.searchParams)).toEqual(params);
    expect(() => localWorkerLink('http://gw', 's', 'r-1', 'bad id')).toThrow(/worker id/);
  });

  it('mock links carry a plain worker_id; other providers must say how to identify workers', async () => {
    await expect(identifyWorker(mockProvider, { runId: 'r', params: { worker_id: 'w1' }, secret: 's' })).resolves.toEqual({ ok: true, providerWorkerId: 'w1' });
    await expect(identifyWorker(mockProvider, { runId: 'r', params: { worker_id: '../x' }, secret: 's' })).resolves.toMatchObject({ ok: false });
    await expect(identifyWorker({ ...mockProvider, type: 'prolific', identifyWorker: undefined }, { runId: 'r', params: { worker_id: 'w1' }, secret: 's' })).resolves.toMatchObject({
      ok: false,
      message: expect.stringContaining('prolific'),
    });
  });

  it('derives one bounded update id per worker and registration key', () => {
    const a = registrationUpdateId({ provider: 'mock', providerWorkerId: 'w', registrationKey: 'k'.repeat(200) });
    expect(a).toBe(registrationUpdateId({ provider: 'mock', providerWorkerId: 'w', registrationKey: 'k'.repeat(200) }));
    expect(a).not.toBe(registrationUpdateId({ provider: 'mock', providerWorkerId: 'w2', registrationKey: 'k'.repeat(200) }));
    expect(a.length).toBeLessThan(50);
  });
});

describe('static-form page', () => {
  it('escapes everything a run config puts on the page', () => {
    const html = renderStaticFormPage({
      runId: 'r-"><script>',
      options: staticFormBlueprint.optionsSchema.parse({
        instructions: 'Be <b>kind</b>\nand quick',
        fields: [{ name: 'label', label: '<img src=x onerror=alert(1)>', type: 'select', options: ['a"b', '<c>'] }],
      }) as never,
    });
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script>');
    expect(html).toContain('Be &lt;b&gt;kind&lt;/b&gt;<br>and quick');
    expect(html).toContain('<option value="a&quot;b">a&quot;b</option>');
    expect(html).toContain('data-run-id="r-&quot;&gt;&lt;script&gt;"');
  });

  it('renders every field type with its input, and a custom template inside the form', () => {
    const html = renderStaticFormPage({
      runId: 'r-1',
      options: staticFormBlueprint.optionsSchema.parse({
        fields: [
          { name: 'a', type: 'text' },
          { name: 'b', type: 'textarea', max_length: 50 },
          { name: 'c', type: 'number' },
          { name: 'd', type: 'checkbox' },
          { name: 'e', type: 'select', options: ['x'] },
        ],
      }) as never,
    });
    expect(html).toMatch(/<input type="text" id="hl-field-a" name="a" data-type="text" data-required="true" maxlength="10000" required>/);
    expect(html).toMatch(/<textarea id="hl-field-b"[^>]*maxlength="50" required>/);
    expect(html).toMatch(/<input type="number" step="any" id="hl-field-c"/);
    expect(html).toMatch(/<input type="checkbox" id="hl-field-d" name="d" data-type="checkbox" data-required="true">/);
    expect(html).toMatch(/<select id="hl-field-e"[^>]*required><option value="">/);

    const dir = mkdtempSync(path.join(tmpdir(), 'hitloop-template-'));
    const file = path.join(dir, 'form.html');
    writeFileSync(file, '<p>Sentence: {{text}}</p><input name="answer" required>');
    const custom = renderStaticFormPage({ runId: 'r-1', options: staticFormBlueprint.optionsSchema.parse({ template: file }) as never });
    expect(custom).toContain('<div id="hl-template"><p>Sentence: {{text}}</p><input name="answer" required></div>');
    expect(custom).toContain('data-template="custom"');
    expect(() => renderStaticFormPage({ runId: 'r', options: { template: path.join(dir, 'missing.html') } as never })).toThrow(/cannot read the static-form template/);
  });
});

describe('static-form page, display and choice fields', () => {
  const options = staticFormBlueprint.optionsSchema.parse({
    fields: [
      { name: 'photo', type: 'image', source: 'image_url', help: 'Look <closely>' },
      { name: 'clip', type: 'audio' },
      { name: 'film', type: 'video' },
      { name: 'page', type: 'link', label: 'Source' },
      { name: 'animal', type: 'radio', options: ['cat', 'dog'] },
      { name: 'tags', type: 'checkboxes', options: ['a', 'b'] },
      { name: 'count', type: 'number', min: 1, max: 5 },
      { name: 'ref', type: 'hidden', value: 'item-{{id}}' },
    ],
  });

  it('renders media as display elements, choices as fieldsets, bounds and help text, the run title', () => {
    const html = renderStaticFormPage({ runId: 'r-1', options: options as never, task: { title: 'Name <the> animal', reward: 0.25, assignmentDurationSeconds: 600 } });
    expect(html).toContain('<title>Name &lt;the&gt; animal</title>');
    expect(html).toContain('<h1 id="hl-title">Name &lt;the&gt; animal</h1>');
    expect(html).toContain('Pays $0.25 per unit');
    expect(html).toMatch(/<img id="hl-field-photo" data-display="image" data-source="image_url" alt="Photo" aria-describedby="hl-field-photo-help">/);
    expect(html).toContain('<p id="hl-field-photo-help" class="hl-help">Look &lt;closely&gt;</p>');
    expect(html).toMatch(/<audio id="hl-field-clip" data-display="audio" data-source="clip" controls/);
    expect(html).toMatch(/<video id="hl-field-film" data-display="video"/);
    expect(html).toMatch(/<a id="hl-field-page" data-display="link" data-source="page" target="_blank" rel="noopener noreferrer">Source<\/a>/);
    expect(html).toMatch(/<fieldset class="hl-field hl-choices" id="hl-field-animal" data-type="radio"[^>]*><legend>Animal/);
    expect(html).toContain('<input type="radio" id="hl-field-animal-0" name="animal" value="cat" required>');
    expect(html).toContain('<input type="checkbox" id="hl-field-tags-1" name="tags" value="b">');
    expect(html).toMatch(/<input type="number" step="any" id="hl-field-count"[^>]* min="1" max="5" required>/);
    expect(html).toContain('data-template-value="item-{{id}}"');
    expect(html).toContain('<link rel="icon" href="/assets/favicon.svg"');
  });

  it('validates submissions: display fields submit nothing, choices must be listed, numbers within bounds', () => {
    const schema = staticFormBlueprint.submissionSchema(options);
    expect(schema.safeParse({ animal: 'dog', tags: ['a'], count: 3, ref: 'item-1' }).success).toBe(true);
    expect(schema.safeParse({ animal: 'dog', tags: ['a'], count: 3, ref: 'item-1', photo: 'x' }).success).toBe(false);
    expect(schema.safeParse({ animal: 'cow', tags: ['a'], count: 3, ref: 'item-1' }).success).toBe(false);
    expect(schema.safeParse({ animal: 'dog', tags: [], count: 3, ref: 'item-1' }).success).toBe(false);
    expect(schema.safeParse({ animal: 'dog', tags: ['a'], count: 6, ref: 'item-1' }).success).toBe(false);
    expect(staticFormBlueprint.optionsSchema.safeParse({ fields: [{ name: 'x', type: 'radio' }] }).success).toBe(false);
    expect(staticFormBlueprint.optionsSchema.safeParse({ fields: [{ name: 'x', type: 'number', min: 5, max: 1 }] }).success).toBe(false);
    const initData = staticFormBlueprint.initData({ assignmentData: { id: '1' }, unitIndex: 0, options });
    let seed = 7;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 20; i++) {
      const answer = simulatedAnswer(initData, random, 'sim');
      expect(schema.safeParse({ ...answer, ref: 'item-1' }).success, JSON.stringify(answer)).toBe(true);
    }
  });
});

describe('simulator', () => {
  it('answers every field type with a value the form accepts', () => {
    const options = staticFormBlueprint.optionsSchema.parse({
      fields: [
        { name: 'a', type: 'text' },
        { name: 'b', type: 'textarea' },
        { name: 'c', type: 'number' },
        { name: 'd', type: 'checkbox' },
        { name: 'e', type: 'select', options: ['x', 'y'] },
        { name: 'f', type: 'text', required: false },
      ],
    });
    const initData = staticFormBlueprint.initData({ assignmentData: { text: 'hi' }, unitIndex: 0, options });
    const schema = staticFormBlueprint.submissionSchema(options);
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 20; i++) expect(schema.safeParse(simulatedAnswer(initData, random, 'sim-1')).success).toBe(true);
    expect(simulatedAnswer({ data: {} }, random, 'sim-1')).toEqual({ answer: 'simulated answer by sim-1' });
  });

  it('finds the WebSocket URL of a gateway from its HTTP URL', () => {
    expect(gatewayWebSocketUrl('http://127.0.0.1:3000')).toBe('ws://127.0.0.1:3000/ws');
    expect(gatewayWebSocketUrl('https://tasks.example.org/base/')).toBe('wss://tasks.example.org/base/ws');
    expect(gatewayWebSocketUrl('ws://h:1/ws')).toBe('ws://h:1/ws');
    expect(() => gatewayWebSocketUrl('ftp://h')).toThrow(/must start with/);
  });
});
