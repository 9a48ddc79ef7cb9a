// Rule loading: the time and heap to load and check 1000 rule files through loadRules (parse,
// shape check, compile, every rule check, index), generated in memory from the shapes of the
// example rules in rules/ (YAML with comments, some JSON). Time: median of rounds. Heap: the
// peak during one load, read from V8's GC trace in a child process (the heap size each
// collection found, and the size at the end), above the heap after a full GC just before; and
// what the loaded rule set keeps after a full GC. Node needs --expose-gc (bench/run.ts passes
// it; run alone, this file starts itself again with the flag).
//
// Then the whole process, as users start it: `itsm-rules check` of 5 and of the same number of
// rule files (the YAML shapes only) written to temporary folders, under `/usr/bin/time -v` (wall
// clock and peak RSS of the process), and the idle RSS of `itsm-rules serve` on the example rules (read from
// /proc once it listens and has answered one request). Each runs from the compiled build (dist/,
// made current with `npm run build` first) beside the TypeScript sources through tsx as baseline.
//   npx tsx bench/load.ts [--files 1000] [--rounds 5] [--seed 11] [--process-rounds 3]
//   npx tsx bench/load.ts --write-rules DIR      only writes those YAML files into DIR
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as yaml from 'yaml';
import { loadRules, type RuleSource } from '../src/engine/load.js';
import { formatProblem } from '../src/engine/problem.js';
import { provideYamlLibrary } from '../src/engine/yaml-library.js';
import { seededRandom } from '../src/server/faults.js';
import { median } from './stats.js';

if (typeof globalThis.gc !== 'function') {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, '--expose-gc', ...process.argv.slice(1)],
    { stdio: 'inherit' },
  );
  process.exit(child.status ?? 1);
}
const gc = globalThis.gc as () => void;
provideYamlLibrary(() => yaml);

const { values: options } = parseArgs({
  options: {
    files: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    seed: { type: 'string', default: '11' },
    'process-rounds': { type: 'string', default: '3' },
    // Writes the YAML files of the whole-process figures to this folder and exits (to time the
    // command by hand: /usr/bin/time -v npx itsm-rules check --rules DIR).
    'write-rules': { type: 'string' },
    // Internal: the child process that loads once under --trace-gc.
    'peak-child': { type: 'boolean', default: false },
  },
});
const FILES = Number(options.files);
const ROUNDS = Number(options.rounds);

const random = seededRandom(Number(options.seed));
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;

const LEVELS = ['low', 'medium', 'high'] as const;
const PRIORITIES = ['low', 'medium', 'high', 'critical'] as const;
const HEADER = '# yaml-language-server: $schema=../../schema/rule.schema.json\n#\n';

