import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  payoutIntervals, weekdays, type BankAccountParams, type PayoutInterval, type PayoutSchedule, type Weekday,
} from '../accounts/account-commands.js';
import { presentBankAccount, presentPayoutSchedule } from '../accounts/account-presenter.js';
import { platformPayoutSchedule, setPlatformPayoutSchedule } from '../accounts/payout-schedules.js';
import { BankAccountVault, platformBankAccounts, setPlatformBankAccount } from '../accounts/bank-accounts.js';
import { PennyError } from '../errors.js';
import { parseStripeCurrency } from '../money/stripe-currency.js';
import { displayKey } from '../merchants/merchant-keys.js';
import { MerchantService } from '../merchants/merchant-service.js';
import { selectMerchant, selectMerchantPricing, setMerchantPricing } from '../merchants/merchant-store.js';
import { resolveSecretKey } from '../secret-key.js';
import { ConnectorRouting } from '../merchants/connector-routing.js';
import { printResult, withDatabasePool } from './cli-support.js';

/** `penny merchants create` and `penny keys create|list|revoke`. A secret key is printed once. */
export function registerMerchantCommands(program: Command): void {
  const merchants = program.command('merchants').description('manage merchants');
  merchants.command('create')
    .description('create a merchant and its first secret key (shown once)')
    .requiredOption('--name <name>', 'the merchant\'s name')
    .option('--json', 'print JSON')
    .action(async (options: { name: string; json?: boolean }) => {
      await withMerchants(async (service) => {
        const created = await service.createMerchant(options.name);
        printResult(options.json === true, {
          id: created.merchant.id, name: created.merchant.name, secret_key: created.secretKey,
          key_id: created.keyId, created_at: created.merchant.createdAt,
        }, `Created merchant ${created.merchant.id} (${created.merchant.name}).\n` +
          `Secret key (shown only now; store it safely): ${created.secretKey}`);
      });
    });

  merchants.command('pricing')
    .description('show a merchant\'s processing fee, or set it (from its next capture on)')
    .argument('<merchant-id>', 'the merchant (acct_…)')
    .option('--basis-points <n>', 'the percentage part, in hundredths of a percent (290 = 2.9%)',
      (value) => readWhole(value, 10_000))
    .option('--fixed-minor <n>', 'the fixed part, in minor units of the payment\'s currency (30)',
      (value) => readWhole(value, Number.MAX_SAFE_INTEGER))
    .option('--json', 'print JSON')
    .action(async (merchantId: string, options: { basisPoints?: number; fixedMinor?: number; json?: boolean }) => {
      await withDatabasePool(async (pool) => {
        const change = { basisPoints: options.basisPoints,
          fixedMinor: options.fixedMinor === undefined ? undefined : BigInt(options.fixedMinor) };
        const showOnly = change.basisPoints === undefined && change.fixedMinor === undefined;
        const known = showOnly && await selectMerchant(pool, merchantId) !== undefined;
        const pricing = showOnly
          ? (known ? await selectMerchantPricing(pool, merchantId) : undefined)
          : await setMerchantPricing(pool, merchantId, change);
        if (pricing === undefined) {
          throw new PennyError({ code: 'resource_missing', message: `No such merchant ${merchantId}; ` +
            'penny merchants create makes one.' });
        }
        printResult(options.json === true,
          { merchant: merchantId, fee_basis_points: pricing.basisPoints, fee_fixed_minor: pricing.fixedMinor },
          `${merchantId}: ${pricing.basisPoints / 100}% + ${pricing.fixedMinor} minor units per captured payment.`);
      });
    });

  registerBankAccountCommand(merchants);
  registerConnectorCommand(merchants);
  registerPayoutScheduleCommand(merchants);

  const keys = program.command('keys').description('manage merchants\' secret API keys');
  keys.command('create')
    .description('create another secret key for a merchant (shown once)')
    .requiredOption('--merchant <id>', 'the merchant (acct_…)')
    .option('--json', 'print JSON')
    .action(async (options: { merchant: string; json?: boolean }) => {
      await withMerchants(async (service) => {
        const created = await service.createKey(options.merchant);
        const json = { id: created.keyId, merchant: options.merchant, secret_key: created.secretKey };
        printResult(options.json === true, json,
          `Created key ${created.keyId}. Secret key (shown only now): ${created.secretKey}`);
      });
    });

  keys.command('list')
    .description('list a merchant\'s keys, shown as prefix and last four characters')
    .requiredOption('--merchant <id>', 'the merchant (acct_…)')
    .option('--json', 'print JSON')
    .action(async (options: { merchant: string; json?: boolean }) => {
      await withMerchants(async (service) => {
        const rows = (await service.listKeys(options.merchant)).map(presentKey);
        printResult(options.json === true, { object: 'list', data: rows },
          rows.map((row) => `${row.id}  ${row.key}  created ${row.created_at}` +
            (row.revoked_at === null ? '' : `  revoked ${row.revoked_at}`)).join('\n') || 'No keys.');
      });
    });

  keys.command('revoke')
    .description('revoke a key; requests with it are refused from now on')
    .argument('<key-id>', 'the key (key_…)')
    .option('--json', 'print JSON')
    .action(async (keyId: string, options: { json?: boolean }) => {
      await withMerchants(async (service) => {
        const key = presentKey(await service.revokeKey(keyId));
        printResult(options.json === true, key, `Revoked ${key.id} (${key.key}) at ${key.revoked_at}.`);
      });
    });
}

