// The documentation a clone carries must stand on its own: every relative link (and #anchor) of
// every Markdown file in the repository resolves to a file (and a heading) inside it, and no
// Markdown file, source file or `--help` text points at material outside the repository (the
// design notes the project was built from, which users do not have).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS, main } from '../../src/runtime/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** What a clone does not have: the notes beside the repository the project was written from. */
const OUTSIDE = ['../shared', 'shared/spec'];

/** Markdown files in the repository (tracked, or new and not ignored). */
function markdownFiles(): string[] {
  const out = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '--', '*.md'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  return [...new Set(out.split('\n').filter(Boolean))].filter((f) => existsSync(join(ROOT, f)));
}

/** Markdown without its fenced code blocks and inline code, where links are not links. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file offers (duplicate headings get -1, -2, ... as on GitHub). */
function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The link targets of a Markdown file: inline links and images, and reference definitions. */
function linksOf(text: string): string[] {
  const body = prose(text);
  const inline = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const defined = [...body.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)];
  return [...inline, ...defined].map((match) => match[1] as string);
}

/** Why a link of `file` does not resolve inside the repository, or null when it does. */
function brokenLink(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto: and friends
  const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
  const from = join(ROOT, file);
  const to = pathPart === '' ? from : resolve(dirname(from), decodeURIComponent(pathPart));
  const inside = relative(ROOT, to);
  if (inside.startsWith('..') || inside === '' || resolve(ROOT, inside) !== to) {
    return `${target} points outside the repository`;
  }
  if (!existsSync(to)) return `${target}: no such file`;
  if (anchor !== undefined) {
    if (statSync(to).isDirectory() || !to.endsWith('.md'))
      return `${target}: an anchor on a non-Markdown file`;
    if (!anchorsOf(to).has(anchor))
      return `${target}: no heading #${anchor} in ${relative(ROOT, to)}`;
  }
  return null;
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(join(ROOT, path)).isFile());
}

describe('the documentation', () => {
  const files = markdownFiles();

  it('finds the Markdown files of the repository', () => {
    expect(files).toEqual(
      expect.arrayContaining(['README.md', 'docs/rules.md', 'docs/api.md', 'rules/README.md']),
    );
  });

  it('has every relative link and #anchor of every Markdown file resolving inside the repository', () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const target of linksOf(readFileSync(join(ROOT, file), 'utf8'))) {
        const why = brokenLink(file, target);
        if (why) broken.push(`${file}: ${why}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it.each([
    ['a missing file', 'docs/rules.md', 'nowhere.md', 'nowhere.md: no such file'],
    ['a file outside the repository', 'README.md', '../shared/spec/x.md', 'outside the repository'],
    ['a missing heading', 'README.md', 'docs/rules.md#no-such-heading', 'no heading'],
    ['a missing heading in the same file', 'docs/api.md', '#nope', 'no heading #nope'],
  ])('refuses %s', (_what, file, target, why) => {
    expect(brokenLink(file, target)).toContain(why);
  });

  it.each([
    ['a heading with code and punctuation', 'docs/rules.md', '#once-only-once_per'],
    ['a web address', 'README.md', 'https://example.com/x'],
    ['a folder', 'README.md', 'docs'],
  ])('accepts %s', (_what, file, target) => {
    expect(brokenLink(file, target)).toBeNull();
  });

  it('skips links inside code', () => {
    expect(linksOf('```\n[a](missing.md)\n```\n`[b](gone.md)` [c](here.md)')).toEqual(['here.md']);
  });
});

describe('nothing points outside the repository', () => {
  afterEach(() => vi.restoreAllMocks());

  it('in Markdown files, src/ or bin/', () => {
    const files = [...markdownFiles(), ...filesUnder('src'), ...filesUnder('bin')];
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      return OUTSIDE.filter((needle) => text.includes(needle)).map((n) => `${file}: ${n}`);
    });
    expect(found).toEqual([]);
  });

  it('in the --help text of the command and of every subcommand', async () => {
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      printed.push(String(line));
    });
    expect(await main(['--help'])).toBe(0);
    for (const command of COMMANDS) expect(await main([command.name, '--help'])).toBe(0);
    const help = printed.join('\n');
    for (const command of COMMANDS) expect(help).toContain(`usage: itsm-rules ${command.name}`);
    for (const needle of OUTSIDE) expect(help).not.toContain(needle);
  });
});
