/**
 * The static-form review renderer (blueprints/staticFormReview.ts, through review/reviewView.ts as
 * the API calls it) on hostile and odd units: HTML in keys and values stays plain data; only http(s)
 * URLs (and `data:` media for media fields) survive; long values and every kind of JSON value
 * come back as text, never lost and never a crash. The console drawing these blocks in Chromium:
 * test/browser.reviewHostile.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ReviewBlock } from '../blueprints/types.ts';
import { safeReviewUrl } from '../blueprints/staticFormReview.ts';
import type { TaskRunConfig } from '../config/taskRunConfig.ts';
import { reviewRenderer } from '../review/reviewView.ts';
import type { SubmittedUnit } from '../review/units.ts';

const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '<img src=x onerror="window.__pwned=2">';

function render(fields: unknown[] | undefined, itemData: unknown, data: unknown): ReviewBlock[] {
  const config = { blueprint: { type: 'static-form', ...(fields ? { fields } : { template: '<form></form>' }) } } as unknown as TaskRunConfig;
  const unit = { unitKind: 'normal', assignmentData: itemData, data } as SubmittedUnit;
  const blocks = reviewRenderer(config)(unit);
  expect(blocks).not.toBeNull();
  return blocks!;
}

const block = (blocks: ReviewBlock[], part: 'item' | 'answer', field: string): ReviewBlock => {
  const found = blocks.find((b) => b.part === part && b.field === field);
  expect(found, `${part} ${field} in ${JSON.stringify(blocks).slice(0, 500)}`).toBeDefined();
  return found!;
};

describe('the static-form review renderer on hostile units', () => {
  it('keeps only http(s) URLs, and data: media for media fields', () => {
    const refused = [
      'javascript:window.__pwned=1',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'java\nscript:alert(1)',
      '\u0000javascript:alert(1)',
      'vbscript:msgbox(1)',
      'data:text/html,<script>alert(1)</script>',
      'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
      'data:application/javascript,alert(1)',
      'file:///etc/passwd',
      '//evil.example/x.png',
      '/relative/x.png',
      'blob:https://example.org/1',
      '',
    ];
    for (const url of refused) {
      expect(safeReviewUrl(url, true), url).toBeNull();
      expect(safeReviewUrl(url, false), url).toBeNull();
    }
    for (const notText of [42, null, true, ['https://example.org/a.png'], { href: 'https://example.org' }]) expect(safeReviewUrl(notText, true)).toBeNull();
    expect(safeReviewUrl('data:image/png;base64,iVBORw0KGgo=', true)).toBe('data:image/png;base64,iVBORw0KGgo=');
    expect(safeReviewUrl('data:audio/wav;base64,UklGRg==', true)).toBe('data:audio/wav;base64,UklGRg==');
    // A link opens a page: no data: URL of any kind.
    expect(safeReviewUrl('data:image/png;base64,iVBORw0KGgo=', false)).toBeNull();
    // An attribute-breaking URL is normalised (its quote escaped), never returned as given.
    expect(safeReviewUrl('https://example.org/a.png" onerror="alert(1)', true)).toBe('https://example.org/a.png%22%20onerror=%22alert(1)');
  });

  it('gives media and link fields holding javascript:, data:text/html or non-strings no URL', () => {
    const fields = [
      { name: 'photo', type: 'image', source: 'image' },
      { name: 'clip', type: 'audio', source: 'audio' },
      { name: 'film', type: 'video', source: 'video' },
      { name: 'page', type: 'link', source: 'page' },
      { name: 'label', type: 'text' },
    ];
    const item = { image: 'javascript:window.__pwned=1', audio: 'data:text/html,<script>window.__pwned=1</script>', video: { src: 'https://example.org/v.mp4' }, page: 'data:image/png;base64,AAAA' };
    const blocks = render(fields, item, { label: 'ok' });
    for (const field of ['photo', 'clip', 'film', 'page']) expect(block(blocks, 'item', field)).toMatchObject({ url: null });
  });

  it('passes HTML in keys and values through as plain text, whatever its length', () => {
    const long = `${SCRIPT}${'x'.repeat(100_000)}`;
    // As the database gives it back: JSON.parse makes `__proto__` an own key like any other.
    const item = JSON.parse(`{${JSON.stringify(SCRIPT)}:${JSON.stringify(IMG)},"text":${JSON.stringify(long)},"__proto__":"proto","constructor":"ctor"}`) as Record<string, unknown>;
    const answers = { [IMG]: SCRIPT, comment: long };
    const blocks = render(undefined, item, answers);
    expect(block(blocks, 'item', SCRIPT)).toMatchObject({ type: 'text', label: SCRIPT, value: IMG });
    const textOf = (b: ReviewBlock): unknown => (b.type === 'text' ? b.value : undefined);
    // (Compared as a boolean: a failure's diff of 100,000 characters would drown the report.)
    expect(textOf(block(blocks, 'item', 'text')) === long).toBe(true);
    expect(block(blocks, 'answer', IMG)).toMatchObject({ type: 'text', label: IMG, value: SCRIPT });
    expect(textOf(block(blocks, 'answer', 'comment')) === long).toBe(true);
    // JSON's own `__proto__` key is data like any other: listed, and the renderer's objects are untouched.
    expect(block(blocks, 'item', '__proto__')).toMatchObject({ value: 'proto' });
    expect(block(blocks, 'item', 'constructor')).toMatchObject({ value: 'ctor' });
    expect(({} as Record<string, unknown>).proto).toBeUndefined();
  });

  it('shows numbers, nested objects, arrays, booleans and null as their JSON text, in item and answers', () => {
    const values = { n: 3.5, big: 1e300, neg: -0.001, nested: { a: { b: [1, { c: null }] } }, list: [1, 'two', [3]], yes: true, nothing: null, empty: '' };
    const blocks = render(undefined, values, values);
    for (const part of ['item', 'answer'] as const) {
      for (const [key, value] of Object.entries(values)) {
        expect(block(blocks, part, key), `${part} ${key}`).toMatchObject({ type: 'text', value: typeof value === 'string' ? value : JSON.stringify(value) });
      }
    }
  });

  it('shows an answer whose shape is not its field\'s as text, instead of as an empty or false field', () => {
    const fields = [
      { name: 'animal', type: 'radio', options: ['cat', 'dog'] },
      { name: 'kind', type: 'select', options: ['a', 'b'] },
      { name: 'tags', type: 'checkboxes', options: ['x', 'y'], required: false },
      { name: 'sure', type: 'checkbox', required: false },
      { name: 'count', type: 'number', min: 1, max: 5 },
      { name: 'note', type: 'text' },
    ];
    const answers = { animal: 2, kind: { $gt: '' }, tags: 'x', sure: 'true', count: '4', note: [SCRIPT] };
    const blocks = render(fields, { text: 'item' }, answers);
    expect(block(blocks, 'answer', 'animal')).toMatchObject({ type: 'text', value: '2' });
    expect(block(blocks, 'answer', 'kind')).toMatchObject({ type: 'text', value: '{"$gt":""}' });
    expect(block(blocks, 'answer', 'tags')).toMatchObject({ type: 'text', value: 'x' });
    expect(block(blocks, 'answer', 'sure')).toMatchObject({ type: 'text', value: 'true' });
    expect(block(blocks, 'answer', 'count')).toMatchObject({ type: 'text', value: '4' });
    expect(block(blocks, 'answer', 'note')).toMatchObject({ type: 'text', value: JSON.stringify([SCRIPT]) });
    // Well-shaped answers keep their field's type; a chosen value that is not an option stays visible.
    const ok = render(fields, { text: 'item' }, { animal: SCRIPT, tags: ['y'], sure: true, count: 4 });
    expect(block(ok, 'answer', 'animal')).toMatchObject({ type: 'choice', chosen: [SCRIPT] });
    expect(block(ok, 'answer', 'tags')).toMatchObject({ type: 'choice', chosen: ['y'], multiple: true });
    expect(block(ok, 'answer', 'sure')).toMatchObject({ type: 'checkbox', checked: true });
    expect(block(ok, 'answer', 'count')).toMatchObject({ type: 'number', value: 4, min: 1, max: 5 });
  });

  it('reads fields named like Object\'s own methods from the unit only, never from the prototype', () => {
    const fields = [
      { name: 'constructor', type: 'text', required: false },
      { name: 'toString', type: 'number', required: false },
      { name: 'valueOf', type: 'checkbox', required: false },
      { name: 'hasOwnProperty', type: 'image', source: 'hasOwnProperty' },
    ];
    const blocks = render(fields, {}, {});
    expect(block(blocks, 'answer', 'constructor')).toMatchObject({ type: 'text', value: null });
    expect(block(blocks, 'answer', 'toString')).toMatchObject({ type: 'number', value: null });
    expect(block(blocks, 'answer', 'valueOf')).toMatchObject({ type: 'checkbox', checked: false });
    expect(block(blocks, 'item', 'hasOwnProperty')).toMatchObject({ url: null });
  });

  it('does not crash on a unit whose item or submission is not an object', () => {
    for (const odd of [null, 'text', 42, [1, 2], true]) {
      const blocks = render([{ name: 'label', type: 'text' }], odd, odd);
      expect(blocks).toEqual([{ part: 'answer', field: 'label', label: 'Label', type: 'text', value: null }]);
    }
  });
});
