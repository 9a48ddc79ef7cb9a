// The console's static assets, served by the engine itself (no CDN, works offline): one style
// sheet, one small script and its icon. They live here as strings, not files, so that the Worker
// bundle carries them with no asset binding. The Content-Security-Policy allows scripts and
// styles from the engine only, so nothing in a page is inline.

export const CONSOLE_CSS = `
:root { --fg:#1d2430; --muted:#5c6675; --line:#dfe3ea; --bg:#f6f7f9; --card:#fff;
  --accent:#2457c5; --ok:#1b7f3b; --bad:#b42318; --warn:#a15c00; --skip:#6b7280; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color:var(--fg); background:var(--bg); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
header.top { display:flex; align-items:center; gap:20px; padding:10px 24px; background:#17213a; color:#fff; }
header.top .brand { font-weight:600; color:#fff; }
header.top nav a { color:#c9d4ee; margin-right:14px; } header.top nav a.here { color:#fff; font-weight:600; }
header.top form { margin-left:auto; }
header.top button { background:transparent; color:#c9d4ee; border:1px solid #46557a; }
main { padding:20px 24px; max-width:1280px; }
h1 { font-size:20px; margin:0 0 14px; } h2 { font-size:16px; margin:22px 0 8px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:14px 16px; margin-bottom:16px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(260px, 1fr)); gap:16px; }
table { border-collapse:collapse; width:100%; background:var(--card); }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
tr.new { background:#eef5ff; }
code, pre, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
pre { background:#f1f3f7; padding:10px; border-radius:4px; overflow:auto; max-height:480px; }
.muted { color:var(--muted); }
.badge { display:inline-block; padding:1px 7px; border-radius:10px; font-size:12px; font-weight:600; background:#e8ebf0; color:var(--skip); }
.badge.done, .badge.matched, .badge.ok { background:#e3f4e8; color:var(--ok); }
.badge.failed, .badge.bad { background:#fde8e6; color:var(--bad); }
.badge.no_match { background:#eef0f4; color:var(--muted); }
.badge.skipped { background:#fff3e0; color:var(--warn); }
.badge.parked { background:#f1e8fd; color:#6b2fb3; } a.badge.parked:hover { text-decoration:none; background:#e6d6fb; }
form.inline { display:inline; margin:0; }
.parked-head { align-items:center; justify-content:space-between; margin-bottom:8px; } .parked-head p { margin:0; }
table.parked td.error, .card.parked .error { color:var(--bad); max-width:360px; overflow-wrap:anywhere; }
.card.parked { border-color:#d9c2f7; } table.parked button { white-space:nowrap; }
.problems li { color:var(--bad); } .warnings li { color:var(--warn); }
.warnings { margin:0; padding-left:16px; font-size:13px; max-width:520px; }
table.rule-list td:first-child { min-width:220px; } table.rule-list td:nth-child(2) { min-width:200px; }
.badge, time, .nowrap, table.calls td:nth-child(5), table.calls td:nth-child(6) { white-space:nowrap; }
.card h2:first-child { margin-top:0; }
abbr.object { text-decoration:underline dotted; cursor:help; }
form.filters { display:flex; flex-wrap:wrap; gap:10px; align-items:flex-end; margin-bottom:14px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
input, select { font:inherit; padding:5px 7px; border:1px solid #c6ccd6; border-radius:4px; background:#fff; }
button { font:inherit; padding:5px 12px; border-radius:4px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:#fff; color:var(--accent); }
.actions { display:flex; gap:10px; flex-wrap:wrap; }
.notice { padding:10px 14px; border-radius:6px; margin-bottom:14px; background:#eef5ff; border:1px solid #c8dafc; }
.notice.bad { background:#fde8e6; border-color:#f5c2bc; }
.why { margin:4px 0 0; padding-left:18px; } .why li { font-family:ui-monospace, Menlo, monospace; font-size:12.5px; }
.del { color:var(--bad); } .ins { color:var(--ok); }
svg.spark { vertical-align:middle; }
svg.spark rect.hit { fill:#5b8def; } svg.spark rect.fail { fill:#e5484d; } svg.spark line { stroke:#c6ccd6; }
.signin { max-width:380px; margin:80px auto; }
.signin input { width:100%; margin:6px 0 12px; }
.live { font-size:12px; color:var(--muted); } .live.on::before { content:"\\25CF "; color:var(--ok); }
.pager { margin-top:10px; }
`;

export const CONSOLE_JS = `
'use strict';
(function () {
  // Live runs: the table asks for the runs newer than its newest one every few seconds and puts
  // them on top. Only the first page of a list is live (an older page stays as it is).
  var table = document.querySelector('[data-live]');
  if (table) {
    var body = table.querySelector('tbody');
    var status = document.querySelector('.live');
    var poll = function () {
      var url = table.getAttribute('data-live') + '&after=' + encodeURIComponent(table.getAttribute('data-newest') || '0');
      // A redirect is the session's end (to sign in): not followed here, the page goes there.
      fetch(url, { credentials: 'same-origin', redirect: 'manual', headers: { Accept: 'text/html' } }).then(function (response) {
        if (response.type === 'opaqueredirect' || response.status === 401) { window.location.href = '/console/sign-in?expired=1'; return; }
        if (!response.ok) throw new Error('HTTP ' + response.status);
        var newest = response.headers.get('X-Newest-Run');
        return response.text().then(function (html) {
          if (html.trim() !== '') {
            var empty = body.querySelector('tr.empty');
            if (empty) empty.remove();
            body.insertAdjacentHTML('afterbegin', html);
          }
          if (newest) table.setAttribute('data-newest', newest);
          if (status) { status.classList.add('on'); status.textContent = 'live'; }
        });
      }).catch(function () {
        if (status) { status.classList.remove('on'); status.textContent = 'live updates paused (the engine did not answer); retrying'; }
      }).then(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 1000);
  }
  // The answer to an action's form is the overview: the address bar says so, and reloading
  // reads the overview again rather than sending the form a second time.
  var location = document.body.getAttribute('data-location');
  if (location && window.location.pathname !== location && window.history.replaceState) {
    window.history.replaceState(null, '', location);
  }
  // Actions that change something ask first.
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });
  // Times are written in UTC; the title shows the reader's local time.
  document.querySelectorAll('time[datetime]').forEach(function (time) {
    var date = new Date(time.getAttribute('datetime'));
    if (!isNaN(date.getTime())) time.title = date.toLocaleString();
  });
})();
`;

/** The console's icon, so that a browser does not ask the engine for /favicon.ico. */
export const CONSOLE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#17213a"/><path d="M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z" fill="#5b8def"/></svg>`;

/** A short fingerprint of each asset for its URL, so that a new version is never read from cache. */
export function assetVersion(text: string): string {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0).toString(36);
}

export const CSS_PATH = `/console/assets/console-${assetVersion(CONSOLE_CSS)}.css`;
export const JS_PATH = `/console/assets/console-${assetVersion(CONSOLE_JS)}.js`;
export const ICON_PATH = `/console/assets/console-${assetVersion(CONSOLE_ICON)}.svg`;
