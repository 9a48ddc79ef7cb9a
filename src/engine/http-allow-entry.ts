// The forms an entry of the http allow-list (`--http-allow`, ITSM_HTTP_ALLOW) may take, checked
// where the list is read. isAllowedHost (execute.ts) compares an entry with a URL's host as the
// URL parser writes it; an entry in any other form (a URL, a path, a bare `*`, a port past
// 65535, `127.1`) matches no URL at all, so every http action would be refused at run time while
// the engine had started without a word. Runtime-neutral: the Node flags and the Worker's var
// share it.

/** The forms, as told to whoever wrote a bad entry. */
export const HTTP_ALLOW_FORMS =
  'give host or host:port, such as pager.example.com or 127.0.0.1:9000, or *.domain for its sub-domains';

/**
 * What is wrong with one allow-list entry, or undefined when isAllowedHost can match it. An
 * entry is a host name, an IPv4 address or a bracketed IPv6 one, optionally with `:port`
 * (1 to 65535); or `*.domain` (a name, not an address), optionally with `:port`.
 */
export function httpAllowEntryProblem(entry: string): string | undefined {
  const quoted = JSON.stringify(entry);
  if (entry.trim() === '') return `an empty entry is not a host: ${HTTP_ALLOW_FORMS}`;
  if (!entry.includes('[') && entry.split(':').length > 2) {
    return `${quoted} is not a host: write an IPv6 address in brackets, such as [::1] or [::1]:9000`;
  }
  const withPort = /^(.+):(\d+)$/.exec(entry);
  const host = (withPort?.[1] ?? entry).toLowerCase();
  const port = withPort?.[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) {
    return `${quoted} has port ${port}: a port is from 1 to 65535`;
  }
  const wildcard = host.startsWith('*.');
  const name = wildcard ? host.slice(2) : host;
  if (name.includes('*')) {
    return `${quoted} is not a host: a wildcard is only *.domain, for the sub-domains of one domain; ${HTTP_ALLOW_FORMS}`;
  }
  const canonical = canonicalHost(name);
  if (canonical === undefined) return `${quoted} is not a host: ${HTTP_ALLOW_FORMS}`;
  if (canonical !== name) {
    // The URL parser writes this host another way (`127.1` as 127.0.0.1, a Unicode name in
    // punycode), and entries are compared with that spelling.
    const suggestion = `${wildcard ? '*.' : ''}${canonical}${port === undefined ? '' : `:${port}`}`;
    return `${quoted} is written ${suggestion} in a URL, and only that spelling matches: give ${suggestion}`;
  }
  if (wildcard && isAddress(canonical)) {
    return `${quoted}: a wildcard stands for the sub-domains of a name, not an address: give the address itself, such as 127.0.0.1:9000`;
  }
  return undefined;
}

/** The host as the URL parser writes it, or undefined when `host` is not one host alone. */
function canonicalHost(host: string): string | undefined {
  // Characters the URL parser would read as the end of the host, or as credentials.
  if (/[/?#@\\\s]/.test(host)) return undefined;
  try {
    const url = new URL(`http://${host}/`);
    return url.pathname === '/' && url.port === '' ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}

function isAddress(host: string): boolean {
  return host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** The first problem among a list's entries, or undefined when every one can be matched. */
export function httpAllowListProblem(entries: readonly string[]): string | undefined {
  for (const entry of entries) {
    const problem = httpAllowEntryProblem(entry);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
