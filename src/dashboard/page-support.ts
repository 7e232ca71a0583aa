import type { FastifyReply, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import type { PageContext } from './dashboard-layout.js';
import type { Viewer } from './dashboard-sessions.js';
import type { Html } from './html.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The dashboard's signed-in viewer and session, set for every page but sign-in and assets. */
    dashboard: { viewer: Viewer; token: string; csrfToken: string; csrfMatches: (presented: string) => boolean }
      | null;
  }
  interface FastifyContextConfig {
    /** The route checks the CSRF token itself (a multipart upload, whose fields are read by the route). */
    csrfCheckedByRoute?: boolean;
  }
}

/** What every page's handler shares: who is looking, the operator's pages, sending a page. */
export function pageContext(request: FastifyRequest): PageContext {
  if (request.dashboard === null) throw new Error('a dashboard page ran without a session');
  return { viewer: request.dashboard.viewer, csrfToken: request.dashboard.csrfToken };
}

/** The operator's pages refuse a merchant's session, as the operator API refuses a secret key. */
export function requireOperator(request: FastifyRequest): void {
  if (pageContext(request).viewer.kind !== 'operator') {
    throw new PennyError({ code: 'route_not_found', message: 'This page is for the operator.' });
  }
}

export function sendPage(reply: FastifyReply, page: Html, status = 200) {
  return reply.status(status).type('text/html; charset=utf-8').send(page.text);
}

/**
 * The CSRF token from the htmx header or the form's field, checked against the session's (the
 * dashboard's hook does it for every POST; a multipart route, whose fields it reads, calls it).
 */
export function assertCsrfToken(request: FastifyRequest, field: string | undefined): void {
  const header = request.headers['x-csrf-token'];
  const presented = (Array.isArray(header) ? header[0] : header) ?? field;
  if (request.dashboard === null || presented === undefined || !request.dashboard.csrfMatches(presented)) {
    throw new PennyError({ code: 'csrf_token_invalid',
      message: 'This form is missing its CSRF token, or it is not this session\'s: reload the page and try again.' });
  }
}
