'use strict';
// Black-box test of the three tally daemons from Node, as a stranger sees them:
// @grpc/grpc-js, grpc-js-reflection-client (v1alpha and v1) and @grpc/proto-loader.
// The tally services are called only through descriptors fetched by reflection; the
// repo's .proto files, loaded with proto-loader, serve only to compare the method lists.
//
//   node test.js --command ADDR --query ADDR --projector ADDR --token TOKEN --proto-dir DIR
//
// Prints one line per check and, last, "N passed, M failed"; exits 1 on any failure.

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { GrpcReflection } = require('grpc-js-reflection-client');

const RPC_TIMEOUT_MS = 10000;

// The tally RPCs of issues 2-4 are not implemented yet: today they may answer
// UNIMPLEMENTED. When they land, empty NOT_YET and each check asserts the one code
// the finished service must give.
const NOT_YET = ['UNIMPLEMENTED'];
// [service, method, auth, acceptable codes]; empty requests are INVALID_ARGUMENT once
// the caller is authenticated.
const TALLY_CALLS = [
  ['tally.v1.CommandService', 'OpenAccount', 'none', ['UNAUTHENTICATED', ...NOT_YET]],
  ['tally.v1.CommandService', 'OpenAccount', 'bad', ['UNAUTHENTICATED', ...NOT_YET]],
  ['tally.v1.CommandService', 'OpenAccount', 'good', ['INVALID_ARGUMENT', ...NOT_YET]],
  ['tally.v1.QueryService', 'GetAccount', 'none', ['UNAUTHENTICATED', ...NOT_YET]],
  ['tally.v1.QueryService', 'GetAccount', 'bad', ['UNAUTHENTICATED', ...NOT_YET]],
  ['tally.v1.QueryService', 'GetAccount', 'good', ['INVALID_ARGUMENT', ...NOT_YET]],
  ['tally.v1.SubscriptionService', 'Subscribe', 'none', ['UNAUTHENTICATED', ...NOT_YET]],
  ['tally.v1.SubscriptionService', 'Subscribe', 'bad', ['UNAUTHENTICATED', ...NOT_YET]],
];
const TALLY_SERVICES = [
  'tally.v1.CommandService',
  'tally.v1.QueryService',
  'tally.v1.SubscriptionService',
];
const STANDARD_SERVICES = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1alpha.ServerReflection',
  'grpc.reflection.v1.ServerReflection',
];
const LOADER_OPTS = { keepCase: true, enums: String, longs: String, defaults: true };

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    const v = await fn();
    if (v === false) throw new Error('false');
    passed++;
    console.log(`ok   ${name}` + (typeof v === 'string' ? `: ${v}` : ''));
    return v;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
    return undefined;
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${k}`);
    }
    out[k.slice(2)] = argv[i + 1];
  }
  for (const k of ['command', 'query', 'projector', 'token', 'proto-dir']) {
    if (!out[k]) throw new Error(`missing --${k}`);
  }
  return out;
}

const deadline = () => ({ deadline: Date.now() + RPC_TIMEOUT_MS });
const insecure = () => grpc.credentials.createInsecure();

function lookup(obj, dotted) {
  return dotted.split('.').reduce((o, k) => (o ? o[k] : undefined), obj);
}

// Unary or server-streaming call; resolves to [status name, response or first message].
function call(client, method, auth, token) {
  const md = new grpc.Metadata();
  if (auth === 'bad') md.add('authorization', 'Bearer not-a-valid-token');
  if (auth === 'good') md.add('authorization', `Bearer ${token}`);
  const def = client[method];
  return new Promise((resolve) => {
    if (def.responseStream) {
      const stream = client[method]({}, md, deadline());
      let done = false;
      stream.on('data', (msg) => {
        if (!done) {
          done = true;
          stream.cancel();
          resolve(['OK', msg]);
        }
      });
      stream.on('error', (err) => {
        if (!done) {
          done = true;
          resolve([grpc.status[err.code], null]);
        }
      });
      stream.on('end', () => {
        if (!done) {
          done = true;
          resolve(['OK', null]);
        }
      });
      return;
    }
    client[method]({}, md, deadline(), (err, resp) => {
      resolve(err ? [grpc.status[err.code], null] : ['OK', resp]);
    });
  });
}

async function checkDaemon(name, addr, ownService, token, staticPkg) {
  const md = () => new grpc.Metadata();
  const ready = await check(`${name}: channel ready`, () => {
    const client = new grpc.Client(addr, insecure());
    return new Promise((resolve, reject) =>
      client.waitForReady(Date.now() + RPC_TIMEOUT_MS, (err) => {
        client.close();
        if (err) reject(err);
        else resolve(true);
      })
    );
  });
  if (!ready) return; // every other check would wait for its deadline
  for (const version of ['v1alpha', 'v1']) {
    const refl = new GrpcReflection(addr, insecure(), {}, version);

    await check(`${name}: reflection ${version} listServices`, async () => {
      const services = await refl.listServices('*', md(), deadline());
      for (const s of [...STANDARD_SERVICES, ownService]) {
        expect(services.includes(s), `${s} missing in ${services.join(', ')}`);
      }
      const others = TALLY_SERVICES.filter((s) => s !== ownService && services.includes(s));
      expect(others.length === 0, `serves another daemon's service: ${others.join(', ')}`);
    });

    await check(`${name}: reflection ${version} listMethods = repo's methods`, async () => {
      const methods = await refl.listMethods(ownService, md(), deadline());
      const got = methods.map((m) => m.name).sort();
      const want = Object.keys(lookup(staticPkg, ownService).service).sort();
      expect(JSON.stringify(got) === JSON.stringify(want), `got ${got}, want ${want}`);
      for (const m of methods) {
        const s = lookup(staticPkg, ownService).service[m.name];
        expect(m.definition.path === s.path, `${m.name}: path ${m.definition.path}`);
        expect(
          m.definition.requestStream === s.requestStream &&
            m.definition.responseStream === s.responseStream,
          `${m.name}: streaming flags differ`
        );
      }
    });

    await check(`${name}: reflection ${version} unknown symbol is an error`, async () => {
      let rejected = false;
      try {
        await refl.getDescriptorBySymbol('tally.v1.NoSuchThing', md(), deadline());
      } catch (e) {
        rejected = true;
      }
      expect(rejected, 'resolved');
    });

    await check(`${name}: health Check and Watch through the ${version}-reflected descriptor`, async () => {
      const desc = await refl.getDescriptorBySymbol('grpc.health.v1.Health', md(), deadline());
      const Health = lookup(desc.getPackageObject(LOADER_OPTS), 'grpc.health.v1.Health');
      const client = new Health(addr, insecure());
      try {
        const [code, resp] = await call(client, 'Check', 'none');
        expect(code === 'OK', code);
        expect(resp.status === 'SERVING', `status ${resp.status}`);
        const [wcode, first] = await call(client, 'Watch', 'none');
        expect(wcode === 'OK' && first, `Watch: ${wcode}`);
        expect(first.status === 'SERVING', `Watch: first status ${first.status}`);
      } finally {
        client.close();
      }
    });

    const pkg = await check(`${name}: ${version} descriptor of ${ownService}`, async () => {
      const desc = await refl.getDescriptorBySymbol(ownService, md(), deadline());
      return desc.getPackageObject(LOADER_OPTS);
    });
    if (!pkg) continue;
    const Service = lookup(pkg, ownService);
    for (const [service, method, auth, allowed] of TALLY_CALLS) {
      if (service !== ownService) continue;
      await check(`${name}: ${version} ${service}/${method} with ${auth} token`, async () => {
        const client = new Service(addr, insecure());
        try {
          const [code] = await call(client, method, auth, token);
          expect(allowed.includes(code), `got ${code}, want one of ${allowed.join(', ')}`);
          return code;
        } finally {
          client.close();
        }
      });
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const protoDir = args['proto-dir'];
  const staticPkg = await check("load the repo's tally/v1 with proto-loader", () =>
    grpc.loadPackageDefinition(
      protoLoader.loadSync(
        ['command.proto', 'query.proto', 'subscription.proto'].map((f) =>
          path.join('tally/v1', f)
        ),
        { ...LOADER_OPTS, includeDirs: [protoDir, '/usr/include'] }
      )
    )
  );
  if (staticPkg) {
    await checkDaemon('tally-command', args.command, 'tally.v1.CommandService', args.token, staticPkg);
    await checkDaemon('tally-query', args.query, 'tally.v1.QueryService', args.token, staticPkg);
    await checkDaemon(
      'tally-projector',
      args.projector,
      'tally.v1.SubscriptionService',
      args.token,
      staticPkg
    );
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