/** A whole number from 0 to `max`; anything else is wrong usage (exit 2). */
function readWhole(value: string, max: number): number {
  const number = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number > max) throw new InvalidArgumentError(`a whole number from 0 to ${max}.`);
  return number;
}

async function withMerchants(work: (service: MerchantService) => Promise<void>): Promise<void> {
  await withDatabasePool(async (pool, config) => work(new MerchantService(pool, await resolveSecretKey(config))));
}

function presentKey(key: { id: string; merchantId: string; prefix: string; last4: string; createdAt: string;
  revokedAt: string | null }) {
  return {
    id: key.id, merchant: key.merchantId, key: displayKey(key.prefix, key.last4),
    created_at: key.createdAt, revoked_at: key.revokedAt,
  };
}

/**
 * `penny merchants bank-account ID`: the platform merchant's own bank account, where its payouts
 * go, set by the operator. It is stored like a connected account's (the bank_accounts table, with
 * the merchant as the account), sealed, and shown only as last4 and fingerprint. Setting one
 * replaces the merchant's bank account in that currency; without a number, the command shows them.
 */
function registerBankAccountCommand(merchants: Command): void {
  const command = merchants.command('bank-account')
    .description('show a merchant\'s own bank accounts, or set the one its payouts in a currency go to')
    .argument('<merchant-id>', 'the merchant (acct_…)')
    .addOption(new Option('--iban <iban>', 'an IBAN (its country is the IBAN\'s)').conflicts('accountNumber'))
    .option('--account-number <digits>', 'a US account number (4 to 17 digits), with --routing-number')
    .option('--routing-number <digits>', 'a US ABA routing number (9 digits)')
    .option('--currency <code>', 'the account\'s currency (default: usd for a US account, the IBAN country\'s)')
    .option('--holder-name <name>', 'the account holder\'s name')
    .option('--json', 'print JSON');
  command.action(async (merchantId: string, options: { iban?: string; accountNumber?: string;
    routingNumber?: string; currency?: string; holderName?: string; json?: boolean }) => {
    if (options.routingNumber !== undefined && options.accountNumber === undefined) {
      command.error('error: --routing-number goes with --account-number.');
    }
    if (options.holderName !== undefined && options.iban === undefined && options.accountNumber === undefined) {
      command.error('error: --holder-name goes with --iban or --account-number.');
    }
    await withDatabasePool(async (pool, config) => {
      if (await selectMerchant(pool, merchantId) === undefined) {
        throw new PennyError({ code: 'resource_missing', message: `No such merchant ${merchantId}; ` +
          'penny merchants create makes one.' });
      }
      const number = options.iban ?? options.accountNumber;
      if (number === undefined) {
        const banks = (await platformBankAccounts(pool, merchantId)).map(presentBankAccount);
        printResult(options.json === true, { object: 'list', data: banks },
          banks.map(describeBank).join('\n') || `${merchantId} has no bank account.`);
        return;
      }
      const params: BankAccountParams = {
        country: options.iban === undefined ? '--account-number' : '--iban',
        currency: '--currency',
        accountNumber: options.iban === undefined ? '--account-number' : '--iban',
        routingNumber: '--routing-number',
      };
      const client = await pool.connect();
      try {
        const bank = await setPlatformBankAccount(client, new BankAccountVault(await resolveSecretKey(config)), {
          merchantId, params, command: {
            country: options.iban === undefined ? 'US' : options.iban.replace(/ /g, '').slice(0, 2).toUpperCase(),
            currency: options.currency === undefined ? undefined : parseStripeCurrency(options.currency, '--currency'),
            accountNumber: number, routingNumber: options.routingNumber,
            accountHolderName: options.holderName ?? null, accountHolderType: null, defaultForCurrency: true,
            metadata: {},
          } });
        const shown = presentBankAccount(bank);
        printResult(options.json === true, shown, `Set ${merchantId}'s bank account for ${shown.currency}: ` +
          describeBank(shown));
      } finally {
        client.release();
      }
    });
  });
}

