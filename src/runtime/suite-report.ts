// How `itsm-rules test` reports rule test suites: as text for people (each case with ✓ or ✗, the
// differences under a failed one, the rules no case expects to match, then `N passed, N failed`,
// always the last line: scripts read it), as JSON for scripts, and as JUnit XML for CI systems,
// which read one <testsuite> per suite file and one <testcase> per case.
import type { CaseResult } from './rule-suite-runner.js';

/** `notExpectedToMatch`: the loaded rules no case expects to match (rule-suite.ts). */
export function renderText(
  results: readonly CaseResult[],
  notExpectedToMatch: readonly string[] = [],
): string {
  const lines: string[] = [];
  let file: string | null = null;
  for (const result of results) {
    if (result.file !== file) {
      if (file !== null) lines.push('');
      file = result.file;
      lines.push(file);
    }
    lines.push(`  ${result.passed ? '✓' : '✗'} ${result.name}`);
    for (const failure of result.failures) {
      const [first, ...rest] = failure.split('\n');
      lines.push(`      ${first}`, ...rest.map((line) => `      ${line}`));
    }
  }
  lines.push('');
  if (notExpectedToMatch.length > 0) {
    lines.push(`not expected to match in any case: ${notExpectedToMatch.join(', ')}`);
  }
  lines.push(summaryLine(results));
  return lines.join('\n');
}

/** The results as data: each case, the counts, and the rules no case expects to match. */
export function renderJson(
  results: readonly CaseResult[],
  notExpectedToMatch: readonly string[],
): string {
  const { passed, failed } = counts(results);
  return JSON.stringify(
    {
      cases: results.map(({ file, name, passed, failures }) => ({ file, name, passed, failures })),
      passed,
      failed,
      notExpectedToMatch,
    },
    null,
    2,
  );
}

export function summaryLine(results: readonly CaseResult[]): string {
  const { passed, failed } = counts(results);
  return `${passed} passed, ${failed} failed`;
}

export function renderJunit(results: readonly CaseResult[]): string {
  const files = [...new Set(results.map((result) => result.file))];
  const failed = results.filter((result) => !result.passed).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = results.reduce((sum, result) => sum + result.durationMs, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="itsm-rules" tests="${results.length}" failures="${failed}" errors="0" time="${seconds(total)}">`,
  ];
  for (const file of files) {
    const cases = results.filter((result) => result.file === file);
    const time = cases.reduce((sum, result) => sum + result.durationMs, 0);
    lines.push(
      `  <testsuite name="${xml(file)}" tests="${cases.length}" failures="${cases.filter((c) => !c.passed).length}" errors="0" time="${seconds(time)}">`,
    );
    for (const result of cases) {
      const head = `    <testcase classname="${xml(file)}" name="${xml(result.name)}" time="${seconds(result.durationMs)}"`;
      if (result.passed) {
        lines.push(`${head}/>`);
        continue;
      }
      lines.push(
        `${head}>`,
        `      <failure message="${xml(failureMessage(result.failures))}">${xml(result.failures.join('\n'), false)}</failure>`,
        '    </testcase>',
      );
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

/**
 * The one-line summary CI systems show beside a failed case: the first difference, its lines
 * joined, and how many more there are (the whole text is the element's body).
 */
function failureMessage(failures: readonly string[]): string {
  const [first, ...rest] = failures;
  if (first === undefined) return 'failed';
  const line = first
    .split('\n')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .join(' ');
  return rest.length === 0
    ? line
    : `${line} (and ${rest.length} more difference${rest.length === 1 ? '' : 's'})`;
}

/** Text as XML character data or an attribute value (characters XML 1.0 cannot hold dropped). */
function xml(text: string, attribute = true): string {
  const escaped = text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
  return attribute ? escaped.replaceAll('\n', '&#10;') : escaped;
}

function counts(results: readonly CaseResult[]): { passed: number; failed: number } {
  const failed = results.filter((result) => !result.passed).length;
  return { passed: results.length - failed, failed };
}
