import { html, type Html, type Renderable } from './html.js';
import type { Viewer } from './dashboard-sessions.js';

/** What every signed-in page knows: who is looking, and the session's CSRF token. */
export interface PageContext {
  readonly viewer: Viewer;
  readonly csrfToken: string;
}

/**
 * htmx's settings, read from a meta tag (no inline script): no injected <style> (the CSP allows
 * none), and error answers (4xx) are swapped in like any page, so a refusal shows its message.
 */
const htmxConfig = JSON.stringify({
  includeIndicatorStyles: false,
  responseHandling: [{ code: '204', swap: false }, { code: '[23]..', swap: true },
    { code: '[45]..', swap: true, error: false }],
});

const operatorLinks: readonly [string, string][] = [
  ['/dashboard', 'Home'], ['/dashboard/payments', 'Payments'], ['/dashboard/ledger', 'Ledger'],
  ['/dashboard/balances', 'Balances & payouts'], ['/dashboard/reconciliation', 'Reconciliation'],
  ['/dashboard/cases', 'Cases'], ['/dashboard/webhooks', 'Webhooks'],
];
const merchantLinks: readonly [string, string][] = [
  ['/dashboard', 'Home'], ['/dashboard/payments', 'Payments'], ['/dashboard/balances', 'Balances & payouts'],
  ['/dashboard/webhooks', 'Webhooks'],
];

export function layout(options: { title: string; context?: PageContext; body: Renderable }): Html {
  const { context } = options;
  const links = context === undefined ? [] : context.viewer.kind === 'operator' ? operatorLinks : merchantLinks;
  const who = context === undefined ? '' : context.viewer.kind === 'operator' ? 'Operator'
    : `${context.viewer.merchantName} (${context.viewer.merchantId})`;
  const headers = context === undefined ? undefined : JSON.stringify({ 'X-CSRF-Token': context.csrfToken });
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${htmxConfig}">
<title>${options.title} · Penny</title>
<link rel="stylesheet" href="/dashboard/assets/pico/pico.classless.min.css">
<link rel="stylesheet" href="/dashboard/assets/uplot/uPlot.min.css">
<link rel="stylesheet" href="/dashboard/assets/app/dashboard.css">
<script src="/dashboard/assets/htmx/htmx.min.js" defer></script>
<script src="/dashboard/assets/uplot/uPlot.iife.min.js" defer></script>
<script src="/dashboard/assets/app/dashboard.js" defer></script>
</head>
<body hx-boost="true" hx-target="#main" hx-select="#main" hx-swap="outerHTML" ${headers === undefined ? '' : html`hx-headers="${headers}"`}>
<header>
<nav>
<ul><li><strong>Penny</strong></li></ul>
<ul>${links.map(([href, label]) => html`<li><a href="${href}">${label}</a></li>`)}</ul>
${context === undefined ? '' : html`<ul><li><small>${who}</small></li><li>
<form method="post" action="/dashboard/sign-out" class="inline" hx-boost="false">
${csrfField(context)}<button type="submit" class="secondary" id="sign-out">Sign out</button></form></li></ul>`}
</nav>
</header>
<main id="main">
<h1>${options.title}</h1>
${options.body}
</main>
</body>
</html>`;
}

export function csrfField(context: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${context.csrfToken}">`;
}

/** A notice or an error above a page's content. */
export function flash(kind: 'notice' | 'error', text: string | undefined): Html {
  if (text === undefined) return html``;
  return html`<p class="${kind}" role="${kind === 'error' ? 'alert' : 'status'}" id="${kind}">${text}</p>`;
}

/** Newer / Older links for a page of a Stripe-cursor list, keeping the other query parameters. */
export function pager(options: { path: string; query: Record<string, string | undefined>;
  firstId: string | undefined; lastId: string | undefined; hasMore: boolean; backwards: boolean;
  atStart: boolean }): Html {
  const base = Object.entries(options.query)
    .filter(([name, value]) => value !== undefined && value !== '' && name !== 'starting_after' && name !== 'ending_before');
  const link = (name: string, id: string) => {
    const search = new URLSearchParams([...base as [string, string][], [name, id]]);
    return `${options.path}?${search.toString()}`;
  };
  const newer = !options.atStart && options.firstId !== undefined && (options.backwards ? options.hasMore : true);
  const older = options.lastId !== undefined && (options.backwards ? true : options.hasMore);
  return html`<nav class="pager">
${newer && options.firstId !== undefined ? html`<a href="${link('ending_before', options.firstId)}" rel="prev">← Newer</a>` : ''}
${older && options.lastId !== undefined ? html`<a href="${link('starting_after', options.lastId)}" rel="next">Older →</a>` : ''}
</nav>`;
}
