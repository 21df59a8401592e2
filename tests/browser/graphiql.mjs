// GraphiQL in a real browser: Debian's Chromium, headless, through playwright-core, against a sandbox-mode gateway,
// with every request to anything but the gateway blocked (DNS and request interception both).
//
//   node graphiql.mjs [path/to/kyc-gateway]      (or KYC_GATEWAY_BIN; default target/debug/kyc-gateway)
//
// It builds nothing: .ci/browser.sh installs Chromium when missing, builds the binary and runs this. It starts the
// binary (`serve --listen 127.0.0.1:0 --addr-file ...`), mints tokens with `kyc-gateway token`, and
//   1. runs `{ me { id emails { address } } }` from GraphiQL with the seed person's token in the Headers pane and
//      waits for their id in the result pane;
//   2. runs `subscription { verificationChanged { provider state } }` for a user whose Sumsub review is pending,
//      approves them at the sandbox Sumsub, and waits for APPROVED in the result pane (over /graphql/ws);
//   3. signs in with the Sign in button through the sandbox sign-in page (the authorization-code flow with PKCE):
//      fills its form for the pending user with their scopes, comes back to GraphiQL, runs `{ me { id } }` and the
//      subscription again (a rejection this time), and checks that the token is in no localStorage, no
//      sessionStorage (the flow's state and verifier are gone after the callback), no cookie (document.cookie and the
//      browser's cookie jar) and not in the URL;
// then fails if any request left the gateway's origin, or the console showed an error, or the page's (or the
// sign-in page's) Content-Security-Policy was violated. Screenshots go to target/browser/ (BROWSER_SCREENSHOTS overrides).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const SEED = 'b76ab44d-b71e-4d19-b6f9-f6e88cd73946';
const SEED_SCOPES = 'uid:read contact:read verification.plus:read verification.plus.details:read';
// A user whose Sumsub review is pending in the sandbox (docs/operations.md, "Live changes").
const PENDING = '5246b314-ecd5-4fca-95a0-99069c7d64aa';
const PENDING_SCOPES = 'uid:read verification.basic:read verification.selfie:read verification.liveness:read';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = path.resolve(process.argv[2] || process.env.KYC_GATEWAY_BIN || path.join(ROOT, 'target/debug/kyc-gateway'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.resolve(process.env.BROWSER_SCREENSHOTS || path.join(ROOT, 'target/browser'));
const STEP_TIMEOUT_MS = 30_000;
const WATCHDOG_MS = 180_000;

const log = (line) => console.log(line);

// The gateway in sandbox mode: no KYC_GATEWAY_* setting of the caller's environment leaks into it.
const gatewayEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KYC_GATEWAY_')));
gatewayEnv.RUST_LOG = 'info';

let gateway = null;
let browser = null;
let scratch = null;

async function cleanUp() {
  if (browser) await browser.close().catch(() => {});
  if (gateway && gateway.exitCode === null) gateway.kill('SIGTERM');
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

function fail(message) {
  console.error(`FAIL: ${message}`);
  return cleanUp().finally(() => process.exit(1));
}

const watchdog = setTimeout(() => fail(`the test did not finish in ${WATCHDOG_MS / 1000} s`), WATCHDOG_MS);

// Starts the gateway on port 0 and returns its origin and the sandbox Sumsub's URL (from its start-up log).
async function startGateway() {
  if (!existsSync(BIN)) throw new Error(`no gateway binary at ${BIN} (cargo build --bin kyc-gateway)`);
  scratch = mkdtempSync(path.join(tmpdir(), 'kyc-gateway-browser-'));
  const addrFile = path.join(scratch, 'addr');
  let output = '';
  gateway = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--addr-file', addrFile], {
    env: gatewayEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateway.stdout.on('data', (chunk) => { output += chunk; });
  gateway.stderr.on('data', (chunk) => { output += chunk; });
  const deadline = Date.now() + 60_000;
  let addr = null;
  let sumsub = null;
  while (!(addr && sumsub)) {
    if (gateway.exitCode !== null) throw new Error(`the gateway exited with ${gateway.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`the gateway did not start in 60 s:\n${output}`);
    if (!addr && existsSync(addrFile)) addr = readFileSync(addrFile, 'utf8').trim();
    const found = output.match(/sumsub (http:\/\/[^\s,]+)/i);
    if (found) sumsub = found[1];
    await sleep(50);
  }
  return { origin: `http://${addr}`, sumsub, output: () => output };
}

function token(sub, scope) {
  return execFileSync(BIN, ['token', '--sub', sub, '--scope', scope], { env: gatewayEnv, encoding: 'utf8' }).trim();
}

// A browser context that can reach the gateway's origin only, recording everything it asks for.
async function isolatedContext(origin, record) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    record.requests.push(url);
    if (new URL(url).origin === origin) return route.continue();
    record.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  // Chromium logs a violation to the console itself; this names the directive and the blocked URL as well.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  return context;
}

async function openGraphiql(context, origin, record) {
  const page = await context.newPage();
  page.on('console', (message) => {
    const line = `console.${message.type()}: ${message.text()}`;
    if (message.type() === 'error') record.errors.push(line);
    else if (message.type() === 'warning') record.warnings.push(line);
  });
  page.on('pageerror', (error) => record.errors.push(`page error: ${error.message}`));
  page.on('websocket', (socket) => record.requests.push(socket.url()));
  const response = await page.goto(`${origin}/graphiql`, { waitUntil: 'load' });
  if (!response || response.status() !== 200) throw new Error(`GET /graphiql answered ${response && response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) throw new Error(`the page's CSP is ${JSON.stringify(csp)}`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: STEP_TIMEOUT_MS });
  return page;
}

// The text of a CodeMirror editor under `selector`.
function editorText(page, selector) {
  return page.evaluate((s) => {
    const editor = document.querySelector(`${s} .CodeMirror`);
    return editor ? editor.CodeMirror.getValue() : null;
  }, selector);
}

// Replaces the text of the CodeMirror editor under `selector` as a user would: click, select all, type.
async function type(page, selector, text) {
  await page.locator(`${selector} .CodeMirror`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // One input event, as a paste: typing `{` key by key would have CodeMirror close the bracket itself.
  await page.keyboard.insertText(text);
  const typed = await editorText(page, selector);
  if (typed !== text) throw new Error(`the editor ${selector} holds ${JSON.stringify(typed)}`);
}

// Puts `headers` in the Headers pane, then re-fetches the schema with them (at load GraphiQL introspects with no
// headers, which the page's fetcher answers itself: assets/app.js).
async function enterHeaders(page, headers) {
  await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).click();
  await type(page, '.graphiql-editor-tool .graphiql-editor:not(.hidden)', JSON.stringify(headers, null, 2));
  const introspected = page.waitForResponse(
    (r) => r.url().endsWith('/graphql') && (r.request().postData() || '').includes('IntrospectionQuery'),
    { timeout: STEP_TIMEOUT_MS },
  );
  await page.locator('button[aria-label="Re-fetch GraphQL schema"]').click();
  const answer = await introspected;
  if (answer.status() !== 200) throw new Error(`the introspection answered ${answer.status()}`);
}

// Types `query` into the query editor, replacing what is there, and runs it.
async function run(page, query) {
  await type(page, '.graphiql-query-editor', query);
  await page.locator('.graphiql-execute-button').click();
}

// Waits until the result pane holds `text`, and returns what it holds.
async function resultContaining(page, text, timeout = STEP_TIMEOUT_MS) {
  try {
    await page.waitForFunction(
      (t) => {
        const editor = document.querySelector('.result-window .CodeMirror');
        return editor && editor.CodeMirror.getValue().includes(t);
      },
      text,
      { timeout, polling: 100 },
    );
  } catch {
    const shown = await editorText(page, '.result-window');
    throw new Error(`the result pane never showed ${text}; it shows ${JSON.stringify(shown)}`);
  }
  return editorText(page, '.result-window');
}

function checkRecord(name, origin, record) {
  const elsewhere = record.requests.filter((url) => !url.startsWith('data:') && new URL(url).host !== new URL(origin).host);
  const problems = [];
  if (elsewhere.length) problems.push(`requests that left the gateway: ${elsewhere.join(', ')}`);
  if (record.blocked.length) problems.push(`blocked requests: ${record.blocked.join(', ')}`);
  if (record.errors.length) problems.push(`console errors:\n  ${record.errors.join('\n  ')}`);
  for (const warning of record.warnings) log(`  (${name}) ${warning}`);
  const host = new URL(origin).host;
  const shown = record.requests.map((url) => {
    const u = new URL(url);
    return u.host === host ? `${u.pathname}${u.protocol === 'ws:' ? ' (WebSocket)' : ''}` : url;
  });
  log(`  (${name}) ${record.requests.length} requests: ${[...new Set(shown)].join(' ')}`);
  if (problems.length) throw new Error(`${name}: ${problems.join('\n')}`);
}

async function main() {
  const { origin, sumsub, output } = await startGateway();
  log(`== gateway ${BIN} at ${origin} (sandbox Sumsub at ${sumsub})`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
  });
  log(`== ${CHROMIUM} ${browser.version()}, headless; every host but 127.0.0.1 and localhost unresolvable`);
  mkdirSync(SHOTS, { recursive: true });

  // 1. A query over HTTP.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const bearer = `Bearer ${token(SEED, SEED_SCOPES)}`;
    const page = await openGraphiql(context, origin, record);
    await enterHeaders(page, { Authorization: bearer });
    await run(page, '{ me { id emails { address } } }');
    const result = JSON.parse(await resultContaining(page, SEED));
    if (result.data.me.id !== SEED || !Array.isArray(result.data.me.emails) || result.errors) {
      throw new Error(`unexpected answer: ${JSON.stringify(result)}`);
    }
    log(`== query: the result pane shows ${JSON.stringify(result)}`);
    const shot = path.join(SHOTS, 'graphiql.png');
    await page.screenshot({ path: shot });
    log(`   screenshot ${shot}`);
    checkRecord('query', origin, record);
    await context.close();
  }

  // 2. A subscription over /graphql/ws, answered by a webhook from the sandbox Sumsub.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const bearer = `Bearer ${token(PENDING, PENDING_SCOPES)}`;
    const page = await openGraphiql(context, origin, record);
    await enterHeaders(page, { Authorization: bearer });
    const subscribed = page.waitForEvent('websocket', { timeout: STEP_TIMEOUT_MS }).then((socket) => socket.waitForEvent(
      'framesent',
      { predicate: (frame) => String(frame.payload).includes('"type":"subscribe"'), timeout: STEP_TIMEOUT_MS },
    ));
    await run(page, 'subscription { verificationChanged { provider state } }');
    await subscribed;
    // The gateway starts the subscription moments after the message; the sandbox's webhook takes longer than that.
    await sleep(500);
    const review = await fetch(`${sumsub}/_sandbox/applicants/${PENDING}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reviewAnswer: 'GREEN' }),
    });
    if (!review.ok) throw new Error(`the sandbox Sumsub answered ${review.status}: ${await review.text()}`);
    const shown = await resultContaining(page, 'APPROVED');
    log(`== subscription: the result pane shows ${JSON.stringify(JSON.parse(shown))}`);
    const shot = path.join(SHOTS, 'graphiql-subscription.png');
    await page.screenshot({ path: shot });
    log(`   screenshot ${shot}`);
    checkRecord('subscription', origin, record);
    await context.close();
  }

  // 3. Sign in through the sandbox sign-in page, then a query and a subscription with the signed-in token.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const page = await openGraphiql(context, origin, record);
    const sent = [];
    page.on('request', (request) => {
      const authorization = request.headers().authorization;
      if (authorization) sent.push(authorization);
    });
    const frames = [];
    page.on('websocket', (socket) => socket.on('framesent', (frame) => frames.push(String(frame.payload))));
    await page.locator('#signin-button').click();
    await page.waitForURL((url) => url.pathname === '/_sandbox/signin/authorize', { timeout: STEP_TIMEOUT_MS });
    const form = page.url();
    for (const name of ['state', 'code_challenge']) {
      if (!new URL(form).searchParams.get(name)) throw new Error(`the authorization request has no ${name}: ${form}`);
    }
    if (new URL(form).searchParams.get('code_challenge_method') !== 'S256') throw new Error(`not S256: ${form}`);
    const flow = await page.evaluate(() => Object.keys(sessionStorage));
    log(`== sign-in: at the sandbox sign-in page; sessionStorage holds ${JSON.stringify(flow)} during the flow`);
    await page.locator('input[name="subject"]').fill(PENDING);
    await page.locator('input[name="kind"][value="user"]').check();
    for (const scope of PENDING_SCOPES.split(' ')) await page.locator(`input[name="scope"][value="${scope}"]`).check();
    await page.screenshot({ path: path.join(SHOTS, 'graphiql-sign-in-page.png') });
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((url) => url.pathname === '/graphiql', { timeout: STEP_TIMEOUT_MS });
    await page.locator('#signin-status', { hasText: `Signed in as ${PENDING}` }).waitFor({ timeout: STEP_TIMEOUT_MS });
    log(`== sign-in: back at ${page.url()}; ${await page.locator('#signin-status').textContent()}`);
    if (new URL(page.url()).search) throw new Error(`the code is still in the URL: ${page.url()}`);

    await run(page, '{ me { id } }');
    const result = JSON.parse(await resultContaining(page, PENDING));
    if (result.data.me.id !== PENDING || result.errors) throw new Error(`unexpected answer: ${JSON.stringify(result)}`);
    log(`== sign-in: the query shows ${JSON.stringify(result)}`);

    const subscribed = page.waitForEvent('websocket', { timeout: STEP_TIMEOUT_MS }).then((socket) => socket.waitForEvent(
      'framesent',
      { predicate: (frame) => String(frame.payload).includes('"type":"subscribe"'), timeout: STEP_TIMEOUT_MS },
    ));
    await run(page, 'subscription { verificationChanged { provider state } }');
    await subscribed;
    const init = frames.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
    if (!init || !String(init.payload.Authorization).startsWith('Bearer ')) {
      throw new Error(`connection_init carried no signed-in token: ${JSON.stringify(init)}`);
    }
    sent.push(init.payload.Authorization);
    await sleep(500);
    const review = await fetch(`${sumsub}/_sandbox/applicants/${PENDING}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reviewAnswer: 'RED', reviewRejectType: 'FINAL', rejectLabels: ['FORGERY'] }),
    });
    if (!review.ok) throw new Error(`the sandbox Sumsub answered ${review.status}: ${await review.text()}`);
    const shown = await resultContaining(page, 'REJECTED');
    log(`== sign-in: the subscription shows ${JSON.stringify(JSON.parse(shown))}`);
    const shot = path.join(SHOTS, 'graphiql-signed-in.png');
    await page.screenshot({ path: shot });
    log(`   screenshots ${path.join(SHOTS, 'graphiql-sign-in-page.png')} ${shot}`);

    // The token is in memory only.
    const tokens = [...new Set(sent.map((a) => String(a).replace(/^Bearer /, '')))];
    if (tokens.length === 0 || tokens.some((t) => t.split('.').length !== 3)) {
      throw new Error(`the signed-in requests carried ${JSON.stringify(sent)}`);
    }
    const kept = await page.evaluate(() => ({
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
      cookie: document.cookie,
      url: location.href,
    }));
    const jar = await context.cookies();
    const cdp = await context.newCDPSession(page);
    const { cookies: allCookies } = await cdp.send('Network.getAllCookies');
    const everywhere = JSON.stringify([kept, jar, allCookies]);
    const leaked = tokens.filter((t) => everywhere.includes(t) || everywhere.includes(t.split('.')[2]));
    // GraphiQL keeps its tabs and history in localStorage (the history with the Headers pane's placeholder): no JWT
    // may be among them, the signed-in one or any other.
    const bearer = /eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(JSON.stringify(kept.local));
    if (bearer || kept.session.length || kept.cookie || jar.length || allCookies.length || leaked.length) {
      throw new Error(`a token or the flow was kept: ${everywhere}`);
    }
    log(`== sign-in: ${tokens.length} token(s) used, none kept; localStorage keys `
      + `${JSON.stringify(kept.local.map(([k]) => k))}, sessionStorage `
      + `${JSON.stringify(kept.session)}, document.cookie ${JSON.stringify(kept.cookie)}, cookie jar ${jar.length} `
      + `(CDP Network.getAllCookies: ${allCookies.length}), URL ${kept.url}`);
    checkRecord('sign-in', origin, record);
    await context.close();
  }

  if (/ERROR|panicked/.test(output())) throw new Error(`the gateway logged an error:\n${output()}`);
  log('== ok: GraphiQL ran a query and a subscription, with a pasted token and signed in, with no request outside the '
    + 'gateway, no console error and no CSP violation; the signed-in token was kept in memory only');
}

main()
  .then(() => { clearTimeout(watchdog); return cleanUp(); })
  .catch((error) => { clearTimeout(watchdog); return fail(error.stack || String(error)); });
