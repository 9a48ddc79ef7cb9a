// Team users: `team/users` and `team/users/{id}`, read from the account's sys_user records.
import type { Hono } from 'hono';
import { type AppEnv, objectList, pageParams, type ServerDeps } from './context.js';
import { jsonResponse, notFound } from './errors.js';
import { USER_RAW_TYPE, userFromRecord, userIdToSysId } from './users.js';

export function registerTeamRoutes(app: Hono<AppEnv>, deps: ServerDeps): void {
  app.get('/v1/accounts/:account/team/users', async (c) => {
    const { page, pageSize, offset } = pageParams(c);
    const { total, objects } = await deps.store.listObjects({
      account: c.get('account'),
      type: 'object',
      rawType: USER_RAW_TYPE,
      offset,
      limit: pageSize,
    });
    return jsonResponse(
      200,
      objectList(objects.map(userFromRecord), { page, pageSize, offset, total }, 'team'),
    );
  });

  app.get('/v1/accounts/:account/team/users/:user', async (c) => {
    const id = c.req.param('user');
    const sysId = userIdToSysId(id);
    const [record] = sysId
      ? await deps.store.findByUpstreamIds(c.get('account'), USER_RAW_TYPE, [sysId])
      : [];
    if (!record)
      throw notFound(`no user with id ${JSON.stringify(id)} in account ${c.get('account')}`);
    return jsonResponse(200, userFromRecord(record));
  });
}
