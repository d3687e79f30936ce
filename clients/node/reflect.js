'use strict';
// tally through server reflection only, as grpcurl does: no .proto file is read. Lists
// each daemon's services and the methods of its tally service, then opens an account
// through the descriptor reflected by tally-command and reads it back through the one
// reflected by tally-query.
//
//   node reflect.js [--command ADDR] [--query ADDR] [--subscribe ADDR] [--token TOKEN]
//
// Defaults from TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR, TALLY_TOKEN;
// TALLY_TLS_CA (and TALLY_TLS_CERT, TALLY_TLS_KEY) for TLS (grpcurl -cacert FILE instead
// of -plaintext). The grpcurl equivalents:
//   grpcurl -plaintext $TALLY_ADDR list
//   grpcurl -plaintext $TALLY_ADDR describe tally.v1.CommandService
//   grpcurl -plaintext -H "authorization: Bearer $TALLY_TOKEN" \
//       -d '{"owner":"carol","currency":"EUR"}' $TALLY_ADDR tally.v1.CommandService/OpenAccount
// Prints one line per check and, last, "N passed, M failed"; exits 1 on any failure.

const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');
// TLS settings only (TALLY_TLS_CA...): the services come from reflection, not from tally.js
const { tlsFromEnv, channelCredentials } = require('./tally');

const TIMEOUT_MS = 10000;
const TLS = tlsFromEnv(); // TALLY_TLS_CA set: secure channels
// as grpcurl prints messages: the proto field names, enums by name, int64 as strings
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    const v = await fn();
    passed++;
    console.log(`ok   ${name}` + (typeof v === 'string' ? `: ${v}` : ''));
    return v === undefined ? true : v;
  } catch (e) {
    failed++;
    const why = e && e.code !== undefined && e.details !== undefined
      ? `${grpc.status[e.code]}: ${e.details}`
      : (e && e.message) || String(e);
    console.log(`FAIL ${name}: ${why}`);
    return undefined;
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const deadline = () => ({ deadline: Date.now() + TIMEOUT_MS });

function parseArgs(argv) {
  const env = process.env;
  const out = {
    command: env.TALLY_ADDR || '127.0.0.1:50051',
    query: env.TALLY_QUERY_ADDR || '127.0.0.1:50052',
    subscribe: env.TALLY_SUBSCRIBE_ADDR || '127.0.0.1:50053',
    token: env.TALLY_TOKEN,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(k in out) || i + 1 >= argv.length) {
      throw new Error('usage: node reflect.js [--command|--query|--subscribe|--token VALUE]...');
    }
    out[k] = argv[i + 1];
  }
  if (!out.token) throw new Error('no token: pass --token or set TALLY_TOKEN');
  return out;
}

// A client of `service` (full name) at addr, built only from the reflected descriptor.
async function reflectedClient(refl, addr, service) {
  const desc = await refl.getDescriptorBySymbol(service, new grpc.Metadata(), deadline());
  const Ctor = service.split('.').reduce((o, k) => o && o[k], desc.getPackageObject(LOADER_OPTIONS));
  expect(typeof Ctor === 'function', `${service} is not in its reflected descriptor`);
  const { creds, options } = channelCredentials(TLS);
  return new Ctor(addr, creds, options);
}

function unary(client, method, request, token) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    client[method](request, md, deadline(), (err, resp) => (err ? reject(err) : resolve(resp)))
  );
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const daemons = [
    ['tally-command', args.command, 'tally.v1.CommandService', 'OpenAccount'],
    ['tally-query', args.query, 'tally.v1.QueryService', 'GetAccountAt'],
    ['tally-projector', args.subscribe, 'tally.v1.SubscriptionService', 'Subscribe'],
  ];
  const refls = {};
  for (const [name, addr, service, method] of daemons) {
    const { creds, options } = channelCredentials(TLS);
    const refl = new GrpcReflection(addr, creds, options, 'v1');
    refls[name] = refl;
    // grpcurl list
    await check(`${name}: list`, async () => {
      const services = await refl.listServices('*', new grpc.Metadata(), deadline());
      for (const s of [service, 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']) {
        expect(services.includes(s), `${s} not in ${services.join(', ')}`);
      }
      return services.sort().join(', ');
    });
    // grpcurl describe SERVICE
    await check(`${name}: describe ${service}`, async () => {
      const methods = await refl.listMethods(service, new grpc.Metadata(), deadline());
      const names = methods.map((m) => m.name);
      expect(names.includes(method), `${method} not in ${names.join(', ')}`);
      const m = methods.find((x) => x.name === method);
      expect(m.definition.path === `/${service}/${method}`, `path ${m.definition.path}`);
      return names.join(', ');
    });
  }

  // grpcurl -d '{...}' ADDR tally.v1.CommandService/OpenAccount, then GetAccountAt
  let account;
  const command = await check('tally-command: client from the reflected descriptor', () =>
    reflectedClient(refls['tally-command'], args.command, 'tally.v1.CommandService'));
  if (command) {
    account = await check('tally.v1.CommandService/OpenAccount through reflection', async () => {
      const r = await unary(command, 'OpenAccount', { owner: 'carol', currency: 'EUR' }, args.token);
      expect(/^[0-9a-f-]{36}$/.test(r.account_id), `account_id ${r.account_id}`);
      expect(r.result.version === '1', `version ${r.result.version}`);
      return r.account_id;
    });
    command.close();
  }
  const query = await check('tally-query: client from the reflected descriptor', () =>
    reflectedClient(refls['tally-query'], args.query, 'tally.v1.QueryService'));
  if (query) {
    await check('tally.v1.QueryService/GetAccountAt through reflection', async () => {
      expect(account, 'no account was opened');
      const r = await unary(query, 'GetAccountAt', { account_id: account, version: 1 }, args.token);
      expect(r.account_id === account && r.owner === 'carol', `got ${JSON.stringify(r)}`);
      expect(r.status === 'ACCOUNT_STATUS_OPEN', `status ${r.status}`);
      expect(r.balance.minor_units === '0' && r.balance.currency === 'EUR', `balance ${JSON.stringify(r.balance)}`);
      return `${r.owner}, ${r.status}, ${r.balance.minor_units} ${r.balance.currency}`;
    });
    query.close();
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
