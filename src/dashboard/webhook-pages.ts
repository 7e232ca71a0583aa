import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import { answeredInTransaction } from '../idempotency/idempotency-service.js';
import { readString } from '../validation.js';
import { listDeliveries, resendDelivery } from '../webhooks/webhook-deliveries.js';
import { errorMessageOf, newNonce, runIdempotent } from './dashboard-actions.js';
import { formatTime } from './dashboard-format.js';
import { csrfField, flash, layout, type PageContext } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html, type Html } from './html.js';
import { pageContext, sendPage } from './page-support.js';

type MerchantParams = { Params: { merchant: string } };
type DeliveryParams = { Params: { merchant: string; id: string } };

interface DeliveryAttemptView {
  readonly attempt: number;
  readonly started_at: string;
  readonly duration_ms: number;
  readonly response_status: number | null;
  readonly error: string | null;
}

/**
 * Webhooks: a merchant's endpoints and its deliveries, each with its attempts (status code, time,
 * next retry), and Resend (the idempotent POST /v1/webhook_deliveries/:id/resend, under the form's
 * nonce). The operator picks a merchant; a merchant's session sees its own only.
 */
export function registerWebhookPages(scope: FastifyInstance, services: DashboardServices): void {
  scope.get('/webhooks', async (request, reply) => {
    const context = pageContext(request);
    if (context.viewer.kind === 'merchant') return reply.redirect(`/dashboard/webhooks/${context.viewer.merchantId}`, 303);
    const query = request.query as Record<string, string | undefined>;
    const startingAfter = query.starting_after ? readString(query.starting_after, 'starting_after', { lengthMax: 70 })
      : undefined;
    const page = await services.merchants.list({ limit: 25, startingAfter });
    const body = html`<p>Choose a merchant:</p><table id="merchants"><tbody>
${page.merchants.map((merchant) => html`<tr><td><a href="/dashboard/webhooks/${merchant.id}">${merchant.id}</a></td><td>${merchant.name}</td></tr>`)}
</tbody></table>
${page.hasMore ? html`<nav class="pager"><a href="/dashboard/webhooks?starting_after=${page.merchants.at(-1)?.id ?? ''}">Older →</a></nav>` : ''}`;
    return sendPage(reply, layout({ title: 'Webhooks', context, body }));
  });

  scope.get<MerchantParams>('/webhooks/:merchant', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    return sendPage(reply, await webhooksPage(services, request,
      { notice: query.notice === 'resent' ? 'Delivery queued: it is sent again now.' : undefined }));
  });

  scope.post<DeliveryParams>('/webhooks/:merchant/deliveries/:id/resend', async (request, reply) => {
    const merchantId = visibleMerchant(request);
    const outcome = await runIdempotent(services, request, { merchantId,
      path: `/v1/webhook_deliveries/${request.params.id}/resend`, params: {},
      work: (execution) => answeredInTransaction(execution, () => resendDelivery(execution.client,
        services.webhookEndpoints, { merchantId, id: request.params.id })) });
    if (outcome.status === 200) {
      return reply.redirect(`/dashboard/webhooks/${encodeURIComponent(merchantId)}?notice=resent`, 303);
    }
    return sendPage(reply, await webhooksPage(services, request, { error: errorMessageOf(outcome) }), outcome.status);
  });
}

function visibleMerchant(request: FastifyRequest<{ Params: { merchant: string } }>): string {
  const { viewer } = pageContext(request);
  if (viewer.kind === 'merchant' && viewer.merchantId !== request.params.merchant) {
    throw new PennyError({ code: 'resource_missing', param: 'merchant',
      message: `No such merchant: '${request.params.merchant}'` });
  }
  return request.params.merchant;
}