// One generator per example rule; each gives the file's path and text for the n-th copy.
const SHAPES: ((n: number) => RuleSource)[] = [
  (n) => ({
    path: `rules/incident/escalate-major-${n}.yaml`,
    text: `${HEADER}# A major incident (copy ${n}): raise it at once and count the escalation.
description: ${pick(LEVELS)} impact and ${pick(LEVELS)} urgency means a higher priority.
order: ${int(1, 200)}
on:
  type: incident
  events: [add, update]
  changed: [impact, urgency]        # an add counts as every field changed
when:
  and:
    - {"==": [{var: object.impact}, ${pick(LEVELS)}]}
    - {"==": [{var: object.urgency}, ${pick(LEVELS)}]}
    - {"!=": [{var: object.priority}, ${pick(PRIORITIES)}]}
    - {"!==": [{var: object.active}, false]}
then:
  - escalate: {levels: ${int(1, 3)}}
  - log: {message: {cat: ["major incident ", {var: object.id}, " raised"]}}
`,
  }),
  (n) => ({
    path: `rules/incident/overdue-escalation-${n}.yaml`,
    text: `${HEADER}# Every ${pick([5, 10, 15, 30])} minutes, escalate overdue open incidents once a day (copy ${n}).
description: Escalate open incidents that are past their due date.
on:
  type: incident
  schedule: "*/${pick([5, 10, 15, 30])} * * * *"                  # UTC
when:
  and:
    - {"!!": {var: object.due_date}}
    - {">": [{hours_since: {var: object.due_date}}, ${int(0, 48)}]}
    - {"<": [{rank: {var: object.priority}}, {rank: ${pick(PRIORITIES)}}]}
once_per:
  key: {var: object.id}
  within: ${pick(['1d', '12h', '7d'])}
then:
  - escalate: {levels: 1}
  - log: {message: {cat: ["overdue by ", {hours_since: {var: object.due_date}}, " hours"]}}
`,
  }),
  (n) => ({
    path: `rules/incident/page-on-call-${n}.yaml`,
    text: `${HEADER}# A call-out when an incident becomes ${pick(PRIORITIES)} (copy ${n}).
description: Page on-call when an incident becomes critical.
order: ${int(1, 200)}
on:
  type: incident
  events: [add, update]
  changed: [priority]
  self: true                        # also when the engine itself raised it
when:
  and:
    - "==": [{var: object.priority}, ${pick(PRIORITIES)}]
    - matches: [{var: object.description}, "${pick(['disk\\\\s+full', 'vpn|gateway', '^db-\\\\d+', 'outage'])}", i]
once_per: {var: object.id}
then:
  - http:
      url: https://pager${n % 7}.example.com/v1/alerts
      method: POST
      headers:
        Content-Type: application/json
      body:
        summary: {cat: ["Incident ", {var: object.id}, ": ", {var: object.description}]}
        severity: ${pick(PRIORITIES)}
        incident: {var: object.href}
        assignee: {var: object.assignee.email}
`,
  }),
  (n) => ({
    path: `rules/incident/recurring-incidents-${n}.yaml`,
    text: `${HEADER}# ${int(2, 9)} or more incidents of one category within a window open a problem (copy ${n}).
description: Recurring incidents of one category open a linked problem.
order: ${int(1, 200)}
on:
  type: incident
  events: [add]
when:
  and:
    - {"!!": {var: object.category}}
    - {"!": {var: object.problem}}
    - {in: [{var: object.impact}, [${pick(['medium, high', 'high', 'low, medium, high'])}]]}
correlate:
  key: {lower: {var: object.category}}
  within: ${pick(['30m', '1h', '2h'])}
  at_least: ${int(2, 9)}
once_per:
  key: {var: correlation.key}
  within: 1h
then:
  - create:
      type: problem
      link: true
      fields:
        category: {var: object.category}
        impact: {var: object.impact}
        urgency: ${pick(LEVELS)}
        description:
          cat: ["Recurring incidents in ", {var: correlation.key}, ": ", {var: correlation.count}]
`,
  }),
  (n) => ({
    path: `rules/problem/problem-in-fix-${n}.json`,
    text: JSON.stringify(
      {
        description: `A problem in fix opens a linked change (copy ${n}).`,
        on: { type: 'problem', events: ['update'], changed: ['status'] },
        when: {
          and: [
            { '==': [{ var: 'object.status' }, pick([101, 102, 103, 104])] },
            { '!': { var: 'object.change' } },
          ],
        },
        once_per: { var: 'object.id' },
        // biome-ignore lint/suspicious/noThenProperty: the rule format's key; a list, never a function.
        then: [
          {
            create: {
              type: 'change',
              link: true,
              fields: {
                category: { var: 'object.category' },
                impact: { var: 'object.impact' },
                urgency: { var: 'object.urgency' },
                risk: pick(['low', 'moderate', 'high']),
                description: {
                  cat: [
                    'Fix for problem ',
                    { var: 'object.id' },
                    ': ',
                    { var: 'object.description' },
                  ],
                },
              },
            },
          },
        ],
      },
      null,
      2,
    ),
  }),
];

const sources = Array.from({ length: FILES }, (_, i) =>
  (SHAPES[i % SHAPES.length] as (n: number) => RuleSource)(i),
);
const bytes = sources.reduce((sum, source) => sum + source.text.length, 0);

if (options['write-rules']) {
  const folder = writeYamlRules(options['write-rules']);
  console.log(`${FILES} YAML rule files written to ${folder}`);
  process.exit(0);
}

const MB = 1024 * 1024;

