/**
 * model/storableJson.ts: what the databases store exactly is accepted (as the very object given),
 * everything else is refused with the path of the first offending place; and gateway/originPolicy.ts.
 */
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { originPolicy } from '../gateway/originPolicy.ts';
import { MAX_JSON_DEPTH, STORABLE_TEXT_PATTERN, findUnstorable, storableJsonObject, storableString, unstorableText } from '../model/storableJson.ts';

describe('storable strings and JSON', () => {
  it('refuses NUL and lone surrogates anywhere in a string, accepts every well-formed string without NUL', () => {
    for (const bad of ['\u0000', 'a\u0000', '\ud800', 'x\udbff', '\udc00', '\udfffy', '\udc00\ud800']) expect(unstorableText(bad)).not.toBeNull();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(unstorableText(s)).toEqual(s.includes('\u0000') ? expect.any(String) : null);
      }),
      { seed: 15, numRuns: 500 },
    );
    expect(storableString().safeParse('ok 😀').success).toBe(true);
    expect(storableString().safeParse('\ud83d').success).toBe(false);
  });

  it('STORABLE_TEXT_PATTERN (the OpenAPI document\'s strings) matches exactly the well-formed strings unstorableText accepts', () => {
    const pattern = new RegExp(STORABLE_TEXT_PATTERN);
    const pieces = fc.array(fc.constantFrom('\u0000', '😀', 'a', 'é', '\n', '\u0001'), { maxLength: 8 }).map((p) => p.join(''));
    fc.assert(
      fc.property(fc.oneof(pieces, fc.string({ unit: 'grapheme' })), (s) => {
        expect(pattern.test(s), JSON.stringify(s)).toBe(unstorableText(s) === null);
      }),
      { seed: 15, numRuns: 1000 },
    );
  });

  it('accepted objects are the very object given and survive a JSON round trip unchanged; keys like __proto__ are data', () => {
    const value = JSON.parse('{"__proto__":{"x":1},"constructor":[1],"toString":"t","a":{"__proto__":null}}') as Record<string, unknown>;
    const parsed = storableJsonObject().parse(value);
    expect(parsed).toBe(value);
    expect(Object.keys(parsed)).toEqual(['__proto__', 'constructor', 'toString', 'a']);
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ stringUnit: 'binary' })), (obj) => {
        const result = storableJsonObject().safeParse(obj);
        if (result.success) expect(JSON.parse(JSON.stringify(result.data))).toStrictEqual(JSON.parse(JSON.stringify(obj)));
        else expect(findUnstorable(obj)).not.toBeNull();
      }),
      { seed: 15, numRuns: 300 },
    );
  });

  it('names the first offending place: a value, a key, a number out of range, nesting too deep', () => {
    expect(findUnstorable({ a: [1, { b: 'x\u0000' }] })).toMatchObject({ path: ['a', 1, 'b'] });
    expect(findUnstorable({ a: { 'k\ud800': 1 } })).toMatchObject({ path: ['a', 'k\ud800'], message: expect.stringContaining('key') });
    expect(findUnstorable({ n: Number.POSITIVE_INFINITY })).toMatchObject({ path: ['n'], message: expect.stringContaining('finite') });
    let deep: unknown = 0;
    for (let i = 0; i < MAX_JSON_DEPTH + 1; i++) deep = [deep];
    expect(findUnstorable({ deep })?.message).toContain('deeper');
    const issues = storableJsonObject().safeParse({ list: ['ok', '\udc00'] }).error?.issues;
    expect(issues?.[0]?.path).toEqual(['list', 1]);
  });
});

describe('WebSocket origin policy', () => {
  const request = (origin: string | undefined, host = 'gw.example:3000'): IncomingMessage =>
    ({ headers: { host, ...(origin === undefined ? {} : { origin }) } }) as IncomingMessage;

  it('accepts the gateway origin, configured origins and no Origin; refuses others and opaque origins', () => {
    const policy = originPolicy(['https://Tasks.Example.org']);
    expect(policy.allows(request(undefined))).toBe(true);
    expect(policy.allows(request('http://gw.example:3000'))).toBe(true);
    expect(policy.allows(request('https://gw.example:3000'))).toBe(true);
    expect(policy.allows(request('https://tasks.example.org'))).toBe(true);
    expect(policy.allows(request('https://evil.example'))).toBe(false);
    expect(policy.allows(request('http://gw.example:3001'))).toBe(false);
    expect(policy.allows(request('null'))).toBe(false);
    expect(originPolicy(['*']).allows(request('https://anywhere.example'))).toBe(true);
    expect(() => originPolicy(['not an origin'])).toThrow(/HITLOOP_GATEWAY_ALLOWED_ORIGINS/);
  });
});
