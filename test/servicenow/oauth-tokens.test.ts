// The Table API face's OAuth tokens live in the server's store (migrations/0010_oauth_tokens.sql),
// as SHA-256 hashes: a token issued before a restart of a spawned `itsm-server` on a database
// file is still accepted after it (access and refresh), the file holds no token in clear, a
// refresh token past its lifetime is refused as before (in this process, where the test moves
// the clock), expired tokens are purged as new ones are issued, and a refresh token is good only
// for the client it was issued to.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { callHttp, startTestItsm } from '../helpers/itsm.js';
import { spawnItsmServer, spawnServe, writeRules } from '../helpers/serve.js';

const TABLE = '/api/now/table';
const CLIENT = { client_id: 'client-1', client_secret: 'client-secret' };
const USERS = [{ name: 'ann', password: 'pw-ann', account: 1 }];
const CLIENTS = [
  { id: 'client-1', secret: 'client-secret' },
  { id: 'client-2', secret: 'other-secret' },
];
const DAY_MS = 24 * 60 * 60 * 1000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'itsm-rules-oauth-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function grant(base: string, form: Record<string, string>) {
  const response = await fetch(`${base}/oauth_token.do`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  return { status: response.status, json: (await response.json()) as any };
}

const passwordGrant = (base: string, client = CLIENT) =>
  grant(base, { grant_type: 'password', username: 'ann', password: 'pw-ann', ...client });
const refreshGrant = (base: string, refreshToken: string, client = CLIENT) =>
  grant(base, { grant_type: 'refresh_token', refresh_token: refreshToken, ...client });

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The rows of oauth_tokens, read from the file by a connection of the test's own. */
function tokenRows(file: string): Record<string, unknown>[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT * FROM oauth_tokens ORDER BY kind').all() as Record<
      string,
      unknown
    >[];
  } finally {
    db.close();
  }
}

describe.each([
  ['itsm-server', spawnItsmServer],
  ['serve', spawnServe],
])('OAuth tokens across a restart of %s', (command, spawn) => {
  it('accepts an access and a refresh token issued before the restart, and keeps only their hashes', async () => {
    const file = join(dir, 'itsm.db');
    // No rules: serve's engine has nothing to do; the test is about its embedded API.
    const rules = writeRules({});
    onTestFinished(() => rules.remove());
    const args = [
      '--port=0',
      `--db=${file}`,
      ...(command === 'serve' ? [`--rules=${rules.dir}`] : []),
    ];
    const env = { ITSM_SN_USERS: 'ann:pw-ann', ITSM_SN_OAUTH_CLIENTS: 'client-1:client-secret' };
    const first = await spawn(args, env);
    let granted: Awaited<ReturnType<typeof passwordGrant>>;
    let sysId: string;
    try {
      granted = await passwordGrant(first.url);
      expect(granted.status).toBe(200);
      const made = await callHttp(first.url, 'POST', `${TABLE}/incident`, {
        auth: `Bearer ${granted.json.access_token}`,
        body: { short_description: 'before the restart' },
      });
      expect(made.status, made.text).toBe(201);
      sysId = made.json.result.sys_id;
    } finally {
      expect((await first.stop()).code).toBe(0);
    }
    const { access_token: accessToken, refresh_token: refreshToken } = granted.json;

    // Every file of the database (the WAL included), byte for byte: neither token is there.
    for (const name of readdirSync(dir).filter((n) => n.startsWith('itsm.db'))) {
      const bytes = readFileSync(join(dir, name)).toString('latin1');
      expect(bytes.includes(accessToken), name).toBe(false);
      expect(bytes.includes(refreshToken), name).toBe(false);
    }
    expect(tokenRows(file)).toEqual([
      {
        token_hash: sha256(accessToken),
        kind: 'access',
        account: 1,
        user_name: 'ann',
        client_id: 'client-1',
        expires_at: expect.any(Number),
      },
      {
        token_hash: sha256(refreshToken),
        kind: 'refresh',
        account: 1,
        user_name: 'ann',
        client_id: 'client-1',
        expires_at: expect.any(Number),
      },
    ]);

    const second = await spawn(args, env);
    try {
      const read = await callHttp(second.url, 'GET', `${TABLE}/incident/${sysId}`, {
        auth: `Bearer ${accessToken}`,
      });
      expect(read.status, read.text).toBe(200);
      expect(read.json.result.sys_created_by).toBe('ann');
      const refreshed = await refreshGrant(second.url, refreshToken);
      expect(refreshed.status).toBe(200);
      expect(refreshed.json).toMatchObject({ refresh_token: refreshToken, expires_in: 1800 });
      const made = await callHttp(second.url, 'POST', `${TABLE}/incident`, {
        auth: `Bearer ${refreshed.json.access_token}`,
        body: { short_description: 'after the restart' },
      });
      expect(made.status, made.text).toBe(201);
      expect(made.json.result.sys_created_by).toBe('ann');
    } finally {
      await second.stop();
    }
  });
});

