// The engine's metrics: a tiny Prometheus registry (counters and gauges with labels, rendered in
// the text exposition format 0.0.4) and the engine's own set of metrics. No dependency, no Node
// built-ins, so the same registry serves `/metrics` on Node and on Workers.

export type Labels = Record<string, string>;

export interface Counter {
  readonly name: string;
  /** Adds `by` (default 1, never negative: a counter only goes up) to the series of `labels`. */
  inc(labels?: Labels, by?: number): void;
  value(labels?: Labels): number;
}

export interface Gauge {
  readonly name: string;
  set(labels: Labels, value: number): void;
  value(labels?: Labels): number;
}

export interface MetricsRegistry {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  gauge(name: string, help: string, labelNames?: readonly string[]): Gauge;
  /** Every metric in the text exposition format 0.0.4, ending with a newline. */
  render(): string;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** The key of the one series of a metric without labels (a series' key is its label values as JSON). */
const NO_LABELS = JSON.stringify([]);

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

// HELP text escapes backslash and newline only: quotes are legal there.
function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

class Metric {
  // Keyed by the JSON of the label values (in `labelNames` order): a label value may contain any
  // character, so no separator would be safe.
  private readonly series = new Map<string, { values: string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not valid`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) {
        throw new Error(`metric ${name}: label name ${JSON.stringify(label)} is not valid`);
      }
    }
  }

  // A wrong label set is a programming error; failing loudly keeps a typo from silently creating
  // a series nobody queries.
  private valuesOf(labels: Labels = {}): string[] {
    const given = Object.keys(labels);
    const unknown = given.filter((label) => !this.labelNames.includes(label));
    const missing = this.labelNames.filter((label) => !given.includes(label));
    if (unknown.length > 0 || missing.length > 0) {
      throw new Error(
        `metric ${this.name} takes labels {${this.labelNames.join(', ')}}, got {${given.join(', ')}}`,
      );
    }
    return this.labelNames.map((label) => labels[label] as string);
  }

  add(labels: Labels | undefined, by: number): void {
    // A metric without labels has one series, found without building its key (the receiver
    // counts every notification).
    const unlabelled = labels === undefined && this.labelNames.length === 0;
    const values = unlabelled ? [] : this.valuesOf(labels);
    const key = unlabelled ? NO_LABELS : JSON.stringify(values);
    const entry = this.series.get(key);
    if (entry) entry.value += by;
    else this.series.set(key, { values, value: by });
  }

  set(labels: Labels | undefined, value: number): void {
    const values = this.valuesOf(labels);
    this.series.set(JSON.stringify(values), { values, value });
  }

  get(labels: Labels | undefined): number {
    return this.series.get(JSON.stringify(this.valuesOf(labels)))?.value ?? 0;
  }

  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    // An unlabelled metric has exactly one series, so it is shown (at 0) before it is first used,
    // and `rate()` sees the start instead of a series appearing mid-way.
    if (this.labelNames.length === 0) {
      lines.push(`${this.name} ${formatValue(this.series.get(NO_LABELS)?.value ?? 0)}`);
      return lines;
    }
    const entries = [...this.series.values()].sort((a, b) => compareLists(a.values, b.values));
    for (const { values, value } of entries) {
      const labels = this.labelNames
        .map((label, i) => `${label}="${escapeLabelValue(values[i] ?? '')}"`)
        .join(',');
      lines.push(`${this.name}{${labels}} ${formatValue(value)}`);
    }
    return lines;
  }
}

function compareLists(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const left = a[i] as string;
    const right = b[i] as string;
    if (left !== right) return left < right ? -1 : 1;
  }
  return a.length - b.length;
}

export function createMetricsRegistry(): MetricsRegistry {
  const metrics: Metric[] = [];
  const register = (metric: Metric): Metric => {
    if (metrics.some((m) => m.name === metric.name)) {
      throw new Error(`metric ${metric.name} is already registered`);
    }
    metrics.push(metric);
    return metric;
  };
  return {
    counter(name, help, labelNames = []) {
      const metric = register(new Metric(name, help, 'counter', labelNames));
      return {
        name,
        inc(labels, by = 1) {
          if (!(by >= 0)) {
            throw new Error(`counter ${name} can only go up, got an increment of ${by}`);
          }
          metric.add(labels, by);
        },
        value: (labels) => metric.get(labels),
      };
    },
    gauge(name, help, labelNames = []) {
      const metric = register(new Metric(name, help, 'gauge', labelNames));
      return {
        name,
        set: (labels, value) => metric.set(labels, value),
        value: (labels) => metric.get(labels),
      };
    },
    render() {
      const lines = metrics.flatMap((metric) => metric.render());
      return `${lines.join('\n')}\n`;
    },
  };
}

export interface EngineMetrics {
  webhooksAccepted: Counter;
  /** `reason`: signature | body | too_large | unavailable. */
  webhooksRejected: Counter;
  /** `outcome`: done | failed | no_match | skipped | shadow (parked events count when they finish). */
  eventsProcessed: Counter;
  /** `rule`: the rule id. */
  rulesMatched: Counter;
  /** `rule`: a rule in shadow mode that would have matched (its calls recorded, never made). */
  shadowMatches: Counter;
  /** `rule`: a rule that failed (an expression threw, an action's values were invalid). */
  rulesFailed: Counter;
  /** `outcome`: done | failed. */
  actions: Counter;
  drainRetries: Counter;
  /** `account`: seconds since the oldest notification not yet drained; 0 when caught up. */
  drainLag: Gauge;
  /** `account`: events still after the cursor, as the last events page said. */
  eventsRemaining: Gauge;
  /** `rule`: objects a scheduled rule was run on. */
  scheduledRuns: Counter;
  /** Unix time in seconds of the last load of the rule files (the first at start). */
  reloadTimestamp: Gauge;
  /** 1 when that load succeeded, 0 when it was refused and the last good set kept running. */
  reloadSuccess: Gauge;
  /** Errors the database answered (failed writes, failed health probes). */
  databaseErrors: Counter;
  /** Objects parked: an action of theirs kept failing, so their events wait for a retry. */
  parked: Counter;
  /** `result`: done (the object's waiting events are finished, it is unparked) | failed. */
  parkedRetries: Counter;
  /** Objects parked now (read from the store when /metrics is asked). */
  parkedObjects: Gauge;
  render(): string;
}

export function createEngineMetrics(): EngineMetrics {
  const registry = createMetricsRegistry();
  return {
    webhooksAccepted: registry.counter(
      'itsm_rules_webhooks_accepted_total',
      'Signed webhook notifications accepted and enqueued.',
    ),
    webhooksRejected: registry.counter(
      'itsm_rules_webhooks_rejected_total',
      'Webhook requests refused, by reason (signature, body, too_large, unavailable).',
      ['reason'],
    ),
    eventsProcessed: registry.counter(
      'itsm_rules_events_processed_total',
      'Events taken through the rules, by outcome (done, failed, no_match, skipped, shadow).',
      ['outcome'],
    ),
    rulesMatched: registry.counter(
      'itsm_rules_rules_matched_total',
      'Times a rule matched an event or a scheduled object, by rule id.',
      ['rule'],
    ),
    shadowMatches: registry.counter(
      'itsm_rules_shadow_matches_total',
      'Times a rule in shadow mode would have matched an event or a scheduled object (its calls recorded in the run, never made), by rule id.',
      ['rule'],
    ),
    rulesFailed: registry.counter(
      'itsm_rules_rules_failed_total',
      'Times a rule failed on an event or a scheduled object (an expression that threw, an action whose values the API would refuse), by rule id; none of its actions were made.',
      ['rule'],
    ),
    actions: registry.counter(
      'itsm_rules_actions_total',
      'API calls made by rule actions, by outcome (done, failed).',
      ['outcome'],
    ),
    drainRetries: registry.counter(
      'itsm_rules_drain_retries_total',
      'Event pages or events the drain had to retry.',
    ),
    drainLag: registry.gauge(
      'itsm_rules_drain_lag_seconds',
      'Seconds since the oldest notification not yet drained, per account; 0 when caught up.',
      ['account'],
    ),
    eventsRemaining: registry.gauge(
      'itsm_rules_events_remaining',
      'Events still to drain after the cursor, per account.',
      ['account'],
    ),
    scheduledRuns: registry.counter(
      'itsm_rules_scheduled_objects_total',
      'Objects scheduled rules were run on, by rule id.',
      ['rule'],
    ),
    reloadTimestamp: registry.gauge(
      'itsm_rules_reload_timestamp_seconds',
      'Unix time of the last load of the rule files from disk (Node; the first at start).',
    ),
    reloadSuccess: registry.gauge(
      'itsm_rules_reload_success',
      'Whether the last load of the rule files succeeded (1) or was refused, keeping the last good set (0).',
    ),
    databaseErrors: registry.counter(
      'itsm_rules_database_errors_total',
      'Errors the database answered: failed writes and failed write probes of /healthz.',
    ),
    parked: registry.counter(
      'itsm_rules_parked_total',
      'Objects parked because an action of theirs kept failing (network, 5xx, 429): their events wait for a retry while the account goes on.',
    ),
    parkedRetries: registry.counter(
      'itsm_rules_parked_retries_total',
      'Retries of parked objects, by result (done: finished and unparked; failed: parked again with a longer wait).',
      ['result'],
    ),
    parkedObjects: registry.gauge(
      'itsm_rules_parked_objects',
      'Objects parked now, waiting for a retry (GET /admin/parked lists them).',
    ),
    render: () => registry.render(),
  };
}
