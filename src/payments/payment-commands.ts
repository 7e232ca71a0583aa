/**
 * The commands the payment domain takes, typed and already checked: the Stripe edge
 * (src/http/stripe-payment-params.ts) reads them from Stripe's parameters. Amounts are in
 * Stripe's units of the currency (src/money/stripe-currency.ts converts), as bigint.
 */
export type CaptureMethod = 'automatic' | 'automatic_async' | 'manual';

/**
 * Stripe Connect's fields of a destination charge, checked against each other and the amount
 * (not yet against the platform's accounts, which the domain checks). Stripe's units.
 */
export interface ConnectCommand {
  readonly transferDestination: string | undefined;
  readonly transferAmount: bigint | undefined;
  readonly applicationFeeAmount: bigint | undefined;
  readonly onBehalfOf: string | undefined;
  readonly transferGroup: string | undefined;
}

export interface CreatePaymentIntentCommand {
  readonly confirm: boolean;
  /** As a confirmation's: the PSP's own payment method fields, never stored. */
  readonly paymentMethodData?: Readonly<Record<string, string>> | undefined;
  readonly amount: bigint;
  readonly currency: string;
  readonly paymentMethod: string | undefined;
  readonly captureMethod: CaptureMethod;
  readonly description: string | undefined;
  readonly customer: string | undefined;
  readonly receiptEmail: string | undefined;
  readonly statementDescriptor: string | undefined;
  readonly metadata: Record<string, string>;
  /** Where the customer returns after a 3-D Secure authentication; kept with the attempt. */
  readonly returnUrl: string | null;
  readonly connect: ConnectCommand;
}

export interface UpdatePaymentIntentCommand {
  /** Checked against the currency's minimum and step by the update, which knows the intent's currency. */
  readonly amount: bigint | undefined;
  readonly currency: string | undefined;
  readonly paymentMethod: string | undefined;
  readonly captureMethod: CaptureMethod | undefined;
  readonly description: string | undefined;
  readonly customer: string | undefined;
  readonly receiptEmail: string | undefined;
  readonly statementDescriptor: string | undefined;
  /** Keys to set, and keys to remove (posted with an empty value); `clearAll` for `metadata=`. */
  readonly metadata: {
    readonly set: Record<string, string>;
    readonly unset: readonly string[];
    readonly clearAll: boolean;
  };
}

export interface ConfirmPaymentIntentCommand {
  readonly paymentMethod: string | undefined;
  /**
   * The PSP's own payment method fields (`payment_method_data[adyen][…]`: Adyen's client-side
   * encrypted card fields or a stored payment method id), passed to the connector untouched, once,
   * in memory: never stored, never logged, never in the idempotency key's stored parameters.
   */
  readonly paymentMethodData?: Readonly<Record<string, string>> | undefined;
  /** Where the customer returns after a 3-D Secure authentication; kept with the attempt. */
  readonly returnUrl: string | null;
}

export interface CapturePaymentIntentCommand {
  /** Absent: everything capturable. */
  readonly amountToCapture: bigint | undefined;
}

export type CancellationReason = 'duplicate' | 'fraudulent' | 'requested_by_customer' | 'abandoned';

export interface CancelPaymentIntentCommand {
  readonly cancellationReason: CancellationReason | null;
}

export type RefundReason = 'duplicate' | 'fraudulent' | 'requested_by_customer';

/** A refund of a charge, named by it or by its PaymentIntent (exactly one of the two). */
export interface CreateRefundCommand {
  readonly paymentIntent: string | undefined;
  readonly charge: string | undefined;
  /** Absent: everything not yet refunded. */
  readonly amount: bigint | undefined;
  readonly reason: RefundReason | null;
  readonly metadata: Record<string, string>;
  /** A destination charge's refund takes back the transfer's share (reverse_transfer). */
  readonly reverseTransfer: boolean;
  /** ...and gives back the application fee's share (refund_application_fee). */
  readonly refundApplicationFee: boolean;
}
