import { describe, expect, it } from 'vitest';
import { isEmbeddedApiPath } from './engine.js';

describe('isEmbeddedApiPath (all-in-one routing)', () => {
  it.each([
    ['http://127.0.0.1:8787/v1', true],
    ['http://127.0.0.1:8787/v1/', true],
    ['http://127.0.0.1:8787/v1/accounts/1/objects?page_size=5', true],
    ['http://127.0.0.1:8787/v1?x=1', true],
    ['http://[::1]:8787/v1/events#top', true],
    ['http://127.0.0.1:8787/_faults', true],
    ['http://127.0.0.1:8787/_faults?x=1', true],
    ['http://127.0.0.1:8787/api/now/table/incident?sysparm_limit=1', true],
    ['http://127.0.0.1:8787/api/now/v1/table/incident/abc', true],
    ['http://127.0.0.1:8787/oauth_token.do', true],
    ['http://127.0.0.1:8787/servicenow/push', true],
    ['http://127.0.0.1:8787/servicenow/pushed', false],
    ['http://127.0.0.1:8787/api/nowhere', false],
    ['http://127.0.0.1:8787/v10', false],
    ['http://127.0.0.1:8787/v1x/objects', false],
    ['http://127.0.0.1:8787/webhooks/kloudless', false],
    ['http://127.0.0.1:8787/runs?object_id=/v1/', false],
    ['http://127.0.0.1:8787', false],
    ['http://127.0.0.1:8787/', false],
  ])('%s -> %s', (url, expected) => {
    expect(isEmbeddedApiPath(url)).toBe(expected);
  });
});
