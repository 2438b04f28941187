/**
 * The OpenAPI 3.1 document of the JSON API, generated from the route table and its zod schemas
 * (`z.toJSONSchema`), so the document says exactly what the server validates and answers.
 */
import { z } from 'zod';
import { STORABLE_TEXT_PATTERN } from '../model/storableJson.ts';
import { CSRF_HEADER, SESSION_COOKIE } from './auth.ts';
import { ErrorSchema } from './schemas.ts';
import type { Route } from './routes.ts';

type JsonSchema = Record<string, unknown>;

/**
 * Every string the API reads (path, query, body values and keys) is refused when it holds what the
 * databases cannot store (api/errors.ts `unstorableInput`), so the document says so on each: a
 * `pattern` without NUL, or beside a schema's own pattern an `allOf` one (enums are exact already);
 * lone surrogates are ruled out once for all, in the description (model/storableJson.ts says why).
 */
function storableStrings(ctx: { jsonSchema: JsonSchema }): void {
  const schema = ctx.jsonSchema;
  if (schema.type !== 'string' || schema.enum !== undefined || schema.const !== undefined) return;
  const allOf = (schema.allOf as JsonSchema[] | undefined) ?? [];
  // zod calls this again for a schema used in several places (and for its .optional()): once is enough.
  if (schema.pattern === STORABLE_TEXT_PATTERN || allOf.some((part) => part.pattern === STORABLE_TEXT_PATTERN)) return;
  if (schema.pattern === undefined) schema.pattern = STORABLE_TEXT_PATTERN;
  else schema.allOf = [...allOf, { pattern: STORABLE_TEXT_PATTERN }];
}

/** Schemas with a `meta({ id })` become components, referenced from everywhere they are used. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output', components: Record<string, JsonSchema>): JsonSchema {
  const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12', ...(io === 'input' ? { override: storableStrings } : {}) });
  // Schemas named with meta({ id }) come out in $defs: they live among the document's components.
  const json = JSON.parse(JSON.stringify(generated).replaceAll('"#/$defs/', '"#/components/schemas/')) as JsonSchema & {
    $defs?: Record<string, JsonSchema>;
    $schema?: string;
  };
  const { $defs, $schema: _schema, ...rest } = json;
  for (const [id, def] of Object.entries($defs ?? {})) components[id] = def;
  return rest;
}

const errorResponse = (description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** Password attempts (a login, a Bearer header) over the limits of api/loginLimits.ts. */
const tooManyAttempts: Record<string, unknown> = {
  ...errorResponse('too many wrong passwords from this address or on the account; nothing was checked or changed'),
  headers: { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } } },
};

export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const components: Record<string, JsonSchema> = {};
  schemaOf(ErrorSchema, 'output', components);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters: unknown[] = [];
    const pathSchemas = (route.params ? schemaOf(route.params, 'input', components).properties : undefined) as Record<string, JsonSchema> | undefined;
    for (const name of route.path.match(/\{(\w+)\}/g) ?? []) {
      const param = name.slice(1, -1);
      parameters.push({ name: param, in: 'path', required: true, schema: pathSchemas?.[param] ?? { type: 'string', pattern: STORABLE_TEXT_PATTERN } });
    }
    if (route.query) {
      const q = schemaOf(route.query, 'input', components) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema });
      }
    }
    const success: Record<string, unknown> = route.response
      ? { description: 'success', content: { 'application/json': { schema: schemaOf(route.response, 'output', components) } } }
      : { description: 'a download', content: Object.fromEntries((route.produces ?? []).map((type) => [type, { schema: { type: 'string' } }])) };
    const responses: Record<string, unknown> = {
      [String(route.status ?? 200)]: success,
      400: errorResponse('the request is not valid; nothing was changed'),
      500: errorResponse('the server failed; nothing was acknowledged'),
    };
    if (route.auth) {
      responses[401] = errorResponse('no valid session or token');
      if (route.method !== 'GET') responses[403] = errorResponse('a session without its CSRF token');
    } else responses[401] = errorResponse('wrong password');
    responses[429] = tooManyAttempts;
    if (route.path.includes('{')) responses[404] = errorResponse('no such run or qualification');
    if (route.method !== 'GET') responses[409] = errorResponse('refused as asked (the message says why); nothing was changed');
    if (route.body) {
      responses[413] = errorResponse('the request body is too large; nothing was changed');
      responses[415] = errorResponse('the request body is not sent as application/json; nothing was changed');
    }
    responses[503] = errorResponse('the console is off: no operator password is configured');
    const operation: Record<string, unknown> = {
      summary: route.summary,
      operationId: `${route.method.toLowerCase()}${route.path.replace('/api/v1', '').replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(parameters.length ? { parameters } : {}),
      // An empty body is read as {} (api/server.ts), so a body is optional exactly where {} is valid.
      ...(route.body ? { requestBody: { required: !route.body.safeParse({}).success, content: { 'application/json': { schema: schemaOf(route.body, 'input', components) } } } } : {}),
      responses,
      ...(route.auth ? {} : { security: [] }),
    };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  paths['/api/v1/openapi.json'] = {
    get: {
      summary: 'This document',
      operationId: 'getOpenapi',
      responses: { 200: { description: 'the OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errorResponse('no valid session or token'), 429: tooManyAttempts },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'hitloop operator API',
      version: '1',
      description:
        'What the command line does, over HTTP: runs, caps, shutdown, review, bonuses, qualifications, blocks, export. ' +
        `Authenticate with \`Authorization: Bearer <operator password>\`, or log in (POST /api/v1/session) for the ${SESSION_COOKIE} cookie; ` +
        `with the cookie, every change also carries the ${CSRF_HEADER} header. Every error answers {code, message}. ` +
        'Strings are well-formed Unicode without NUL (U+0000), as in I-JSON (RFC 7493): the databases cannot store the others, so a request holding one is refused with 400.',
    },
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the operator password' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}
