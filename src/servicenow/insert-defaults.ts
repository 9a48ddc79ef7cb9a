// What an instance fills in on a new incident, problem or change_request when the insert leaves
// it out: the dictionary defaults of the task tables (opened_at now, opened_by the calling user,
// the table's New state), an incident's impact and urgency (3 - Low, from which its priority is
// derived) and a change's requested_by (the calling user) and approval (not requested). As
// upstream string values: the Table API face adds them under an insert's own values before they
// are read into the `/v1` body, so `/v1` shows the same object (state is its status; problem's
// opened_by and change's requested_by are its requester; the rest are columns of its `raw`).
// `active` and `escalation` need nothing here: every create gets them (CREATE_DEFAULTS).
import type { UnifiedType } from '../itsm/fields.js';

/** The New state of each task table: incident 1, problem 101, change_request -5. */
const NEW_STATE: Partial<Record<UnifiedType, string>> = {
  incident: '1',
  problem: '101',
  change: '-5',
};

/**
 * The defaults of a new record of the type's table; {} for tables that are not tasks.
 * `callerSysId`: the sys_user sys_id of the user inserting, or null (the application, which has
 * no sys_user record, leaves the user columns empty). `openedAt`: `YYYY-MM-DD HH:mm:ss`, UTC.
 */
export function insertDefaults(
  type: UnifiedType,
  callerSysId: string | null,
  openedAt: string,
): Record<string, string> {
  const state = NEW_STATE[type];
  if (state === undefined) return {};
  const defaults: Record<string, string> = { state, opened_at: openedAt };
  if (callerSysId) defaults.opened_by = callerSysId;
  if (type === 'incident') {
    defaults.impact = '3';
    defaults.urgency = '3';
  }
  if (type === 'change') {
    defaults.approval = 'not requested';
    if (callerSysId) defaults.requested_by = callerSysId;
  }
  return defaults;
}
