import type { Queryable } from '../db/pool.js';
import type { PennyError } from '../errors.js';
import { invalid } from '../validation.js';
import { presentCharge, presentPaymentIntent } from './payment-presenter.js';
import * as store from './payment-store.js';

/**
 * Stripe's `expand`: a field holding an object's id is replaced by the object itself, and a dotted
 * path expands inside what it expanded (`latest_charge.payment_intent`); on a list, paths start
 * with `data.`. The expandable fields are those whose objects Penny has; any other path is a 400,
 * as Stripe answers it, checked before the request runs. Bounded as Stripe bounds it: at most 20
 * paths, 4 levels each.
 */
const expandPathsMax = 20;
const expandDepthMax = 4;

type Json = Record<string, unknown>;
type Expander = (db: Queryable, merchantId: string, id: string) => Promise<Json | undefined>;

const expandIntent: Expander = async (db, merchantId, id) => {
  const intent = await store.selectPaymentIntent(db, { merchantId: merchantId, id });
  return intent === undefined ? undefined : presentPaymentIntent(intent) as Json;
};

const expandCharge: Expander = async (db, merchantId, id) => {
  const charge = await store.selectCharge(db, { merchantId: merchantId, id });
  return charge === undefined ? undefined : presentCharge(charge) as Json;
};

type ObjectType = 'payment_intent' | 'charge' | 'refund';

/** By the expanding object's type, its expandable fields: what each becomes, and how it is loaded. */
const expandable: Readonly<Record<ObjectType, Readonly<Record<string, { type: ObjectType; load: Expander }>>>> = {
  payment_intent: { latest_charge: { type: 'charge', load: expandCharge } },
  charge: { payment_intent: { type: 'payment_intent', load: expandIntent } },
  refund: { charge: { type: 'charge', load: expandCharge }, payment_intent: { type: 'payment_intent', load: expandIntent } },
};

/**
 * Reads `expand` (an array of paths, as the form parser gives `expand[]=a`) for an answer holding
 * one object of `type`, or a list of them (`data.` paths), and checks every path against what can
 * be expanded, before anything runs: a request that would fail here is refused, not executed.
 */
export function readExpand(value: unknown, type: ObjectType, options: { list?: boolean } = {}): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((path) => typeof path !== 'string' || path.length === 0)) {
    throw invalid('expand', 'expand must be an array of field paths, as expand[]=latest_charge.');
  }
  if (value.length > expandPathsMax) throw invalid('expand', `You may expand at most ${expandPathsMax} paths.`);
  return (value as string[]).map((path) => {
    if (path.length > 255 || path.split('.').length > expandDepthMax) {
      throw invalid('expand', `You cannot expand more than ${expandDepthMax} levels of a property (${path}).`);
    }
    const inner = options.list === true ? withoutListPrefix(path) : path;
    let current: ObjectType = type;
    for (const field of inner.split('.')) {
      const next = expandableField(current, field);
      if (next === undefined) throw cannotExpand(path);
      current = next.type;
    }
    return inner;
  });
}

/** A field's expansion, by own properties only (`constructor` or `__proto__` is no field). */
function expandableField(type: ObjectType, field: string): { type: ObjectType; load: Expander } | undefined {
  const fields = expandable[type];
  return Object.hasOwn(fields, field) ? fields[field] : undefined;
}

function withoutListPrefix(path: string): string {
  if (!path.startsWith('data.') || path.length === 'data.'.length) throw cannotExpand(path);
  return path.slice('data.'.length);
}

/** What to expand, and for whom: the merchant whose objects alone may be loaded. */
export interface ExpansionScope {
  readonly merchantId: string;
  readonly paths: readonly string[];
}

/** Expands `paths` in one presented object (a PaymentIntent, Charge or Refund). */
export async function expandObject<T>(db: Queryable, object: T, scope: ExpansionScope): Promise<T> {
  if (scope.paths.length === 0) return object;
  const copy = structuredClone(object) as Json;
  for (const path of scope.paths) {
    await expandPath(db, copy, { merchantId: scope.merchantId, segments: path.split('.'), path });
  }
  return copy as T;
}

/**
 * Expands `paths` (read with `list: true`) in every object of a list page, one object after the
 * other, so a page of 100 never takes the whole pool at once.
 */
export async function expandList<T>(db: Queryable, data: readonly T[], scope: ExpansionScope): Promise<T[]> {
  const expanded: T[] = [];
  for (const item of data) expanded.push(await expandObject(db, item, scope));
  return expanded;
}

async function expandPath(db: Queryable, object: Json,
  walk: { merchantId: string; segments: readonly string[]; path: string }): Promise<void> {
  const { merchantId, path } = walk;
  const [field, ...rest] = walk.segments;
  if (field === undefined) return;
  const type = object.object as ObjectType;
  const expander = Object.hasOwn(expandable, type) ? expandableField(type, field) : undefined;
  // Paths were checked by readExpand; an object of another shape here is a bug.
  if (expander === undefined) throw new Error(`expand path ${path} does not fit a ${String(object.object)}`);
  const value = object[field];
  if (typeof value === 'string') {
    const expanded = await expander.load(db, merchantId, value);
    // An id Penny cannot find is left as it is (a bug elsewhere, not the caller's mistake).
    if (expanded === undefined) return;
    object[field] = expanded;
  }
  const next = object[field];
  if (rest.length > 0 && typeof next === 'object' && next !== null) {
    await expandPath(db, next as Json, { merchantId, segments: rest, path });
  }
}

function cannotExpand(path: string): PennyError {
  return invalid('expand', `This property cannot be expanded (${path}).`);
}
