// Unit tests of the webhook signature (spec 7): standard Base64 of HMAC-SHA256 over the raw body
// bytes, keyed with the application API key. Expected values come from node:crypto, never from
// the code under test.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signBody, timingSafeEqual, verifySignature } from './signature.js';

const KEY = 'test-api-key';
const BODY = '{"account":123,"subscription":1}';

/** The signature computed independently of signature.ts. */
function hmacBase64(body: string | Uint8Array, key: string | Uint8Array): string {
  return createHmac('sha256', key).update(body).digest('base64');
}

describe('signBody', () => {
  it('matches the RFC 4231 HMAC-SHA256 test vector, Base64-encoded with padding', async () => {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    const expected = Buffer.from(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      'hex',
    ).toString('base64');
    const signature = await signBody('what do ya want for nothing?', 'Jefe');
    expect(signature).toBe(expected);
    expect(signature).toHaveLength(44);
    expect(signature.endsWith('=')).toBe(true);
  });

  it('equals node:crypto HMAC-SHA256 of a notification body keyed with the API key', async () => {
    expect(await signBody(BODY, KEY)).toBe(hmacBase64(BODY, KEY));
  });

  it('signs the empty body of a registration handshake', async () => {
    expect(await signBody('', KEY)).toBe(hmacBase64('', KEY));
  });

  it('signs the UTF-8 bytes of a string body', async () => {
    const body = '{"note":"café ☕ 日本"}';
    expect(await signBody(body, KEY)).toBe(hmacBase64(Buffer.from(body, 'utf8'), KEY));
  });

  it('gives the same signature for a string and for its bytes', async () => {
    const bytes = new TextEncoder().encode(BODY);
    expect(await signBody(bytes, KEY)).toBe(await signBody(BODY, KEY));
  });

  it('uses the UTF-8 bytes of a non-ASCII key', async () => {
    const key = 'clé-ключ';
    expect(await signBody(BODY, key)).toBe(hmacBase64(BODY, Buffer.from(key, 'utf8')));
  });
});

describe('verifySignature', () => {
  const valid = hmacBase64(BODY, KEY);

  it('accepts the right signature of the exact body', async () => {
    expect(await verifySignature(BODY, valid, [KEY])).toBe(true);
  });

  it('accepts the right signature of the body given as bytes', async () => {
    expect(await verifySignature(new TextEncoder().encode(BODY), valid, [KEY])).toBe(true);
  });

  it('accepts the signature of an empty handshake body', async () => {
    expect(await verifySignature('', hmacBase64('', KEY), [KEY])).toBe(true);
  });

  it('rejects a signature made with another key', async () => {
    expect(await verifySignature(BODY, hmacBase64(BODY, 'other-key'), [KEY])).toBe(false);
  });

  it.each([
    ['a changed account', '{"account":124,"subscription":1}'],
    ['added whitespace', '{"account": 123,"subscription":1}'],
    ['a trailing newline', `${BODY}\n`],
    ['the form-encoded body', 'account=123'],
    ['an empty body', ''],
  ])('rejects a tampered body (%s)', async (_label, tampered) => {
    expect(await verifySignature(tampered, valid, [KEY])).toBe(false);
  });

  it.each([
    ['not Base64 at all', 'not a signature!'],
    ['Base64 of the wrong length', Buffer.from('short').toString('base64')],
    ['the hex digest instead of Base64', createHmac('sha256', KEY).update(BODY).digest('hex')],
    ['a signature with one character changed', `${valid[0] === 'A' ? 'B' : 'A'}${valid.slice(1)}`],
    ['a truncated signature', valid.slice(0, 40)],
  ])('rejects garbage: %s', async (_label, signature) => {
    expect(await verifySignature(BODY, signature, [KEY])).toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['null', null],
    ['undefined', undefined],
  ])('rejects a missing signature (%s)', async (_label, signature) => {
    expect(await verifySignature(BODY, signature, [KEY])).toBe(false);
  });

  it('rejects everything when no key is configured', async () => {
    expect(await verifySignature(BODY, valid, [])).toBe(false);
  });

  it('accepts a signature made with any of several keys, so that keys can be rotated', async () => {
    const keys = ['old-key', KEY, 'new-key'];
    for (const key of keys) {
      expect(await verifySignature(BODY, hmacBase64(BODY, key), keys)).toBe(true);
    }
    expect(await verifySignature(BODY, hmacBase64(BODY, 'retired-key'), keys)).toBe(false);
  });
});

describe('timingSafeEqual', () => {
  it.each([
    ['equal strings', 'test-api-key', 'test-api-key', true],
    ['two empty strings', '', '', true],
    ['equal non-ASCII strings', 'clé ☕', 'clé ☕', true],
    ['a different last character', 'test-api-key', 'test-api-kez', false],
    ['a different first character', 'test-api-key', 'Test-api-key', false],
    ['a prefix of the other', 'test-api', 'test-api-key', false],
    ['a longer string', 'test-api-key!', 'test-api-key', false],
    ['an empty and a non-empty string', '', 'test-api-key', false],
    ['strings that differ only after a NUL', 'a\u0000b', 'a\u0000c', false],
  ])('compares %s', (_label, a, b, equal) => {
    expect(timingSafeEqual(a, b)).toBe(equal);
    expect(timingSafeEqual(b, a)).toBe(equal);
  });
});
