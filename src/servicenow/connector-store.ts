// The connector's store: objects in the instance (the ServiceNow adapter of the object port),
// everything the instance cannot keep (events, idempotency records, webhooks, upstream version
// marks, feed watermarks) in the local database. The routes see one `ItsmStore`, as over the
// embedded store, so routes, validation, events and webhooks are the same code on both.
import type { ItsmStore, ObjectStore, UpstreamStateStore } from '../storage/port.js';

type Remote = ObjectStore & Required<Pick<ObjectStore, 'writeUpstream'>>;

/**
 * `remoteOf`: the object store of an account served (one instance, or one connection to it,
 * each); it throws for an account not served (the routes answer 404 before that).
 */
export function createConnectorStore(
  local: ItsmStore & UpstreamStateStore,
  remoteOf: (account: number) => Promise<Remote>,
): ItsmStore & UpstreamStateStore {
  return {
    getObject: async (account, id) => (await remoteOf(account)).getObject(account, id),
    getObjects: async (account, ids) => (await remoteOf(account)).getObjects(account, ids),
    listObjects: async (query) => (await remoteOf(query.account)).listObjects(query),
    findByUpstreamIds: async (account, rawType, ids) =>
      (await remoteOf(account)).findByUpstreamIds(account, rawType, ids),
    nextCounter: async (account, name) => (await remoteOf(account)).nextCounter(account, name),
    writeUpstream: async (write, previous, then) =>
      (
        await remoteOf(write.kind === 'delete' ? write.account : write.object.account)
      ).writeUpstream(write, previous, then),
    async commit(input) {
      if (input.write.kind !== 'upstream') {
        // Every write path goes through writeUpstream first; anything else would store an
        // object locally that the instance never sees.
        throw new Error(
          `the connector store keeps no objects: a ${input.write.kind} must be written upstream first`,
        );
      }
      return local.commit(input);
    },
    getIdempotencyRecord: (account, key) => local.getIdempotencyRecord(account, key),
    purgeIdempotencyRecords: (before) => local.purgeIdempotencyRecords(before),
    holdKey: (account, key, holder, now, expiresAt) =>
      local.holdKey(account, key, holder, now, expiresAt),
    releaseKey: (account, key, holder) => local.releaseKey(account, key, holder),
    listEvents: (account, after, limit) => local.listEvents(account, after, limit),
    eventBounds: (account) => local.eventBounds(account),
    listEventAccounts: () => local.listEventAccounts(),
    listWebhooks: (appId) => local.listWebhooks(appId),
    addWebhook: (appId, url, created) => local.addWebhook(appId, url, created),
    getWebhook: (appId, id) => local.getWebhook(appId, id),
    deleteWebhook: (appId, id) => local.deleteWebhook(appId, id),
    getUpstreamMarks: (account, table, ids) => local.getUpstreamMarks(account, table, ids),
    getWatermark: (account, table) => local.getWatermark(account, table),
    setWatermark: (account, table, value) => local.setWatermark(account, table, value),
    close: () => local.close(),
  };
}
