import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import { statusOf } from '../http/http-errors.js';
import { isHttpErrorCode } from '../error-codes.js';
import { DashboardSessions, sessionLifetimeSeconds } from './dashboard-sessions.js';
import { flash, layout } from './dashboard-layout.js';
import { assertCsrfToken, pageContext } from './page-support.js';
import { html } from './html.js';
import type { DashboardServices } from './dashboard-services.js';
import { registerPaymentPages } from './payment-pages.js';
import { registerHomePage } from './home-page.js';
import { registerOperatorPages } from './operator-pages.js';
import { registerBalancePages } from './balance-pages.js';
import { registerWebhookPages } from './webhook-pages.js';

const cookieName = 'penny_dashboard_session';
const here = path.dirname(fileURLToPath(import.meta.url));
const requireHere = createRequire(import.meta.url);

/** The page's own script and styles: beside this file, or (from dist/) back in src/dashboard/assets. */
function appAssetsDirectory(): string {
  const beside = path.join(here, 'assets');
  return fs.existsSync(beside) ? beside : path.resolve(here, '..', '..', '..', 'src', 'dashboard', 'assets');
}

function packageDirectory(name: string, ...inside: string[]): string {
  return path.join(path.dirname(requireHere.resolve(`${name}/package.json`)), ...inside);
}

/**
 * The operator dashboard under /dashboard (issue 19): server-rendered pages, htmx for partial
 * swaps, every asset served from node_modules or src/dashboard/assets (no CDN, no build step).
 * Sign-in takes the operator key or a merchant's secret key and opens a server-side session
 * (an HttpOnly, SameSite=Strict cookie); every POST but sign-in carries the session's CSRF
 * token. Pages read through the services the API uses; actions run the API's idempotent
 * operations under a key made from a nonce written into the form, so a double submit acts once.
 */
export function registerDashboard(app: FastifyInstance, services: DashboardServices): void {
  const sessions = new DashboardSessions(services.pool, { operatorKey: services.operatorKey,
    secretKey: services.secretKey, merchants: services.merchants });
  app.decorateRequest('dashboard', null);
  void app.register(async (scope) => {
    await scope.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'],
          fontSrc: ["'self'"], connectSrc: ["'self'"], formAction: ["'self'"], frameAncestors: ["'none'"],
          objectSrc: ["'none'"], baseUri: ["'self'"],
        },
      },
      // Penny is often served over plain HTTP on a private address; HSTS is for its HTTPS front.
      strictTransportSecurity: false,
      // Not helmet's no-referrer: with it, a browser sends "Origin: null" on the pages' own form
      // posts, and the Origin check below needs the real one. Nothing leaves for another site.
      referrerPolicy: { policy: 'same-origin' },
    });
    const assets: [string, string][] = [
      ['/assets/htmx/', packageDirectory('htmx.org', 'dist')],
      ['/assets/pico/', packageDirectory('@picocss/pico', 'css')],
      ['/assets/uplot/', packageDirectory('uplot', 'dist')],
      ['/assets/app/', appAssetsDirectory()],
    ];
    for (const [prefix, root] of assets) {
      await scope.register(fastifyStatic, { root, prefix, decorateReply: false, index: false, list: false,
        maxAge: '1h' });
    }

    scope.addHook('onRequest', async (request, reply) => {
      const url = request.url.split('?')[0] ?? '';
      if (url.startsWith('/dashboard/assets/') || url === '/dashboard/sign-in') return;
      const token = readCookie(request, cookieName);
      const viewer = token === undefined ? undefined : await sessions.viewerOf(token);
      if (token === undefined || viewer === undefined) {
        // htmx is told to load the sign-in page whole (its XHR would follow a redirect and swap it in).
        if (request.headers['hx-request'] === 'true') {
          return reply.status(401).header('HX-Redirect', '/dashboard/sign-in').send();
        }
        return reply.redirect('/dashboard/sign-in', 303);
      }
      request.dashboard = { viewer, token, csrfToken: sessions.csrfTokenOf(token),
        csrfMatches: (presented) => sessions.csrfMatches(token, presented) };
      void reply.header('Cache-Control', 'no-store');
    });
    // After the body is parsed: every POST of a signed-in page carries the session's CSRF token.
    scope.addHook('preHandler', async (request) => {
      if (request.method !== 'POST') return;
      assertSameOrigin(request);
      if (request.dashboard === null) return;
      if (request.routeOptions.config.csrfCheckedByRoute === true) return;
      const field = (request.body as Record<string, unknown> | undefined)?._csrf;
      assertCsrfToken(request, typeof field === 'string' ? field : undefined);
    });
    scope.setErrorHandler(async (error, request, reply) => renderError(error, request, reply));
    scope.setNotFoundHandler(async (request, reply) => renderError(new PennyError({ code: 'route_not_found',
      message: `There is no dashboard page at ${request.url.split('?')[0]}.` }), request, reply));

    registerSignIn(scope, sessions, services.publicUrl ?? (() => ''));
    registerHomePage(scope, services);
    registerPaymentPages(scope, services);
    registerBalancePages(scope, services);
    registerWebhookPages(scope, services);
    registerOperatorPages(scope, services);
  }, { prefix: '/dashboard' });
}

