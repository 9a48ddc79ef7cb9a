// The signing and hashing of src/itsm/signature.ts on node:crypto, answering at once: the same
// bytes out as the WebCrypto versions, which Workers use. WebCrypto on Node hands each HMAC and
// digest to the thread pool and back through a promise; in the API process that was about a fifth
// of busy CPU (a signature per webhook delivery, a hash per write with an Idempotency-Key).
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

// Imported keys by secret: a KeyObject spares createHmac from copying the key on every call. Few
// keys are ever live (the current one and those of a rotation), so a small map is enough; it is
// cleared rather than grown when keys keep changing.
const hmacKeys = new Map<string, KeyObject>();

export function hmacKey(secret: string): KeyObject {
  let key = hmacKeys.get(secret);
  if (!key) {
    if (hmacKeys.size >= 16) hmacKeys.clear();
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    hmacKeys.set(secret, key);
  }
  return key;
}

/** signBody (BodySigner) on node:crypto. */
export function signBodyNode(body: string | Uint8Array, key: string): string {
  return createHmac('sha256', hmacKey(key)).update(body).digest('base64');
}

/** sha256Hex (TextHasher) on node:crypto. */
export function sha256HexNode(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
