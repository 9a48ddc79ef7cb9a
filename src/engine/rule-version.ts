// Which version of the rules acted: the rule set's version is the SHA-256 (WebCrypto, so the same
// on Node and Workers) of every rule's id and the SHA-256 of its file's text, and each rule
// carries the SHA-256 of its own file. Run records keep both, so `/runs?rule_version=` answers
// "what did this version do" and a matched rule's hash says which text of it acted, across
// reloads and deploys. Where the folder lies is left out: the same files give the same version
// whether `serve` reads them from ./rules or /etc/itsm/rules, and in the Worker's bundle.
// Computed once per loaded rule set and kept beside it.
import { sha256Hex } from '../itsm/signature.js';
import type { RuleSet } from './load.js';

export interface RuleSetVersion {
  /** Hex SHA-256 of the rules' ids and file hashes (sorted by id): the same files, the same version. */
  version: string;
  /** Hex SHA-256 of each rule's file, by rule id. */
  files: Record<string, string>;
}

const versions = new WeakMap<RuleSet, Promise<RuleSetVersion>>();

/** The version of the rule set (computed once per set; a reload makes a new set). */
export function ruleSetVersion(ruleSet: RuleSet): Promise<RuleSetVersion> {
  let version = versions.get(ruleSet);
  if (!version) {
    version = computeVersion(ruleSet);
    versions.set(ruleSet, version);
  }
  return version;
}

async function computeVersion(ruleSet: RuleSet): Promise<RuleSetVersion> {
  // The text as written when the loader was given it; a set assembled from rules alone (a test,
  // a subset of rules) hashes each rule's parsed content instead.
  const texts = new Map((ruleSet.sources ?? []).map((source) => [source.path, source.text]));
  const rules = [...ruleSet.rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const files: Record<string, string> = {};
  const parts: string[] = [];
  for (const rule of rules) {
    const text = texts.get(rule.file) ?? JSON.stringify(rule.source);
    files[rule.id] = await sha256Hex(text);
    parts.push(`${rule.id}\u0000${files[rule.id]}`);
  }
  return { version: await sha256Hex(parts.join('\n')), files };
}
