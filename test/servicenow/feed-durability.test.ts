// The change feed's durability with real processes: the instance (the Table API face) and the
// connector (`itsm-rules itsm-server --servicenow`) each in their own process, the connector's
// local state in a SQLite file. Changes keep arriving on the instance while the connector is
// SIGKILLed mid-stream and started again on the same file: every version of every record comes
// out as exactly one event, none missed, none repeated.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { callHttp } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

const CONNECTOR_KEY = 'connector-key';
let face: CliProcess & { url: string };
let dir: string;

beforeAll(async () => {
  face = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    '--api-key=face-key',
    '--sn-user=integration:s3cret',
    '--sn-user=ann:pw',
  ]);
  dir = mkdtempSync(join(tmpdir(), 'itsm-rules-feed-'));
});

afterAll(async () => {
  await face?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function startConnector() {
  return spawnItsmServer(
    [
      '--port=0',
      `--db=${join(dir, 'connector.db')}`,
      `--api-key=${CONNECTOR_KEY}`,
      `--servicenow=${face.url}`,
      '--poll-interval=50',
    ],
    { ITSM_SN_USERNAME: 'integration', ITSM_SN_PASSWORD: 's3cret' },
  );
}

const onInstance = (method: string, path: string, body?: unknown) =>
  callHttp(face.url, method, `/api/now/table/${path}`, {
    auth: `Basic ${btoa('ann:pw')}`,
    ...(body !== undefined && { body }),
  });

interface FeedEvent {
  type: string;
  sysId: string;
  /** sys_mod_count of the version reported; null for a delete. */
  modCount: number | null;
}

/** Every incident event of the connector's log, oldest first. */
async function incidentEvents(url: string): Promise<FeedEvent[]> {
  const seen: FeedEvent[] = [];
  for (let cursor = 0; ; ) {
    const page = await callHttp(url, 'GET', `/v1/accounts/1/events?cursor=${cursor}`, {
      auth: `APIKey ${CONNECTOR_KEY}`,
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    for (const e of page.json.objects) {
      if (e.metadata.type !== 'incident') continue;
      const sysId = String(e.metadata.id).split('.')[1] ?? '';
      const modCount = e.type === 'delete' ? null : Number(e.metadata.raw.sys_mod_count);
      seen.push({ type: e.type, sysId, modCount });
    }
    if (page.json.remaining === 0) return seen;
    cursor = Number(page.json.cursor);
  }
}

/**
 * What the log must say of each record, given its final state on the instance: a poll sees the
 * newest version only, so versions between two polls may fold into one event, but the first
 * event is the add (or the record's only event is its delete), versions only go up (no version twice), and the last event is the final
 * version or the delete, exactly once.
 */
function checkRecord(sysId: string, events: FeedEvent[], final: number | 'deleted'): string[] {
  const problems: string[] = [];
  const mine = events.filter((e) => e.sysId === sysId);
  // A record created and deleted between two polls (or while the connector was down) was
  // never seen alive: its delete, from sys_audit_delete, is all there is to report.
  const unseen = mine.length === 1 && mine[0]?.type === 'delete';
  if (mine[0]?.type !== 'add' && !unseen) {
    problems.push(`${sysId}: first event is ${mine[0]?.type}, not add`);
  }
  const versions = mine.filter((e) => e.modCount !== null).map((e) => e.modCount as number);
  if (versions.some((v, i) => i > 0 && v <= (versions[i - 1] as number))) {
    problems.push(`${sysId}: versions repeat or go back: ${versions.join(', ')}`);
  }
  const deletes = mine.filter((e) => e.type === 'delete').length;
  if (final === 'deleted') {
    if (deletes !== 1 || mine.at(-1)?.type !== 'delete') {
      problems.push(`${sysId}: ${deletes} delete events, last event ${mine.at(-1)?.type}`);
    }
  } else if (deletes !== 0 || versions.at(-1) !== final) {
    problems.push(`${sysId}: last version ${versions.at(-1)}, want ${final}`);
  }
  return problems;
}

it('neither misses nor repeats a change across a SIGKILL of the connector', async () => {
  let connector = await startConnector();
  const finals = new Map<string, number | 'deleted'>();
  /** One round of changes on the instance: two inserts, an update of each, a delete of one. */
  const round = async () => {
    const ids: string[] = [];
    for (const text of ['a', 'b']) {
      const made = await onInstance('POST', 'incident', { short_description: text });
      ids.push(made.json.result.sys_id);
    }
    for (const id of ids) {
      await onInstance('PATCH', `incident/${id}`, { impact: '1' });
      finals.set(id, 1);
    }
    await onInstance('DELETE', `incident/${ids[0]}`);
    finals.set(ids[0] as string, 'deleted');
  };

  await round();
  await eventually(
    async () => (await incidentEvents(connector.url)).some((e) => e.type === 'delete'),
    'the first round to arrive',
  );
  // Killed in the middle of a stream of changes, some of them seen and some not.
  const more = round();
  await connector.stop('SIGKILL');
  await more;
  await round();

  connector = await startConnector();
  try {
    await round();
    const problemsOf = (events: FeedEvent[]) =>
      [...finals].flatMap(([id, final]) => checkRecord(id, events, final));
    const events = await eventually(async () => {
      const seen = await incidentEvents(connector.url);
      return problemsOf(seen).length === 0 && seen;
    }, 'the changes of every record to come out as events').catch(async (error) => {
      const seen = await incidentEvents(connector.url);
      throw new Error(`${error.message}\n${problemsOf(seen).join('\n')}\n${connector.stderr()}`);
    });
    // The log settled right: a few more polls add nothing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await incidentEvents(connector.url)).length).toBe(events.length);
  } finally {
    await connector.stop();
  }
});
