// The OpenAPI 3.1 document of the embedded ITSM API, served at GET /openapi.json. Built in code
// from the same tables the routes use (the object types and their collection paths, the zod
// schemas of what the API returns and accepts, the error codes), so it cannot drift from them;
// test/docs/openapi.test.ts holds its set of (method, path) pairs equal to the routes the app
// registers. Runtime-neutral (zod only): Node and the Worker serve it alike.
import { z } from 'zod';
import { COLLECTION_PATHS, UNIFIED_TYPES, type UnifiedType } from '../itsm/fields.js';
import {
  ERROR_CODES,
  errorBodySchema,
  eventListSchema,
  eventSchema,
  genericObjectSchema,
  genericWriteSchema,
  latestCursorSchema,
  objectListSchema,
  READ_SCHEMAS,
  userSchema,
  WRITE_SCHEMAS,
  webhookSchema,
} from '../itsm/schemas.js';

export type JsonObject = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, JsonObject>>;
  components: {
    schemas: Record<string, JsonObject>;
    securitySchemes?: Record<string, JsonObject>;
    parameters?: Record<string, JsonObject>;
  };
  [extension: string]: unknown;
}

export interface ItsmOpenApiOptions {
  /** Whether the server was started with fault injection, which adds GET /_faults. */
  faults?: boolean;
  /** Whether the server serves a ServiceNow instance, which adds POST /servicenow/push. */
  servicenow?: boolean;
}

