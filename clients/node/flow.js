'use strict';
// The tally example flow from Node: two accounts, a deposit, a transfer that waits for its
// saga, read-your-writes, the transfer's events on a subscription, and the error codes.
//
//   node flow.js [--command ADDR] [--query ADDR] [--subscribe ADDR] [--token TOKEN]
//                [--proto-dir DIR]
//
// Addresses and token default to TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR and
// TALLY_TOKEN (as tallyctl); TALLY_TLS_CA set: TLS to every daemon, verified against that
// CA (TALLY_TLS_CERT/TALLY_TLS_KEY: mutual TLS). Prints one line per check and, last, "N passed, M failed";
// exits 1 on any failure.

const crypto = require('crypto');
const path = require('path');
const { Tally, money, statusName, tlsFromEnv } = require('./tally');

const TRANSFER_TIMEOUT_MS = 20000; // the saga runs in tally-projector; wait blocks until it ends
const TRANSFER_EVENTS = [
  'TransferRequested',
  'TransferDebited',
  'TransferCredited',
  'TransferCompleted',
];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let passed = 0;
let failed = 0;

// Runs one named check; resolves to fn's value (true if it returned nothing), or to
// undefined after a failure. One failure never hides the next check.
async function check(name, fn) {
  try {
    const v = await fn();
    passed++;
    console.log(`ok   ${name}` + (typeof v === 'string' ? `: ${v}` : ''));
    return v === undefined ? true : v;
  } catch (e) {
    failed++;
    const why = e && e.code !== undefined && e.details !== undefined
      ? `${statusName(e)}: ${e.details}`
      : (e && e.message) || String(e);
    console.log(`FAIL ${name}: ${why}`);
    return undefined;
  }
}

