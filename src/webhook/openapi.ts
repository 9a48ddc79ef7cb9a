// The OpenAPI 3.1 document of the engine's HTTP face (the receiver, run records, health, metrics,
// admin actions), served at GET /openapi.json by `itsm-rules serve` and by the Worker. All-in-one,
// the server also answers the embedded ITSM API's /v1 routes, so the runtime hands that API's
// document in and its paths are added. Built from the engine's own constants (run outcomes, page
// sizes, body limits, error codes); test/docs/openapi.test.ts holds its (method, path) pairs equal
// to the routes the app registers. Runtime-neutral: no Node built-ins.

import { RUN_OUTCOMES } from '../storage/pipeline-port.js';
import { ENGINE_ERROR_CODES } from './errors.js';
import { DEFAULT_RECEIVER_MAX_BODY, RECEIVER_PATH, SIGNATURE_HEADER } from './receiver.js';

type JsonObject = Record<string, unknown>;

/** The parts of another OpenAPI document (the embedded API's) that this one takes in. */
export interface EmbeddedApiDocument {
  security?: unknown[];
  paths: Record<string, Record<string, JsonObject>>;
  components: {
    schemas: Record<string, JsonObject>;
    securitySchemes?: Record<string, JsonObject>;
  };
}

export interface EngineOpenApiOptions {
  /** All-in-one: the embedded API's document; its paths are served by the same server. */
  embeddedApi?: EmbeddedApiDocument;
  /** GET /runs' page size: its default and its largest value. */
  runsPageSize: { default: number; max: number };
  /** The largest body an admin route reads. */
  maxAdminBodyBytes: number;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject) => ({ 'application/json': { schema } });

function errors(...statuses: number[]): Record<string, JsonObject> {
  const out: Record<string, JsonObject> = {};
  for (const status of statuses) {
    const code = Object.entries(ENGINE_ERROR_CODES).find(([, s]) => s === status)?.[0] ?? 'error';
    out[String(status)] = { description: code, content: json(ref('EngineError')) };
  }
  return out;
}

