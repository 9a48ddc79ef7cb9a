// Team users. A user is a `sys_user` generic object of the account; its id is `u` followed by
// the Base64 of its sys_id, exactly the shape of the seed's user ids, so the id alone tells the
// upstream record. The name is first and last name joined, and follows updates of the record.
import type { User } from '../itsm/schemas.js';
import { sysIdToUserId } from '../servicenow/user-id.js';
import type { StoredObject } from '../storage/port.js';

export { sysIdToUserId, userIdToSysId } from '../servicenow/user-id.js';

export const USER_RAW_TYPE = 'sys_user';

export function userFromRecord(record: StoredObject): User {
  const fields = record.fields;
  const text = (key: string) => (typeof fields[key] === 'string' ? (fields[key] as string) : '');
  const name =
    [text('first_name'), text('last_name')].filter(Boolean).join(' ') || text('name') || undefined;
  const email = text('email') || undefined;
  return {
    type: 'user',
    api: 'team',
    id: sysIdToUserId(record.upstreamId),
    ...(name !== undefined && { name }),
    ...(email !== undefined && { email }),
  };
}
