// Helpers for otpgate's browser (e2e) tests: headless Debian Chromium driven by
// playwright-core, with CSP-violation and console-error recording, an axe-core accessibility
// check that works under otpgate's strict CSP, and readers for the sink gateway's SMS file.
//
// Set up with scripts/browser-setup (Debian's chromium, then `npm ci` here).
// Self-test: node --test crates/otpgate/tests/browser/harness.selftest.mjs

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

/** Debian's Chromium (Playwright's own browser download is not used). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Chromium flags: CI runs as root (no sandbox), there is no GPU, and the machine's network is
 * closed (no background fetches, component updates, sync or QUIC, which otherwise log errors).
 */
export const CHROMIUM_ARGS = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

export const VIEWPORT = Object.freeze({ width: 1280, height: 900 });

// Per-page records: { consoleErrors: string[], cspViolations: object[] }.
const records = new WeakMap();

function recordsOf(page) {
  let r = records.get(page);
  if (!r) {
    r = { consoleErrors: [], cspViolations: [], cspKeys: new Set() };
    records.set(page, r);
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        const loc = msg.location();
        r.consoleErrors.push(loc && loc.url ? `${msg.text()} (${loc.url}:${loc.lineNumber})` : msg.text());
      }
    });
    page.on('pageerror', (err) => r.consoleErrors.push(`uncaught: ${err.message}`));
  }
  return r;
}

// Runs in every document before the page's own scripts. Init scripts are injected through the
// DevTools protocol, so the page's CSP (script-src 'self', Trusted Types) does not block them.
// Each violation goes into window.__cspViolations (this document only) and to the Node side
// through the __otpgateCspViolation binding (kept across navigations).
function cspListener() {
  window.__cspViolations = [];
  const doc = Math.random().toString(36).slice(2);
  let n = 0;
  document.addEventListener(
    'securitypolicyviolation',
    (e) => {
      const v = {
        key: `${doc}:${n++}`,
        directive: e.violatedDirective,
        effectiveDirective: e.effectiveDirective,
        blockedURI: e.blockedURI,
        sample: e.sample,
        source: e.sourceFile ? `${e.sourceFile}:${e.lineNumber}:${e.columnNumber}` : '',
        documentURI: e.documentURI,
        disposition: e.disposition,
      };
      window.__cspViolations.push(v);
      try {
        window.__otpgateCspViolation(v);
      } catch {
        // binding missing (page not from launch()): the window array still has it
      }
    },
    true,
  );
}

/**
 * Starts headless Chromium with one context and page. The page (and any further page of the
 * context) records console errors and CSP violations: see consoleErrors() and cspViolations().
 * `options.viewport` overrides the 1280x900 default; `options.contextOptions` is passed on to
 * browser.newContext().
 * @returns {Promise<{browser: import('playwright-core').Browser, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page}>}
 */
