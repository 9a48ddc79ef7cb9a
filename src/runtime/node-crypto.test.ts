// The node:crypto signer and hasher must put out the same bytes as the WebCrypto ones
// (src/itsm/signature.ts), which Workers use: a notification signed on Node is verified on
// Workers, and an Idempotency-Key's request hash stored by one runtime is compared by the other.

import { describe, expect, it } from 'vitest';
import { sha256Hex, signBody } from '../itsm/signature.js';
import { seededRandom } from '../server/faults.js';
import { sha256HexNode, signBodyNode } from './node-crypto.js';

const random = seededRandom(16);
const int = (below: number) => Math.floor(random() * below);

/** Text from ASCII, Latin-1, CJK, astral (emoji) and lone-surrogate code units. */
function randomText(length: number): string {
  const pools = [
    () => String.fromCharCode(0x20 + int(0x5f)),
    () => String.fromCharCode(0xa0 + int(0x60)),
    () => String.fromCharCode(0x4e00 + int(0x1000)),
    () => String.fromCodePoint(0x1f300 + int(0x300)),
    () => String.fromCharCode(0xd800 + int(0x800)),
    () => String.fromCharCode(int(0x20)),
  ];
  let text = '';
  for (let i = 0; i < length; i++) text += (pools[int(pools.length)] as () => string)();
  return text;
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = int(256);
  return bytes;
}

const texts = [
  '',
  '{"account":1,"subscription":1}',
  'café ☕ 日本 🎉',
  '\u0000\uffff',
  ...Array.from({ length: 60 }, (_, i) => randomText(i < 30 ? i : int(5000))),
];
// No empty key: WebCrypto refuses one, and an API key is never empty.
const keys = ['bench-key', 'clé-🔑', randomText(80), ...texts.slice(5, 10)];

describe('signBodyNode', () => {
  it.each(texts.map((text, i) => [i, text, keys[i % keys.length] as string]))(
    'signs text #%i as the WebCrypto signer does',
    async (_, text, key) => {
      expect(signBodyNode(text, key)).toBe(await signBody(text, key));
    },
  );

  it.each([0, 1, 31, 32, 63, 64, 65, 1000, 70_000].map((length) => [length]))(
    'signs %i random bytes as the WebCrypto signer does',
    async (length) => {
      const body = randomBytes(length);
      const key = randomText(1 + int(100));
      expect(signBodyNode(body, key)).toBe(await signBody(body, key));
    },
  );

  it('answers at once, with a string, not a promise', () => {
    expect(typeof signBodyNode('{}', 'k')).toBe('string');
  });
});

describe('sha256HexNode', () => {
  it.each(texts.map((text, i) => [i, text]))(
    'hashes text #%i as the WebCrypto hasher does',
    async (_, text) => {
      expect(sha256HexNode(text)).toBe(await sha256Hex(text));
    },
  );

  it('is the lower-case hex of the FIPS 180-2 test vector', () => {
    expect(sha256HexNode('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
