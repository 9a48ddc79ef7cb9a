// Every test file of the node and connector projects starts with the yaml library provided to the
// rule loader, as each runtime does (src/runtime/rule-files.ts on Node, worker.ts in the Worker):
// tests call loadRules and parseSource directly, with files the loader's subset reader leaves to
// the library.
import * as yaml from 'yaml';
import { provideYamlLibrary } from '../../src/engine/yaml-library.js';

provideYamlLibrary(() => yaml);