/** One load, measured; in a function of its own so that nothing keeps its result afterwards. */
function measureLoad(): {
  ms: number;
  cpuMs: number;
  grown: number;
  retained: number;
  rules: number;
} {
  gc();
  const before = process.memoryUsage().heapUsed;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = loadRules(sources);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  // CPU time of this process (GC threads included): what the load costs when other processes
  // share the cores and stretch the wall-clock time.
  const cpuMs = (used.user + used.system) / 1000;
  const grown = (process.memoryUsage().heapUsed - before) / MB;
  if (!result.ruleSet) {
    throw new Error(result.problems.slice(0, 10).map(formatProblem).join('\n'));
  }
  gc();
  // `result` is still used below, so the collection above kept the whole rule set.
  const retained = (process.memoryUsage().heapUsed - before) / MB;
  return { ms, cpuMs, grown, retained, rules: result.ruleSet.rules.length };
}

if (options['peak-child']) {
  // Forced collections show in the trace as "testing": they frame the load.
  const warm = loadRules(sources);
  if (!warm.ruleSet) process.exit(2);
  gc();
  const result = loadRules(sources);
  gc();
  process.exit(result.ruleSet ? 0 : 2);
}

/**
 * The peak heap of one load above the heap before it, in MB, from a child under --trace-gc:
 * lines like `[pid:0x1234]  310 ms: Scavenge 45.2 (60.1) -> 30.1 (61.2) MB, ...` give the heap
 * used when each collection started.
 */
function peakOfOneLoad(): number {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, '--trace-gc', ...process.argv.slice(1), '--peak-child'],
    { encoding: 'utf8', maxBuffer: 64 * MB },
  );
  if (child.status !== 0) throw new Error(`the GC-trace child failed: ${child.stderr}`);
  const collections = [
    ...child.stdout.matchAll(
      /^\[\d+:(0x[0-9a-f]+)\][^:]*: (.*?) ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB.*$/gm,
    ),
  ].map((m) => ({
    isolate: m[1],
    testing: (m[0] ?? '').includes('testing'),
    before: Number(m[3]),
    after: Number(m[4]),
  }));
  // The main isolate is the one whose forced collections frame the load (tsx has its own).
  const forced = collections.filter((c) => c.testing);
  const isolate = forced.at(-1)?.isolate;
  const main = collections.filter((c) => c.isolate === isolate);
  const first = main.findIndex((c) => c.testing);
  const last = main.findLastIndex((c) => c.testing);
  if (first < 0 || last <= first) throw new Error('no forced collections in the GC trace');
  const baseline = (main[first] as { after: number }).after;
  const during = main.slice(first + 1, last + 1).map((c) => c.before);
  return Math.max(...during) - baseline;
}

// One untimed load first: it compiles the loader itself (and zod, yaml) in V8.
measureLoad();
const rounds = Array.from({ length: ROUNDS }, measureLoad);
const times = rounds.map((round) => round.ms);
const cpuTimes = rounds.map((round) => round.cpuMs);
const grown = rounds.map((round) => round.grown);
const retained = rounds.map((round) => round.retained);
const rules = rounds[0]?.rules ?? 0;

const ms = median(times);
const cpuMs = median(cpuTimes);
const heapGrowth = Math.max(...grown);
const peak = peakOfOneLoad();
const heapRetained = median(retained);
console.log(
  `rule loading: ${FILES} files (${(bytes / 1024).toFixed(0)} KiB, ${rules} rules), median of ${ROUNDS} rounds, node ${process.version}`,
);
console.log(
  `${'load and check'.padEnd(40)} ${ms.toFixed(0).padStart(6)} ms   target < 1000 ms: ${ms < 1000 ? 'met' : 'missed'}`,
);
console.log(`${'CPU time of a load (all threads)'.padEnd(40)} ${cpuMs.toFixed(0).padStart(6)} ms`);
console.log(
  `${'peak heap during a load (GC trace)'.padEnd(40)} ${peak.toFixed(1).padStart(6)} MB   target < 100 MB: ${peak < 100 ? 'met' : 'missed'}`,
);
console.log(
  `${'heap grown by the end of a load'.padEnd(40)} ${heapGrowth.toFixed(1).padStart(6)} MB`,
);
console.log(
  `${'heap kept by the loaded rule set'.padEnd(40)} ${heapRetained.toFixed(1).padStart(6)} MB`,
);
console.log(`${'per file'.padEnd(40)} ${((ms / FILES) * 1000).toFixed(0).padStart(6)} us`);