const SCHEMAS: Record<string, JsonObject> = {
  EngineError: {
    type: 'object',
    required: ['error_code', 'message', 'status_code'],
    properties: {
      error_code: { type: 'string', enum: Object.keys(ENGINE_ERROR_CODES) },
      message: { type: 'string' },
      status_code: { type: 'integer' },
    },
  },
  Notification: {
    type: 'object',
    description:
      'a webhook notification; also accepted form-encoded (`account=<id>`). An empty body is the registration handshake.',
    required: ['account'],
    properties: {
      account: { type: 'integer', minimum: 1 },
      subscription: { type: 'integer' },
    },
  },
  Accepted: {
    type: 'object',
    required: ['accepted', 'account'],
    properties: { accepted: { type: 'boolean', const: true }, account: { type: 'integer' } },
  },
  EngineHealth: {
    type: 'object',
    required: ['service'],
    properties: {
      status: {
        type: 'string',
        enum: ['ok', 'degraded'],
        description: '`degraded` names its reasons in `problems`',
      },
      problems: { type: 'array', items: { type: 'string' } },
      ok: { type: 'boolean' },
      service: { type: 'string', const: 'itsm-rules' },
      app_id: { type: 'string' },
      rules: { type: 'integer', description: 'rules loaded' },
      scheduled: { type: 'integer', description: 'scheduled rules loaded' },
      api: { type: 'string', description: 'the ITSM API URL, or `embedded`' },
      queue: { type: 'object', description: 'Node: the drain queue, per account' },
      runtime: { type: 'string', description: '`workers` on Cloudflare Workers' },
    },
  },
  Run: {
    type: 'object',
    description: 'what the engine did with one event, or one object at one schedule tick',
    required: ['id', 'key', 'account', 'event', 'outcome', 'rules', 'summary', 'at', 'detail'],
    properties: {
      id: { type: 'integer' },
      key: { type: 'string', description: 'the plan key: `e:<account>:<event id>` or `s:...`' },
      account: { type: 'integer' },
      event: {
        type: 'object',
        properties: { id: { type: ['string', 'null'] }, type: { type: 'string' } },
      },
      object: {
        type: ['object', 'null'],
        properties: {
          type: { type: 'string' },
          id: { type: 'string' },
          number: {
            type: ['string', 'null'],
            description: 'the number people know it by (INC0010001); null when unknown',
          },
        },
      },
      self_hops: { type: 'integer', minimum: 0 },
      outcome: { type: 'string', enum: [...RUN_OUTCOMES] },
      rule_version: {
        type: ['string', 'null'],
        description:
          'the rule set version that evaluated (hex SHA-256 of its files); null when none did',
      },
      rules: { type: 'array', items: { type: 'string' }, description: 'the rules that matched' },
      summary: { type: 'string' },
      at: { type: 'string', format: 'date-time' },
      detail: {
        type: 'object',
        description: 'every rule looked at with its verdict and reason, and every call made',
      },
    },
  },
  RunList: {
    type: 'object',
    required: ['type', 'count', 'objects', 'next_before', 'next'],
    properties: {
      type: { type: 'string', const: 'run_list' },
      count: { type: 'integer' },
      objects: { type: 'array', items: ref('Run') },
      next_before: { type: ['integer', 'null'] },
      next: { type: ['string', 'null'], description: 'the path of the next page' },
    },
  },
  ScheduleRequest: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rules: {
        type: 'array',
        items: { type: 'string' },
        description:
          'default: every scheduled rule, each run as if due at the tick whatever its schedule',
      },
      at: {
        type: 'string',
        format: 'date-time',
        description: "the tick, which is the rules' `now`; default this minute",
      },
      accounts: {
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        description: 'default: every account the engine knows',
      },
    },
  },
  ScheduleSummary: {
    type: 'object',
    required: ['tick', 'rules', 'accounts', 'objects', 'duplicates', 'outcomes', 'errors', 'notes'],
    properties: {
      tick: { type: 'string' },
      rules: { type: 'array', items: { type: 'string' } },
      accounts: { type: 'array', items: { type: 'integer' } },
      objects: { type: 'integer', description: 'objects evaluated (one run record each)' },
      duplicates: { type: 'integer', description: 'objects that already had a run for the tick' },
      outcomes: {
        type: 'object',
        properties: Object.fromEntries(
          RUN_OUTCOMES.filter((o) => o !== 'parked').map((o) => [o, { type: 'integer' }]),
        ),
      },
      errors: { type: 'array', items: { type: 'string' } },
      notes: { type: 'array', items: { type: 'string' } },
    },
  },
  ReloadResult: {
    type: 'object',
    required: ['ok', 'rules', 'problems'],
    properties: {
      ok: { type: 'boolean' },
      rules: { type: 'integer' },
      problems: { type: 'array', items: { type: 'string' } },
    },
  },
  PreviewRequest: {
    type: 'object',
    required: ['files'],
    additionalProperties: false,
    properties: {
      files: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['path', 'text'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', description: 'the file name (.yaml, .yml or .json)' },
            text: { type: 'string', description: 'the rule file as written' },
          },
        },
        description: 'the candidate rule set, one entry per rule file',
      },
      since: { type: 'string', description: 'how far back: 30m, 12h, 7d (default 7d)' },
      accounts: {
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        description: 'default: every account the engine knows',
      },
    },
  },
  PreviewReport: {
    type: 'object',
    required: ['events', 'evaluated', 'errors', 'rules'],
    properties: {
      events: { type: 'integer' },
      evaluated: { type: 'integer' },
      errors: { type: 'array', items: { type: 'string' } },
      rules: {
        type: 'array',
        items: {
          type: 'object',
          required: ['ruleId', 'in', 'newMatches', 'lostMatches', 'changedCalls', 'unchanged'],
          properties: {
            ruleId: { type: 'string' },
            in: { type: 'string', enum: ['both', 'candidate', 'baseline'] },
            newMatches: { type: 'integer' },
            lostMatches: { type: 'integer' },
            changedCalls: { type: 'integer' },
            unchanged: { type: 'integer' },
            samples: { type: 'object' },
          },
        },
      },
    },
  },
  ParkedObject: {
    type: 'object',
    description:
      "an object whose action keeps failing: its events wait, in order, for a retry, while the account's other objects go on",
    required: [
      'id',
      'account',
      'object',
      'parked_at',
      'attempts',
      'next_retry_at',
      'error',
      'events',
    ],
    properties: {
      id: { type: 'integer', description: 'names it in POST /admin/parked/retry' },
      account: { type: 'integer' },
      object: {
        type: 'object',
        properties: { type: { type: 'string' }, id: { type: 'string' } },
      },
      parked_at: { type: 'string', format: 'date-time' },
      attempts: { type: 'integer', description: 'tries that failed, the first included' },
      next_retry_at: { type: 'string', format: 'date-time' },
      error: { type: 'string', description: 'the last failure' },
      events: { type: 'integer', description: 'events waiting, the failed one first' },
    },
  },
  ParkedList: {
    type: 'object',
    required: ['type', 'count', 'objects'],
    properties: {
      type: { const: 'parked_list' },
      count: { type: 'integer' },
      objects: { type: 'array', items: ref('ParkedObject') },
    },
  },
  ParkedRetryRequest: {
    type: 'object',
    additionalProperties: false,
    description:
      'no body or {}: every parked object; otherwise the objects matching every field given',
    properties: {
      id: { type: 'integer', minimum: 1 },
      account: { type: 'integer', minimum: 1 },
      object_id: { type: 'string', minLength: 1 },
    },
  },
  ParkedRetryResult: {
    type: 'object',
    required: ['retried', 'objects'],
    properties: {
      retried: { type: 'integer', description: 'parked objects made due now' },
      objects: { type: 'array', items: ref('ParkedObject') },
    },
  },
  OpenApi: { type: 'object', description: 'an OpenAPI 3.1 document' },
};

