// GraphiQL's fetchers and rendering, served as /graphiql/assets/app-<digest>.js (src/server/pages.rs) so that the
// page needs no inline script under its Content-Security-Policy.
//
// Queries and mutations go to POST /graphql with the Headers pane's headers. Subscriptions go to /graphql/ws over
// graphql-transport-ws, with the Headers pane's Authorization in connection_init (a browser cannot set headers on a
// WebSocket).
//
// Sign in (when GET /graphiql/config names an issuer): the OAuth 2.0 authorization-code flow with PKCE (S256), as a
// public client. Only the flow's state and code_verifier wait in sessionStorage across the redirect, removed as the
// page comes back; the access token lives in this script's memory only (never in storage, a cookie or the URL), so a
// reload signs out. It is renewed with the refresh token before it expires; without one, or when renewal fails, the
// page says so and signs out. While signed in, its token replaces the Headers pane's Authorization.
'use strict';

(function () {
  const FLOW_KEY = 'kyc-gateway.graphiql.sign-in';
  const bar = document.getElementById('signin');
  const signInButton = document.getElementById('signin-button');
  const signOutButton = document.getElementById('signout-button');
  const statusText = document.getElementById('signin-status');
  // The signed-in session, in memory only.
  let session = null;
  let renewTimer = null;

  function show(text, signedIn) {
    statusText.textContent = text;
    signInButton.hidden = signedIn;
    signOutButton.hidden = !signedIn;
  }

  function base64url(bytes) {
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString() {
    return base64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  async function s256(verifier) {
    return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  }

  // The claims of a JWT, for the status line only (the gateway verifies the token; this does not).
  function claims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    } catch {
      return {};
    }
  }

  async function loadConfig() {
    const answer = await fetch(new URL('/graphiql/config', location.href), { credentials: 'omit' });
    if (!answer.ok) throw new Error(`GET /graphiql/config answered ${answer.status}`);
    return (await answer.json()).signIn;
  }

  // The issuer's endpoints (OpenID Connect Discovery). The token endpoint must be on the issuer's origin: that is the
  // one origin the page's Content-Security-Policy lets it connect to besides its own.
  async function discover(config) {
    const issuer = new URL(config.issuer.replace(/\/+$/, ''), location.href);
    const url = new URL(`${issuer.pathname.replace(/\/+$/, '')}/.well-known/openid-configuration`, issuer);
    const answer = await fetch(url, { credentials: 'omit' });
    if (!answer.ok) throw new Error(`the issuer's discovery document answered ${answer.status}`);
    const document = await answer.json();
    const authorize = new URL(document.authorization_endpoint, url);
    const token = new URL(document.token_endpoint, url);
    if (token.origin !== issuer.origin) throw new Error(`the token endpoint ${token} is not on the issuer's origin`);
    return { authorize, token };
  }

  function redirectUri() {
    return new URL('/graphiql', location.href).toString();
  }

  async function startSignIn(config) {
    const endpoints = await discover(config);
    const state = randomString();
    const verifier = randomString();
    sessionStorage.setItem(FLOW_KEY, JSON.stringify({ state, verifier }));
    const url = new URL(endpoints.authorize);
    const query = {
      response_type: 'code',
      client_id: config.clientId,
      redirect_uri: redirectUri(),
      state,
      code_challenge: await s256(verifier),
      code_challenge_method: 'S256',
    };
    if (config.scopes) query.scope = config.scopes;
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    location.assign(url.toString());
  }

  async function tokenRequest(config, form) {
    const endpoints = await discover(config);
    const answer = await fetch(endpoints.token, {
      method: 'POST',
      credentials: 'omit',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: config.clientId, ...form }).toString(),
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok || typeof body.access_token !== 'string') {
      throw new Error(body.error_description || body.error || `the token endpoint answered ${answer.status}`);
    }
    return body;
  }

  function signOut(reason) {
    session = null;
    clearTimeout(renewTimer);
    show(reason, false);
  }

  // Keeps the tokens in memory and renews them at four fifths of their lifetime (refresh-token grant).
  function signedIn(config, answer) {
    const lifetime = Math.max(Number(answer.expires_in) || 300, 10);
    const refresh = answer.refresh_token || (session && session.refresh) || null;
    session = { token: answer.access_token, refresh, expiresAt: Date.now() + lifetime * 1000 };
    const who = claims(answer.access_token);
    show(`Signed in as ${who.sub || 'unknown'}${who.scope ? ` (${who.scope})` : ''}`, true);
    clearTimeout(renewTimer);
    renewTimer = setTimeout(() => renew(config), lifetime * 800);
  }

  async function renew(config) {
    const ends = session && session.expiresAt;
    if (!session || !session.refresh) {
      renewTimer = setTimeout(() => signOut('Signed out: the token expired; sign in again'), Math.max(ends - Date.now(), 0));
      return;
    }
    try {
      signedIn(config, await tokenRequest(config, { grant_type: 'refresh_token', refresh_token: session.refresh }));
    } catch (error) {
      signOut(`Signed out: renewing the token failed (${error.message}); sign in again`);
    }
  }

  // Back from the issuer with ?code=...&state=... (or ?error=...): the URL is cleaned and the flow's storage removed
  // first, whatever follows.
  async function completeSignIn(config) {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return;
    const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null');
    sessionStorage.removeItem(FLOW_KEY);
    history.replaceState(null, '', location.pathname);
    if (params.has('error')) throw new Error(`the issuer answered ${params.get('error')}`);
    if (!flow || !params.get('state') || flow.state !== params.get('state')) {
      throw new Error('the sign-in came back with a state this page did not start');
    }
    signedIn(config, await tokenRequest(config, {
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      code_verifier: flow.verifier,
    }));
  }

  // Settles once the page knows whether it is signed in: GraphiQL's first introspection waits for it.
  const ready = (async () => {
    let config = null;
    try {
      config = await loadConfig();
    } catch (error) {
      console.warn(`sign-in unavailable: ${error.message}`);
      return;
    }
    if (!config) return;
    bar.hidden = false;
    signInButton.addEventListener('click', () => {
      show('Signing in...', false);
      startSignIn(config).catch((error) => show(`Sign-in failed: ${error.message}`, false));
    });
    signOutButton.addEventListener('click', () => signOut('Signed out'));
    try {
      await completeSignIn(config);
    } catch (error) {
      signOut(`Sign-in failed: ${error.message}`);
    }
  })();

  const http = GraphiQL.createFetcher({ url: new URL('/graphql', location.href).toString() });

  function operationType(params) {
    const text = params.query.replace(/#[^\n]*/g, '');
    const operations = [...text.matchAll(/(?:^|[}\s])(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
    const chosen = params.operationName
      ? operations.find((m) => m[2] === params.operationName)
      : operations[0];
    return chosen ? chosen[1] : 'query';
  }

  async function* subscribe(params, headers) {
    const url = new URL('/graphql/ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, 'graphql-transport-ws');
    const queue = [];
    let wake = null;
    const push = (item) => { queue.push(item); if (wake) { wake(); wake = null; } };
    socket.onopen = () => socket.send(JSON.stringify({
      type: 'connection_init',
      payload: { Authorization: headers.Authorization || headers.authorization || '' },
    }));
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: params }));
      } else if (data.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (data.type === 'next') {
        push({ value: data.payload });
      } else if (data.type === 'error') {
        push({ value: { errors: data.payload }, end: true });
      } else if (data.type === 'complete') {
        push({ end: true });
      }
    };
    socket.onclose = (event) => push({
      value: event.code === 1000 ? undefined : { errors: [{ message: `connection closed: ${event.code} ${event.reason}` }] },
      end: true,
    });
    try {
      for (;;) {
        if (queue.length === 0) await new Promise((resolve) => { wake = resolve; });
        const item = queue.shift();
        if (item.value) yield item.value;
        if (item.end) return;
      }
    } finally {
      if (socket.readyState <= 1) socket.close(1000);
    }
  }

  // Every operation needs a token (the gateway answers 401 without one). GraphiQL introspects the schema as the page
  // loads, before anyone has filled the Headers pane: that, and any operation run while the pane holds no token or
  // still the placeholder, is answered here with what to do rather than sent to fail.
  const missingToken = {
    errors: [{
      message: 'No token: sign in (the button above, when offered), or put {"Authorization": "Bearer <token>"} in the '
        + 'Headers pane; then run the operation again and re-fetch the schema (the circular arrows in the sidebar, or '
        + 'Ctrl+Shift+R).',
      extensions: { code: 'UNAUTHENTICATED' },
    }],
  };

  function withToken(options) {
    const headers = { ...((options && options.headers) || {}) };
    if (session && Date.now() < session.expiresAt) {
      delete headers.authorization;
      headers.Authorization = `Bearer ${session.token}`;
    }
    return { ...(options || {}), headers };
  }

  // The headers to send, once the page knows whether it is signed in; none when there is no token to send.
  async function headersFor(options) {
    await ready;
    const signed = withToken(options);
    const authorization = String(signed.headers.Authorization || signed.headers.authorization || '').trim();
    return !authorization || authorization.includes('<') ? null : signed;
  }

  function fetcher(params, options) {
    if (operationType(params) === 'subscription') {
      return (async function* () {
        const signed = await headersFor(options);
        if (!signed) {
          yield missingToken;
          return;
        }
        yield* subscribe(params, signed.headers);
      })();
    }
    return headersFor(options).then((signed) => (signed ? http(params, signed) : missingToken));
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: '{\n  "Authorization": "Bearer <token from `cargo run -q -- token ...`>"\n}',
    })
  );
})();
