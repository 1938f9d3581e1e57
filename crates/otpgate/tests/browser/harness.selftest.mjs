// Self-test of harness.mjs against a tiny local page served with otpgate-like strict CSP.
// Run: node --test crates/otpgate/tests/browser/harness.selftest.mjs (after scripts/browser-setup)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  launch,
  cspViolations,
  consoleErrors,
  axeCheck,
  formatAxe,
  readSms,
  smsCount,
  otpFrom,
  screenshot,
  env,
  noHorizontalScroll,
} from './harness.mjs';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; require-trusted-types-for 'script'";

const page = (title, body, head = '') =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>${head}</head>` +
  `<body><main><h1>${title}</h1>${body}</main></body></html>`;

const routes = {
  // One CSP violation (setting a style attribute: style-src-attr) and one unlabelled input.
  '/': [
    'text/html; charset=utf-8',
    page(
      'Violating page',
      '<p id="target">Some text.</p>' +
        '<label for="named">Named</label> <input id="named" type="text">' +
        '<input id="unlabelled" type="text">',
      '<script src="/app.js" defer></script>',
    ),
  ],
  '/app.js': [
    'text/javascript',
    // CSSOM writes (el.style.color = ...) are allowed under style-src 'self'; the style
    // attribute is not.
    "document.getElementById('target').setAttribute('style', 'color: red');\n" +
      "document.body.dataset.ready = '1';\n",
  ],
  '/clean': [
    'text/html; charset=utf-8',
    page('Clean page', '<label for="a">Phone</label> <input id="a" type="tel"><button type="button">Send</button>'),
  ],
  '/wide': [
    'text/html; charset=utf-8',
    page('Wide page', '<div class="wide">wide</div>', '<link rel="stylesheet" href="/wide.css">'),
  ],
  '/wide.css': ['text/css', '.wide { width: 3000px; }\n'],
  '/favicon.ico': ['image/x-icon', ''],
};

let server;
let baseUrl;
let h; // { browser, context, page }
let tmp;

before(async () => {
  server = http.createServer((req, res) => {
    const route = routes[new URL(req.url, 'http://x').pathname];
    const headers = { 'content-security-policy': CSP, 'cache-control': 'no-store' };
    if (!route) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' });
      return res.end('not found');
    }
    res.writeHead(200, { ...headers, 'content-type': route[0] });
    res.end(route[1]);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otpgate-harness-'));
  const t0 = Date.now();
  h = await launch();
  console.log(`chromium ${h.browser.version()} launched in ${Date.now() - t0} ms`);
});

after(async () => {
  if (h) {
    const t0 = Date.now();
    await h.browser.close();
    console.log(`chromium closed in ${Date.now() - t0} ms`);
  }
  if (server) await new Promise((resolve) => server.close(resolve));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function open(p) {
  await h.page.goto(baseUrl + p);
}

test('launch: headless Chromium, 1280x900, CSP enforced', async () => {
  assert.match(h.browser.version(), /^\d+\./);
  await open('/clean');
  const size = await h.page.evaluate(() => [window.innerWidth, window.innerHeight]);
  assert.deepEqual(size, [1280, 900]);
  // A clean page under the closed network logs nothing (no favicon, network or GPU noise).
  assert.deepEqual(consoleErrors(h.page), []);
  assert.deepEqual(await cspViolations(h.page), []);
});

test('cspViolations: reports a violation, and keeps it across navigations', async () => {
  await open('/');
  await h.page.waitForSelector('body[data-ready="1"]');
  const v = await cspViolations(h.page);
  assert.equal(v.length, 1, JSON.stringify(v));
  assert.equal(v[0].directive, 'style-src-attr');
  assert.equal(v[0].blockedURI, 'inline');
  assert.match(v[0].source, /\/app\.js:1:/);
  assert.equal(v[0].documentURI, `${baseUrl}/`);
  assert.equal((await h.page.evaluate(() => window.__cspViolations)).length, 1);
  // Chromium logs the violation as a console error too.
  assert.ok(consoleErrors(h.page).some((e) => /Content Security Policy/.test(e)), consoleErrors(h.page).join('\n'));

  await open('/clean');
  assert.deepEqual(await h.page.evaluate(() => window.__cspViolations), []);
  assert.equal((await cspViolations(h.page)).length, 1);
});

test('axeCheck: finds the unlabelled input, and nothing on a clean page', async () => {
  await open('/');
  await h.page.waitForSelector('body[data-ready="1"]');
  const before = (await cspViolations(h.page)).length;
  const v = await axeCheck(h.page);
  assert.equal(v.length, 1, formatAxe(v));
  assert.equal(v[0].id, 'label');
  assert.equal(v[0].impact, 'critical');
  assert.equal(typeof v[0].help, 'string');
  assert.deepEqual(v[0].nodes, ['#unlabelled']);
  assert.match(formatAxe(v), /^critical label: .+ — #unlabelled$/);
  // A second run reuses the injected axe; neither causes a CSP violation.
  assert.deepEqual(await axeCheck(h.page), v);
  assert.equal((await cspViolations(h.page)).length, before);

  await open('/clean');
  assert.deepEqual(await axeCheck(h.page), []);
});

test('the page CSP blocks script tags (so axe is not injected that way)', async () => {
  const p = await h.context.newPage();
  try {
    await p.goto(`${baseUrl}/clean`);
    await assert.rejects(p.addScriptTag({ content: 'window.x = 1' }), /TrustedScript/);
    const v = await cspViolations(p);
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(v[0].directive, 'require-trusted-types-for');
    // Still, axe runs on it.
    assert.deepEqual(await axeCheck(p), []);
  } finally {
    await p.close();
  }
});

test('noHorizontalScroll', async () => {
  await open('/clean');
  assert.equal(await noHorizontalScroll(h.page), true);
  await open('/wide');
  assert.equal(await noHorizontalScroll(h.page), false);
});

test('screenshot: a full-page PNG when a directory is set', async () => {
  await open('/wide');
  assert.equal(await screenshot(h.page, undefined, 'nothing'), null);
  const dir = path.join(tmp, 'shots');
  const file = await screenshot(h.page, dir, 'wide page');
  assert.equal(file, path.join(dir, 'wide_page.png'));
  const png = fs.readFileSync(file);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.readUInt32BE(16) >= 3000, `width ${png.readUInt32BE(16)}`); // IHDR width: full page
});

test('readSms, smsCount, otpFrom', async () => {
  const f = path.join(tmp, 'sink-sms.jsonl');
  const line = (phone, text) =>
    JSON.stringify({ time: new Date().toISOString(), gateway: 'sink', phone, text }) + '\n';
  assert.equal(smsCount(f), 0); // missing file
  fs.writeFileSync(f, line('+4915100000001', 'Your code: 123456') + line('+4915100000002', 'Code 7654321'));
  assert.equal(smsCount(f), 2);
  assert.equal(await readSms(f, { phone: '+4915100000002' }), 'Code 7654321');
  assert.equal(await readSms(f, { phone: '+4915100000001' }), 'Your code: 123456');

  // A message that arrives later is waited for; earlier ones (before `after`) are skipped.
  const n = smsCount(f);
  setTimeout(() => fs.appendFileSync(f, line('+4915100000001', 'otp 87654321, valid 5 min')), 300);
  const t0 = Date.now();
  const text = await readSms(f, { phone: '+4915100000001', after: n, timeoutMs: 5000 });
  assert.equal(text, 'otp 87654321, valid 5 min');
  assert.ok(Date.now() - t0 >= 250);
  assert.equal(otpFrom(text), '87654321');

  // A line still being written is not counted.
  fs.appendFileSync(f, '{"time":"x","gateway":"sink","phone":"+49');
  assert.equal(smsCount(f), 3);

  // Exact phone match; a clear error on timeout.
  await assert.rejects(readSms(f, { phone: '4915100000001', after: n, timeoutMs: 200 }), /no message to 4915100000001 .*phones since: \+4915100000001/);

  assert.equal(otpFrom('Your code: 123456'), '123456');
  assert.equal(otpFrom('12345 is not it, 0012345 is'), '0012345');
  assert.equal(otpFrom('a 123456789 b 654321'), '654321'); // 9 digits is no OTP
  assert.throws(() => otpFrom('no code'), /no 6-8 digit code/);
});

test('env: reads the settings, or names the missing ones', () => {
  const saved = { ...process.env };
  try {
    delete process.env.BASE_URL;
    delete process.env.ADMIN_PASSWORD;
    process.env.SINK_FILE = '/tmp/sink.jsonl';
    assert.throws(() => env(), /BASE_URL, ADMIN_PASSWORD/);
    process.env.BASE_URL = 'http://127.0.0.1:8080/';
    process.env.ADMIN_PASSWORD = 'pw';
    delete process.env.SCREENSHOT_DIR;
    assert.deepEqual(env(), {
      baseUrl: 'http://127.0.0.1:8080',
      adminPassword: 'pw',
      sinkFile: '/tmp/sink.jsonl',
      screenshotDir: undefined,
    });
  } finally {
    for (const k of ['BASE_URL', 'ADMIN_PASSWORD', 'SINK_FILE', 'SCREENSHOT_DIR']) {
      if (k in saved) process.env[k] = saved[k];
      else delete process.env[k];
    }
  }
});