// ---- The whole process: start-up and memory of the command as users run it.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PROCESS_ROUNDS = Number(options['process-rounds']);
/** The small folder of the whole-process figures: start-up with next to no rule work. */
const FEW_FILES = 5;
const TIME = '/usr/bin/time';

/** How a variant starts the command: arguments to node, run from the repository root. */
interface Variant {
  name: string;
  node: string[];
  /** Environment beyond the bench's own (ITSM_* removed). */
  env?: Record<string, string>;
}

const BUILT: Variant = { name: 'compiled (dist/)', node: ['bin/itsm-rules.js'] };
// What bin/itsm-rules.js does without a current build (and what it always did before dist/),
// with the same V8 flags.
const SOURCES: Variant = {
  name: 'sources through tsx',
  node: [
    '--input-type=module',
    '-e',
    "import { setStartFlags } from './bin/v8-flags.js'; setStartFlags(process.argv[1]); import { register } from 'tsx/esm/api'; register(); const { main } = await import('./src/runtime/cli.ts'); process.exit(await main(process.argv.slice(1)));",
  ],
};
const VARIANTS = [BUILT, SOURCES];
// For insight, not a setting of the project: glibc keeps memory freed during the start-up (V8's
// compile zones) unless told to return it sooner; this shows how much of the idle RSS that is.
const BUILT_TRIMMED: Variant = {
  ...BUILT,
  name: 'compiled, MALLOC_TRIM_THRESHOLD_=65536',
  env: { MALLOC_TRIM_THRESHOLD_: '65536' },
};

/**
 * Wall-clock seconds, CPU seconds (user + system, all threads) and peak RSS (MB) of one whole
 * process, from `/usr/bin/time -v`. On a shared machine the CPU time is the steadier figure.
 */
function timeProcess(args: string[]): { wall: number; cpu: number; rss: number } {
  const child = spawnSync(TIME, ['-v', process.execPath, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * MB,
  });
  if (child.status !== 0) {
    throw new Error(`${args.slice(-4).join(' ')} exited ${child.status}\n${child.stderr}`);
  }
  const wall = child.stderr.match(/Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)/);
  const rss = child.stderr.match(/Maximum resident set size \(kbytes\): (\d+)/);
  const user = child.stderr.match(/User time \(seconds\): ([\d.]+)/);
  const system = child.stderr.match(/System time \(seconds\): ([\d.]+)/);
  if (!wall || !rss || !user || !system) {
    throw new Error(`no figures from ${TIME} -v:\n${child.stderr}`);
  }
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return {
    wall: seconds,
    cpu: Number(user[1]) + Number(system[1]),
    rss: Number(rss[1]) / 1024,
  };
}

