// `npm run bench`: runs the benchmarks one after the other, each in a child process of its own
// (`node --import tsx`, plus --expose-gc where a benchmark measures the heap), so that one
// benchmark's JIT state and heap never colour the next one's figures.
//   npm run bench                                   every benchmark
//   npm run bench -- --only rules,load              some of them
//   npm run bench -- --only rules --rounds 3        other options go to every benchmark that runs
// Every benchmark that runs must know the options passed on (each refuses unknown ones), so an
// option of one benchmark goes with --only that benchmark.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Benchmark {
  name: string;
  file: string;
  /** Node flags beyond `--import tsx`. */
  flags: string[];
}

const BENCHMARKS: Benchmark[] = [
  { name: 'rules', file: 'rules.ts', flags: [] },
  { name: 'load', file: 'load.ts', flags: ['--expose-gc'] },
  { name: 'receiver', file: 'receiver.ts', flags: [] },
  { name: 'pipeline', file: 'pipeline.ts', flags: [] },
  { name: 'pipeline-shape', file: 'pipeline-shape.ts', flags: [] },
  { name: 'itsm-api', file: 'itsm-api.ts', flags: [] },
  { name: 'in-process', file: 'in-process.ts', flags: [] },
  { name: 'run-records', file: 'run-records.ts', flags: [] },
  { name: 'memory', file: 'memory.ts', flags: [] },
  { name: 'table-api', file: 'table-api.ts', flags: [] },
  { name: 'console', file: 'console.ts', flags: [] },
  { name: 'connector', file: 'connector.ts', flags: [] },
];

const here = dirname(fileURLToPath(import.meta.url));

/** `--only a,b` (or `--only=a,b`) and everything else, which is passed on. */
function parseCommandLine(args: readonly string[]): { only: string[] | null; rest: string[] } {
  const rest: string[] = [];
  let only: string[] | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--only') {
      only = (args[i + 1] ?? '').split(',').filter(Boolean);
      i++;
    } else if (arg.startsWith('--only=')) {
      only = arg.slice('--only='.length).split(',').filter(Boolean);
    } else {
      rest.push(arg);
    }
  }
  return { only, rest };
}

function runChild(benchmark: Benchmark, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', ...benchmark.flags, join(here, benchmark.file), ...args],
      { stdio: 'inherit' },
    );
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const { only, rest } = parseCommandLine(process.argv.slice(2));
const unknown = (only ?? []).filter((name) => !BENCHMARKS.some((b) => b.name === name));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark ${unknown.join(', ')}; the benchmarks are ${BENCHMARKS.map((b) => b.name).join(', ')}`,
  );
  process.exit(2);
}
const selected = only ? BENCHMARKS.filter((b) => only.includes(b.name)) : BENCHMARKS;

const failed: string[] = [];
for (const [i, benchmark] of selected.entries()) {
  if (i > 0) console.log('');
  console.log(`== ${benchmark.name} (bench/${benchmark.file})`);
  const code = await runChild(benchmark, rest);
  if (code !== 0) failed.push(`${benchmark.name} (exit ${code})`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
