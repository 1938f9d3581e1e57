// End-to-end tests of otpgate's web interface in headless Debian Chromium. Started by the Rust
// integration test `browser.rs` (which starts the real server and sets BASE_URL,
// ADMIN_PASSWORD, SINK_FILE and optionally SCREENSHOT_DIR). One story, in order: an admin
// builds a user store, realm, user and sink gateway, sends a test SMS, counts an SMS text and
// enrolls a token; the user signs in with PIN and OTP (one wrong OTP first), changes the
// number with a verification code, sets a new PIN and signs in again; the admin finds the
// failed login in the audit log and the SMS on the dashboard. Every page is checked with axe
// (WCAG 2.2 AA, serious and critical), for CSP violations and console errors, and for
// horizontal scrolling at 375 px.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, cspViolations, consoleErrors, readSms, smsCount, otpFrom, axeCheck, formatAxe,
  screenshot, env, noHorizontalScroll,
} from './harness.mjs';

const { baseUrl, adminPassword, sinkFile, screenshotDir } = env();
const PHONE1 = '+4915123456780';
const PHONE2 = '+4915123456781';
// As the user's pages show them.
const SHOWN1 = '+49 1512 3456780';
const SHOWN2 = '+49 1512 3456781';
const TEST_PHONE = '+4915123456789';

let browsers = [];
let admin; // the admin's page
let user; // the user's page (another browser: its own cookies)

before(async () => {
  const a = await launch();
  const u = await launch();
  browsers = [a.browser, u.browser];
  admin = a.page;
  user = u.page;
  // Pages answer in milliseconds; a missing element should fail the step soon, not in 30 s.
  for (const p of [admin, user]) p.setDefaultTimeout(10000);
});

after(async () => {
  for (const b of browsers) await b.close();
});

const url = (p) => baseUrl + p;

async function checkPage(page, name) {
  const v = await axeCheck(page);
  assert.deepEqual(v, [], `axe on ${name} (${page.url()}):\n${formatAxe(v)}`);
  await screenshot(page, screenshotDir, name);
}

async function narrow(page, name) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 375, height: 800 });
  assert.ok(await noHorizontalScroll(page), `${name} scrolls sideways at 375 px`);
  await screenshot(page, screenshotDir, `${name}-narrow`);
  await page.setViewportSize(size);
}

async function flash(page, text) {
  await assert.doesNotReject(
    page.getByRole('status').filter({ hasText: text }).waitFor({ timeout: 5000 }),
    `expected the message "${text}" on ${page.url()}`,
  );
}

test('an admin signs in with the keyboard alone', async () => {
  await admin.goto(url('/ui/admin/login'));
  await checkPage(admin, 'admin-login');
  await admin.keyboard.press('Tab'); // skip link
  await admin.keyboard.press('Tab');
  await admin.keyboard.type('admin');
  await admin.keyboard.press('Tab');
  await admin.keyboard.type(adminPassword);
  await admin.keyboard.press('Enter');
  await admin.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  // A new installation: the dashboard lists what is missing, first a user store, whose link
  // opens the kind that needs nothing else.
  const setup = admin.getByRole('region', { name: 'To finish the set-up' });
  await setup.getByText('0 of 6 steps done').waitFor();
  await checkPage(admin, 'dashboard-setup');
  await setup.getByRole('link', { name: 'Add a user store' }).click();
  await admin.getByRole('heading', { level: 1 }).waitFor();
  assert.equal(await admin.getByLabel('Kind of user store').inputValue(), 'internalresolver');
});

test('the admin creates a user store, a realm and a user', async () => {
  await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Realms' }).click();
  await admin.getByLabel('Name', { exact: true }).fill('people');
  await admin.getByRole('button', { name: 'Create user store' }).click();
  await flash(admin, 'Saved.');
  await admin.getByLabel('Realm name').fill('staff');
  await admin.getByLabel('people').check();
  await admin.getByLabel('Make it the default realm').check();
  await admin.getByRole('button', { name: 'Save realm' }).click();
  await flash(admin, 'The realm was saved.');
  await checkPage(admin, 'realms');

  await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
  await admin.getByLabel('User name', { exact: true }).last().fill('dana');
  await admin.getByLabel('Given name').fill('Dana');
  await admin.getByLabel('Surname').fill('Smith');
  await admin.getByLabel('Mobile number').fill(PHONE1);
  await admin.getByLabel('Password').fill('dana-password');
  await admin.getByRole('button', { name: 'Create user' }).click();
  await flash(admin, 'The user was created.');
  await admin.getByRole('cell', { name: 'dana', exact: true }).waitFor();
  await checkPage(admin, 'users');
  // The user's own page: every field editable, the mobile number checked like enrollment's.
  await admin.getByRole('row').filter({ hasText: 'dana' }).getByRole('link', { name: 'Edit' }).click();
  await admin.getByRole('heading', { level: 1 }).waitFor();
  await checkPage(admin, 'user-edit');
});

