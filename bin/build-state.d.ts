// Types of bin/build-state.js (plain JavaScript: bin/ runs before any TypeScript tooling).
export const ROOT: string;
export const BUILD: string;
export function hasSources(root?: string): boolean;
export function buildIsCurrent(root?: string): boolean;
