import { describe, expect, it } from 'vitest';
import { isAllowedHost } from './execute.js';
import { httpAllowEntryProblem } from './http-allow-entry.js';

describe('an entry of the http allow-list', () => {
  // Each accepted form, with a URL the engine's matcher lets through for it: an entry this
  // check accepts is one the matcher can use.
  it.each([
    ['pager.example.com', 'https://pager.example.com/v1/alerts'],
    ['Pager.Example.COM', 'https://pager.example.com/'],
    ['pager.example.com:8443', 'https://pager.example.com:8443/'],
    ['127.0.0.1:9000', 'http://127.0.0.1:9000/hook'],
    ['127.0.0.1', 'http://127.0.0.1:9000/hook'],
    ['localhost:9000', 'http://localhost:9000/'],
    ['[::1]', 'http://[::1]:9000/'],
    ['[::1]:9000', 'http://[::1]:9000/'],
    ['*.example.com', 'https://hooks.example.com/'],
    ['*.example.com:443', 'https://hooks.example.com/'],
  ])('accepts %s, which allows %s', (entry, url) => {
    expect(httpAllowEntryProblem(entry)).toBeUndefined();
    expect(isAllowedHost(new URL(url), [entry])).toBe(true);
  });

  it.each([
    ['http://x.com', '"http://x.com" is not a host: give host or host:port'],
    ['x.com/path', '"x.com/path" is not a host: give host or host:port'],
    ['user@x.com', '"user@x.com" is not a host'],
    ['*', '"*" is not a host: a wildcard is only *.domain'],
    ['*.*.x.com', '"*.*.x.com" is not a host: a wildcard is only *.domain'],
    ['x.*.com', '"x.*.com" is not a host: a wildcard is only *.domain'],
    ['x.com:99999', '"x.com:99999" has port 99999: a port is from 1 to 65535'],
    ['x.com:0', '"x.com:0" has port 0'],
    ['', 'an empty entry is not a host'],
    [' ', 'an empty entry is not a host'],
    ['::1', '"::1" is not a host: write an IPv6 address in brackets, such as [::1]'],
    ['127.1', '"127.1" is written 127.0.0.1 in a URL, and only that spelling matches'],
    ['bücher.example:81', 'give xn--bcher-kva.example:81'],
    ['*.127.0.0.1', 'a wildcard stands for the sub-domains of a name, not an address'],
    ['x .com', '"x .com" is not a host'],
  ])('refuses %j, saying %s', (entry, message) => {
    expect(httpAllowEntryProblem(entry)).toContain(message);
  });
});
