-- Up Migration
-- Purpose: 3-D Secure's redirect (decisions.md, "Stripe flows Penny adds to"). A confirmation may
-- name the page the customer returns to after authenticating (`return_url`); it is kept with the
-- attempt that asked for the authentication, so the authentication page Penny serves can send the
-- customer back there, and `next_action.redirect_to_url.return_url` can show it.
ALTER TABLE payment_attempts ADD COLUMN return_url text
  CHECK (return_url IS NULL OR length(return_url) BETWEEN 1 AND 2048);