test('the admin defines a sink gateway from the provider form and sends a test SMS', async () => {
  await admin.getByRole('link', { name: 'SMS gateways' }).click();
  await admin.getByRole('link', { name: 'New SMS gateway' }).click();
  // The first question is what sends the SMS; the choice opens its form.
  await admin.getByRole('heading', { name: 'What sends your SMS?' }).waitFor();
  await checkPage(admin, 'gateway-choose');
  await admin.getByRole('link', { name: 'Sink (file, for tests)' }).click();
  await admin.waitForURL(/provider=sink/);
  // Parameters are labelled in words, privacyIDEA's key in small print.
  await admin.getByLabel('File', { exact: true }).waitFor();
  await admin.locator('code.key', { hasText: 'FILE' }).waitFor();
  await checkPage(admin, 'gateway-new');
  await admin.getByLabel('Name', { exact: true }).fill('sink');
  await admin.getByLabel('Description').fill('messages go to a file');
  await admin.getByRole('button', { name: 'Save gateway' }).click();
  // The first gateway is the default at once, and its page says so.
  await flash(admin, 'As the first gateway it is the default');
  assert.equal(
    await admin.getByRole('button', { name: 'Make it the default gateway' }).count(), 0,
    'no default button on the default gateway',
  );
  // A refused test SMS: the reason at the number, and the address is the gateway's page again
  // (a reload shows it; it does not post again).
  const gatewayPage = admin.url().replace(/\?.*$/, '');
  await admin.getByLabel('Phone number').fill('12');
  await admin.getByRole('button', { name: 'Send test SMS' }).click();
  await admin.locator('#test_phone-error').waitFor();
  await admin.waitForURL(gatewayPage, { timeout: 5000 });
  const n = smsCount(sinkFile);
  await admin.getByLabel('Phone number').fill(TEST_PHONE);
  // A second click while the first is on its way sends nothing: the form is busy and turns
  // a second submission away (checked with the first one held in the page).
  await admin.evaluate(() => {
    window.addEventListener('submit', (e) => e.preventDefault(), { once: true });
  });
  const send = admin.getByRole('button', { name: 'Send test SMS' });
  await send.click();
  const second = await admin.evaluate(() => {
    const f = document.querySelector('form[aria-busy="true"]');
    if (!f) return 'no form is busy';
    const ev = new Event('submit', { cancelable: true, bubbles: true });
    f.dispatchEvent(ev);
    f.removeAttribute('aria-busy');
    return ev.defaultPrevented ? 'turned away' : 'let through';
  });
  assert.equal(second, 'turned away');
  await send.click();
  await flash(admin, 'The test SMS was accepted by the gateway.');
  const text = await readSms(sinkFile, { phone: TEST_PHONE, after: n });
  assert.match(text, /otpgate test message/);
  assert.equal(smsCount(sinkFile), n + 1, 'one test SMS');
  await checkPage(admin, 'gateway');
});

test('the SMS text counter knows GSM-7 from UCS-2 while typing', async () => {
  await admin.getByRole('link', { name: 'SMS texts' }).click();
  const box = admin.getByLabel('SMS text', { exact: true });
  const out = admin.locator('output#smstext-count');
  await box.fill('Ваш код {otp}');
  await assert.doesNotReject(out.filter({ hasText: 'UCS-2' }).waitFor({ timeout: 5000 }));
  await box.fill('Your otpgate code is {otp}. ' + 'x'.repeat(140));
  await assert.doesNotReject(out.filter({ hasText: '2 SMS' }).waitFor({ timeout: 5000 }));
  assert.match(await out.getAttribute('class'), /many/);
  await checkPage(admin, 'sms-texts');
  // A text without the code: said while typing, and refused.
  await box.fill('Your otpgate sign-in code');
  await assert.doesNotReject(out.filter({ hasText: 'has no {otp}' }).waitFor({ timeout: 5000 }));
  await admin.getByRole('button', { name: 'Save', exact: true }).click();
  await admin.locator('#smstext-error').filter({ hasText: 'without the code' }).waitFor();
  await box.fill('Your otpgate code is {otp}');
  await assert.doesNotReject(out.filter({ hasText: 'GSM-7 · 1 SMS' }).waitFor({ timeout: 5000 }));
  await admin.getByRole('button', { name: 'Save', exact: true }).click();
  await flash(admin, 'Saved.');
});

