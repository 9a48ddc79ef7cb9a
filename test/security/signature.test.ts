// Security: signatures and API keys are compared in constant time. What a test can prove without
// timing anything (tests never assert on time): that verification goes through WebCrypto's HMAC
// verify (constant time by specification) or node:crypto's timingSafeEqual, never through a
// string or byte compare of our own, for every key (so the time does not tell which key
// matched); and that the string compare of API keys has no early exit, by its structure.
// Whether V8 and the platform really run those in constant time is their property, not ours.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { signBody, timingSafeEqual, verifySignature } from '../../src/itsm/signature.js';
import { verifySignatureNode } from '../../src/runtime/node.js';

const KEYS = ['current-key', 'previous-key', 'older-key'];

afterEach(() => {
  vi.restoreAllMocks();
});

describe('verifySignature (WebCrypto, every runtime)', () => {
  it('checks the signature with crypto.subtle.verify, once per key, even when the first key matches', async () => {
    const body = '{"account": 1, "subscription": 2}';
    const signature = await signBody(body, 'current-key');
    const verify = vi.spyOn(crypto.subtle, 'verify');

    expect(await verifySignature(body, signature, KEYS)).toBe(true);

    // A compare of our own (signBody(...) === signature) would never call verify at all, and an
    // early return on the first match would call it once: both tell an attacker something.
    expect(verify).toHaveBeenCalledTimes(KEYS.length);
    for (const call of verify.mock.calls) expect(call[0]).toBe('HMAC');
  });

  it('checks every key the same way for a signature that matches none', async () => {
    const body = '{"account": 1}';
    const signature = await signBody(body, 'someone-else');
    const verify = vi.spyOn(crypto.subtle, 'verify');

    expect(await verifySignature(body, signature, KEYS)).toBe(false);
    expect(verify).toHaveBeenCalledTimes(KEYS.length);
  });

  it.each([
    ['the first byte', 0],
    ['a middle byte', 16],
    ['the last byte', 31],
  ])('refuses a signature that differs in %s', async (_where, index) => {
    const body = 'body';
    const bytes = Buffer.from(await signBody(body, 'current-key'), 'base64');
    bytes[index] = (bytes[index] as number) ^ 1;
    expect(await verifySignature(body, bytes.toString('base64'), KEYS)).toBe(false);
  });
});

describe('verifySignatureNode (node:crypto, the Node receiver)', () => {
  it('agrees with verifySignature on valid, altered and foreign signatures', async () => {
    const body = '{"account": 7}';
    const valid = await signBody(body, 'previous-key');
    const altered = Buffer.from(valid, 'base64');
    altered[31] = (altered[31] as number) ^ 0x80;
    for (const signature of [valid, altered.toString('base64'), await signBody(body, 'x'), '']) {
      expect(await verifySignatureNode(body, signature, KEYS)).toBe(
        await verifySignature(body, signature, KEYS),
      );
    }
  });

  it('compares with crypto.timingSafeEqual for every key, without leaving the loop early', () => {
    // node:crypto's exports cannot be spied on from an ES module; the structure is what can be
    // checked: the digest comparison is crypto's timingSafeEqual and the loop has no exit.
    const source = verifySignatureNode.toString();
    expect(source).toMatch(/timingSafeEqual\)?\(/);
    const loop = source.slice(source.indexOf('for ('));
    expect(loop).not.toMatch(/return\s+true|break/);
    expect(source).not.toMatch(/\.equals\(|===\s*given|given\s*===/);
  });
});

describe('timingSafeEqual (API keys of the admin routes)', () => {
  it.each([
    ['equal strings', 'key-123', 'key-123', true],
    ['a difference in the first character', 'xey-123', 'key-123', false],
    ['a difference in the last character', 'key-124', 'key-123', false],
    ['a prefix', 'key-12', 'key-123', false],
    ['a longer string', 'key-1234', 'key-123', false],
    ['the empty string against a key', '', 'key-123', false],
    ['multi-byte characters', 'clé-é', 'clé-é', true],
    ['characters that differ only in their UTF-8 bytes', 'é', 'è', false],
  ])('gives the right answer for %s', (_name, a, b, equal) => {
    expect(timingSafeEqual(a, b)).toBe(equal);
  });

  it('walks every byte of the longer input, with no return or break inside the loop', () => {
    const source = timingSafeEqual.toString();
    const loopStart = source.indexOf('for (');
    expect(loopStart).toBeGreaterThan(-1);
    const loop = source.slice(loopStart, source.indexOf('}', loopStart));
    expect(loop).toMatch(/Math\.max\(/);
    expect(loop).not.toMatch(/return|break/);
    // The result is decided once, after the loop, from the accumulated difference.
    expect(source).toMatch(/return diff === 0/);
  });
});
