// Types of bin/build-state.js (plain JavaScript: bin/ runs before any TypeScript tooling).
export const ROOT: string;
export const SOURCES: string;
export const BUILD: string;
export function hasSources(): boolean;
export function buildIsCurrent(): boolean;
