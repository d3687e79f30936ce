'use strict';
// A small Node client for tally: @grpc/grpc-js with the service definitions loaded from
// proto/tally/v1 at run time by @grpc/proto-loader (nothing is generated or committed).
//
//   const { Tally, money } = require('./tally');
//   const t = new Tally({ command, query, subscribe, token, protoDir });
//   const { accountId } = await t.command.OpenAccount({ owner: 'alice', currency: 'EUR' });
//   await t.command.Deposit({ accountId, amount: money(1234, 'EUR') });   // 12.34 EUR
//   for await (const msg of t.subscription.Subscribe({ start: 'START_BEGINNING' })) ...
//   t.close();
//
// Messages use proto-loader's JavaScript conventions: camelCase field names, enums as
// their names ('OPERATION_STATUS_SUCCEEDED'), int64 as decimal strings (amounts never
// become floating point), a oneof's case in its own field (`payload: 'transferDebited'`).
// Every call carries `authorization: Bearer TOKEN` (an interceptor) and a default
// deadline; unary methods return promises that reject with grpc-js's ServiceError
// (`err.code`, see statusName).
//
// TLS: pass `tls` (see tlsFromEnv: TALLY_TLS_CA, TALLY_TLS_CERT, TALLY_TLS_KEY,
// TALLY_TLS_SERVER_NAME, as tallyctl reads them) for secure channels that verify the
// daemons' certificates against that CA, with a client certificate for mutual TLS when
// cert and key are set; without it, the channels are plaintext.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  // google/protobuf/*.proto (wrappers, timestamp) ship with protoc in /usr/include
  includeDirs: ['/usr/include'],
};

// The package object of tally.v1, loaded from protoDir (the repo's proto/ folder).
function loadTally(protoDir) {
  const files = ['command', 'query', 'subscription'].map((f) => path.join('tally/v1', `${f}.proto`));
  const def = protoLoader.loadSync(files, {
    ...LOADER_OPTIONS,
    includeDirs: [protoDir, ...LOADER_OPTIONS.includeDirs],
  });
  return grpc.loadPackageDefinition(def).tally.v1;
}

// An interceptor that adds the bearer token (unless null) and a default deadline.
function authInterceptor(token, timeoutMs) {
  return (options, nextCall) => {
    const opts = options.deadline ? options : { ...options, deadline: Date.now() + timeoutMs };
    return new grpc.InterceptingCall(nextCall(opts), {
      start(metadata, listener, next) {
        if (token != null) metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  };
}

// The service's methods on one object: unary ones return promises, server-streaming ones
// the grpc-js stream (a Readable: `for await` works). Both take (request, {metadata,
// deadline}); metadata is a plain object of extra headers.
function wrap(client, Service) {
  const out = { client };
  for (const [name, m] of Object.entries(Service.service)) {
    out[name] = (request, { metadata = {}, deadline } = {}) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      const opts = deadline ? { deadline } : {};
      if (m.responseStream) return client[name](request, md, opts);
      return new Promise((resolve, reject) =>
        client[name](request, md, opts, (err, resp) => (err ? reject(err) : resolve(resp)))
      );
    };
  }
  return out;
}

// The TLS settings from the environment: { ca, cert, key, serverName } (file paths and
// a name), or null when TALLY_TLS_CA is unset or empty (plaintext).
function tlsFromEnv(env = process.env) {
  if (!env.TALLY_TLS_CA) return null;
  const tls = {
    ca: env.TALLY_TLS_CA,
    cert: env.TALLY_TLS_CERT || null,
    key: env.TALLY_TLS_KEY || null,
    serverName: env.TALLY_TLS_SERVER_NAME || null,
  };
  if (!tls.cert !== !tls.key) throw new Error('TLS: TALLY_TLS_CERT and TALLY_TLS_KEY go together');
  return tls;
}

// Channel credentials and channel options for tls (null: plaintext, no options).
function channelCredentials(tls) {
  if (!tls) return { creds: grpc.credentials.createInsecure(), options: {} };
  const read = (f) => (f ? fs.readFileSync(f) : null);
  const creds = grpc.credentials.createSsl(read(tls.ca), read(tls.key), read(tls.cert));
  const options = tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {};
  return { creds, options };
}

class Tally {
  // command, query, subscribe: "host:port" of tally-command, tally-query and
  // tally-projector; token: the bearer token (null: calls are UNAUTHENTICATED);
  // protoDir: the repo's proto/; timeoutMs: the default deadline of each call;
  // tls: see tlsFromEnv (null: plaintext).
  constructor({ command, query, subscribe, token, protoDir, timeoutMs = 10000, tls = null }) {
    const v1 = loadTally(protoDir);
    const { creds, options } = channelCredentials(tls);
    const opts = { ...options, interceptors: [authInterceptor(token, timeoutMs)] };
    this.command = wrap(new v1.CommandService(command, creds, opts), v1.CommandService);
    this.query = wrap(new v1.QueryService(query, creds, opts), v1.QueryService);
    this.subscription = wrap(
      new v1.SubscriptionService(subscribe, creds, opts),
      v1.SubscriptionService
    );
  }

  close() {
    for (const s of [this.command, this.query, this.subscription]) s.client.close();
  }
}

// A tally.v1.Money. minorUnits: an integer count of the currency's minor unit (cents for
// EUR) as a bigint, a safe integer or a decimal string; never a fraction.
function money(minorUnits, currency) {
  if (typeof minorUnits === 'number' && !Number.isSafeInteger(minorUnits)) {
    throw new TypeError(`amounts are integers in minor units, not ${minorUnits}`);
  }
  const s = String(minorUnits);
  if (!/^-?[0-9]+$/.test(s)) throw new TypeError(`not an integer amount: ${s}`);
  return { minorUnits: s, currency };
}

// The name of a grpc-js status code ('NOT_FOUND'), or 'OK' for no error.
function statusName(err) {
  return err ? grpc.status[err.code] || String(err.code) : 'OK';
}

module.exports = {
  Tally,
  money,
  statusName,
  loadTally,
  authInterceptor,
  tlsFromEnv,
  channelCredentials,
  LOADER_OPTIONS,
};
