// End-to-end tests in a real browser: Debian's chromium driven by playwright-core against a real
// `ims serve` with the demo factory. Builds nothing: run `npm run build` first.
//
//   IMS_BIN=../target/debug/ims npm run e2e
//
// Journeys: admin (users, create a user, audit filter), manager (dashboard charts, orders,
// schedule reschedule through the form, change password), line leader (start, pause with a
// reason, resume, report output, complete), forgot password (code read from the emailed .eml).
// On every main page: an axe scan (fails on serious/critical), no CSP violation, no page error,
// a screenshot in e2e/screenshots/. After every sign-in: nothing token-like in Web Storage.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { waitForCode } from './mail.mjs';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, '..');
const BIN = resolve(web, process.env.IMS_BIN ?? '../target/debug/ims');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DIST = join(web, 'dist');
const SHOTS = join(here, 'screenshots');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const started = Date.now();

const failures = [];
let server;
let browser;

function log(msg) {
  console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

async function step(name, fn) {
  log(`▶ ${name}`);
  try {
    await fn();
    log(`✔ ${name}`);
  } catch (e) {
    const msg = `${name}: ${e instanceof Error ? e.message.split('\n').slice(0, 6).join('\n') : e}`;
    failures.push(msg);
    log(`✘ ${msg}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

async function waitReady(base) {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('ims serve did not become ready within 30 s');
}

// ---- per-page checks -------------------------------------------------------------------------

function watch(page, label) {
  const problems = [];
  page.on('console', (m) => {
    const t = m.text();
    if (/Content[- ]Security[- ]Policy|Refused to (execute|load|apply|connect|evaluate)/i.test(t)) problems.push(`CSP: ${t}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.__problems = problems;
  page.__label = label;
  return page;
}

function noPageProblems(page) {
  const p = page.__problems.splice(0);
  assert(p.length === 0, `${page.__label}: ${p.join(' | ')}`);
}

async function axe(page, name) {
  const violations = await page.evaluate(async (src) => {
    if (!window.axe) {
      // Evaluated through the DevTools protocol, not injected as a <script>: the page's CSP
      // stays intact.
      (0, eval)(src);
    }
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
  }, AXE);
  assert(violations.length === 0, `axe on ${name}: ${violations.join(' | ')}`);
}

const checked = [];
/** Screenshot + axe + CSP/page-error check for one main page. */
async function checkPage(page, name) {
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await axe(page, name);
  noPageProblems(page);
  checked.push(name);
}

async function noTokensInStorage(page, who) {
  const dump = await page.evaluate(() => {
    const all = {};
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) all[s.key(i)] = s.getItem(s.key(i));
    return { all, cookie: document.cookie };
  });
  const text = JSON.stringify(dump.all);
  assert(!/eyJ[A-Za-z0-9_-]{10,}/.test(text), `${who}: a JWT is in Web Storage: ${text.slice(0, 200)}`);
  assert(!/token|refresh|bearer|jwt|secret/i.test(text), `${who}: something token-like is in Web Storage: ${text.slice(0, 200)}`);
  assert(!/[A-Za-z0-9_-]{40,}/.test(text), `${who}: a long opaque string is in Web Storage: ${text.slice(0, 200)}`);
  assert(!/ims_refresh/.test(dump.cookie), `${who}: the refresh cookie is readable by scripts`);
}

async function login(page, base, email, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15_000 });
  await noTokensInStorage(page, email);
}

async function logout(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/login'));
}

async function nav(page, label) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: label === 'Dashboard' ? 'Factory dashboard' : label === 'My tasks' ? 'My tasks' : label }).waitFor();
}

// ---- run ---------------------------------------------------------------------------------------

let dataDirToClean = null;

