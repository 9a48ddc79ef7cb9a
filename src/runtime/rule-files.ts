// Reading rule files from disk for the loader (which never touches the file system itself):
// every .yaml, .yml and .json file under a folder, at any depth, in a stable order; or one file
// (`itsm-rules check` of a single rule). Rule test suites (`*.test.yaml`) are read apart. It also
// provides the yaml library to the loader (engine/yaml-library.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isRuleFile, isSuiteFile, type RuleSource } from '../engine/load.js';
import { provideYamlLibrary, type YamlLibrary } from '../engine/yaml-library.js';

// The yaml library loads on the first file the loader's subset reader leaves to it (most rule
// folders have none), with require: the loader is synchronous. On Node the package's entry is
// CommonJS either way, so this is the same module an import would give.
provideYamlLibrary(() => createRequire(import.meta.url)('yaml') as YamlLibrary);

export class RuleDirectoryError extends Error {
  readonly code = 'RULE_DIRECTORY_UNREADABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuleDirectoryError';
  }
}

/** How a path is shown in problems: relative to the working directory when inside it. */
function displayPath(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown.startsWith('..') || isAbsolute(shown) ? path : shown;
}

/** `flag`: the command's flag that gave the path, named in the error when it cannot be read. */
export function readRuleSources(dir: string, flag = 'rules'): RuleSource[] {
  return readSources(dir, isRuleFile, flag);
}

/** Every rule test suite (`*.test.yaml`, `.test.yml`, `.test.json`) under the rules folder. */
export function readSuiteSources(dir: string): RuleSource[] {
  return readSources(dir, isSuiteFile);
}

function readSources(dir: string, wanted: (name: string) => boolean, flag = 'rules'): RuleSource[] {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(dir);
  } catch (error) {
    throw new RuleDirectoryError(
      `the rules folder ${dir} does not exist or cannot be read; point --${flag} at the folder of rule files`,
      { cause: error },
    );
  }
  if (!stat.isDirectory()) {
    throw new RuleDirectoryError(
      `--${flag} ${dir} is a file; point it at the folder of rule files`,
    );
  }
  const sources: RuleSource[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && wanted(entry.name)) {
        sources.push({ path: displayPath(path), text: readFileSync(path, 'utf8') });
      }
    }
  };
  walk(dir);
  return sources;
}

/** A rules path given by `--flag` that is not there (or cannot be read): what `check` says. */
export function unreadableRulePath(path: string, flag: string, cause: unknown): RuleDirectoryError {
  return new RuleDirectoryError(
    `the rules path ${path} does not exist or cannot be read; point --${flag} at a rule file or the folder of rule files`,
    { cause },
  );
}

/**
 * One rule file, or every rule file under a folder (readRuleSources). `flag`: the command's flag
 * that gave the path (`replay` reads two: --rules and --baseline), named in the errors.
 */
export function readRulePath(path: string, flag = 'rules'): RuleSource[] {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (error) {
    throw unreadableRulePath(path, flag, error);
  }
  if (stat.isDirectory()) return readRuleSources(path, flag);
  if (isSuiteFile(path)) {
    throw new RuleDirectoryError(
      `${path} is a rule test suite, not a rule: suites are checked and run with their rules, so point --${flag} at the folder that holds it`,
    );
  }
  if (!isRuleFile(path)) {
    throw new RuleDirectoryError(
      `${path} is not a rule file (.yaml, .yml or .json); point --${flag} at a rule file or the folder of rule files`,
    );
  }
  try {
    return [{ path: displayPath(resolve(path)), text: readFileSync(path, 'utf8') }];
  } catch (error) {
    throw new RuleDirectoryError(`${path} cannot be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
