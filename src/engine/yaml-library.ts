// The yaml library, for the rule files the subset reader (yaml-subset.ts) leaves to it and for the
// console's rendering of a rule. Rule files in plain YAML never need it, so it is not imported
// here: loading it cost `check` and `serve` tens of milliseconds and megabytes at every start.
// Each runtime provides it once (src/runtime/rule-files.ts loads it on first use on Node; the
// Worker imports it with its bundle), and the loader asks for it only when a file needs it.
import type * as Yaml from 'yaml';

/** What the project uses of the library. */
export type YamlLibrary = Pick<
  typeof Yaml,
  'LineCounter' | 'isMap' | 'isScalar' | 'isSeq' | 'parse' | 'parseDocument' | 'stringify'
>;

export class YamlLibraryMissingError extends Error {
  readonly code = 'YAML_LIBRARY_MISSING';
  constructor() {
    super(
      'the yaml library was not provided: a runtime that loads rule files calls provideYamlLibrary first (src/runtime/rule-files.ts does on Node)',
    );
    this.name = 'YamlLibraryMissingError';
  }
}

let load: (() => YamlLibrary) | undefined;
let library: YamlLibrary | undefined;

/** Makes the library available; `loader` runs on first need, once. */
export function provideYamlLibrary(loader: () => YamlLibrary): void {
  load = loader;
  library = undefined;
}

/** The library, loaded now if it was not yet. */
export function yamlLibrary(): YamlLibrary {
  if (library === undefined) {
    if (load === undefined) throw new YamlLibraryMissingError();
    library = load();
  }
  return library;
}
