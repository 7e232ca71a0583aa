import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * The entries of docs/accounting.md, "Entries per payment event", one test per event: an
 * authorization of 1000 captured for 600 (Penny's fee 47, the sandbox's 32), a void, automatic
 * capture and a refund, checked posting by posting.
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Accounting Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
});

type Leg = [role: string, direction: string, phase: string, amount: number];

/** The postings of the entry with this reference, as [role, direction, phase, amount], sorted. */
async function legsOf(reference: string): Promise<{ kind: string; legs: Leg[] }> {
  type Row = { kind: string; role: string; direction: string; phase: string; amount: bigint };
  const result = await penny.pool.query<Row>(
    `SELECT e.kind, m.role, p.direction, p.phase, p.amount_minor AS amount
     FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id
     JOIN merchant_ledger_accounts m ON m.ledger_account_id = p.account_id
     WHERE e.external_reference = $1 AND m.merchant_id = $2
     ORDER BY p.phase, m.role, p.direction`, [reference, merchantId]);
  return {
    kind: result.rows[0]?.kind ?? 'missing',
    legs: result.rows.map((row) => [row.role, row.direction, row.phase, Number(row.amount)] as Leg),
  };
}

async function entryIdOf(reference: string): Promise<string> {
  const result = await penny.pool.query<{ id: string }>(
    'SELECT id FROM ledger_entries WHERE external_reference = $1', [reference]);
  return result.rows[0]?.id as string;
}

async function authorized(amount: number): Promise<{ intent: Stripe.PaymentIntent; charge: string }> {
  const intent = await stripe.paymentIntents.create({
    amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
  });
  return { intent, charge: intent.latest_charge as string };
}

describe('docs/accounting.md, entry by entry', () => {
  it('authorization: a hold from PSP receivable to Merchant pending', async () => {
    const { charge } = await authorized(1000);
    expect(await legsOf(`penny:charge:${charge}:authorization`)).toEqual({
      kind: 'hold',
      legs: [['merchant_pending', 'credit', 'pending', 1000], ['psp_receivable', 'debit', 'pending', 1000]],
    });
  });

  it('capture of 600: the hold released in full and 600 posted, with Penny\'s fee 47 and the PSP fee 32', async () => {
    const { intent, charge } = await authorized(1000);
    await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 600 });
    const hold = await entryIdOf(`penny:charge:${charge}:authorization`);
    expect(await legsOf(`penny:resolution:${hold}`)).toEqual({
      kind: 'hold_post',
      legs: [
        ['merchant_pending', 'credit', 'posted', 600], ['psp_receivable', 'debit', 'posted', 600],
        ['merchant_pending', 'credit', 'release', 1000], ['psp_receivable', 'debit', 'release', 1000],
      ],
    });
    expect(await legsOf(`penny:charge:${charge}:penny_fee`)).toEqual({
      kind: 'standard', legs: [['merchant_pending', 'debit', 'posted', 47], ['penny_revenue', 'credit', 'posted', 47]],
    });
    expect(await legsOf(`penny:charge:${charge}:psp_fee`)).toEqual({
      kind: 'standard', legs: [['psp_fees', 'debit', 'posted', 32], ['psp_receivable', 'credit', 'posted', 32]],
    });
  });

  it('cancel before capture: the hold voided', async () => {
    const { intent, charge } = await authorized(1000);
    await stripe.paymentIntents.cancel(intent.id);
    const hold = await entryIdOf(`penny:charge:${charge}:authorization`);
    expect(await legsOf(`penny:resolution:${hold}`)).toEqual({
      kind: 'hold_void',
      legs: [['merchant_pending', 'credit', 'release', 1000], ['psp_receivable', 'debit', 'release', 1000]],
    });
  });

  it('automatic capture: one capture entry and the two fees, no hold', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const charge = intent.latest_charge as string;
    expect((await legsOf(`penny:charge:${charge}:authorization`)).legs).toEqual([]);
    expect(await legsOf(`penny:charge:${charge}:capture`)).toEqual({
      kind: 'standard',
      legs: [['merchant_pending', 'credit', 'posted', 1000], ['psp_receivable', 'debit', 'posted', 1000]],
    });
    // 2.9% of 1000 = 29, + 30 = 59; 2% of 1000 = 20, + 20 = 40.
    expect((await legsOf(`penny:charge:${charge}:penny_fee`)).legs).toContainEqual(['penny_revenue', 'credit', 'posted', 59]);
    expect((await legsOf(`penny:charge:${charge}:psp_fee`)).legs).toContainEqual(['psp_fees', 'debit', 'posted', 40]);
  });

  it('refund of 200: Merchant available debited, PSP receivable credited; Penny keeps its fee', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 200 });
    expect(await legsOf(`penny:refund:${refund.id}`)).toEqual({
      kind: 'standard',
      legs: [['merchant_available', 'debit', 'posted', 200], ['psp_receivable', 'credit', 'posted', 200]],
    });
  });

  it('a declined payment posts nothing', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_chargeDeclined' }).catch(() => undefined);
    const charge = (await stripe.paymentIntents.retrieve(intent.id)).latest_charge as string;
    const entries = await penny.pool.query(
      "SELECT id FROM ledger_entries WHERE external_reference LIKE 'penny:charge:' || $1 || ':%'", [charge]);
    expect(entries.rows).toEqual([]);
  });
});
