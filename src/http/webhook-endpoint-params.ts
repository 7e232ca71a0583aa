import {
  webhookEventTypes, type EndpointCommand,
} from '../webhooks/webhook-endpoints.js';
import { invalid, missing, readObject, readString } from '../validation.js';
import { readStripeBoolean } from './stripe-form.js';
import { readStripeMetadata } from './stripe-payment-params.js';

/** The Stripe edge of webhook endpoints: their parameters as Stripe takes them, read into a command. */
const createKeys = ['url', 'enabled_events', 'description', 'metadata', 'api_version', 'connect', 'expand'];
const updateKeys = ['url', 'enabled_events', 'description', 'metadata', 'disabled', 'expand'];

export function parseEndpointCommand(body: unknown, creating: boolean): EndpointCommand {
  const object = readObject(body ?? {}, '', creating ? createKeys : updateKeys);
  if (creating && object.url === undefined) throw missing('url');
  if (creating && object.enabled_events === undefined) throw missing('enabled_events');
  readString(object.api_version, 'api_version', { lengthMax: 64 });
  return {
    url: readString(object.url, 'url', { lengthMax: 2048 }),
    enabledEvents: object.enabled_events === undefined ? undefined : readEnabledEvents(object.enabled_events),
    description: readString(object.description, 'description', { lengthMax: 5000 }),
    metadata: object.metadata === undefined ? undefined : readStripeMetadata(object.metadata),
    disabled: readStripeBoolean(object.disabled, 'disabled'),
  };
}

function readEnabledEvents(value: unknown): string[] {
  const list = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.values(value) : [value];
  if (list.length === 0 || list.length > webhookEventTypes.length + 1) {
    throw invalid('enabled_events', 'enabled_events lists the event types to send, or *.');
  }
  return [...new Set(list.map((item, index) => {
    if (item !== '*' && !(webhookEventTypes as readonly unknown[]).includes(item)) {
      throw invalid(`enabled_events[${index}]`, `Invalid event type: ${String(item)}.`);
    }
    return item as string;
  }))];
}