async function main() {
  assert(existsSync(join(DIST, 'index.html')), `no ${DIST}/index.html: run \`npm run build\` first`);
  assert(existsSync(BIN), `no server binary at ${BIN} (set IMS_BIN)`);
  if (!existsSync(CHROMIUM) && CHROMIUM === '/usr/bin/chromium' && process.getuid?.() === 0) {
    log('installing Debian\'s chromium (apt-get install -y chromium)');
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit' });
  }
  assert(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });

  const dataDir = mkdtempSync(join(tmpdir(), 'ims-e2e-'));
  dataDirToClean = dataDir;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('IMS_'))),
    IMS_DATA_DIR: dataDir,
    IMS_LISTEN: `127.0.0.1:${port}`,
    IMS_WEB_DIR: DIST,
    RUST_LOG: 'warn',
  };
  log(`data dir ${dataDir}, server ${base}`);

  const demo = spawnSync(BIN, ['demo'], { env, encoding: 'utf8' });
  assert(demo.status === 0, `ims demo failed (${demo.status}): ${demo.stderr}`);
  const users = {};
  for (const line of demo.stdout.split('\n')) {
    const m = line.match(/^\s+(ADMIN|MANAGER|LINE_LEADER)\s+(\S+@\S+)\s+(\S+)\s*$/);
    if (m) users[m[1]] = { email: m[2], password: m[3] };
  }
  assert(users.ADMIN && users.MANAGER && users.LINE_LEADER, `could not parse the demo logins from: ${demo.stdout}`);

  server = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  await waitReady(base);
  log('server ready');

  await step('API types match the server (check:api)', async () => {
    const r = spawnSync(process.execPath, [join(web, 'scripts', 'gen-api.mjs'), '--check', base], { encoding: 'utf8' });
    assert(r.status === 0, (r.stderr || r.stdout).trim());
  });

  await step('bundle holds none of this server\'s generated secrets', async () => {
    // The scan skips a *_FILE that does not exist, so make sure these do and hold values.
    for (const f of ['jwt-signing-keys.json', 'otp-pepper']) {
      assert(existsSync(join(dataDir, f)) && readFileSync(join(dataDir, f), 'utf8').trim().length >= 16, `server did not generate ${f}`);
    }
    const r = spawnSync(process.execPath, [join(web, 'scripts', 'scan.mjs')], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        IMS_JWT_SIGNING_KEYS_FILE: join(dataDir, 'jwt-signing-keys.json'),
        IMS_OTP_PEPPER_FILE: join(dataDir, 'otp-pepper'),
      },
    });
    assert(r.status === 0, (r.stderr || r.stdout).trim());
    // The pepper and at least one key of the signing-key document were actually compared.
    const n = Number(/none of (\d+) environment secret values/.exec(r.stdout)?.[1] ?? 0);
    assert(n >= 3, `scan compared ${n} generated secret values, expected the pepper and the signing keys`);
  });

  await step('CSP header on the app shell', async () => {
    const r = await fetch(`${base}/manager/schedule`);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert(r.ok && (await r.text()).includes('<div id="root">'), 'client route did not return index.html');
    assert(/script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp), `unexpected CSP: ${csp}`);
  });

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const desktop = { viewport: { width: 1440, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' };
  const tablet = { viewport: { width: 1280, height: 800 }, hasTouch: true, locale: 'en-GB', timezoneId: 'UTC' };

  // ---- login page and a wrong password -----------------------------------------------------
  await step('login page: wrong password is explained', async () => {
    const ctx = await browser.newContext(desktop);
    const page = watch(await ctx.newPage(), 'login');
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login/);
    await page.getByLabel('Email').fill(users.ADMIN.email);
    await page.getByLabel('Password', { exact: true }).fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'The email or password is incorrect.' }).waitFor();
    await checkPage(page, 'login');
    // Repeated failures lock the address: the 429's Retry-After is shown as a wait.
    for (let i = 0; i < 6; i++) {
      await page.getByLabel('Email').fill('nobody@demo.factory');
      await page.getByLabel('Password', { exact: true }).fill(`wrong-password-${i}`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      await page.waitForTimeout(100);
    }
    await page.getByRole('alert').filter({ hasText: /Too many attempts\. Please wait \d+ (minutes|seconds)/ }).waitFor();
    await page.goto(`${base}/verify-email`);
    await page.getByRole('heading', { name: 'Verify your email' }).waitFor();
    await checkPage(page, 'verify-email');
    await ctx.close();
  });

  // ---- admin -----------------------------------------------------------------------------------
  await step('admin journey: users, create a user, audit filter', async () => {
    const ctx = await browser.newContext(desktop);
    const page = watch(await ctx.newPage(), 'admin');
    await login(page, base, users.ADMIN.email, users.ADMIN.password);
    await page.waitForURL(/\/admin\/users/);
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.getByRole('cell', { name: users.MANAGER.email }).waitFor();
    // search
    await page.getByLabel('Search').fill('leader');
    await page.getByRole('cell', { name: users.LINE_LEADER.email }).waitFor();
    assert((await page.getByRole('cell', { name: users.MANAGER.email }).count()) === 0, 'search did not filter the list');
    await page.getByLabel('Search').fill('');
    // create
    await page.getByLabel('Email', { exact: true }).fill('erin.example@demo.factory');
    await page.getByLabel('Full name').fill('Erin Example');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('status').filter({ hasText: 'Created.' }).waitFor();
    await page.getByRole('cell', { name: 'erin.example@demo.factory' }).waitFor();
    // duplicate email: a 409 in plain words
    await page.getByLabel('Email', { exact: true }).fill('erin.example@demo.factory');
    await page.getByLabel('Full name').fill('Erin Again');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('alert').filter({ hasText: 'conflicts' }).waitFor();
    // open a user, check the actions are there
    await page.getByRole('button', { name: 'Erin Example' }).click();
    await page.getByRole('button', { name: 'Sign out everywhere' }).waitFor();
    await checkPage(page, 'admin-users');

    await nav(page, 'Audit log');
    await page.getByRole('cell', { name: 'login_ok' }).first().waitFor();
    await page.getByLabel('Event').selectOption('user_created');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('table.audit tbody tr td:nth-child(2)')];
      return cells.length > 0 && cells.every((c) => c.textContent === 'user_created');
    });
    await checkPage(page, 'admin-audit');

    await nav(page, 'Failed emails');
    await page.getByText('No failed emails').waitFor();
    await checkPage(page, 'admin-mail');
    await logout(page);
    await ctx.close();
  });

  // ---- API helpers for the checks behind the UI ---------------------------------------------------
  const apiLogin = async (who) => {
    const r = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(who) });
    assert(r.ok, `API login of ${who.email} answered ${r.status}`);
    return (await r.json()).access_token;
  };
  const apiCall = async (token, method, path, body, ifMatch) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
    const r = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${path} answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
    return r.status === 204 ? null : r.json();
  };

  /** Waits (at most 3 s) until `test` holds in the page: the focus moves after React commits. */
  const focusOn = async (page, test, arg, message) => {
    const ok = await page.waitForFunction(test, arg, { timeout: 3000 }).then(
      () => true,
      () => false,
    );
    assert(ok, message);
  };

  /** Lines: edit a new line's name and shifts (a 422 first), take a leader off and back onto TEST-1. */
  async function editLines(page) {
    const mgr = await apiLogin(users.MANAGER);
    const ldr = await apiLogin(users.LINE_LEADER);
    const candidates = await apiCall(mgr, 'GET', '/api/leaders');
    const leader = candidates.find((c) => c.email === users.LINE_LEADER.email);
    assert(leader, `GET /api/leaders does not list ${users.LINE_LEADER.email}`);
    const all = await apiCall(mgr, 'GET', '/api/lines');
    const second = all.find((l) => l.code === 'TEST-1') ?? all[all.length - 1];
    const leaderBox = (form) => form.getByRole('checkbox', { name: new RegExp(`^${leader.name} `) });
    const openEditor = async (code) => {
      await page.getByRole('button', { name: `Edit ${code}`, exact: true }).click();
      const form = page.getByRole('form', { name: `Edit line ${code}` });
      await form.waitFor();
      await leaderBox(form).waitFor();
      return form;
    };
    const saveLine = async (form, code) => {
      await form.getByRole('button', { name: 'Save line' }).click();
      await page.getByRole('status').filter({ hasText: `Line ${code} saved.` }).waitFor();
      await form.waitFor({ state: 'detached' });
    };

    // A new line through the create form, then its name and shifts through the editor.
    await page.getByLabel('Code (e.g. SMT-3)').fill('ASM-9');
    await page.getByRole('region', { name: 'New line' }).getByLabel('Name').fill('Assembly line 9');
    await page.getByLabel('Kind').selectOption('ASSEMBLY');
    await page.getByLabel('Shifts (8 h, 30 min breaks)').selectOption('1');
    await page.getByRole('button', { name: 'Create line' }).click();
    await page.getByRole('status').filter({ hasText: 'Line ASM-9 created.' }).waitFor();
    let form = await openEditor('ASM-9');
    await focusOn(page, () => document.activeElement?.id === 'le-h', undefined, 'the line editor did not take the focus');
    await form.getByLabel('Name', { exact: true }).fill('Final assembly 9');
    await form.getByRole('button', { name: 'Add a shift' }).click();
    await focusOn(page, () => document.activeElement?.getAttribute('aria-label') === 'Shift 2 name', undefined, 'the new shift row did not take the focus');
    await form.getByLabel('Shift 2 end').fill('23:30');
    await form.getByLabel('Shift 2 break in minutes').fill('20');
    await leaderBox(form).check();
    await checkPage(page, 'manager-line-edit');
    await form.getByLabel('Shift 2 start').fill('12:00'); // overlaps shift A (08:00–16:00): the server's 422 in words
    await form.getByRole('button', { name: 'Save line' }).click();
    await page.getByRole('alert').filter({ hasText: 'This cannot be saved: Shifts of a line must not overlap.' }).waitFor();
    await form.getByLabel('Shift 2 start').fill('16:00');
    await saveLine(form, 'ASM-9');
    const asm = (await apiCall(mgr, 'GET', '/api/lines')).find((l) => l.code === 'ASM-9');
    assert(asm && asm.name === 'Final assembly 9', `ASM-9 was not renamed: ${JSON.stringify(asm)}`);
    const b = asm.shifts.find((x) => x.name === 'B');
    assert(asm.shifts.length === 2 && b && b.start === '16:00' && b.minutes === 450 && b.break_minutes === 20, `ASM-9 shifts: ${JSON.stringify(asm.shifts)}`);
    assert(asm.leaders.some((l) => l.id === leader.id), 'ASM-9 has no leader after the save');
    await page.locator('tr[data-line="ASM-9"]', { hasText: 'Final assembly 9' }).getByText(leader.email).waitFor();

    // The demo leader leads every demo line: take them off the second line, then put them back,
    // checking through the API that the line's published work leaves and returns to their tasks.
    const work = (tasks) => tasks.filter((w) => w.line_id === second.id).map((w) => w.id).sort().join();
    const before = work(await apiCall(ldr, 'GET', '/api/my/tasks'));
    form = await openEditor(second.code);
    await leaderBox(form).uncheck();
    await saveLine(form, second.code);
    let line = await apiCall(mgr, 'GET', `/api/lines/${second.id}`);
    assert(!line.leaders.some((l) => l.id === leader.id), `${second.code} still lists the leader`);
    assert(work(await apiCall(ldr, 'GET', '/api/my/tasks')) === '', `${second.code}'s work is still in the leader's tasks`);
    await page.locator(`tr[data-line="${second.code}"]`).getByText('None').waitFor();
    form = await openEditor(second.code);
    await leaderBox(form).check();
    await saveLine(form, second.code);
    line = await apiCall(mgr, 'GET', `/api/lines/${second.id}`);
    assert(line.leaders.some((l) => l.id === leader.id), `GET /api/lines/${second.id} does not show the leader`);
    const after = work(await apiCall(ldr, 'GET', '/api/my/tasks'));
    assert(after === before, `the leader's tasks on ${second.code} are [${after}], expected [${before}]`);
    log(`  ${second.code}: leader re-assigned through the UI; ${before ? before.split(',').length : 0} published work order(s) back in their tasks`);
    await page.locator(`tr[data-line="${second.code}"]`).getByText(leader.email).waitFor();
    await focusOn(page, (id) => document.activeElement?.id === `edit-line-${id}`, second.id, 'focus did not return to the Edit button');
  }

  /** Products: someone else's change first (409 in words, the form reloads), then the rename. */
  async function editProduct(page) {
    const mgr = await apiLogin(users.MANAGER);
    const [p, other] = await apiCall(mgr, 'GET', '/api/products');
    // Keyboard: Escape closes an editor and gives the focus back to its Edit button.
    await page.getByRole('button', { name: `Edit ${other.sku}`, exact: true }).click();
    await page.getByRole('form', { name: `Edit product ${other.sku}` }).getByLabel('Name', { exact: true }).press('Escape');
    await page.getByRole('form', { name: `Edit product ${other.sku}` }).waitFor({ state: 'detached' });
    await focusOn(page, (id) => document.activeElement?.id === `edit-product-${id}`, other.id, 'Escape did not return the focus to the Edit button');
    await page.getByRole('button', { name: `Edit ${p.sku}`, exact: true }).click();
    const form = page.getByRole('form', { name: `Edit product ${p.sku}` });
    await form.waitFor();
    await apiCall(mgr, 'PATCH', `/api/products/${p.id}`, { name: `${p.name} rev B` }, p.version);
    await form.getByLabel('Name', { exact: true }).fill(`${p.name} (mine)`);
    await form.getByRole('button', { name: 'Save product' }).click();
    await page.getByRole('alert').filter({ hasText: 'Someone else changed this' }).waitFor();
    await page.waitForFunction((v) => document.querySelector('#product-editor input')?.value === v, `${p.name} rev B`);
    const renamed = `${p.name} (edited)`;
    await form.getByLabel('Name', { exact: true }).fill(renamed);
    await form.getByLabel('TEST seconds per unit').fill('41.5');
    await form.getByRole('button', { name: 'Save product' }).click();
    await page.getByRole('status').filter({ hasText: `Product ${p.sku} saved.` }).waitFor();
    const row = page.locator('table.list tbody tr', { hasText: p.sku });
    await row.getByRole('cell', { name: renamed, exact: true }).waitFor();
    await row.getByText(/TEST 41\.5 s/).waitFor();
    const fresh = await apiCall(mgr, 'GET', `/api/products/${p.id}`);
    assert(fresh.name === renamed && fresh.ideal_cycle_seconds.TEST === 41.5, `product after the edit: ${JSON.stringify(fresh)}`);
  }

  // ---- manager ---------------------------------------------------------------------------------
  let managerPassword = users.MANAGER.password;
  await step('manager journey: dashboard, orders, schedule reschedule', async () => {
    const ctx = await browser.newContext(desktop);
    const page = watch(await ctx.newPage(), 'manager');
    await login(page, base, users.MANAGER.email, users.MANAGER.password);
    await page.waitForURL(/\/manager$/);
    await page.getByRole('heading', { level: 1, name: 'Factory dashboard' }).waitFor();
    await page.locator('figure.chart svg path.series').first().waitFor();
    await page.locator('figure.chart svg rect.c-down').first().waitFor();
    await page.locator('figure.chart svg rect.c-good').first().waitFor();
    const charts = await page.locator('figure.chart').count();
    assert(charts === 3, `expected 3 charts on the dashboard, found ${charts}`);
    await page.locator('.line-state').first().waitFor();
    await page.locator('.risk-list li').first().waitFor();
    await checkPage(page, 'manager-dashboard');
    // A reload loses the in-memory access token; the session resumes from the HttpOnly cookie.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Factory dashboard' }).waitFor();
    assert(new URL(page.url()).pathname === '/manager', `after a reload the manager is at ${page.url()}`);
    await noTokensInStorage(page, 'manager after reload');

    await nav(page, 'Orders');
    await page.locator('table.list tbody tr').first().waitFor();
    await page.getByLabel('Status').selectOption('at_risk');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('table.list tbody tr')];
      return rows.length > 0 && rows.every((r) => r.querySelector('.badge.o-at_risk'));
    });
    // Open an order and change its priority (PATCH with If-Match).
    await page.locator('table.list tbody tr button.linkish').first().click();
    await page.getByRole('heading', { name: /^Order / }).waitFor();
    await page.getByRole('form', { name: /^Edit order / }).getByLabel('Priority').selectOption('urgent');
    await page.getByRole('button', { name: 'Save order' }).click();
    await page.getByRole('status').filter({ hasText: /saved\.$/ }).waitFor();
    await checkPage(page, 'manager-orders');

    await nav(page, 'Schedule');
    const chip = page.locator('button.chip.s-planned').first();
    await chip.waitFor();
    const before = await chip.locator('.chip-top').textContent();
    await chip.click();
    await page.getByRole('heading', { name: /^Reschedule / }).waitFor();
    const dateInput = page.locator('#move-h ~ form input[type=date]');
    const current = await dateInput.inputValue();
    const d = new Date(`${current}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() + 1);
    const next = d.toISOString().slice(0, 10);
    await dateInput.fill(next);
    await page.getByRole('button', { name: 'Move work order' }).click();
    await page.getByRole('status').filter({ hasText: 'Moved' }).waitFor();
    await page.locator(`td[data-day="${next}"] button.chip`, { hasText: before.split(' · ')[1] }).first().waitFor();
    await checkPage(page, 'manager-schedule');
    // Drag another planned work order one day later (HTML5 drag and drop).
    const pick = await page.evaluate(() => {
      const days = [...document.querySelectorAll('table.board thead th')].slice(1).length;
      for (const chip of document.querySelectorAll('button.chip.s-planned[draggable="true"]')) {
        const td = chip.closest('td');
        const idx = [...td.parentElement.children].indexOf(td);
        if (idx >= 1 && idx < days) {
          const next = td.parentElement.children[idx + 1];
          return { wo: chip.dataset.wo, order: chip.querySelector('.chip-top').textContent.split(' · ')[1], line: next.dataset.line, day: next.dataset.day };
        }
      }
      return null;
    });
    assert(pick, 'no planned work order to drag on the board');
    const target = page.locator(`td[data-line="${pick.line}"][data-day="${pick.day}"]`);
    await page.locator(`button.chip[data-wo="${pick.wo}"]`).dragTo(target);
    await page.getByRole('status').filter({ hasText: `Moved ${pick.order}` }).waitFor();
    await target.locator(`button.chip[data-wo="${pick.wo}"]`).waitFor();

    for (const [label, name] of [
      ['Lines', 'manager-lines'],
      ['Products', 'manager-products'],
      ['Documents', 'manager-documents'],
      ['Reasons', 'manager-reasons'],
      ['Alert rules', 'manager-alert-rules'],
    ]) {
      await nav(page, label);
      await page.locator('table.list, .empty').first().waitFor();
      if (name === 'manager-lines') await editLines(page);
      if (name === 'manager-products') await editProduct(page);
      if (name === 'manager-alert-rules') {
        const input = page.locator('input.narrow-num').first();
        await input.fill(String(Number(await input.inputValue()) + 5));
        await page.getByRole('button', { name: 'Save', exact: true }).click();
        await page.getByRole('status').filter({ hasText: 'Threshold saved.' }).waitFor();
      }
      await checkPage(page, name);
    }

    // change password, then sign in with the new one
    await page.getByRole('link', { name: /Account of/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    const newPassword = 'Quartz-Harbor-Lantern-7431!';
    await page.getByLabel('Current password', { exact: true }).fill(users.MANAGER.password);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('Repeat the new password', { exact: true }).fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('status').filter({ hasText: 'Your password has been changed' }).waitFor();
    await checkPage(page, 'account');
    await logout(page);
    await login(page, base, users.MANAGER.email, newPassword);
    managerPassword = newPassword;
    await page.getByRole('heading', { level: 1, name: 'Factory dashboard' }).waitFor();
    await ctx.close();
  });

  // ---- line leader on a tablet -------------------------------------------------------------------
  await step('line leader journey: start, pause with a reason, resume, report output, complete', async () => {
    const ctx = await browser.newContext(tablet);
    const page = watch(await ctx.newPage(), 'leader');
    await login(page, base, users.LINE_LEADER.email, users.LINE_LEADER.password);
    await page.waitForURL(/\/tasks/);
    await page.getByRole('heading', { level: 1, name: 'My tasks' }).waitFor();
    await page.locator('article.task').first().waitFor();
    await checkPage(page, 'leader-tasks');
    const card = page.locator('article.task.status-planned').first();
    await card.waitFor();
    const woId = await card.getAttribute('data-wo');
    const byTitle = () => page.locator(`article.task[data-wo="${woId}"]`);
    const status = async (s) => byTitle().locator('.badge', { hasText: s }).waitFor();

    await byTitle().getByRole('button', { name: 'Start' }).click();
    await status('Running');
    // Someone else reports on the same work order (a second tablet): the card's version is stale.
    const tok = await (
      await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(users.LINE_LEADER) })
    ).json();
    const mine = await (await fetch(`${base}/api/my/tasks`, { headers: { authorization: `Bearer ${tok.access_token}` } })).json();
    const wo = mine.find((w) => w.id === woId && w.status === 'in_progress');
    assert(wo, 'the started work order is not in_progress through the API');
    const rep = await fetch(`${base}/api/work-orders/${wo.id}/output`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ good: 5, scrap: 0 }),
    });
    assert(rep.ok, `output through the API answered ${rep.status}`);
    await byTitle().getByRole('button', { name: 'Pause', exact: true }).click();
    await byTitle().locator('label.reason').first().click();
    await byTitle().getByRole('button', { name: 'Pause now' }).click();
    await page.getByRole('alert').filter({ hasText: 'Someone else changed this' }).waitFor();
    await byTitle().locator('.task-counts', { hasText: /^5 good/ }).waitFor();
    await status('Running');
    await byTitle().getByRole('button', { name: 'Pause', exact: true }).click();
    await byTitle().getByText('Why is the line stopping?').waitFor();
    await byTitle().locator('label.reason').first().click();
    await checkPage(page, 'leader-pause');
    await byTitle().getByRole('button', { name: 'Pause now' }).click();
    await status('Paused');
    await byTitle().getByText(/^Paused: /).waitFor();
    await byTitle().getByRole('button', { name: 'Resume' }).click();
    await status('Running');
    await byTitle().getByRole('button', { name: 'Report output' }).click();
    await byTitle().getByRole('button', { name: 'Good units: plus 10' }).click();
    await byTitle().getByRole('button', { name: 'Good units: plus 10' }).click();
    await byTitle().getByRole('button', { name: 'Scrap units: plus 10' }).click();
    await byTitle().getByText('Scrap reason').waitFor();
    await byTitle().locator('fieldset.reasons label.reason').first().click();
    const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/api/work-orders/${woId}/output`));
    await byTitle().getByRole('button', { name: 'Report 20 good, 10 scrap' }).click();
    const report = await sent;
    // Sent once-only: a retry after a lost answer would not count twice.
    assert(/^[0-9a-f]{32}$/.test(report.headers()['idempotency-key'] ?? ''), 'the output report carries an Idempotency-Key');
    assert(report.headers()['if-match'] === undefined, 'output is sent without If-Match');
    await byTitle().locator('.task-counts', { hasText: /^25 good/ }).waitFor();
    await byTitle().getByRole('button', { name: 'Instructions' }).click();
    await byTitle().getByRole('region', { name: 'Work instructions and documents' }).locator('.empty, .doc-list').first().waitFor();
    await byTitle().getByRole('button', { name: 'Complete' }).click();
    await byTitle().getByRole('button', { name: 'Yes, complete' }).click();
    await status('Completed');
    await checkPage(page, 'leader-tasks-after');
    await logout(page);
    await ctx.close();
  });

  // ---- forgot password -------------------------------------------------------------------------
  await step('forgot-password journey with the emailed code', async () => {
    const ctx = await browser.newContext(tablet);
    const page = watch(await ctx.newPage(), 'forgot');
    await page.goto(`${base}/login`);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
    await checkPage(page, 'forgot-email');
    const since = Date.now();
    await page.getByLabel("Your account's email").fill(users.LINE_LEADER.email);
    await page.getByRole('button', { name: 'Email me a code' }).click();
    await page.getByLabel('6-digit code from the email').waitFor();
    const code = await waitForCode(join(dataDir, 'mail'), users.LINE_LEADER.email, since);
    // a wrong code first: explained in plain words
    await page.getByLabel('6-digit code from the email').fill(code === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Check the code' }).click();
    await page.getByRole('alert').filter({ hasText: 'That code is wrong' }).waitFor();
    await page.getByLabel('6-digit code from the email').fill(code);
    await page.getByRole('button', { name: 'Check the code' }).click();
    await page.getByLabel('New password', { exact: true }).waitFor();
    // a weak password: the 422 reason is shown
    await page.getByLabel('New password', { exact: true }).fill('password1234');
    await page.getByLabel('Repeat the new password', { exact: true }).fill('password1234');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByRole('alert').filter({ hasText: 'That password is not accepted' }).waitFor();
    await checkPage(page, 'forgot-new-password');
    const fresh = 'Copper-Meadow-Violin-5820!';
    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByLabel('Repeat the new password', { exact: true }).fill(fresh);
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByText('Your password has been changed').waitFor();
    await login(page, base, users.LINE_LEADER.email, fresh);
    await page.getByRole('heading', { level: 1, name: 'My tasks' }).waitFor();
    await ctx.close();
  });

  // ---- verify email ----------------------------------------------------------------------------
  await step('verify-email journey: login asks for the code, the emailed code verifies', async () => {
    const a = await (
      await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(users.ADMIN) })
    ).json();
    const email = 'vera.verify@demo.factory';
    const password = 'Granite-Orchid-Pelican-3390!';
    const since = Date.now();
    const created = await fetch(`${base}/api/admin/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email, name: 'Vera Verify', roles: ['LINE_LEADER'], password }),
    });
    assert(created.status === 201, `creating the user answered ${created.status}`);
    const code = await waitForCode(join(dataDir, 'mail'), email, since);
    const ctx = await browser.newContext(tablet);
    const page = watch(await ctx.newPage(), 'verify');
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(/\/verify-email/);
    await page.getByText('must be verified before you can sign in').waitFor();
    await page.getByLabel('6-digit code from the email').fill(code);
    await page.getByRole('button', { name: 'Verify', exact: true }).click();
    await page.getByText('Your email is verified.').waitFor();
    noPageProblems(page);
    await login(page, base, email, password);
    await page.getByRole('heading', { level: 1, name: 'My tasks' }).waitFor();
    await page.getByText('No published tasks on your lines today').waitFor();
    await ctx.close();
  });

  // ---- session end ------------------------------------------------------------------------------
  await step('session ended by an admin: back to the login page with a message', async () => {
    const ctx = await browser.newContext(desktop);
    const page = watch(await ctx.newPage(), 'session-end');
    await login(page, base, users.MANAGER.email, managerPassword);
    await page.getByRole('heading', { level: 1, name: 'Factory dashboard' }).waitFor();
    // The admin signs the manager out everywhere through the API.
    const a = await (
      await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(users.ADMIN),
      })
    ).json();
    const list = await (await fetch(`${base}/api/admin/users?limit=200`, { headers: { authorization: `Bearer ${a.access_token}` } })).json();
    const mgr = list.items.find((u) => u.email === users.MANAGER.email);
    const r = await fetch(`${base}/api/admin/users/${mgr.id}/revoke-sessions`, { method: 'POST', headers: { authorization: `Bearer ${a.access_token}` } });
    assert(r.status === 204, `revoke-sessions answered ${r.status}`);
    await new Promise((res) => setTimeout(res, 1500));
    // The next API call (a poll, or this navigation) meets a 401, the refresh is refused, and the
    // app returns to the login page with a message.
    if (!new URL(page.url()).pathname.startsWith('/login')) {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Orders', exact: true }).click({ timeout: 5000 }).catch(() => undefined);
    }
    await page.waitForURL(/\/login/, { timeout: 15_000 });
    await page.getByRole('alert').filter({ hasText: 'Your session has ended' }).waitFor();
    await checkPage(page, 'session-ended');
    await ctx.close();
  });

  if (failures.length === 0) log(`server log tail:\n${serverLog.split('\n').slice(-3).join('\n')}`);
}

try {
  await main();
} catch (e) {
  failures.push(`setup: ${e instanceof Error ? e.message : e}`);
} finally {
  await browser?.close().catch(() => undefined);
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
  }
}

const secs = ((Date.now() - started) / 1000).toFixed(1);
if (failures.length) {
  if (dataDirToClean) console.error(`(server data, mail and database kept in ${dataDirToClean})`);
  console.error(`\nE2E FAILED (${failures.length}) after ${secs} s:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
if (dataDirToClean) rmSync(dataDirToClean, { recursive: true, force: true });
console.log(`\nE2E passed in ${secs} s. Pages checked (axe, CSP, screenshot): ${checked.join(', ')}`);
