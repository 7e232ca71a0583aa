import type { FastifyInstance } from 'fastify';
import { closeCase, listCases, retrieveCase } from '../payments/payment-cases.js';
import { readEnum, readString } from '../validation.js';
import { formOf, formString } from './dashboard-actions.js';
import { formatTime } from './dashboard-format.js';
import { csrfField, flash, layout, pager } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html } from './html.js';
import { pageContext, requireOperator, sendPage } from './page-support.js';

type IdParams = { Params: { id: string } };

/**
 * Cases for a human (unknown outcomes in manual review, contradicting PSP events, unmatched
 * events): the open ones with what Penny knows, and Close with a resolution, through the same
 * closeCase as `POST /v1/cases/:id/close` (a closed case is not closed again: 409).
 */
export function registerCasePages(scope: FastifyInstance, services: DashboardServices): void {
  scope.get('/cases', async (request, reply) => {
    requireOperator(request);
    const context = pageContext(request);
    const query = request.query as Record<string, string | undefined>;
    const status = readEnum(query.status || 'open', 'status', ['open', 'closed']) ?? 'open';
    const startingAfter = query.starting_after ? readString(query.starting_after, 'starting_after',
      { lengthMax: 70 }) : undefined;
    const page = await listCases(services.pool, { status, limit: 25, startingAfter });
    const body = html`
<nav><a href="/dashboard/cases?status=open">Open</a> · <a href="/dashboard/cases?status=closed">Closed</a></nav>
<table id="cases"><thead><tr><th>Case</th><th>Kind</th><th>Payment</th><th>Merchant</th><th>Opened</th><th>Status</th></tr></thead><tbody>
${page.rows.map((row) => html`<tr><td><a href="/dashboard/cases/${row.id}">${row.id}</a></td><td>${row.kind}</td>
<td><a href="/dashboard/payments/${row.payment_intent}">${row.payment_intent}</a></td><td>${row.merchant}</td>
<td>${formatTime(new Date(row.created * 1000).toISOString())}</td><td>${row.status}</td></tr>`)}
${page.rows.length === 0 ? html`<tr><td colspan="6">No ${status} case.</td></tr>` : ''}
</tbody></table>
${pager({ path: '/dashboard/cases', query: { status }, firstId: undefined, lastId: page.rows.at(-1)?.id,
    hasMore: page.hasMore, backwards: false, atStart: true })}`;
    return sendPage(reply, layout({ title: status === 'open' ? 'Open cases' : 'Closed cases', context, body }));
  });

  scope.get<IdParams>('/cases/:id', async (request, reply) => {
    requireOperator(request);
    const query = request.query as Record<string, string | undefined>;
    return sendPage(reply, await casePage(services, request.params.id, pageContext(request),
      query.notice === 'closed' ? 'Case closed.' : undefined));
  });

  scope.post<IdParams>('/cases/:id/close', async (request, reply) => {
    requireOperator(request);
    const resolution = readString(formString(formOf(request), 'resolution'), 'resolution',
      { lengthMax: 1000, required: true });
    await closeCase(services.pool, request.params.id, resolution);
    return reply.redirect(`/dashboard/cases/${encodeURIComponent(request.params.id)}?notice=closed`, 303);
  });
}

async function casePage(services: DashboardServices, id: string, context: ReturnType<typeof pageContext>,
  notice: string | undefined) {
  const found = await retrieveCase(services.pool, id);
  const body = html`${flash('notice', notice)}
<table id="case">
<tr><th>Case</th><td><code>${found.id}</code></td></tr>
<tr><th>Kind</th><td>${found.kind}</td></tr>
<tr><th>Status</th><td id="case-status"><span class="status status-${found.status}">${found.status}</span></td></tr>
<tr><th>Payment</th><td><a href="/dashboard/payments/${found.payment_intent}">${found.payment_intent}</a></td></tr>
<tr><th>Merchant</th><td>${found.merchant}</td></tr>
<tr><th>Subject</th><td><code>${found.subject}</code></td></tr>
<tr><th>Opened</th><td>${formatTime(new Date(found.created * 1000).toISOString())}</td></tr>
${found.closed === null ? '' : html`<tr><th>Closed</th><td>${formatTime(new Date(found.closed * 1000).toISOString())}</td></tr>
<tr><th>Resolution</th><td id="case-resolution">${found.resolution}</td></tr>`}
</table>
<h2>What Penny knows</h2>
<pre id="case-detail">${JSON.stringify(found.detail, null, 2)}</pre>
${found.status === 'open' ? html`<form method="post" action="/dashboard/cases/${found.id}/close" id="close-case-form"
 hx-confirm="Close this case with this resolution?">
${csrfField(context)}
<label>Resolution (what was done about it) <textarea name="resolution" required maxlength="1000" id="resolution"></textarea></label>
<button type="submit" id="close-case">Close case</button></form>` : ''}`;
  return layout({ title: `Case ${found.id}`, context, body });
}