/** VmRSS and VmHWM (peak) of a running process, in MB. */
function residentOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Starts `serve` on the example rules, waits until it listens and has answered, reads its RSS. */
async function serveIdle(variant: Variant): Promise<{ rss: number; peak: number }> {
  const args = [
    ...variant.node,
    'serve',
    '--port',
    '0',
    '--db',
    ':memory:',
    '--rules',
    'test/fixtures/example-rules',
  ];
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ITSM_'))),
    ...variant.env,
  };
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const match = out.match(/itsm-rules listening on (http:\/\/127\.0\.0\.1:\d+)/);
        if (match) resolve(match[1] as string);
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening`)));
    });
    const health = await fetch(`${url}/healthz`);
    await health.arrayBuffer();
    // Idle: let the start-up's garbage be collected the way a quiet server's would be.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    return residentOf(child.pid as number);
  } finally {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await gone;
  }
}

function ensureBuild(): void {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
}

/** The YAML files of the whole-process figures (the seeded values that follow `sources`). */
function writeYamlRules(folder: string, count = FILES): string {
  const yamlShapes = SHAPES.slice(0, 4);
  for (let i = 0; i < count; i++) {
    const source = (yamlShapes[i % yamlShapes.length] as (n: number) => RuleSource)(i);
    const path = join(folder, source.path.replace(/^rules\//, ''));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, source.text);
  }
  return folder;
}

console.log('');
if (!existsSync(TIME) || !existsSync('/proc/self/status')) {
  console.log(
    `whole process: skipped; it needs GNU time at ${TIME} (Debian/Ubuntu: apt-get install -y time) and Linux's /proc`,
  );
} else {
  ensureBuild();
  const folder = writeYamlRules(mkdtempSync(join(tmpdir(), 'itsm-load-')));
  const few = writeYamlRules(mkdtempSync(join(tmpdir(), 'itsm-load-few-')), FEW_FILES);
  try {
    const floor = Array.from({ length: PROCESS_ROUNDS }, () => timeProcess(['-e', '0']));
    const checkOf = (rules: string, files: number) =>
      VARIANTS.map((variant) => {
        timeProcess([...variant.node, 'check', '--rules', rules]); // warms the file cache
        const runs = Array.from({ length: PROCESS_ROUNDS }, () =>
          timeProcess([...variant.node, 'check', '--rules', rules]),
        );
        return {
          variant,
          files,
          wall: median(runs.map((r) => r.wall)),
          cpu: median(runs.map((r) => r.cpu)),
          rss: median(runs.map((r) => r.rss)),
        };
      });
    const checkFew = checkOf(few, FEW_FILES);
    const check = checkOf(folder, FILES);
    const serve = [];
    for (const variant of [...VARIANTS, BUILT_TRIMMED]) {
      const runs = [];
      for (let i = 0; i < PROCESS_ROUNDS; i++) runs.push(await serveIdle(variant));
      serve.push({
        variant,
        rss: median(runs.map((r) => r.rss)),
        peak: median(runs.map((r) => r.peak)),
      });
    }
    const [builtServe, sourceServe] = serve as [(typeof serve)[0], (typeof serve)[0]];
    const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
    console.log(
      `whole process (${TIME} -v, /proc), median of ${PROCESS_ROUNDS} rounds; \`node -e 0\`: ${median(floor.map((r) => r.wall)).toFixed(2)} s, ${median(floor.map((r) => r.rss)).toFixed(0)} MB`,
    );
    for (const rows of [checkFew, check]) {
      const [built, source] = rows as [(typeof rows)[0], (typeof rows)[0]];
      console.log(
        `${`check, ${built.files} YAML files`.padEnd(40)} ${'wall s'.padStart(8)} ${'CPU s'.padStart(8)} ${'peak RSS MB'.padStart(12)}`,
      );
      for (const row of rows) {
        console.log(
          `  ${row.variant.name.padEnd(38)} ${row.wall.toFixed(2).padStart(8)} ${row.cpu.toFixed(2).padStart(8)} ${row.rss.toFixed(0).padStart(12)}`,
        );
      }
      // The issue's targets are for the large folder.
      const targets =
        built.files === FILES
          ? `   targets < 1 s: ${verdict(built.wall < 1)}, < 100 MB: ${verdict(built.rss < 100)}`
          : '';
      console.log(
        `  ${'compiled / sources'.padEnd(38)} ${(built.wall / source.wall).toFixed(2).padStart(7)}x ${(built.cpu / source.cpu).toFixed(2).padStart(7)}x ${(built.rss / source.rss).toFixed(2).padStart(11)}x${targets}`,
      );
    }
    console.log(
      `${'serve, example rules, idle'.padEnd(40)} ${'RSS MB'.padStart(8)} ${'peak RSS MB'.padStart(12)}`,
    );
    for (const row of serve) {
      console.log(
        `  ${row.variant.name.padEnd(38)} ${row.rss.toFixed(0).padStart(8)} ${row.peak.toFixed(0).padStart(12)}`,
      );
    }
    console.log(
      `  ${'compiled / sources'.padEnd(38)} ${(builtServe.rss / sourceServe.rss).toFixed(2).padStart(7)}x ${(builtServe.peak / sourceServe.peak).toFixed(2).padStart(11)}x   target idle < 80 MB: ${verdict(builtServe.rss < 80)}`,
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
    rmSync(few, { recursive: true, force: true });
  }
}
