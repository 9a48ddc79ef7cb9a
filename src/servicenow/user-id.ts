// Team user ids: `u` followed by the Base64 of the user's sys_user sys_id, exactly the shape of
// the seed's user ids, so that the id alone names the upstream record (on either backend).
import { base64ToBytes } from '../itsm/signature.js';

export function sysIdToUserId(sysId: string): string {
  return `u${btoa(sysId)}`;
}

/** The sys_id inside a user id, or null when the id is not of that shape. */
export function userIdToSysId(userId: string): string | null {
  if (!userId.startsWith('u')) return null;
  const bytes = base64ToBytes(userId.slice(1));
  if (!bytes) return null;
  const text = new TextDecoder().decode(bytes);
  return /^[\w.-]+$/.test(text) ? text : null;
}