function skip(name, why) {
  failed++;
  console.log(`FAIL ${name}: not run (${why})`);
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The status an RPC promise settles with: 'OK' or the code's name.
async function statusOf(promise) {
  try {
    await promise;
    return 'OK';
  } catch (e) {
    if (e.code === undefined) throw e;
    return statusName(e);
  }
}

function posKey(p) {
  return [BigInt(p.txId), BigInt(p.globalPosition)];
}

function before(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

function parseArgs(argv) {
  const env = process.env;
  const out = {
    command: env.TALLY_ADDR || '127.0.0.1:50051',
    query: env.TALLY_QUERY_ADDR || '127.0.0.1:50052',
    subscribe: env.TALLY_SUBSCRIBE_ADDR || '127.0.0.1:50053',
    token: env.TALLY_TOKEN,
    'proto-dir': path.join(__dirname, '..', '..', 'proto'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(k in out) || i + 1 >= argv.length) {
      throw new Error(`usage: node flow.js [--command|--query|--subscribe|--token|--proto-dir VALUE]...`);
    }
    out[k] = argv[i + 1];
  }
  if (!out.token) throw new Error('no token: pass --token or set TALLY_TOKEN');
  return out;
}

async function flow(t, anon) {
  // ---- two accounts and a deposit ----
  const open = async (owner) => {
    const r = await t.command.OpenAccount({ owner, currency: 'EUR' });
    expect(UUID.test(r.accountId), `account id ${r.accountId}`);
    expect(r.result.version === '1', `version ${r.result.version}, want 1`);
    return r.accountId;
  };
  const a = await check('OpenAccount alice (EUR)', () => open('alice'));
  const b = await check('OpenAccount bob (EUR)', () => open('bob'));
  if (!a || !b) {
    skip('the rest of the flow', 'no accounts');
    return;
  }
  const dep = await check('Deposit 100.00 EUR to alice', async () => {
    const r = await t.command.Deposit({
      accountId: a,
      amount: money(10000, 'EUR'),
      reference: 'salary',
      idempotencyKey: `deposit-${a}`,
    });
    expect(r.version === '2', `version ${r.version}, want 2`);
    expect(BigInt(r.position.globalPosition) > 0n, 'no position');
  });

  // ---- a live subscription to the transfer's flow, open before the transfer ----
  const corr = crypto.randomUUID(); // the transfer's correlation id, chosen by the client
  const flowFilter = { correlationId: corr };
  const live = await check('Subscribe from the end by correlation id: caught_up', async () => {
    const stream = t.subscription.Subscribe(
      { start: 'START_END', filter: flowFilter },
      { deadline: Date.now() + TRANSFER_TIMEOUT_MS + 15000 }
    );
    const it = stream[Symbol.asyncIterator]();
    try {
      for (;;) { // nothing is stored after the end: caught_up comes first
        const { value: msg, done } = await it.next();
        expect(!done, 'the stream ended before caught_up');
        if (msg.message === 'caughtUp') return { stream, it };
        expect(msg.message !== 'event', `an event before caught_up: ${msg.event && msg.event.eventType}`);
      }
    } catch (e) {
      stream.cancel();
      throw e;
    }
  });

  // ---- a transfer that waits for its saga ----
  const tr = await check('Transfer 30.00 EUR alice -> bob, wait=true: SUCCEEDED', async () => {
    const r = await t.command.Transfer(
      {
        sourceAccountId: a,
        destinationAccountId: b,
        amount: money(3000, 'EUR'),
        reference: 'rent',
        wait: true,
      },
      { metadata: { 'x-correlation-id': corr }, deadline: Date.now() + TRANSFER_TIMEOUT_MS }
    );
    expect(r.status === 'OPERATION_STATUS_SUCCEEDED', `status ${r.status} (${r.failureReason})`);
    expect(r.result.correlationId === corr, `correlation id ${r.result.correlationId}`);
    expect(UUID.test(r.transferId), `transfer id ${r.transferId}`);
    return r;
  });

  // ---- read-your-writes: the balances as of the transfer's position ----
  const balance = async (accountId, wantMinor, wantVersion) => {
    const r = await t.query.GetAccount({ accountId, minPosition: tr.result.position });
    expect(r.balance.currency === 'EUR', `currency ${r.balance.currency}`);
    expect(r.balance.minorUnits === String(wantMinor), `balance ${r.balance.minorUnits}, want ${wantMinor}`);
    expect(r.version === String(wantVersion), `version ${r.version}, want ${wantVersion}`);
  };
  if (tr) {
    await check("GetAccount alice with min_position = transfer's: 70.00 EUR", () => balance(a, 7000, 3));
    await check("GetAccount bob with min_position = transfer's: 30.00 EUR", () => balance(b, 3000, 2));
  } else {
    skip('GetAccount with min_position', 'the transfer failed');
  }

  // ---- the transfer's events: live, and again from the start of the log ----
  // The events on a subscription up to the transfer's outcome, checked; ends the stream.
  const transferEvents = async ({ stream, it }) => {
    const evs = [];
    try {
      for (;;) {
        const { value: msg, done } = await it.next();
        expect(!done, `the stream ended after ${evs.length} events`);
        if (msg.message !== 'event') continue; // checkpoint, caughtUp, heartbeat
        evs.push(msg.event);
        if (['TransferCompleted', 'TransferFailed'].includes(msg.event.eventType)) break;
      }
    } finally {
      await it.return();
      stream.cancel();
    }
    const got = evs.map((e) => e.eventType);
    expect(JSON.stringify(got) === JSON.stringify(TRANSFER_EVENTS), `events ${got}`);
    for (const e of evs) expect(e.metadata.correlationId === corr, `${e.eventType}: other correlation id`);
    for (let i = 1; i < evs.length; i++) {
      expect(before(posKey(evs[i - 1].position), posKey(evs[i].position)), 'not in log order');
    }
    const [req, debit, credit, done] = evs;
    expect(req.aggregateId === tr.transferId && done.aggregateId === tr.transferId, 'transfer stream');
    expect(debit.aggregateId === a && debit.payload === 'transferDebited' &&
      debit.transferDebited.amount.minorUnits === '3000', 'debit is not 30.00 EUR from alice');
    expect(credit.aggregateId === b && credit.payload === 'transferCredited' &&
      credit.transferCredited.amount.minorUnits === '3000', 'credit is not 30.00 EUR to bob');
    return evs;
  };
  const names = TRANSFER_EVENTS.join(', ');
  if (tr && live) {
    await check(`Subscribe from the end: ${names} live`, () => transferEvents(live));
  } else if (live) {
    await live.it.return();
    live.stream.cancel();
    skip('Subscribe from the end', 'the transfer failed');
  }
  if (tr) {
    const events = await check(`Subscribe from the beginning: ${names}`, () => {
      const stream = t.subscription.Subscribe(
        { start: 'START_BEGINNING', filter: flowFilter },
        { deadline: Date.now() + 15000 }
      );
      return transferEvents({ stream, it: stream[Symbol.asyncIterator]() });
    });
    // The balances above are only guaranteed if the token covers the saga's legs.
    if (events) {
      await check('Transfer wait=true: its position covers TransferCompleted (read-your-writes)', () => {
        const done = events[events.length - 1].position;
        expect(!before(posKey(tr.result.position), posKey(done)),
          `position (${posKey(tr.result.position).join(', ')}) is before TransferCompleted's ` +
          `(${posKey(done).join(', ')}): ` +
          'min_position does not cover the debit and credit');
      });
    }
    await check('ListEventsByCorrelation: the same events', async () => {
      const r = await t.query.ListEventsByCorrelation({ correlationId: corr });
      const got = r.events.map((e) => e.eventType);
      expect(JSON.stringify(got) === JSON.stringify(TRANSFER_EVENTS), `events ${got}`);
      if (events) {
        expect(JSON.stringify(r.events.map((e) => e.eventId)) === JSON.stringify(events.map((e) => e.eventId)),
          'not the events Subscribe delivered');
      }
      return got.join(', ');
    });
  } else {
    skip('Subscribe by correlation id', 'the transfer failed');
  }

  // ---- time travel: alice as of version 2 (after the deposit) ----
  if (dep) {
    await check('GetAccountAt alice version 2: 100.00 EUR', async () => {
      const r = await t.query.GetAccountAt({ accountId: a, version: 2 });
      expect(r.balance.minorUnits === '10000', `balance ${r.balance.minorUnits}, want 10000`);
      expect(r.version === '2', `version ${r.version}`);
    });
  }

  // ---- error codes ----
  const status = (name, want, promiseFn) =>
    check(name, async () => {
      const got = await statusOf(promiseFn());
      expect(got === want, `got ${got}, want ${want}`);
    });
  const unknown = crypto.randomUUID();
  await status('Deposit of 0.00 EUR: INVALID_ARGUMENT', 'INVALID_ARGUMENT', () =>
    t.command.Deposit({ accountId: a, amount: money(0, 'EUR') }));
  await status('Deposit of -5.00 EUR: INVALID_ARGUMENT', 'INVALID_ARGUMENT', () =>
    t.command.Deposit({ accountId: a, amount: money(-500, 'EUR') }));
  await status('Deposit to an unknown account: NOT_FOUND', 'NOT_FOUND', () =>
    t.command.Deposit({ accountId: unknown, amount: money(100, 'EUR') }));
  await status('GetAccount of an unknown account: NOT_FOUND', 'NOT_FOUND', () =>
    t.query.GetAccount({ accountId: unknown }));
  await status('Withdraw 30.01 EUR from bob (30.00): FAILED_PRECONDITION', 'FAILED_PRECONDITION', () =>
    t.command.Withdraw({ accountId: b, amount: money(3001, 'EUR') }));
  await check("Transfer beyond bob's balance, wait=true: FAILED", async () => {
    const r = await t.command.Transfer(
      { sourceAccountId: b, destinationAccountId: a, amount: money(1000000, 'EUR'), wait: true },
      { deadline: Date.now() + TRANSFER_TIMEOUT_MS }
    );
    expect(r.status === 'OPERATION_STATUS_FAILED', `status ${r.status}, want FAILED`);
    expect(r.failureReason.includes('insufficient funds'), `reason ${r.failureReason}`);
    return r.failureReason;
  });
  await status('OpenAccount without a token: UNAUTHENTICATED', 'UNAUTHENTICATED', () =>
    anon.command.OpenAccount({ owner: 'eve', currency: 'EUR' }));
  await status('GetAccount without a token: UNAUTHENTICATED', 'UNAUTHENTICATED', () =>
    anon.query.GetAccount({ accountId: a }));
  await status('Subscribe without a token: UNAUTHENTICATED', 'UNAUTHENTICATED', async () => {
    for await (const msg of anon.subscription.Subscribe({})) void msg; // eslint-disable-line no-unused-vars
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const addrs = { command: args.command, query: args.query, subscribe: args.subscribe, protoDir: args['proto-dir'] };
  const tls = tlsFromEnv(); // TALLY_TLS_CA set: secure channels
  const t = await check('load tally/v1 with proto-loader', () => new Tally({ ...addrs, token: args.token, tls }));
  if (t) {
    const anon = new Tally({ ...addrs, token: null, tls });
    try {
      await flow(t, anon);
    } finally {
      t.close();
      anon.close();
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`FAIL ${e && e.stack ? e.stack : e}`);
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }
);
