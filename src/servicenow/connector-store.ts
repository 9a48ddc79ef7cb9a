// The connector's store: objects in the instance (the ServiceNow adapter of the object port),
// everything the instance cannot keep (events, idempotency records, webhooks, upstream version
// marks, feed watermarks) in the local database. The routes see one `ItsmStore`, as over the
// embedded store, so routes, validation, events and webhooks are the same code on both.
import type { ItsmStore, ObjectStore, UpstreamStateStore } from '../storage/port.js';

type Remote = ObjectStore & Required<Pick<ObjectStore, 'writeUpstream'>>;

/** `remotes`: the object store of each account served (one instance, or one connection, each). */
export function createConnectorStore(
  local: ItsmStore & UpstreamStateStore,
  remotes: ReadonlyMap<number, Remote>,
): ItsmStore & UpstreamStateStore {
  const remoteOf = (account: number): Remote => {
    const remote = remotes.get(account);
    // The routes answer 404 for an account not served before reaching the store.
    if (!remote) throw new Error(`account ${account} is not served by this connector`);
    return remote;
  };
  return {
    getObject: (account, id) => remoteOf(account).getObject(account, id),
    getObjects: (account, ids) => remoteOf(account).getObjects(account, ids),
    listObjects: (query) => remoteOf(query.account).listObjects(query),
    findByUpstreamIds: (account, rawType, ids) =>
      remoteOf(account).findByUpstreamIds(account, rawType, ids),
    nextCounter: (account, name) => remoteOf(account).nextCounter(account, name),
    writeUpstream: (write, previous, then) =>
      remoteOf(write.kind === 'delete' ? write.account : write.object.account).writeUpstream(
        write,
        previous,
        then,
      ),
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
