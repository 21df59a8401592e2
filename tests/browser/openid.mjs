// A tiny OpenID provider for the browser test, on 127.0.0.1:0 with node's own `http` and `crypto`: discovery, a JWK
// Set with one Ed25519 key, an authorization endpoint that signs `staff-1` in at once (no UI), and a token endpoint
// that checks the PKCE verifier (S256) and answers a signed access token, with CORS for the gateway's origin only.
// It plays the staff's identity provider that a production-mode gateway trusts (KYC_GATEWAY_JWT_ISSUERS) and that
// GraphiQL signs in at (KYC_GATEWAY_GRAPHIQL_ISSUER).

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import http from 'node:http';

const CODE_TTL_MS = 60_000;
const TOKEN_TTL_S = 300;
const MAX_BODY_BYTES = 16 * 1024;
const MAX_CODES = 100;

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

// `subject` signs in whenever asked; `clientId` is the one public client; `audience` goes in every token's `aud`. Set
// `gateway` (its origin) once the gateway listens: the redirect URI and the CORS origin follow from it.
export async function startIssuer({ subject, clientId, audience }) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const kid = b64url(randomBytes(9));
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' };
  // code -> what it was issued for; each code is good once, for CODE_TTL_MS.
  const codes = new Map();
  const issuer = { gateway: null, url: null, asked: [], issued: [], refused: [] };

  function mint(scope) {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'EdDSA', typ: 'at+jwt', kid };
    const claims = {
      iss: issuer.url, sub: subject, aud: audience, client_id: clientId, scope,
      iat: now, exp: now + TOKEN_TTL_S, jti: b64url(randomBytes(12)),
    };
    const signed = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${signed}.${b64url(sign(null, Buffer.from(signed), privateKey))}`;
  }

  function cors(req) {
    const origin = req.headers.origin;
    return origin && origin === issuer.gateway ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
  }

  function answer(res, status, body, headers = {}) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
    res.end(text);
  }

  function refuse(res, status, what, headers) {
    issuer.refused.push(what);
    answer(res, status, { error: what.split(':')[0], error_description: what }, headers);
  }

  async function readForm(req) {
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw new Error('a body over 16 KiB');
      chunks.push(chunk);
    }
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  function authorize(req, res, query) {
    const redirectUri = `${issuer.gateway}/graphiql`;
    const checks = [
      [query.get('response_type') === 'code', 'unsupported_response_type: response_type must be code'],
      [query.get('client_id') === clientId, `unauthorized_client: the client is ${clientId}`],
      [query.get('redirect_uri') === redirectUri, `invalid_request: redirect_uri must be ${redirectUri}`],
      [query.get('code_challenge_method') === 'S256', 'invalid_request: code_challenge_method must be S256'],
      [/^[A-Za-z0-9_-]{43}$/.test(query.get('code_challenge') || ''), 'invalid_request: no S256 code_challenge'],
      [Boolean(query.get('state')), 'invalid_request: no state'],
    ];
    const failed = checks.find(([ok]) => !ok);
    // Never redirect to a URI that is not the registered one: a plain error page instead.
    if (failed) return refuse(res, 400, failed[1]);
    if (codes.size >= MAX_CODES) return refuse(res, 503, 'temporarily_unavailable: too many open codes');
    const code = b64url(randomBytes(24));
    const scope = query.get('scope') || '';
    codes.set(code, { challenge: query.get('code_challenge'), redirectUri, scope, expires: Date.now() + CODE_TTL_MS });
    issuer.asked.push({ scope, state: query.get('state') });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', query.get('state'));
    res.writeHead(302, { location: back.toString(), 'cache-control': 'no-store' });
    return res.end();
  }

  async function token(req, res) {
    const headers = cors(req);
    if (!headers['access-control-allow-origin']) {
      return refuse(res, 403, `invalid_request: the token endpoint answers the gateway's origin, not ${req.headers.origin}`);
    }
    let form;
    try {
      form = await readForm(req);
    } catch (error) {
      return refuse(res, 413, `invalid_request: ${error.message}`, headers);
    }
    if (form.get('grant_type') !== 'authorization_code') {
      return refuse(res, 400, 'unsupported_grant_type: authorization_code only', headers);
    }
    const code = form.get('code') || '';
    const issued = codes.get(code);
    codes.delete(code);
    if (!issued || issued.expires < Date.now()) return refuse(res, 400, 'invalid_grant: unknown or used code', headers);
    if (form.get('client_id') !== clientId) return refuse(res, 400, 'invalid_client: another client', headers);
    if (form.get('redirect_uri') !== issued.redirectUri) return refuse(res, 400, 'invalid_grant: redirect_uri', headers);
    const verifier = form.get('code_verifier') || '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || challenge !== issued.challenge) {
      return refuse(res, 400, 'invalid_grant: the code_verifier does not match the code_challenge', headers);
    }
    const accessToken = mint(issued.scope);
    issuer.issued.push({ scope: issued.scope, token: accessToken });
    return answer(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: TOKEN_TTL_S, scope: issued.scope }, headers);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, issuer.url);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /.well-known/openid-configuration') {
      return answer(res, 200, {
        issuer: issuer.url,
        authorization_endpoint: `${issuer.url}/authorize`,
        token_endpoint: `${issuer.url}/token`,
        jwks_uri: `${issuer.url}/jwks`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
        id_token_signing_alg_values_supported: ['EdDSA'],
      }, cors(req));
    }
    if (route === 'GET /jwks') return answer(res, 200, { keys: [jwk] });
    if (route === 'GET /authorize') return authorize(req, res, url.searchParams);
    if (route === 'OPTIONS /token') {
      const headers = cors(req);
      if (!headers['access-control-allow-origin']) return refuse(res, 403, 'invalid_request: a preflight from elsewhere');
      res.writeHead(204, {
        ...headers,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '60',
      });
      return res.end();
    }
    if (route === 'POST /token') {
      return token(req, res).catch((error) => refuse(res, 500, `server_error: ${error.message}`));
    }
    return answer(res, 404, 'not found');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  issuer.url = `http://127.0.0.1:${server.address().port}`;
  issuer.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
  return issuer;
}
