-- Up Migration
-- Purpose: Stripe's Refund names the customer and the payment method of the payment it refunds
-- (the official SDK declares `customer` and `payment_method` always present). A refund keeps
-- them as they were when it was made, so listing refunds reads one table. Rows already there
-- take them from their charge and its PaymentIntent.
SET LOCAL lock_timeout = '60s';
ALTER TABLE refunds ADD COLUMN customer text, ADD COLUMN payment_method text;
UPDATE refunds r SET payment_method = c.payment_method, customer = pi.customer
  FROM charges c, payment_intents pi
  WHERE c.merchant_id = r.merchant_id AND c.id = r.charge_id
    AND pi.merchant_id = r.merchant_id AND pi.id = r.payment_intent_id;
