// The Prometheus registry: exact exposition text (HELP, TYPE, sorted series, escaping), the
// counter and gauge rules, and the engine's own metric names as scraped before any traffic.
import { describe, expect, it } from 'vitest';
import { createEngineMetrics, createMetricsRegistry, escapeLabelValue } from './metrics.js';

describe('the registry', () => {
  it('renders an unlabelled counter at 0 and a labelled metric with no series before first use', () => {
    const registry = createMetricsRegistry();
    registry.counter('app_requests_total', 'Requests served.');
    registry.counter('app_errors_total', 'Errors, by kind.', ['kind']);
    registry.gauge('app_queue_depth', 'Items waiting.', ['queue']);

    expect(registry.render()).toBe(
      [
        '# HELP app_requests_total Requests served.',
        '# TYPE app_requests_total counter',
        'app_requests_total 0',
        '# HELP app_errors_total Errors, by kind.',
        '# TYPE app_errors_total counter',
        '# HELP app_queue_depth Items waiting.',
        '# TYPE app_queue_depth gauge',
        '',
      ].join('\n'),
    );
  });

  it('renders used series sorted by label values, whatever the order they were first used in', () => {
    const registry = createMetricsRegistry();
    const requests = registry.counter('app_requests_total', 'Requests served.');
    const errors = registry.counter('app_errors_total', 'Errors, by kind.', ['kind', 'route']);
    const depth = registry.gauge('app_queue_depth', 'Items waiting.', ['queue']);

    requests.inc();
    requests.inc(undefined, 2);
    errors.inc({ route: '/b', kind: 'timeout' });
    errors.inc({ kind: 'refused', route: '/a' }, 3);
    errors.inc({ kind: 'timeout', route: '/a' });
    errors.inc({ kind: 'timeout', route: '/b' });
    depth.set({ queue: 'slow' }, 7);
    depth.set({ queue: 'fast' }, 2.5);
    depth.set({ queue: 'slow' }, 0);

    expect(registry.render()).toBe(
      [
        '# HELP app_requests_total Requests served.',
        '# TYPE app_requests_total counter',
        'app_requests_total 3',
        '# HELP app_errors_total Errors, by kind.',
        '# TYPE app_errors_total counter',
        'app_errors_total{kind="refused",route="/a"} 3',
        'app_errors_total{kind="timeout",route="/a"} 1',
        'app_errors_total{kind="timeout",route="/b"} 2',
        '# HELP app_queue_depth Items waiting.',
        '# TYPE app_queue_depth gauge',
        'app_queue_depth{queue="fast"} 2.5',
        'app_queue_depth{queue="slow"} 0',
        '',
      ].join('\n'),
    );
    expect(requests.value()).toBe(3);
    expect(errors.value({ kind: 'timeout', route: '/b' })).toBe(2);
    expect(errors.value({ kind: 'other', route: '/b' })).toBe(0);
    expect(depth.value({ queue: 'fast' })).toBe(2.5);
  });

  it.each([
    ['a backslash', 'C:\\temp', 'C:\\\\temp'],
    ['a double quote', 'say "hi"', 'say \\"hi\\"'],
    ['a newline', 'two\nlines', 'two\\nlines'],
    ['all three', '\\"\n', '\\\\\\"\\n'],
    ['nothing special', 'plain-value_1', 'plain-value_1'],
  ])('escapes %s in a label value', (_name, value, escaped) => {
    const registry = createMetricsRegistry();
    registry.counter('app_rules_total', 'Rules.', ['rule']).inc({ rule: value });

    expect(escapeLabelValue(value)).toBe(escaped);
    expect(registry.render().split('\n')[2]).toBe(`app_rules_total{rule="${escaped}"} 1`);
  });

  it('escapes backslashes and newlines in HELP text but leaves quotes alone', () => {
    const registry = createMetricsRegistry();
    registry.gauge('app_x', 'A "quoted" path C:\\x\nsecond line');

    expect(registry.render().split('\n')[0]).toBe(
      '# HELP app_x A "quoted" path C:\\\\x\\nsecond line',
    );
  });

  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
    [-1.25, '-1.25'],
    [1e21, '1e+21'],
  ])('renders the gauge value %s as %s', (value, text) => {
    const registry = createMetricsRegistry();
    registry.gauge('app_value', 'A value.').set({}, value);

    expect(registry.render().split('\n')[2]).toBe(`app_value ${text}`);
  });

  it.each<[string, (registry: ReturnType<typeof createMetricsRegistry>) => void, string]>([
    [
      'a counter going down',
      (r) => r.counter('a_total', 'A.').inc(undefined, -1),
      'counter a_total can only go up, got an increment of -1',
    ],
    [
      'a NaN increment',
      (r) => r.counter('a_total', 'A.').inc(undefined, Number.NaN),
      'counter a_total can only go up, got an increment of NaN',
    ],
    [
      'an unknown label',
      (r) => r.counter('a_total', 'A.', ['kind']).inc({ kind: 'x', extra: 'y' }),
      'metric a_total takes labels {kind}, got {kind, extra}',
    ],
    [
      'a missing label',
      (r) => r.gauge('a', 'A.', ['kind', 'route']).set({ kind: 'x' }, 1),
      'metric a takes labels {kind, route}, got {kind}',
    ],
    [
      'labels on an unlabelled metric',
      (r) => r.counter('a_total', 'A.').inc({ kind: 'x' }),
      'metric a_total takes labels {}, got {kind}',
    ],
    [
      'a second metric of the same name',
      (r) => {
        r.counter('a_total', 'A.');
        r.gauge('a_total', 'A again.');
      },
      'metric a_total is already registered',
    ],
    ['an invalid metric name', (r) => r.counter('a-b', 'A.'), 'metric name "a-b" is not valid'],
    [
      'a reserved label name',
      (r) => r.counter('a_total', 'A.', ['__name']),
      'metric a_total: label name "__name" is not valid',
    ],
  ])('throws on %s', (_name, misuse, message) => {
    expect(() => misuse(createMetricsRegistry())).toThrow(new Error(message));
  });
});

