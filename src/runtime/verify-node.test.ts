// The Node fast path of signature verification must keep the exact contract of the WebCrypto one
// (src/itsm/signature.ts), which Workers use: every case answers the same from both, and the
// expected answers come from node:crypto signatures computed here.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifySignature } from '../itsm/signature.js';
import { verifySignatureNode } from './node.js';

const BODY = '{"account":7,"subscription":1}';
const sign = (body: string, key: string) => createHmac('sha256', key).update(body).digest('base64');

describe('verifySignatureNode', () => {
  it.each([
    ['a signature by the key', sign(BODY, 'k1'), ['k1'], true],
    ['a signature by an older key during a rotation', sign(BODY, 'old'), ['k1', 'old'], true],
    ['a signature by another key', sign(BODY, 'other'), ['k1', 'old'], false],
    ['a signature of another body', sign(`${BODY} `, 'k1'), ['k1'], false],
    ['surrounding whitespace', ` ${sign(BODY, 'k1')}\n`, ['k1'], true],
    ['no signature', undefined, ['k1'], false],
    ['an empty signature', '', ['k1'], false],
    ['Base64 without padding', sign(BODY, 'k1').replace(/=+$/, ''), ['k1'], false],
    ['URL-safe Base64', sign(BODY, 'k1').replace(/\+/g, '-').replace(/\//g, '_'), ['k1'], null],
    ['a hex digest', createHmac('sha256', 'k1').update(BODY).digest('hex'), ['k1'], false],
    ['a truncated signature', sign(BODY, 'k1').slice(0, 24), ['k1'], false],
    ['no keys configured', sign(BODY, 'k1'), [], false],
  ])('answers %s as the WebCrypto verifier does', async (_, signature, keys, expected) => {
    const fast = await verifySignatureNode(BODY, signature, keys);
    const reference = await verifySignature(BODY, signature, keys);
    expect(fast).toBe(reference);
    // null: whichever way the reference decides (URL-safe Base64 is only valid without - and _).
    if (expected !== null) expect(fast).toBe(expected);
  });

  it('verifies the exact bytes of a binary body', async () => {
    const bytes = new Uint8Array([0, 255, 10, 13, 128]);
    const signature = createHmac('sha256', 'k1').update(bytes).digest('base64');
    expect(await verifySignatureNode(bytes, signature, ['k1'])).toBe(true);
    expect(await verifySignatureNode(bytes.slice(1), signature, ['k1'])).toBe(false);
  });
});