function registerSignIn(scope: FastifyInstance, sessions: DashboardSessions, publicUrl: () => string): void {
  const form = (message: string | undefined) => layout({ title: 'Sign in', body: html`
${flash('error', message)}
<form method="post" action="/dashboard/sign-in" hx-boost="false">
<label>Operator key or secret key
<input type="password" name="key" autocomplete="off" required autofocus></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
<p><small>The operator key sees every merchant; a merchant's secret key (<code>sk_…</code>) sees that merchant's
payments and balances only.</small></p>` });

  scope.get('/sign-in', async (_request, reply) => reply.type('text/html; charset=utf-8').send(form(undefined).text));

  scope.post('/sign-in', async (request, reply) => {
    const key = (request.body as Record<string, unknown> | undefined)?.key;
    const signedIn = typeof key === 'string' ? await sessions.signIn(key) : undefined;
    if (signedIn === undefined) {
      return reply.status(401).type('text/html; charset=utf-8')
        .send(form('That key is neither the operator key nor an active secret key.').text);
    }
    void reply.header('Set-Cookie', sessionCookie(request, signedIn.token, sessionLifetimeSeconds, publicUrl()));
    return reply.redirect('/dashboard', 303);
  });

  scope.post('/sign-out', async (request, reply) => {
    if (request.dashboard !== null) await sessions.signOut(request.dashboard.token);
    void reply.header('Set-Cookie', sessionCookie(request, '', 0, publicUrl()));
    return reply.redirect('/dashboard/sign-in', 303);
  });
}

/**
 * A POST a browser sends from another site carries that site's Origin: refused, sign-in included
 * (so no other site can sign a browser into a session of its choosing). Non-browser clients that
 * send no Origin still need the session's CSRF token for everything but sign-in.
 */
function assertSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host !== request.headers.host) {
    throw new PennyError({ code: 'csrf_token_invalid',
      message: 'This form was sent from another site: the dashboard takes forms from its own pages only.' });
  }
}

function sessionCookie(request: FastifyRequest, value: string, maxAgeSeconds: number, publicUrl: string): string {
  // Secure when the request came over HTTPS, or Penny's public address is HTTPS (a TLS proxy in front).
  const secure = request.protocol === 'https' || publicUrl.startsWith('https:') ? '; Secure' : '';
  return `${cookieName}=${value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=') || undefined;
  }
  return undefined;
}

/** A refusal as a page (the status the API would answer with), an unexpected error as a logged 500. */
async function renderError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  let status = 500;
  let message = 'An unexpected error occurred; it has been logged.';
  if (error instanceof PennyError && isHttpErrorCode(error.code)) {
    status = statusOf(error);
    message = error.message;
  } else if (typeof (error as { statusCode?: unknown }).statusCode === 'number'
    && (error as { statusCode: number }).statusCode < 500) {
    status = (error as { statusCode: number }).statusCode;
    message = (error as Error).message;
  } else {
    request.log.error({ err: error }, 'unexpected dashboard error');
  }
  const context = request.dashboard === null ? undefined : pageContext(request);
  return reply.status(status).type('text/html; charset=utf-8').send(layout({
    title: status === 404 ? 'Not found' : status === 403 ? 'Refused' : 'Something went wrong', context,
    body: html`${flash('error', message)}<p><a href="/dashboard">Back to the dashboard</a></p>` }).text);
}
