"""A small Python client for tally, over stubs generated from proto/tally/v1.

Runs on Debian's python3-grpcio and python3-protobuf (use /usr/bin/python3). The stubs
are not committed: generate() compiles them into a directory of your choice (_pb2 with
the system protoc, _pb2_grpc with grpc_tools) and puts it on sys.path; import this
module's Tally only after that.

    import tally_client
    tally_client.generate("proto", "/tmp/tally-gen")
    with tally_client.Tally(command="127.0.0.1:50051", query="127.0.0.1:50052",
                            subscribe="127.0.0.1:50053", token=TOKEN) as t:
        acc = t.command.OpenAccount(t.pb.OpenAccountRequest(owner="alice", currency="EUR"))
        t.command.Deposit(t.pb.DepositRequest(account_id=acc.account_id,
                                              amount=t.money(1234, "EUR")))

Every call through a Tally carries `authorization: Bearer TOKEN` (a client interceptor)
and, unless the caller passes its own, a default deadline.

TLS: pass tls=TlsConfig(ca=...) (or TlsConfig.from_env(): TALLY_TLS_CA, TALLY_TLS_CERT,
TALLY_TLS_KEY, TALLY_TLS_SERVER_NAME, as tallyctl reads them) for secure channels that
verify the daemons' certificates against that CA; with cert and key too, the client
presents its certificate (mutual TLS). Without it, the channels are plaintext.
"""

import collections
import importlib
import os
import subprocess
import sys
import types

import grpc

PYTHON = "/usr/bin/python3"  # Debian's grpc_tools lives in its dist-packages only
FILES = ("types", "events", "command", "query", "subscription")
SERVICES = ("command", "query", "subscription")


def generate(proto_dir, out_dir, protoc="protoc"):
    """Compiles proto_dir/tally/v1/*.proto into out_dir (tally/v1/*_pb2.py from `protoc`,
    *_pb2_grpc.py from grpc_tools) and prepends out_dir to sys.path. Raises
    subprocess.CalledProcessError when a compiler fails."""
    os.makedirs(out_dir, exist_ok=True)
    protos = [os.path.join(proto_dir, "tally", "v1", f + ".proto") for f in FILES]
    subprocess.run([protoc, "-I" + proto_dir, "--python_out=" + out_dir] + protos, check=True)
    # grpc_tools bundles its own (older) protoc: use it for the service stubs only.
    # /usr/include holds google/protobuf/*.proto, which command.proto imports.
    subprocess.run(
        [PYTHON, "-m", "grpc_tools.protoc", "-I" + proto_dir, "-I/usr/include",
         "--grpc_python_out=" + out_dir]
        + [p for p in protos if os.path.basename(p)[:-6] in SERVICES],
        check=True,
    )
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    importlib.invalidate_caches()


def _modules():
    """The generated modules, as one namespace of messages (pb) and one of stubs."""
    pb = types.SimpleNamespace()
    for f in FILES:
        mod = importlib.import_module(f"tally.v1.{f}_pb2")
        for name in mod.DESCRIPTOR.message_types_by_name:
            setattr(pb, name, getattr(mod, name))
        for name, enum in mod.DESCRIPTOR.enum_types_by_name.items():
            setattr(pb, name, getattr(mod, name))
            for value in enum.values:  # top-level enum values, as in the _pb2 module
                setattr(pb, value.name, value.number)
    grpc_mods = {s: importlib.import_module(f"tally.v1.{s}_pb2_grpc") for s in SERVICES}
    return pb, grpc_mods


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Auth(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token (unless None) and a default deadline to every unary and
    server-streaming call (tally has no client-streaming RPCs)."""

    def __init__(self, token, timeout):
        self._header = ("authorization", f"Bearer {token}") if token is not None else None
        self._timeout = timeout

    def _details(self, d):
        md = list(d.metadata or [])
        if self._header:
            md.append(self._header)
        return _CallDetails(d.method, d.timeout if d.timeout is not None else self._timeout,
                            md, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


class TlsConfig(collections.namedtuple("TlsConfig", "ca cert key server_name")):
    """PEM file paths: ca the daemons' certificates must chain to; cert and key (both or
    neither) for mutual TLS; server_name the name the certificates must carry instead of
    the address's host (None: the host)."""

    def __new__(cls, ca, cert=None, key=None, server_name=None):
        if (cert is None) != (key is None):
            raise ValueError("TLS: a client certificate needs its key and the reverse")
        return super().__new__(cls, ca, cert, key, server_name)

    @classmethod
    def from_env(cls, env=os.environ):
        """A TlsConfig from TALLY_TLS_CA (and TALLY_TLS_CERT, TALLY_TLS_KEY,
        TALLY_TLS_SERVER_NAME), or None when TALLY_TLS_CA is unset or empty."""
        ca = env.get("TALLY_TLS_CA") or None
        if ca is None:
            return None
        return cls(ca, env.get("TALLY_TLS_CERT") or None, env.get("TALLY_TLS_KEY") or None,
                   env.get("TALLY_TLS_SERVER_NAME") or None)

    def channel(self, addr):
        """A secure channel to addr."""
        def read(path):
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(root_certificates=read(self.ca),
                                             private_key=read(self.key),
                                             certificate_chain=read(self.cert))
        options = []
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return grpc.secure_channel(addr, creds, options=options)


class Tally:
    """Channels to the three tally daemons and their stubs.

    command, query, subscription: the generated CommandService, QueryService and
    SubscriptionService stubs, authenticated with `token` (None: no authorization header,
    every call is UNAUTHENTICATED). pb: every tally.v1 message, enum and top-level enum
    value by name (pb.Money, pb.OperationStatus, pb.OPERATION_STATUS_SUCCEEDED).
    timeout: the default deadline of each call in seconds (a stream's whole life).
    tls: a TlsConfig for secure channels, or None for plaintext.
    Thread safety: as grpc's channels and stubs (safe to share)."""

    def __init__(self, command, query, subscribe, token, timeout=10.0, tls=None):
        self.pb, grpc_mods = _modules()
        self._channels = []
        self.tls = tls

        def stub(addr, factory):
            ch = tls.channel(addr) if tls else grpc.insecure_channel(addr)
            self._channels.append(ch)
            return factory(grpc.intercept_channel(ch, _Auth(token, timeout)))

        self.command = stub(command, grpc_mods["command"].CommandServiceStub)
        self.query = stub(query, grpc_mods["query"].QueryServiceStub)
        self.subscription = stub(subscribe, grpc_mods["subscription"].SubscriptionServiceStub)

    def money(self, minor_units, currency):
        """A tally.v1.Money: an integer count of the currency's minor unit (cents for EUR)."""
        if not isinstance(minor_units, int):
            raise TypeError("amounts are integers in minor units, never floats")
        return self.pb.Money(minor_units=minor_units, currency=currency)

    def close(self):
        for ch in self._channels:
            ch.close()
        self._channels = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def status_of(call):
    """The grpc.StatusCode name an RPC failed with ("OK" when call() returned):
    status_of(lambda: stub.Deposit(req))."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code().name
    return "OK"
