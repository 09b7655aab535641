// An independent OpenID Connect provider for the gateway's token tests: npm
// oidc-provider (OpenID certified), issuing RFC 9068 JWT access tokens under the
// client_credentials grant through the resourceIndicators feature.
//
// Usage: node provider.mjs <port> <private-jwks.json> <clients.json>
//   The JWKS file holds the signing keys (the test writes a new one to rotate);
//   clients.json lists {client_id, client_secret, scope, ttl?}. Prints "ready <issuer>"
//   once it listens on 127.0.0.1:<port>.
import { readFileSync } from 'node:fs';
import { Provider } from 'oidc-provider';

const [port, jwksFile, clientsFile] = process.argv.slice(2);
const jwks = JSON.parse(readFileSync(jwksFile, 'utf8'));
const clients = JSON.parse(readFileSync(clientsFile, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;
const ttlByClient = Object.fromEntries(clients.map((c) => [c.client_id, c.ttl ?? 300]));
const allScopes = [...new Set(clients.flatMap((c) => c.scope.split(' ')))];

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: c.scope,
    token_endpoint_auth_method: c.auth_method ?? 'client_secret_basic',
    // The provider signs with the test's key only (EC), not its RS256 default.
    id_token_signed_response_alg: jwks.keys[0].alg ?? 'ES256',
  })),
  jwks,
  scopes: allScopes,
  cookies: { keys: ['interop-test-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A token request without `resource` is for the SMS API.
      defaultResource: () => 'urn:smsgateway:sms-api',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => ({
        scope: allScopes.join(' '),
        audience: resourceIndicator,
        accessTokenTTL: ttlByClient[client.clientId] ?? 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: jwks.keys[0].alg ?? 'ES256' } },
      }),
    },
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
