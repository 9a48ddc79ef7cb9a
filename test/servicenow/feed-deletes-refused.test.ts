// The change feed on an instance whose ACL keeps sys_audit_delete from the integration user (admin
// only on many instances): the connector still starts, every other change is reported, the 403 is
// logged once rather than on every poll (and again only after a read succeeded and a later one
// was refused), and once it may read the table the deletes made meanwhile come out. The instance
// is the Table API face on 127.0.0.1 over real HTTP; the face has no ACLs, so the refusal comes
// from `instanceAcl`, a fake of a real instance's ACL standing between the connector and the face
// (it answers that one table 403 in the instance's words while `refuse` is on, and passes every
// other request through untouched).
import { expect, it } from 'vitest';
import type { ServiceNowConnection } from '../../src/servicenow/connector.js';
import { useInstance } from '../helpers/instance.js';

const instance = useInstance();

/** A real instance's ACL on sys_audit_delete (fake: the face has none). */
function instanceAcl() {
  const acl = {
    refuse: true,
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (acl.refuse && url.pathname.endsWith('/table/sys_audit_delete')) {
        return new Response(
          JSON.stringify({
            error: {
              message: 'User Not Authorized',
              detail: 'ACL Exception Read operation against sys_audit_delete failed',
            },
            status: 'failure',
          }),
          { status: 403, headers: { 'Content-Type': 'application/json' } },
        );
      }
      return fetch(input, init);
    }) as typeof globalThis.fetch,
  };
  return acl;
}

const connect = (acl: ReturnType<typeof instanceAcl>, logs: string[]) =>
  instance.connect({ fetch: acl.fetch, log: (line) => logs.push(line) });

/** The feed's incident events (first sign-ins also create sys_user records, left out here). */
const incidentEvents = () => instance.feedEvents((id) => id.startsWith('incident.'));

/** Polls once; resolves with the incident events it appended. */
async function pollIncidents(feed: ServiceNowConnection['feed']): Promise<number> {
  const before = (await incidentEvents()).length;
  await feed.pollOnce();
  return (await incidentEvents()).length - before;
}

const refusals = (logs: string[]) => logs.filter((l) => l.includes('read sys_audit_delete (403'));

it('reports every other change, and says once that deletes are not reported, while sys_audit_delete is refused', async () => {
  const acl = instanceAcl();
  const logs: string[] = [];
  // Refused from the start: the connector starts all the same.
  const { feed }: ServiceNowConnection = await connect(acl, logs);

  const made = await instance.asAnn('POST', 'incident', { short_description: 'printer jam' });
  expect(await pollIncidents(feed)).toBe(1);
  await instance.asAnn('PATCH', `incident/${made.sys_id}`, { impact: '1' });
  expect(await pollIncidents(feed)).toBe(1);
  expect(await pollIncidents(feed)).toBe(0);
  expect(await incidentEvents()).toEqual([
    ['add', `incident.${made.sys_id}`],
    ['update', `incident.${made.sys_id}`],
  ]);
  // Three polls, one line, naming the table, the 403 and what to do.
  expect(refusals(logs)).toHaveLength(1);
  expect(refusals(logs)[0]).toMatch(
    /deletes made on the instance are not reported.*give the user a role/,
  );
  expect(logs.filter((l) => l.includes('poll failed'))).toEqual([]);
});

it('reports the deletes made while refused once it may read, and logs a refusal again only after that', async () => {
  const acl = instanceAcl();
  const logs: string[] = [];
  acl.refuse = false;
  const { feed } = await connect(acl, logs);
  const made = await instance.asAnn('POST', 'incident', { short_description: 'vpn down' });
  expect(await pollIncidents(feed)).toBe(1);

  acl.refuse = true;
  await instance.asAnn('DELETE', `incident/${made.sys_id}`);
  expect(await pollIncidents(feed)).toBe(0);
  expect(await pollIncidents(feed)).toBe(0);
  expect(refusals(logs)).toHaveLength(1);

  // Allowed again: the delete made while refused comes out, and the log says it can read.
  acl.refuse = false;
  expect(await pollIncidents(feed)).toBe(1);
  expect(await incidentEvents()).toEqual([
    ['add', `incident.${made.sys_id}`],
    ['delete', `incident.${made.sys_id}`],
  ]);
  expect(logs.filter((l) => l.includes('sys_audit_delete can be read again'))).toHaveLength(1);

  // Refused again after it recovered: said a second time, once.
  acl.refuse = true;
  await feed.pollOnce();
  await feed.pollOnce();
  expect(refusals(logs)).toHaveLength(2);
});