/** A zod schema as a JSON Schema for OpenAPI 3.1 (its dialect is draft 2020-12). */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  });
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const capitalised = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
const article = (noun: string) => `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;
const json = (schema: JsonObject) => ({ 'application/json': { schema } });

/** The error answers a route can give, each with the Kloudless error body. */
function errors(...statuses: number[]): Record<string, JsonObject> {
  const out: Record<string, JsonObject> = {};
  for (const status of statuses) {
    const code = Object.entries(ERROR_CODES).find(([, s]) => s === status)?.[0] ?? 'error';
    out[String(status)] = { description: code, content: json(ref('Error')) };
  }
  return out;
}

const pathParam = (name: string, description: string, schema: JsonObject = { type: 'string' }) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
});

const ACCOUNT = pathParam(
  'account',
  'the account id (a positive whole number), or `me` for the account of a Bearer token',
  { type: 'string', pattern: '^([1-9][0-9]*|me)$' },
);
const PAGE_PARAMS = [
  {
    name: 'page_size',
    in: 'query',
    description: 'objects per page, 1..1000 (default 10)',
    schema: { type: 'integer', minimum: 1, maximum: 1000 },
  },
  {
    name: 'page',
    in: 'query',
    description: 'page number, from 1 (default 1)',
    schema: { type: 'integer', minimum: 1 },
  },
];
const RAW_TYPE = {
  name: 'raw_type',
  in: 'query',
  required: true,
  description: 'the upstream table of the generic object (`sys_user`, `cmdb_ci`, ...)',
  schema: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,80}$' },
};
const RAW_DATA = {
  name: 'X-Kloudless-Raw-Data',
  in: 'header',
  description: '`true`: include `raw`, the upstream (ServiceNow-shaped) record',
  schema: { type: 'string', enum: ['true', 'false'] },
};
const AS_USER = {
  name: 'X-Kloudless-As-User',
  in: 'header',
  description: 'the user id recorded as the `user_id` of the events this write causes',
  schema: { type: 'string' },
};
const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  description:
    'the same key with the same body returns the first answer again (`Idempotent-Replayed: true`) for 24 hours; with another body, a 409',
  schema: { type: 'string', minLength: 1 },
};

const ACCOUNT_ERRORS = [400, 401, 403, 404];

function objectPaths(type: UnifiedType | 'object'): Record<string, Record<string, JsonObject>> {
  const name = type === 'object' ? 'GenericObject' : capitalised(type);
  const plural = COLLECTION_PATHS[type].plural;
  const singular = COLLECTION_PATHS[type].singular;
  const collection = `/v1/accounts/{account}/itsm/${plural}`;
  const what = type === 'object' ? 'generic objects' : plural;
  const query = type === 'object' ? [RAW_TYPE] : [];
  const body = type === 'object' ? ref('GenericObjectWrite') : ref(`${name}Write`);
  const tags = [type === 'object' ? 'generic objects' : plural];
  const id = pathParam('id', `the ${type === 'object' ? 'generic object' : type}'s id`);
  return {
    [collection]: {
      get: {
        operationId: `list${capitalised(plural)}`,
        tags,
        summary: `List ${what}, oldest first`,
        parameters: [ACCOUNT, ...query, ...PAGE_PARAMS, RAW_DATA],
        responses: {
          200: { description: `a page of ${what}`, content: json(ref(`${name}List`)) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
      post: {
        operationId: `create${name}`,
        tags,
        summary: `Create ${article(type === 'object' ? 'generic object' : type)}`,
        description: `Also accepted at the singular path \`.../itsm/${singular}\`. Every create appends an \`add\` event.`,
        parameters: [ACCOUNT, ...query, IDEMPOTENCY_KEY, AS_USER, RAW_DATA],
        requestBody: { required: true, content: json(body) },
        responses: {
          201: { description: 'the new object', content: json(ref(name)) },
          ...errors(...ACCOUNT_ERRORS, 409, 413),
        },
      },
    },
    [`${collection}/{id}`]: {
      get: {
        operationId: `get${name}`,
        tags,
        summary: `Get one ${type === 'object' ? 'generic object' : type}`,
        parameters: [ACCOUNT, id, ...query, RAW_DATA],
        responses: {
          200: { description: 'the object', content: json(ref(name)) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
      patch: {
        operationId: `update${name}`,
        tags,
        summary: `Update some fields of ${article(type === 'object' ? 'generic object' : type)}`,
        description: 'Every update appends an `update` event carrying `previous_metadata`.',
        parameters: [ACCOUNT, id, ...query, IDEMPOTENCY_KEY, AS_USER, RAW_DATA],
        requestBody: { required: true, content: json(body) },
        responses: {
          200: { description: 'the updated object', content: json(ref(name)) },
          ...errors(...ACCOUNT_ERRORS, 409, 413),
        },
      },
      delete: {
        operationId: `delete${name}`,
        tags,
        summary: `Delete ${article(type === 'object' ? 'generic object' : type)}`,
        description: 'Appends a `delete` event.',
        parameters: [ACCOUNT, id, ...query, IDEMPOTENCY_KEY, AS_USER],
        responses: { 204: { description: 'deleted' }, ...errors(...ACCOUNT_ERRORS, 409) },
      },
    },
  };
}

function componentSchemas(): Record<string, JsonObject> {
  const schemas: Record<string, JsonObject> = {
    Error: {
      ...schemaOf(errorBodySchema, 'output'),
      description: 'every error: Content-Type exactly application/json',
    },
    User: schemaOf(userSchema, 'output'),
    UserList: schemaOf(objectListSchema(userSchema), 'output'),
    Event: schemaOf(eventSchema, 'output'),
    EventList: schemaOf(eventListSchema, 'output'),
    LatestCursor: schemaOf(latestCursorSchema, 'output'),
    Webhook: schemaOf(webhookSchema, 'output'),
    WebhookList: schemaOf(objectListSchema(webhookSchema), 'output'),
    WebhookRegistration: {
      type: 'object',
      required: ['url'],
      properties: { url: { type: 'string', description: 'an http(s) URL' } },
      additionalProperties: false,
    },
    GenericObject: schemaOf(genericObjectSchema, 'output'),
    GenericObjectList: schemaOf(objectListSchema(genericObjectSchema), 'output'),
    GenericObjectWrite: {
      ...schemaOf(genericWriteSchema, 'input'),
      description: 'the upstream record itself (any JSON object)',
    },
    Health: {
      type: 'object',
      required: ['ok', 'service'],
      properties: {
        ok: { type: 'boolean' },
        service: { type: 'string', const: 'itsm-api' },
        app_id: { type: 'string' },
      },
    },
    Account: {
      type: 'object',
      description: 'the Kloudless account object of a ServiceNow connection',
      required: ['id', 'account', 'service', 'active', 'type', 'api'],
      properties: {
        id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
        account: { type: 'string' },
        service: { type: 'string', const: 'servicenow' },
        service_name: { type: 'string' },
        active: { type: 'boolean' },
        admin: { type: 'boolean' },
        apis: { type: 'array', items: { type: 'string' } },
        effective_scope: { type: 'string' },
        created: { type: 'string' },
        modified: { type: 'string' },
        type: { type: 'string', const: 'account' },
        api: { type: 'string', const: 'meta' },
      },
    },
    TokenInfo: {
      type: 'object',
      description: 'what a Bearer token reaches',
      required: ['client_id', 'account_id', 'scope', 'token_type'],
      properties: {
        client_id: { type: 'string', description: 'the application id' },
        account_id: { type: 'integer', minimum: 1 },
        scope: { type: 'string' },
        token_type: { type: 'string', const: 'Bearer' },
      },
    },
    OpenApi: { type: 'object', description: 'an OpenAPI 3.1 document' },
    Faults: {
      type: 'object',
      description: 'the fault injector: its seed, rates and counters by kind',
      properties: { seed: { type: 'integer' }, rates: { type: 'object' } },
    },
  };
  for (const type of UNIFIED_TYPES) {
    const name = capitalised(type);
    schemas[name] = schemaOf(READ_SCHEMAS[type], 'output');
    schemas[`${name}List`] = schemaOf(objectListSchema(READ_SCHEMAS[type]), 'output');
    schemas[`${name}Write`] = schemaOf(WRITE_SCHEMAS[type], 'input');
  }
  return schemas;
}

/** The OpenAPI 3.1 document of the embedded ITSM API. */
export function itsmOpenApi(options: ItsmOpenApiOptions = {}): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {
    '/healthz': {
      get: {
        operationId: 'itsmHealth',
        tags: ['service'],
        summary: 'Liveness probe',
        security: [],
        responses: { 200: { description: 'the server is up', content: json(ref('Health')) } },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'itsmOpenApi',
        tags: ['service'],
        summary: 'This API as an OpenAPI 3.1 document',
        security: [],
        responses: { 200: { description: 'OpenAPI 3.1', content: json(ref('OpenApi')) } },
      },
    },
  };
  for (const type of [...UNIFIED_TYPES, 'object'] as const) Object.assign(paths, objectPaths(type));
  Object.assign(paths, {
    '/v1/accounts/{account}': {
      get: {
        operationId: 'getAccount',
        tags: ['accounts'],
        summary: 'The account (`me`: the account of the Bearer token)',
        description:
          'Kept for the official Kloudless SDKs (`getDetail`, `get_verified_account`). Accounts are not stored: every valid id is an active ServiceNow connection of this application.',
        parameters: [ACCOUNT],
        responses: {
          200: { description: 'the account', content: json(ref('Account')) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
    },
    '/v1/oauth/token': {
      get: {
        operationId: 'verifyToken',
        tags: ['accounts'],
        summary: 'What the Bearer token of the request reaches',
        description:
          'Token verification as the official Kloudless SDKs call it (`verifyToken`, `verify_token`): compare `client_id` with your application id. The application API key is a 400 (it is no token); an unknown token a 401.',
        security: [{ itsmBearer: [] }],
        responses: {
          200: { description: 'the token', content: json(ref('TokenInfo')) },
          ...errors(400, 401),
        },
      },
    },
    '/v1/accounts/{account}/events': {
      get: {
        operationId: 'listEvents',
        tags: ['events'],
        summary: 'The activity after a cursor, oldest first',
        description:
          'Without a cursor, from the oldest retained event. A cursor older than the retained log, or one this server never issued, is a 400: never a silent gap.',
        parameters: [
          ACCOUNT,
          {
            name: 'cursor',
            in: 'query',
            description: 'an opaque cursor from a previous page or from events/latest',
            schema: { type: 'string' },
          },
          {
            name: 'page_size',
            in: 'query',
            description: 'events per page, 1..1000 (default 100)',
            schema: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        ],
        responses: {
          200: { description: 'a page of events', content: json(ref('EventList')) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
    },
    '/v1/accounts/{account}/events/latest': {
      get: {
        operationId: 'latestEventCursor',
        tags: ['events'],
        summary: 'The cursor of the newest event: start reading from now',
        parameters: [ACCOUNT],
        responses: {
          200: { description: 'the cursor', content: json(ref('LatestCursor')) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
    },
    '/v1/accounts/{account}/team/users': {
      get: {
        operationId: 'listUsers',
        tags: ['team'],
        summary: "The account's team users (its sys_user records)",
        parameters: [ACCOUNT, ...PAGE_PARAMS],
        responses: {
          200: { description: 'a page of users', content: json(ref('UserList')) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
    },
    '/v1/accounts/{account}/team/users/{user}': {
      get: {
        operationId: 'getUser',
        tags: ['team'],
        summary: 'One team user',
        parameters: [ACCOUNT, pathParam('user', 'the user id: `u` + Base64 of the sys_id')],
        responses: {
          200: { description: 'the user', content: json(ref('User')) },
          ...errors(...ACCOUNT_ERRORS),
        },
      },
    },
    '/v1/applications/{app_id}/webhooks': {
      get: {
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: "The application's webhooks (application API key only)",
        parameters: [pathParam('app_id', 'the application id')],
        responses: {
          200: { description: 'the webhooks', content: json(ref('WebhookList')) },
          ...errors(401, 403, 404),
        },
      },
      post: {
        operationId: 'registerWebhook',
        tags: ['webhooks'],
        summary: 'Register a webhook, after the handshake',
        description:
          'Before saving the URL the server POSTs it an empty signed body; the URL is saved only if it answers 200 with the application id as plain text.',
        parameters: [pathParam('app_id', 'the application id')],
        requestBody: { required: true, content: json(ref('WebhookRegistration')) },
        responses: {
          200: { description: 'already registered', content: json(ref('Webhook')) },
          201: { description: 'registered', content: json(ref('Webhook')) },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/v1/applications/{app_id}/webhooks/{id}': {
      get: {
        operationId: 'getWebhook',
        tags: ['webhooks'],
        summary: 'One webhook',
        parameters: [pathParam('app_id', 'the application id'), pathParam('id', 'the webhook id')],
        responses: {
          200: { description: 'the webhook', content: json(ref('Webhook')) },
          ...errors(401, 403, 404),
        },
      },
      delete: {
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        summary: 'Remove a webhook',
        parameters: [pathParam('app_id', 'the application id'), pathParam('id', 'the webhook id')],
        responses: { 204: { description: 'removed' }, ...errors(401, 403, 404) },
      },
    },
  });
  if (options.faults) {
    paths['/_faults'] = {
      get: {
        operationId: 'faultCounters',
        tags: ['service'],
        summary: 'Fault injection settings and counters (a testing aid; application API key)',
        security: [{ itsmApiKey: [] }],
        responses: {
          200: { description: 'seed, rates, counters', content: json(ref('Faults')) },
          ...errors(401, 403),
        },
      },
    };
  }
  if (options.servicenow) {
    paths['/servicenow/push'] = {
      post: {
        operationId: 'pushServiceNowChange',
        tags: ['service'],
        summary:
          'A ServiceNow Business Rule names a record it changed; the connector reads it at once (Authorization: Bearer <push secret>)',
        security: [{ servicenowPush: [] }],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['table', 'sys_id'],
                properties: {
                  table: { type: 'string', description: 'the table, e.g. incident' },
                  sys_id: { type: 'string', pattern: '^[0-9a-f]{32}$' },
                },
              },
            },
          },
        },
        responses: {
          200: {
            description: 'read; `events` is how many events the read appended (0: nothing new)',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['table', 'sys_id', 'events'],
                  properties: {
                    table: { type: 'string' },
                    sys_id: { type: 'string' },
                    events: { type: 'integer', minimum: 0 },
                  },
                },
              },
            },
          },
          ...errors(400, 401, 404),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'itsm-rules embedded ITSM API',
      version: '1',
      description:
        'The Kloudless-style ITSM API as served by `itsm-rules itsm-server` (and under /v1 of `itsm-rules serve` all-in-one). See docs/api.md.',
    },
    security: [{ itsmApiKey: [] }, { itsmBearer: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        itsmApiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: '`Authorization: APIKey <application key>`: every account',
        },
        itsmBearer: {
          type: 'http',
          scheme: 'bearer',
          description: '`Authorization: Bearer <token>`: the one account the token is bound to',
        },
        ...(options.servicenow && {
          servicenowPush: {
            type: 'http',
            scheme: 'bearer',
            description: '`Authorization: Bearer <push secret>` (--sn-push-secret)',
          },
        }),
      },
    },
  };
}