/**
 * `penny merchants connector ID`: where the merchant's new payments go. `--connector adyen` routes
 * them to an Adyen merchant account, its API key and HMAC key read from files (never from the
 * command line, where the shell history and `ps` would keep them) and sealed; `--connector sandbox`
 * routes them back to the sandbox; without `--connector`, shows the routing. Keys are never printed.
 * Existing payments keep their connector.
 */
function registerConnectorCommand(merchants: Command): void {
  const command = merchants.command('connector')
    .description('show where a merchant\'s payments go, or route its new payments to a connector (adyen, sandbox)')
    .argument('<merchant-id>', 'the merchant (acct_…), or `default`: the operator\'s default for merchants with no route')
    .addOption(new Option('--connector <connector>', 'the connector new payments go to').choices(['adyen', 'sandbox']))
    .option('--api-key-file <file>', 'a file holding the Adyen API key (X-API-Key)')
    .option('--merchant-account <name>', 'the Adyen merchant account')
    .option('--hmac-key-file <file>', 'a file holding the hex HMAC key of the account\'s standard webhook')
    .option('--live-prefix <prefix>', 'the live URL prefix (live mode; absent: test mode)')
    .option('--endpoint <url>', 'the versioned Checkout base URL (default https://checkout-test.adyen.com/v71)')
    .option('--fee-basis-points <n>', 'the merchant\'s Adyen price: basis points of each captured amount (default 0)')
    .option('--fee-fixed <minor>', 'the merchant\'s Adyen price: a fixed fee per capture, in minor units (default 0)')
    .option('--json', 'print JSON');
  command.action(async (merchantId: string, options: { connector?: 'adyen' | 'sandbox'; apiKeyFile?: string;
    merchantAccount?: string; hmacKeyFile?: string; livePrefix?: string; endpoint?: string; feeBasisPoints?: string;
    feeFixed?: string; json?: boolean }) => {
    const adyenOnly = [options.apiKeyFile, options.merchantAccount, options.hmacKeyFile, options.livePrefix,
      options.endpoint, options.feeBasisPoints, options.feeFixed].some((value) => value !== undefined);
    if (options.connector !== 'adyen' && adyenOnly) {
      command.error('error: --api-key-file, --merchant-account, --hmac-key-file, --live-prefix, --endpoint, '
        + '--fee-basis-points and --fee-fixed go with --connector adyen.');
    }
    for (const [flag, value] of [['--fee-basis-points', options.feeBasisPoints], ['--fee-fixed', options.feeFixed]]) {
      if (value !== undefined && !/^\d{1,12}$/.test(value)) command.error(`error: ${flag} is a whole number.`);
    }
    if (options.connector === 'adyen' && (options.apiKeyFile === undefined || options.merchantAccount === undefined
      || options.hmacKeyFile === undefined)) {
      command.error('error: --connector adyen needs --api-key-file, --merchant-account and --hmac-key-file.');
    }
    await withDatabasePool(async (pool, config) => {
      const routing = new ConnectorRouting(pool, await resolveSecretKey(config),
        { allowAnyEndpoint: config.connectorsAllowAnyEndpoint });
      const route = options.connector === undefined ? await routing.route(merchantId)
        : options.connector === 'sandbox' ? await routing.routeToDefault(merchantId)
          : await routing.routeToAdyen({ merchantId, merchantAccount: options.merchantAccount ?? '',
            apiKey: await readSecretFile(options.apiKeyFile ?? '', '--api-key-file'),
            hmacKeyHex: await readSecretFile(options.hmacKeyFile ?? '', '--hmac-key-file'),
            livePrefix: options.livePrefix, endpoint: options.endpoint,
            feeBasisPoints: options.feeBasisPoints === undefined ? undefined : Number(options.feeBasisPoints),
            feeFixedMinor: options.feeFixed === undefined ? undefined : BigInt(options.feeFixed) });
      const where = route.connector === 'sandbox' ? 'the sandbox'
        : `Adyen merchant account ${route.merchant_account ?? ''} (${route.live ? 'live' : 'test'}, ${route.endpoint ?? ''}`
          + `, fee ${route.fee_basis_points ?? 0} bp + ${route.fee_fixed_minor ?? 0n} minor units)`;
      printResult(options.json === true, route, `${merchantId}: new payments go to ${where}.`);
    });
  });
}