describe('OAuth token lifetimes over a database file', () => {
  let clock = Date.UTC(2026, 0, 1);
  const start = (file: string) =>
    startTestItsm({
      db: file,
      tableApi: { users: USERS, oauthClients: CLIENTS, now: () => clock },
    });

  it('refuses a refresh token after its 100 days, also after a restart', async () => {
    const file = join(dir, 'itsm.db');
    let itsm = await start(file);
    const granted = await passwordGrant(itsm.url);
    expect(granted.status).toBe(200);
    await itsm.close();

    itsm = await start(file);
    try {
      clock += 99 * DAY_MS;
      expect((await refreshGrant(itsm.url, granted.json.refresh_token)).status).toBe(200);
      clock += 1 * DAY_MS;
      const late = await refreshGrant(itsm.url, granted.json.refresh_token);
      expect(late.status).toBe(401);
      expect(late.json).toEqual({
        error: 'invalid_grant',
        error_description:
          'the refresh token is not valid or has expired; sign in again with grant_type=password',
      });
    } finally {
      await itsm.close();
    }
  });

  it('purges expired tokens from the store as new ones are issued', async () => {
    const file = join(dir, 'itsm.db');
    const itsm = await start(file);
    try {
      const old = await passwordGrant(itsm.url);
      expect(old.status).toBe(200);
      // Past the access token's 1800 s and the purge's minute; the refresh token still lives.
      clock += 1801 * 1000;
      const expired = await callHttp(itsm.url, 'GET', `${TABLE}/incident`, {
        auth: `Bearer ${old.json.access_token}`,
      });
      expect(expired.status).toBe(401);
      expect(expired.json.error.detail).toMatch(/expired.*grant_type=refresh_token/);
      const fresh = await passwordGrant(itsm.url);
      expect(fresh.status).toBe(200);
      const hashes = tokenRows(file).map((row) => row.token_hash);
      expect(hashes).not.toContain(sha256(old.json.access_token));
      expect(hashes).toContain(sha256(old.json.refresh_token));
      expect(hashes).toContain(sha256(fresh.json.access_token));
    } finally {
      await itsm.close();
    }
  });

  it('refuses a refresh token presented by another client, and an access token as a refresh token', async () => {
    const itsm = await start(join(dir, 'itsm.db'));
    try {
      const granted = await passwordGrant(itsm.url);
      const otherClient = { client_id: 'client-2', client_secret: 'other-secret' };
      const stolen = await refreshGrant(itsm.url, granted.json.refresh_token, otherClient);
      expect(stolen.status).toBe(401);
      expect(stolen.json.error).toBe('invalid_grant');
      const wrongKind = await refreshGrant(itsm.url, granted.json.access_token);
      expect(wrongKind.status).toBe(401);
      expect(wrongKind.json.error).toBe('invalid_grant');
      const asBearer = await callHttp(itsm.url, 'GET', `${TABLE}/incident`, {
        auth: `Bearer ${granted.json.refresh_token}`,
      });
      expect(asBearer.status).toBe(401);
      expect(asBearer.json.error.detail).toBe('the bearer token is not valid');
      // The client it was issued to still refreshes with it.
      expect((await refreshGrant(itsm.url, granted.json.refresh_token)).status).toBe(200);
    } finally {
      await itsm.close();
    }
  });
});
