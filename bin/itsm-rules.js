#!/usr/bin/env node
// Entry point of the `itsm-rules` command: runs the TypeScript sources through tsx, so a fresh
// clone needs `npm install` and nothing else.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/runtime/cli.ts');
process.exit(await main(process.argv.slice(2)));
