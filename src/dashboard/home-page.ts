import type { FastifyInstance } from 'fastify';
import { OperationsSummaries } from '../reporting/operations-summary.js';
import type { WindowFigures } from '../reporting/operations-summary-store.js';
import { formatMinor, formatStripeAmount } from './dashboard-format.js';
import { layout } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html, type Html } from './html.js';
import { pageContext, sendPage } from './page-support.js';

/** Home: the day's and the week's figures, what waits, and payments per hour over the last 7 days. */
export function registerHomePage(scope: FastifyInstance, services: DashboardServices): void {
  const summaries = new OperationsSummaries(services.pool);
  scope.get('/', async (request, reply) => {
    const context = pageContext(request);
    const operator = context.viewer.kind === 'operator';
    const summary = await summaries.summary(context.viewer.kind === 'merchant' ? context.viewer.merchantId : null);
    const series = JSON.stringify({ hours: summary.hours.map((hour) => hour.hourStart),
      payments: summary.hours.map((hour) => hour.payments), succeeded: summary.hours.map((hour) => hour.succeeded) });
    const body = html`
<section class="cards" id="figures">
${figures('Today', summary.today)}
${figures('Last 7 days', summary.week)}
${operator ? html`<article><small>Open cases</small><strong id="open-cases"><a href="/dashboard/cases">${summary.openCases}</a></strong></article>
<article><small>Open reconciliation breaks</small><strong id="open-breaks"><a href="/dashboard/reconciliation">${summary.openBreaks}</a></strong></article>` : ''}
<article><small>Payouts not yet paid</small><strong id="pending-payouts">${summary.pendingPayouts.length === 0 ? 'none'
      : summary.pendingPayouts.map((row) => html`${formatMinor(row.amount, row.currency)} (${row.count})<br>`)}</strong></article>
</section>
<h2>Payments per hour, last 7 days (UTC)</h2>
<div id="chart" data-series="${series}"></div>`;
    return sendPage(reply, layout({ title: 'Home', context, body }));
  });
}

function figures(label: string, window: WindowFigures): Html {
  const id = label === 'Today' ? 'today' : 'week';
  return html`<article id="${id}"><small>${label}: volume</small>
<strong>${window.volume.length === 0 ? '0' : window.volume.map((row) => html`${formatStripeAmount(row.amount, row.currency)}<br>`)}</strong>
<small>${window.succeeded} succeeded · ${window.failed} failed or canceled</small><br>
<small>Refunds: ${window.refunds.length === 0 ? 'none'
    : window.refunds.map((row) => html`${formatStripeAmount(row.amount, row.currency)} (${row.count}) `)}</small>
</article>`;
}