test('the admin enrolls an SMS token for the user', async () => {
  await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await admin.getByRole('link', { name: 'Enroll an SMS token' }).click();
  // The phone left empty: the user's mobile from the user store (PHONE1) is used.
  await admin.getByLabel('User', { exact: true }).fill('dana');
  await admin.getByLabel('PIN', { exact: true }).fill('2468');
  await admin.getByLabel('Repeat the PIN').fill('2468');
  await admin.getByRole('button', { name: 'Enroll' }).click();
  await flash(admin, 'The token was enrolled.');
  await checkPage(admin, 'token');
  await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await admin.getByRole('cell', { name: 'dana@staff' }).waitFor();
  await checkPage(admin, 'tokens');
  await narrow(admin, 'tokens');
  // Everything is there: the dashboard's next step is a first login.
  await admin.getByRole('link', { name: 'Dashboard' }).click();
  assert.equal(await admin.getByText('To finish the set-up').count(), 0);
  await admin.getByText('Nobody has signed in with an SMS code yet').waitFor();
  await checkPage(admin, 'dashboard-next');
});

test('the user signs in with PIN and OTP, one wrong OTP first', async () => {
  await user.goto(url('/'));
  await user.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await checkPage(user, 'user-login');
  await user.getByLabel('User name').fill('dana');
  await user.getByLabel('PIN').fill('2468');
  const n = smsCount(sinkFile);
  await user.getByRole('button', { name: 'Continue' }).click();
  await user.getByRole('heading', { level: 1, name: 'Enter the code' }).waitFor();
  // The page says where the code went and how long it is valid.
  await user.getByText(/sent a code to the phone number ending in 80\. Enter it here within \d+ minutes?/).waitFor();
  const otp = otpFrom(await readSms(sinkFile, { phone: PHONE1, after: n }));
  await checkPage(user, 'user-otp');
  await user.getByLabel('Code from the SMS').fill('000000');
  await user.getByRole('button', { name: 'Sign in' }).click();
  await user.getByRole('alert').filter({ hasText: 'The code is wrong' }).waitFor();
  // The error summary links to the field, and the field says it is invalid.
  assert.equal(await user.getByLabel('Code from the SMS').getAttribute('aria-invalid'), 'true');
  await user.getByLabel('Code from the SMS').fill(otp);
  await user.getByRole('button', { name: 'Sign in' }).click();
  await user.getByRole('heading', { level: 1, name: 'My phones' }).waitFor();
  await user.getByRole('cell', { name: SHOWN1 }).waitFor();
  assert.equal(await user.getByText(/PISM/).count(), 0, 'no token serials for users');
  await checkPage(user, 'user-phones');
  await narrow(user, 'user-phones');
});

test('the user changes the number, confirmed by a code to the new number, and sets a new PIN', async () => {
  await user.getByRole('link', { name: 'Change number' }).click();
  await user.getByLabel('Mobile number').fill(PHONE2);
  const n = smsCount(sinkFile);
  await user.getByRole('button', { name: 'Send the code' }).click();
  await user.getByRole('heading', { level: 1, name: 'Confirm your number' }).waitFor();
  const otp = otpFrom(await readSms(sinkFile, { phone: PHONE2, after: n }));
  await checkPage(user, 'user-verify');
  await user.getByLabel('Code from the SMS').fill(otp);
  await user.getByRole('button', { name: 'Confirm' }).click();
  await flash(user, 'Your phone is verified');
  await user.getByRole('cell', { name: SHOWN2 }).waitFor();
  assert.equal(await user.getByRole('cell', { name: SHOWN1 }).count(), 0, 'the old number is gone');

  await user.getByRole('link', { name: 'Set PIN' }).click();
  await user.getByLabel('New PIN').fill('13579');
  await user.getByLabel('Repeat the PIN').fill('13579');
  await user.getByRole('button', { name: 'Set the PIN' }).click();
  await flash(user, 'The PIN was set.');
  await user.getByRole('button', { name: 'Sign out' }).click();
  await flash(user, 'You have signed out.');

  // Again, with the new PIN and the new number.
  await user.getByLabel('User name').fill('dana');
  await user.getByLabel('PIN').fill('13579');
  const m = smsCount(sinkFile);
  await user.getByRole('button', { name: 'Continue' }).click();
  const otp2 = otpFrom(await readSms(sinkFile, { phone: PHONE2, after: m }));
  await user.getByLabel('Code from the SMS').fill(otp2);
  await user.getByRole('button', { name: 'Sign in' }).click();
  await user.getByRole('heading', { level: 1, name: 'My phones' }).waitFor();
});