export async function launch(options = {}) {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: run scripts/browser-setup (or set CHROMIUM_PATH)`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  try {
    const context = await browser.newContext({
      viewport: options.viewport || VIEWPORT,
      bypassCSP: false,
      ...(options.contextOptions || {}),
    });
    await context.exposeBinding('__otpgateCspViolation', (source, v) => {
      if (source.page) addViolations(recordsOf(source.page), [v]);
    });
    await context.addInitScript(cspListener);
    context.on('page', (p) => recordsOf(p));
    const page = await context.newPage();
    recordsOf(page);
    return { browser, context, page };
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
}

/**
 * The CSP violations reported on this page since launch, across navigations (a violation just
 * before a form submission is not lost). Each: {directive, effectiveDirective, blockedURI,
 * sample, source, documentURI, disposition}. For the current document only, read
 * `await page.evaluate(() => window.__cspViolations)`.
 */
export async function cspViolations(page) {
  const r = recordsOf(page);
  // The current document's list too, in case a binding call has not reached Node yet.
  const current = await page.evaluate(() => window.__cspViolations || []).catch(() => []);
  addViolations(r, current);
  return r.cspViolations.map(({ key, ...v }) => v);
}

function addViolations(r, list) {
  for (const v of list) {
    if (v && v.key && !r.cspKeys.has(v.key)) {
      r.cspKeys.add(v.key);
      r.cspViolations.push(v);
    }
  }
}

/**
 * Console errors (console.error, failed resource loads, CSP reports — Chromium logs each CSP
 * violation as a console error too) and uncaught exceptions ("uncaught: ...") since launch.
 */
export function consoleErrors(page) {
  return [...recordsOf(page).consoleErrors];
}

// ---------------------------------------------------------------------------------------------
// The sink gateway's file: one JSON object a line, {"time","gateway","phone","text"}.

function completeLines(sinkFile) {
  let data;
  try {
    data = fs.readFileSync(sinkFile, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  const lines = data.split('\n');
  lines.pop(); // text after the last newline: empty, or a line still being written
  return lines;
}

/** The number of complete lines (messages) in the sink file now; 0 when it does not exist. */
export function smsCount(sinkFile) {
  return completeLines(sinkFile).length;
}

/**
 * Waits for a message to `phone` (exact string match) at line index >= `after` of the sink
 * file and returns its text. Use `const n = smsCount(f)` before the action that sends it.
 */
export async function readSms(sinkFile, { phone, after = 0, timeoutMs = 10000 } = {}) {
  if (typeof phone !== 'string' || phone === '') throw new Error('readSms: phone (a string) is required');
  const deadline = Date.now() + timeoutMs;
  let lines = [];
  for (;;) {
    lines = completeLines(sinkFile);
    for (let i = after; i < lines.length; i++) {
      let msg;
      try {
        msg = JSON.parse(lines[i]);
      } catch (e) {
        throw new Error(`readSms: line ${i + 1} of ${sinkFile} is not JSON: ${e.message}: ${lines[i]}`);
      }
      if (msg.phone === phone) return msg.text;
    }
    if (Date.now() >= deadline) break;
    await sleep(50);
  }
  const seen = lines.slice(after).map((l) => {
    try {
      return JSON.parse(l).phone;
    } catch {
      return '?';
    }
  });
  throw new Error(
    `readSms: no message to ${phone} in ${sinkFile} after line ${after} within ${timeoutMs} ms` +
      ` (${lines.length} lines; phones since: ${seen.length ? seen.join(', ') : 'none'})`,
  );
}

/** The first run of 6 to 8 digits in an SMS text (the OTP); throws when there is none. */
export function otpFrom(text) {
  const m = /(?<!\d)\d{6,8}(?!\d)/.exec(String(text));
  if (!m) throw new Error(`otpFrom: no 6-8 digit code in ${JSON.stringify(text)}`);
  return m[0];
}

// ---------------------------------------------------------------------------------------------
// Accessibility.

/** The axe-core rule tags checked by default: WCAG 2.0, 2.1 and 2.2, levels A and AA. */
export const AXE_TAGS = Object.freeze(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']);

let axeSource;

/**
 * Runs axe-core on the page's current document and returns the violations of impact serious
 * or critical as [{id, impact, help, nodes: [CSS selector]}] (empty when clean).
 *
 * axe's source goes in through page.evaluate(), which Playwright sends over the DevTools
 * protocol (Runtime.evaluate/callFunctionOn): the page's CSP (script-src 'self', no
 * unsafe-eval, require-trusted-types-for 'script') does not apply to it, unlike
 * page.addScriptTag(), which Trusted Types blocks. It is injected again after a navigation.
 * Options: {tags, impacts, include (a selector), disableRules: [rule id]}.
 */
export async function axeCheck(page, options = {}) {
  const { tags = AXE_TAGS, impacts = ['serious', 'critical'], include, disableRules = [] } = options;
  if (!(await page.evaluate(() => typeof window.axe === 'object' && typeof window.axe.run === 'function'))) {
    axeSource ??= fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    await page.evaluate(axeSource);
  }
  const violations = await page.evaluate(
    async ({ tags, include, disableRules }) => {
      const rules = Object.fromEntries(disableRules.map((id) => [id, { enabled: false }]));
      const result = await window.axe.run(include ? { include: [include] } : document, {
        runOnly: { type: 'tag', values: tags },
        resultTypes: ['violations'],
        rules,
      });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)).join(' | ')),
      }));
    },
    { tags: [...tags], include, disableRules },
  );
  return violations.filter((v) => impacts.includes(v.impact));
}

/** axeCheck()'s result as text, one violation a line (for assertion messages). */
export function formatAxe(violations) {
  return violations.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.join(', ')}`).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Misc.

/** A full-page PNG at `${dir}/${name}.png` when `dir` is set; returns its path, or null. */
export async function screenshot(page, dir, name) {
  if (!dir) return null;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${String(name).replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * The test's settings from the environment: BASE_URL (trailing slashes removed),
 * ADMIN_PASSWORD and SINK_FILE are required; SCREENSHOT_DIR is optional.
 */
export function env() {
  const missing = ['BASE_URL', 'ADMIN_PASSWORD', 'SINK_FILE'].filter((k) => !process.env[k]);
  if (missing.length) {
    throw new Error(
      `browser tests need the environment variables ${missing.join(', ')} ` +
        '(BASE_URL: the running otpgate, e.g. http://127.0.0.1:8080; ADMIN_PASSWORD: its admin ' +
        "password; SINK_FILE: the sink gateway's JSON-lines file; optional SCREENSHOT_DIR)",
    );
  }
  return {
    baseUrl: process.env.BASE_URL.replace(/\/+$/, ''),
    adminPassword: process.env.ADMIN_PASSWORD,
    sinkFile: process.env.SINK_FILE,
    screenshotDir: process.env.SCREENSHOT_DIR || undefined,
  };
}

/** True when the document is no wider than the viewport (no horizontal scroll bar). */
export async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}