/** The OpenAPI 3.1 document of the engine's HTTP API (plus the embedded API's, all-in-one). */
export function engineOpenApi(options: EngineOpenApiOptions): JsonObject {
  const { runsPageSize, maxAdminBodyBytes: adminLimit } = options;
  const open = [] as const;
  const paths: Record<string, Record<string, JsonObject>> = {
    [RECEIVER_PATH]: {
      post: {
        operationId: 'receiveWebhook',
        tags: ['receiver'],
        summary: 'The webhook receiver: a signed notification, or the registration handshake',
        description: `The signature is checked on the raw bytes before anything is parsed. Bodies over ${DEFAULT_RECEIVER_MAX_BODY} bytes get a 413. The notification is durable (or queued) before the 200.`,
        security: open,
        parameters: [
          {
            name: SIGNATURE_HEADER,
            in: 'header',
            required: true,
            description: 'standard Base64 of HMAC-SHA256(key = the API key, message = the body)',
            schema: { type: 'string' },
          },
        ],
        requestBody: {
          content: {
            ...json(ref('Notification')),
            'application/x-www-form-urlencoded': {
              schema: { type: 'object', properties: { account: { type: 'string' } } },
            },
          },
        },
        responses: {
          200: {
            description: 'accepted; or, for the empty handshake body, the application id',
            content: { ...json(ref('Accepted')), 'text/plain': { schema: { type: 'string' } } },
          },
          ...errors(400, 401, 413, 503),
        },
      },
    },
    '/healthz': {
      get: {
        operationId: 'engineHealth',
        tags: ['service'],
        summary: 'Health: rules loaded, the API in use, the queue',
        security: open,
        responses: {
          200: { description: 'up (`status` ok or degraded)', content: json(ref('EngineHealth')) },
          503: {
            description: 'the database cannot be written',
            content: json(ref('EngineHealth')),
          },
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'engineOpenApi',
        tags: ['service'],
        summary: 'This API as an OpenAPI 3.1 document',
        security: open,
        responses: { 200: { description: 'OpenAPI 3.1', content: json(ref('OpenApi')) } },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        tags: ['service'],
        summary: 'Prometheus metrics',
        responses: {
          200: {
            description: 'the Prometheus text format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...errors(401),
        },
      },
    },
    '/runs': {
      get: {
        operationId: 'listRuns',
        tags: ['runs'],
        summary: 'Run records, newest first: what happened to an event or object, and why',
        parameters: [
          ['account', 'only this account', { type: 'integer', minimum: 1 }],
          ['object_id', 'only runs of this object', { type: 'string' }],
          [
            'object_number',
            'only runs of the object with this number (INC0010001)',
            { type: 'string' },
          ],
          [
            'rule_id',
            'only runs that looked at this rule, whatever its verdict',
            { type: 'string' },
          ],
          [
            'matched',
            'with rule_id: only the runs where the rule matched (true) or did not (false)',
            { type: 'string', enum: ['true', 'false'] },
          ],
          ['outcome', 'only this outcome', { type: 'string', enum: [...RUN_OUTCOMES] }],
          [
            'rule_version',
            'only runs evaluated by this rule set version (its hex SHA-256, or a prefix of 7 or more)',
            { type: 'string', pattern: '^[0-9a-f]{7,64}$' },
          ],
          ['before', 'runs with a smaller id (the next page)', { type: 'integer', minimum: 1 }],
          [
            'page_size',
            `runs per page (default ${runsPageSize.default})`,
            { type: 'integer', minimum: 1, maximum: runsPageSize.max },
          ],
        ].map(([name, description, schema]) => ({ name, in: 'query', description, schema })),
        responses: {
          200: { description: 'a page of runs', content: json(ref('RunList')) },
          ...errors(400, 401),
        },
      },
    },
    '/runs/{id}': {
      get: {
        operationId: 'getRun',
        tags: ['runs'],
        summary: 'One run record, by its number or its key',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          200: { description: 'the run', content: json(ref('Run')) },
          ...errors(401, 404),
        },
      },
    },
    '/admin/schedules/run': {
      post: {
        operationId: 'runSchedules',
        tags: ['admin'],
        summary: 'Run the scheduled rules now, without waiting for the clock',
        description: `Once per rule, tick and object: running a tick again acts only where it has not. Bodies over ${adminLimit} bytes get a 413.`,
        requestBody: { content: json(ref('ScheduleRequest')) },
        responses: {
          200: { description: 'the tick ran', content: json(ref('ScheduleSummary')) },
          207: {
            description: 'the tick ran, but the API failed part of it (see errors)',
            content: json(ref('ScheduleSummary')),
          },
          ...errors(400, 401, 413),
        },
      },
    },
    '/admin/rules/reload': {
      post: {
        operationId: 'reloadRules',
        tags: ['admin'],
        summary: 'Reload the rule files now',
        description: 'On Workers the rules are bundled at build time: a 404 says so.',
        responses: {
          200: { description: 'the new rule set is in use', content: json(ref('ReloadResult')) },
          422: {
            description: 'refused: the last good rule set stays in use',
            content: json(ref('ReloadResult')),
          },
          ...errors(401, 404),
        },
      },
    },
    '/admin/rules/preview': {
      post: {
        operationId: 'previewRules',
        tags: ['admin'],
        summary: 'Impact preview: what a candidate rule set would have done with past events',
        description: `Replays the API's retained events (read only) through the candidate rules and the rules in force, writing nothing, and reports per rule new matches, lost matches and changed calls. Correlations and once_per keys are counted in throw-away stores, never the engine's. Node and Workers alike; bodies over ${adminLimit} bytes get a 413.`,
        requestBody: { content: json(ref('PreviewRequest')) },
        responses: {
          200: { description: 'the report', content: json(ref('PreviewReport')) },
          422: {
            description: 'the candidate rules have problems (each with file, line and message)',
            content: json(ref('ReloadResult')),
          },
          ...errors(400, 401, 413),
        },
      },
    },
    '/admin/parked': {
      get: {
        operationId: 'listParked',
        tags: ['admin'],
        summary: 'Parked objects: their action keeps failing, so their events wait for a retry',
        parameters: [
          ['account', 'only this account', { type: 'integer', minimum: 1 }],
          ['object_id', 'only this object', { type: 'string' }],
        ].map(([name, description, schema]) => ({ name, in: 'query', description, schema })),
        responses: {
          200: { description: 'oldest parked first', content: json(ref('ParkedList')) },
          ...errors(400, 401),
        },
      },
    },
    '/admin/parked/retry': {
      post: {
        operationId: 'retryParked',
        tags: ['admin'],
        summary: 'Retry parked objects now, instead of at their next scheduled retry',
        description: `Makes the chosen objects due and starts a drain of their accounts; each object's waiting events then run in order, and a half-done plan is finished without repeating a call. Bodies over ${adminLimit} bytes get a 413.`,
        requestBody: { content: json(ref('ParkedRetryRequest')) },
        responses: {
          200: { description: 'the objects made due', content: json(ref('ParkedRetryResult')) },
          ...errors(400, 401, 413),
        },
      },
    },
  };
  const embedded = options.embeddedApi;
  // The engine answers its own paths; the embedded API's others (/v1/..., /_faults) are added.
  if (embedded) {
    for (const [path, item] of Object.entries(embedded.paths)) {
      // Its operations keep the embedded API's own authentication (an account's Bearer token).
      paths[path] ??= Object.fromEntries(
        Object.entries(item).map(([method, operation]) => [
          method,
          { security: embedded.security ?? [], ...operation },
        ]),
      );
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: embedded ? 'itsm-rules engine and embedded ITSM API' : 'itsm-rules engine',
      version: '1',
      description:
        'The HTTP API of `itsm-rules serve` (and of the Cloudflare Worker). Everything but the receiver, /healthz and /openapi.json needs `Authorization: APIKey <key>` (or `Bearer <key>`). See docs/api.md.',
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
    components: {
      schemas: { ...embedded?.components.schemas, ...SCHEMAS },
      securitySchemes: {
        ...embedded?.components.securitySchemes,
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: '`Authorization: APIKey <key>`: the application API key',
        },
        bearer: { type: 'http', scheme: 'bearer', description: 'the API key as a Bearer token' },
      },
    },
  };
}