describe('the engine metrics', () => {
  it('exposes every engine metric under its contract name before any traffic', () => {
    expect(createEngineMetrics().render()).toBe(
      [
        '# HELP itsm_rules_webhooks_accepted_total Signed webhook notifications accepted and enqueued.',
        '# TYPE itsm_rules_webhooks_accepted_total counter',
        'itsm_rules_webhooks_accepted_total 0',
        '# HELP itsm_rules_webhooks_rejected_total Webhook requests refused, by reason (signature, body, too_large, unavailable).',
        '# TYPE itsm_rules_webhooks_rejected_total counter',
        '# HELP itsm_rules_events_processed_total Events taken through the rules, by outcome (done, failed, no_match, skipped, shadow).',
        '# TYPE itsm_rules_events_processed_total counter',
        '# HELP itsm_rules_rules_matched_total Times a rule matched an event or a scheduled object, by rule id.',
        '# TYPE itsm_rules_rules_matched_total counter',
        '# HELP itsm_rules_shadow_matches_total Times a rule in shadow mode would have matched an event or a scheduled object (its calls recorded in the run, never made), by rule id.',
        '# TYPE itsm_rules_shadow_matches_total counter',
        '# HELP itsm_rules_rules_failed_total Times a rule failed on an event or a scheduled object (an expression that threw, an action whose values the API would refuse), by rule id; none of its actions were made.',
        '# TYPE itsm_rules_rules_failed_total counter',
        '# HELP itsm_rules_actions_total API calls made by rule actions, by outcome (done, failed).',
        '# TYPE itsm_rules_actions_total counter',
        '# HELP itsm_rules_drain_retries_total Event pages or events the drain had to retry.',
        '# TYPE itsm_rules_drain_retries_total counter',
        'itsm_rules_drain_retries_total 0',
        '# HELP itsm_rules_drain_lag_seconds Seconds since the oldest notification not yet drained, per account; 0 when caught up.',
        '# TYPE itsm_rules_drain_lag_seconds gauge',
        '# HELP itsm_rules_events_remaining Events still to drain after the cursor, per account.',
        '# TYPE itsm_rules_events_remaining gauge',
        '# HELP itsm_rules_scheduled_objects_total Objects scheduled rules were run on, by rule id.',
        '# TYPE itsm_rules_scheduled_objects_total counter',
        '# HELP itsm_rules_reload_timestamp_seconds Unix time of the last load of the rule files from disk (Node; the first at start).',
        '# TYPE itsm_rules_reload_timestamp_seconds gauge',
        'itsm_rules_reload_timestamp_seconds 0',
        '# HELP itsm_rules_reload_success Whether the last load of the rule files succeeded (1) or was refused, keeping the last good set (0).',
        '# TYPE itsm_rules_reload_success gauge',
        'itsm_rules_reload_success 0',
        '# HELP itsm_rules_database_errors_total Errors the database answered: failed writes and failed write probes of /healthz.',
        '# TYPE itsm_rules_database_errors_total counter',
        'itsm_rules_database_errors_total 0',
        '# HELP itsm_rules_parked_total Objects parked because an action of theirs kept failing (network, 5xx, 429): their events wait for a retry while the account goes on.',
        '# TYPE itsm_rules_parked_total counter',
        'itsm_rules_parked_total 0',
        '# HELP itsm_rules_parked_retries_total Retries of parked objects, by result (done: finished and unparked; failed: parked again with a longer wait).',
        '# TYPE itsm_rules_parked_retries_total counter',
        '# HELP itsm_rules_parked_objects Objects parked now, waiting for a retry (GET /admin/parked lists them).',
        '# TYPE itsm_rules_parked_objects gauge',
        'itsm_rules_parked_objects 0',
        '',
      ].join('\n'),
    );
  });

  it('shows labelled series once they are used', () => {
    const metrics = createEngineMetrics();

    metrics.webhooksRejected.inc({ reason: 'signature' });
    metrics.eventsProcessed.inc({ outcome: 'no_match' }, 2);
    metrics.drainLag.set({ account: '7' }, 1.5);
    metrics.scheduledRuns.inc({ rule: 'overdue-incident' });

    const lines = metrics.render().split('\n');
    expect(lines.filter((line) => !line.startsWith('#'))).toEqual([
      'itsm_rules_webhooks_accepted_total 0',
      'itsm_rules_webhooks_rejected_total{reason="signature"} 1',
      'itsm_rules_events_processed_total{outcome="no_match"} 2',
      'itsm_rules_drain_retries_total 0',
      'itsm_rules_drain_lag_seconds{account="7"} 1.5',
      'itsm_rules_scheduled_objects_total{rule="overdue-incident"} 1',
      'itsm_rules_reload_timestamp_seconds 0',
      'itsm_rules_reload_success 0',
      'itsm_rules_database_errors_total 0',
      'itsm_rules_parked_total 0',
      'itsm_rules_parked_objects 0',
      '',
    ]);
  });
});