async function webhooksPage(services: DashboardServices, request: FastifyRequest<{ Params: { merchant: string } }>,
  messages: { notice?: string | undefined; error?: string | undefined }): Promise<Html> {
  const context = pageContext(request);
  const merchantId = visibleMerchant(request);
  const merchant = await services.merchants.getMerchant(merchantId);
  const query = request.query as Record<string, string | undefined>;
  const text = (name: string) => query[name] ? readString(query[name], name, { lengthMax: 255 }) : undefined;
  const [endpoints, deliveries] = await Promise.all([
    services.webhookEndpoints.list({ merchantId, limit: 50, startingAfter: undefined, endingBefore: undefined }),
    listDeliveries(services.pool, { merchantId, limit: 25, startingAfter: text('starting_after'),
      endingBefore: undefined, eventId: text('event'), endpointId: text('endpoint') }),
  ]);
  const body = html`${flash('notice', messages.notice)}${flash('error', messages.error)}
<h2>Endpoints</h2>
<table id="endpoints"><thead><tr><th>Endpoint</th><th>URL</th><th>Status</th><th>Events</th><th>Created</th></tr></thead><tbody>
${endpoints.rows.map((endpoint) => html`<tr><td><a href="/dashboard/webhooks/${merchantId}?endpoint=${endpoint.id}">${endpoint.id}</a></td>
<td><code>${endpoint.url}</code></td><td>${endpoint.status}</td><td><small>${endpoint.enabledEvents.join(', ')}</small></td>
<td>${formatTime(endpoint.createdAt)}</td></tr>`)}
${endpoints.rows.length === 0 ? html`<tr><td colspan="5">No endpoint.</td></tr>` : ''}
</tbody></table>
${endpoints.hasMore ? html`<p>The 50 newest endpoints are shown.</p>` : ''}
<h2>Deliveries${text('endpoint') === undefined ? '' : ` to ${text('endpoint') ?? ''}`}${text('event') === undefined ? '' : ` of ${text('event') ?? ''}`}</h2>
<table id="deliveries"><thead><tr><th>Delivery</th><th>Event</th><th>Status</th><th>Attempts</th><th>Next retry</th><th></th></tr></thead><tbody>
${deliveries.rows.map((delivery) => html`<tr><td><code>${delivery.id}</code></td>
<td><a href="/dashboard/webhooks/${merchantId}?event=${delivery.eventId}">${delivery.eventId}</a></td>
<td><span class="status status-${delivery.status}">${delivery.status}</span></td>
<td>${(delivery.attempts as DeliveryAttemptView[]).map((attempt) => html`#${attempt.attempt} ${formatTime(attempt.started_at)}
${attempt.response_status === null ? html`<strong>${attempt.error ?? 'no answer'}</strong>` : html`<strong>${attempt.response_status}</strong>`}
(${attempt.duration_ms} ms)<br>`)}${delivery.attempts.length === 0 ? 'none yet' : ''}</td>
<td>${delivery.status === 'pending' ? formatTime(delivery.nextAttemptAt) : '—'}</td>
<td>${resendForm(context, merchantId, delivery.id)}</td></tr>`)}
${deliveries.rows.length === 0 ? html`<tr><td colspan="6">None.</td></tr>` : ''}
</tbody></table>
${deliveries.hasMore ? html`<nav class="pager"><a href="/dashboard/webhooks/${merchantId}?${new URLSearchParams({
      ...(text('endpoint') === undefined ? {} : { endpoint: text('endpoint') as string }),
      ...(text('event') === undefined ? {} : { event: text('event') as string }),
      starting_after: deliveries.rows.at(-1)?.id ?? '' }).toString()}">Older →</a></nav>` : ''}`;
  return layout({ title: `Webhooks of ${merchant.name}`, context, body });
}

function resendForm(context: PageContext, merchantId: string, deliveryId: string): Html {
  return html`<form method="post" action="/dashboard/webhooks/${merchantId}/deliveries/${deliveryId}/resend"
 hx-confirm="Send this event to the endpoint again?">${csrfField(context)}
<input type="hidden" name="nonce" value="${newNonce()}"><button type="submit" class="secondary resend">Resend</button></form>`;
}