test('the admin finds the failed login in the audit log and the SMS on the dashboard', async () => {
  await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await admin.getByLabel('User', { exact: true }).fill('dana');
  await admin.getByLabel('Authentication').selectOption('REJECT');
  await admin.getByRole('button', { name: 'Filter' }).click();
  const rows = admin.locator('table.data tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1, 'exactly the one wrong OTP');
  assert.match(await rows.first().innerText(), /REJECT[\s\S]*dana@staff/);
  await checkPage(admin, 'audit');

  await admin.getByRole('link', { name: 'Dashboard' }).click();
  // The first login done and the SMS text written: no next steps left.
  assert.equal(await admin.getByText('Next steps').count(), 0);
  const sent = await admin.locator('.stat dt:text-is("SMS sent today") + dd').innerText();
  assert.equal(Number(sent), smsCount(sinkFile), 'every SMS in the sink file is counted');
  await admin
    .getByRole('table', { name: 'SMS attempts today by gateway' })
    .getByRole('cell', { name: 'sink', exact: true })
    .waitFor();
  // The delivery table of the last 24 hours has the same gateway.
  await admin
    .getByRole('table', { name: /delivery from receipts/ })
    .getByRole('cell', { name: 'sink', exact: true })
    .waitFor();
  await checkPage(admin, 'dashboard');
  await narrow(admin, 'dashboard');
});

test('the configuration forms are accessible too', async () => {
  for (const [path, name] of [
    ['/ui/admin/resolvers/new?type=ldapresolver', 'ldap-directory'],
    ['/ui/admin/smtp/new', 'smtp-new'],
    ['/ui/admin/policies/new', 'policy-new'],
    ['/ui/admin/events/new', 'event-new'],
    ['/ui/admin/policies', 'policies'],
    ['/ui/admin/gateways/new?provider=privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider&preset=kannel', 'gateway-preset'],
    ['/ui/admin/settings', 'settings'],
    ['/ui/admin/audit/sms', 'audit-sms'],
    ['/ui/admin/password', 'password'],
    ['/ui/admin/tokens/new', 'token-new'],
  ]) {
    await admin.goto(url(path));
    await admin.getByRole('heading', { level: 1 }).waitFor();
    await checkPage(admin, name);
  }
  await narrow(admin, 'event-new');
});

test('dark mode keeps the contrast', async () => {
  await admin.emulateMedia({ colorScheme: 'dark' });
  for (const [path, name] of [
    ['/ui/admin/', 'dashboard-dark'],
    ['/ui/admin/tokens', 'tokens-dark'],
    ['/ui/admin/audit?authentication=REJECT', 'audit-dark'],
    ['/ui/admin/texts', 'sms-texts-dark'],
  ]) {
    await admin.goto(url(path));
    await admin.getByRole('heading', { level: 1 }).waitFor();
    await checkPage(admin, name);
  }
  await admin.emulateMedia({ colorScheme: 'light' });
});

test('no page broke the CSP or logged an error', async () => {
  // A refused form comes back with 422, which Chromium logs: the user's one wrong OTP.
  const refused = (e) => /status of 422/.test(e);
  // The admin's: the refused test SMS and the SMS text without the code.
  for (const [page, forms] of [[admin, 2], [user, 1]]) {
    assert.deepEqual(await cspViolations(page), [], `CSP violations on ${page.url()}`);
    const errors = consoleErrors(page);
    assert.deepEqual(errors.filter((e) => !refused(e)), [], `console errors on ${page.url()}`);
    assert.equal(errors.filter(refused).length, forms, `refused forms on ${page.url()}: ${errors}`);
  }
});
