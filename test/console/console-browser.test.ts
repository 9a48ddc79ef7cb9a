// The operator console in a real headless Chromium (Debian's `chromium` package, driven by
// playwright-core, which brings no browser of its own), against `itsm-rules serve` as startEngine
// runs it on 127.0.0.1 with the console's fixture rules: sign in, watch a new incident's run
// arrive live, filter by its INC number, read why a rule did not match, follow the object's
// timeline, sign out; retry a parked action (a desk incident whose endpoint, a test server,
// answers 503 until it recovers); a wrong key; an expired session (the engine's session clock is
// moved).
// Each page is saved as a screenshot under test/screenshots/ (git-ignored).
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSS_PATH, JS_PATH } from '../../src/console/assets.js';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import { eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../helpers/serve.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = 'test/screenshots';
const TIMEOUT = 90_000;
const TTL_MS = 30 * 60 * 1000;

let engine: TestEngine;
let browser: BrowserContext;
let page: Page;
let profile: string;
let rulesDir: string;
let desk: TestReceiver;
/** The service desk's endpoint: 503 while down; the calls it accepted. */
const deskState = { down: true, accepted: 0 };
let clock = Date.now();
/** Every URL the browser asked for, and the answers that were not 2xx or 3xx. */
const requested: string[] = [];
const refused: string[] = [];

const shoot = (name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  desk = await startReceiver({
    answer: () => {
      if (deskState.down) return { status: 503, body: 'down for maintenance' };
      deskState.accepted++;
      return { status: 200, body: 'ok' };
    },
  });
  // The console's rules and the desk rule whose `http` action parks while the desk is down.
  rulesDir = mkdtempSync(join(tmpdir(), 'itsm-rules-console-'));
  cpSync('test/fixtures/console-rules', rulesDir, { recursive: true });
  cpSync('test/fixtures/console-parked-rules', rulesDir, { recursive: true });
  engine = await startTestEngine({
    rulesDir,
    console: { sessionTtlMs: TTL_MS, now: () => clock },
    httpAllow: [new URL(desk.url).host],
    secrets: (name) => (name === 'DESK_URL' ? desk.url : undefined),
    // No retry on the clock: the operator's click is what retries it.
    parkRetry: { baseMs: 600_000 },
  });
  profile = mkdtempSync(join(tmpdir(), 'itsm-rules-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport: { width: 1280, height: 860 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  browser.on('request', (request) => requested.push(request.url()));
  browser.on('response', (response) => {
    if (response.status() >= 400) refused.push(`${response.status()} ${response.url()}`);
  });
  browser.on('requestfailed', (request) => {
    // The live list does not follow the redirect that ends a session (it goes to sign in
    // instead): Chromium reports that redirect as a fetch it aborted, not a failed answer.
    const aborted = request.failure()?.errorText === 'net::ERR_ABORTED';
    if (!(aborted && request.resourceType() === 'fetch')) refused.push(`failed ${request.url()}`);
  });
  // The action forms ask for confirmation first: the operator says yes.
  page.on('dialog', (dialog) => void dialog.accept());
}, TIMEOUT);

afterAll(async () => {
  await browser?.close();
  await engine?.close();
  await desk?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (rulesDir) rmSync(rulesDir, { recursive: true, force: true });
});

/** The text of the first element `selector` finds, once there is one (playwright-core has no expect). */
async function textOf(selector: string | ReturnType<Page['locator']>): Promise<string> {
  const locator = typeof selector === 'string' ? page.locator(selector).first() : selector.first();
  await locator.waitFor();
  return (await locator.textContent()) ?? '';
}

async function signIn(key: string) {
  await page.goto(`${engine.url}/`);
  await page.waitForURL(/\/console\/sign-in/);
  await page.fill('input[name="key"]', key);
  await page.click('button[type="submit"]');
}

describe('the operator console in a browser', () => {
  it(
    'refuses a wrong key and stays on the sign-in page',
    async () => {
      await signIn('wrong-key');
      expect(await textOf('.notice.bad')).toContain('That is not the engine');
      expect(new URL(page.url()).pathname).toBe('/console/sign-in');
      expect(await page.content()).not.toContain('wrong-key');
      await shoot('sign-in-refused');
    },
    TIMEOUT,
  );

  it(
    'signs in, shows a new run live, filters by INC number, explains a rule, follows the timeline, signs out',
    async () => {
      await signIn(TEST_API_KEY);
      await page.waitForURL(`${engine.url}/`);
      expect(await textOf('h1')).toBe('Overview');
      expect(await page.content()).not.toContain(TEST_API_KEY);

      await page.click('nav >> text=Runs');
      await page.waitForURL(/\/console\/runs$/);
      await page.waitForSelector('.live.on');
      // An incident made through the API while the page is open: its run appears without a reload.
      const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
        body: { description: 'Printer on fire', impact: 'high', urgency: 'high', priority: 'low' },
      });
      expect(created.status).toBe(201);
      const row = page.locator('tr.new', { hasText: 'INC0010001' }).first();
      await row.waitFor({ timeout: 30_000 });
      await shoot('runs');

      await page.fill('input[name="object"]', 'INC0010001');
      await page.click('form.filters button[type="submit"]');
      await page.waitForURL(/object=INC0010001/);
      const objects = await page.locator('tbody tr a.object').allTextContents();
      expect(objects.length).toBeGreaterThanOrEqual(2);
      expect(new Set(objects)).toEqual(new Set(['INC0010001']));

      // The add event's run: escalate-major-incidents acted, note-critical's condition was false.
      await page.locator('tbody tr', { hasText: 'add' }).locator('a', { hasText: '#' }).click();
      await page.waitForURL(/\/console\/runs\/\d+$/);
      const why = await textOf('tr[data-rule="note-critical"] .why li');
      expect(why).toContain('/when: {"==":[{"var":"object.priority"},"critical"]} is false');
      expect(why).toContain('because {"var":"object.priority"} is "low"');
      expect(await textOf('table.changes')).toContain('Printer on fire');
      expect(await textOf('table.calls')).toContain('escalate incident');
      expect(await page.locator('ol.chain li').count()).toBe(2);
      await shoot('run');

      await page.locator('.card a', { hasText: 'INC0010001' }).click();
      await page.waitForURL(/\/console\/objects\//);
      expect(await textOf('h1')).toContain('INC0010001');
      const timeline = page.locator('ol.timeline > li');
      expect(await timeline.count()).toBeGreaterThanOrEqual(2);
      expect(await timeline.nth(1).textContent()).toContain('priority');
      await shoot('object');

      await page.click('nav >> text=Rules');
      expect(await textOf('tr[data-rule="escalate-major-incidents"]')).toContain(
        'High impact and high urgency',
      );
      await shoot('rules');
      await page.click('a >> text=escalate-major-incidents');
      expect(await textOf('pre')).toContain('escalate:');
      await shoot('rule');

      await page.goto(`${engine.url}/`);
      await page.waitForSelector('h1');
      expect(
        await page.locator('tr[data-rule="escalate-major-incidents"] svg.spark rect.hit').count(),
      ).toBe(1);
      await shoot('overview');

      await page.click('header >> text=Sign out');
      await page.waitForURL(/\/console\/sign-in$/);
      await page.goto(`${engine.url}/console/runs`);
      await page.waitForURL(/\/console\/sign-in$/);
      await page.waitForSelector('input[name="key"]');
    },
    TIMEOUT,
  );

  it(
    'lists a parked action on the overview and retries it once the endpoint is back',
    async () => {
      const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
        body: { category: 'desk', description: 'Badge reader broken' },
      });
      expect(created.status).toBe(201);
      const parkedList = async () => (await engine.call('GET', '/admin/parked')).json.objects;
      await eventually(async () => (await parkedList()).length === 1, 'the desk incident to park');

      await signIn(TEST_API_KEY);
      await page.waitForURL(`${engine.url}/`);
      const row = page.locator('#parked-work tr[data-parked]');
      expect(await row.count()).toBe(1);
      const text = await textOf(row);
      expect(text).toContain('INC0010002');
      expect(text).toContain('503');
      expect(await textOf('#parked-work .badge.parked')).toBe('1 parked');
      await page.locator('#parked-work').scrollIntoViewIfNeeded();
      await shoot('overview-parked');

      // The parked count on the Runs page leads back to the list.
      await page.click('nav >> text=Runs');
      await page.waitForURL(/\/console\/runs$/);
      expect(await textOf('#parked-count')).toBe('1 parked');

      await page.goto(`${engine.url}/`);
      deskState.down = false;
      await page.locator('#parked-work tr[data-parked] button', { hasText: 'Retry now' }).click();
      await page.waitForURL(/\/\?retried=1#parked-work$/);
      expect(await textOf('.notice')).toContain('Retried 1 parked object now');

      await eventually(async () => (await parkedList()).length === 0, 'the object to unpark');
      await page.goto(`${engine.url}/console/runs?object=INC0010002`);
      const runRow = page.locator('tbody tr', { hasText: 'tell-the-desk' });
      expect(await textOf(runRow.locator('.badge'))).toBe('done');
      expect(await page.locator('tbody .badge.parked').count()).toBe(0);
      expect(deskState.accepted).toBe(1);

      await page.goto(`${engine.url}/`);
      expect(await textOf('#parked-work')).toContain('Nothing is parked');
      await page.click('header >> text=Sign out');
      await page.waitForURL(/\/console\/sign-in$/);
    },
    TIMEOUT,
  );

  it(
    'answers Run scheduled rules now with the overview, which a reload reads again rather than running them twice',
    async () => {
      await signIn(TEST_API_KEY);
      await page.waitForURL(`${engine.url}/`);
      await page.click('button >> text=Run scheduled rules now');
      expect(await textOf('.notice')).toMatch(/^Scheduled rules run at /);
      expect(page.url()).toBe(`${engine.url}/`);
      const navigations: string[] = [];
      const record = (request: {
        isNavigationRequest(): boolean;
        method(): string;
        url(): string;
      }) => {
        if (request.isNavigationRequest()) navigations.push(`${request.method()} ${request.url()}`);
      };
      page.on('request', record);
      try {
        await page.reload();
        await page.waitForSelector('h1');
      } finally {
        page.off('request', record);
      }
      expect(navigations).toEqual([`GET ${engine.url}/`]);
      expect(await page.locator('.notice').count()).toBe(0);
      await page.click('header >> text=Sign out');
      await page.waitForURL(/\/console\/sign-in$/);
    },
    TIMEOUT,
  );

  it(
    'sends an expired session back to sign in',
    async () => {
      await signIn(TEST_API_KEY);
      await page.waitForURL(`${engine.url}/`);
      clock += TTL_MS + 1;
      try {
        await page.click('nav >> text=Runs');
        await page.waitForURL(/\/console\/sign-in\?expired=1$/);
        expect(await textOf('.notice')).toContain('Your session has ended');
        await shoot('session-expired');
      } finally {
        clock -= TTL_MS + 1;
      }
      // A live Runs page whose session ends while it is open goes to sign in on its next poll.
      await signIn(TEST_API_KEY);
      await page.waitForURL(`${engine.url}/`);
      await page.goto(`${engine.url}/console/runs`);
      await page.waitForSelector('.live.on');
      clock += TTL_MS + 1;
      try {
        await page.waitForURL(/\/console\/sign-in\?expired=1$/, { timeout: 30_000 });
      } finally {
        clock -= TTL_MS + 1;
      }
    },
    TIMEOUT,
  );

  it('loaded every page and asset from the engine itself, and nothing from anywhere else', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((url) => new URL(url).origin !== engine.url)).toEqual([]);
    expect(requested).toContain(`${engine.url}${CSS_PATH}`);
    expect(requested).toContain(`${engine.url}${JS_PATH}`);
    // Only the wrong key's sign-in was refused (401); every page and asset was answered.
    expect(refused).toEqual([`401 ${engine.url}/console/sign-in`]);
  });
});