/** A key from a file (its surrounding whitespace trimmed); a file that cannot be read names the option. */
async function readSecretFile(file: string, option: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    throw new PennyError({ code: 'parameter_invalid', param: option, message: `${option}: cannot read ${file}.` });
  }
}

function describeBank(bank: ReturnType<typeof presentBankAccount>): string {
  return `${bank.id}  ${bank.country} ${bank.currency}  ****${bank.last4}` +
    `${bank.routing_number === null ? '' : `  routing ${bank.routing_number}`}  fingerprint ${bank.fingerprint}` +
    `${bank.default_for_currency ? '  (default)' : ''}`;
}

/**
 * `penny merchants payout-schedule ID`: the platform merchant's own payout schedule (its Account's
 * `settings.payouts.schedule`), `manual` until set: with `--interval`, sets it (weekly needs
 * `--weekly-anchor`, monthly `--monthly-anchor`, as the API's schedule does); without, shows it.
 */
function registerPayoutScheduleCommand(merchants: Command): void {
  const command = merchants.command('payout-schedule')
    .description('show a merchant\'s own payout schedule, or set when its available balance is paid out')
    .argument('<merchant-id>', 'the merchant (acct_…)')
    .addOption(new Option('--interval <interval>', 'how often: daily, weekly, monthly or manual')
      .choices(payoutIntervals))
    .addOption(new Option('--weekly-anchor <day>', 'the weekday of a weekly schedule (monday … sunday)')
      .choices(weekdays))
    .option('--monthly-anchor <day>', 'the day of the month of a monthly schedule (1 to 31; past the month\'s ' +
      'end, its last day)', (value) => readDayOfMonth(value))
    .option('--json', 'print JSON');
  command.action(async (merchantId: string, options: { interval?: PayoutInterval; weeklyAnchor?: Weekday;
    monthlyAnchor?: number; json?: boolean }) => {
    const schedule = readSchedule(options, (message) => command.error(`error: ${message}`));
    await withDatabasePool(async (pool) => {
      if (await selectMerchant(pool, merchantId) === undefined) {
        throw new PennyError({ code: 'resource_missing', message: `No such merchant ${merchantId}; ` +
          'penny merchants create makes one.' });
      }
      const result = schedule === undefined ? await platformPayoutSchedule(pool, merchantId)
        : await setPlatformPayoutSchedule(pool, merchantId, schedule);
      printResult(options.json === true, { merchant: merchantId, ...presentPayoutSchedule(result) },
        `${merchantId}: payouts ${describeSchedule(result)}.`);
    });
  });
}

function readSchedule(options: { interval?: PayoutInterval; weeklyAnchor?: Weekday; monthlyAnchor?: number },
  usage: (message: string) => never): PayoutSchedule | undefined {
  const { interval, weeklyAnchor, monthlyAnchor } = options;
  if (weeklyAnchor !== undefined && interval !== 'weekly') usage('--weekly-anchor goes with --interval weekly.');
  if (monthlyAnchor !== undefined && interval !== 'monthly') usage('--monthly-anchor goes with --interval monthly.');
  switch (interval) {
    case undefined: return undefined;
    case 'weekly':
      return weeklyAnchor === undefined ? usage('--interval weekly needs --weekly-anchor (monday … sunday).')
        : { interval, weeklyAnchor };
    case 'monthly':
      return monthlyAnchor === undefined ? usage('--interval monthly needs --monthly-anchor (1 to 31).')
        : { interval, monthlyAnchor };
    default: return { interval };
  }
}

/** A day of the month, 1 to 31; anything else is wrong usage (exit 2). */
function readDayOfMonth(value: string): number {
  const day = /^\d{1,2}$/.test(value) ? Number(value) : Number.NaN;
  if (!(day >= 1 && day <= 31)) throw new InvalidArgumentError('a day of the month, from 1 to 31.');
  return day;
}

function describeSchedule(schedule: PayoutSchedule): string {
  switch (schedule.interval) {
    case 'manual': return 'manual (only when requested)';
    case 'daily': return 'daily';
    case 'weekly': return `weekly, on ${schedule.weeklyAnchor}`;
    case 'monthly': return `monthly, on day ${schedule.monthlyAnchor} (or the month's last day)`;
  }
}
