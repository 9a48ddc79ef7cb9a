// A text file as the command-line tools read their inputs (event files, event exports, user
// lists): UTF-8, without the byte-order mark some editors put first (Windows Notepad), which
// JSON.parse would take for a stray character. Rule files are read the same way (engine/load.ts).
import { readFileSync } from 'node:fs';

export function readTextFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
}
