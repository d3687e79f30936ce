#!/usr/bin/python3
"""Black-box test of the three tally daemons from Python, as a stranger sees them.

Uses only Debian's python3-grpcio and python3-protobuf (run it with /usr/bin/python3).
The stubs for reflection and health are generated at test time, into a temporary
directory, from renamed copies of grpc-proto's files (a generated `grpc/` package would
shadow the grpc module). The tally services are never compiled here: they are reached
through descriptors fetched by server reflection, as grpcurl does.

    test_blackbox.py --command ADDR --query ADDR --projector ADDR --token TOKEN --proto-dir DIR

Prints one line per check and, last, "N passed, M failed"; exits 1 on any failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

GRPC_PROTO_DIR = "/usr/share/grpc-proto"
RPC_TIMEOUT = 10.0

# The tally RPCs of issues 2-4 are not implemented yet: today they may answer
# UNIMPLEMENTED. When they land, empty NOT_YET and each check below asserts the one
# code the finished service must give.
NOT_YET = {"UNIMPLEMENTED"}
# (service, method, metadata) -> acceptable status codes. Empty requests: the methods
# reject them as INVALID_ARGUMENT once they authenticate the caller.
TALLY_CALLS = [
    ("tally.v1.CommandService", "OpenAccount", "none", {"UNAUTHENTICATED"} | NOT_YET),
    ("tally.v1.CommandService", "OpenAccount", "bad", {"UNAUTHENTICATED"} | NOT_YET),
    ("tally.v1.CommandService", "OpenAccount", "good", {"INVALID_ARGUMENT"} | NOT_YET),
    ("tally.v1.QueryService", "GetAccount", "none", {"UNAUTHENTICATED"} | NOT_YET),
    ("tally.v1.QueryService", "GetAccount", "bad", {"UNAUTHENTICATED"} | NOT_YET),
    ("tally.v1.QueryService", "GetAccount", "good", {"INVALID_ARGUMENT"} | NOT_YET),
    ("tally.v1.SubscriptionService", "Subscribe", "none", {"UNAUTHENTICATED"} | NOT_YET),
    ("tally.v1.SubscriptionService", "Subscribe", "bad", {"UNAUTHENTICATED"} | NOT_YET),
]

SERVICE_FILE = {
    "tally.v1.CommandService": "tally/v1/command.proto",
    "tally.v1.QueryService": "tally/v1/query.proto",
    "tally.v1.SubscriptionService": "tally/v1/subscription.proto",
}
STANDARD_SERVICES = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
}


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        """Runs fn(); a falsy result or an exception is a failure. Returns fn's result."""
        try:
            value = fn()
        except Exception as e:  # report and go on: one failure must not hide the rest
            self.failed += 1
            if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
                print(f"FAIL {name}: RPC failed: {e.code().name}: {e.details()}")
            else:
                print(f"FAIL {name}: {type(e).__name__}: {e}")
            if os.environ.get("TALLY_TEST_VERBOSE"):
                traceback.print_exc()
            return None
        if value is False:
            self.failed += 1
            print(f"FAIL {name}")
            return None
        self.passed += 1
        print(f"ok   {name}" + (f": {value}" if isinstance(value, str) else ""))
        return value


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- stubs generated at test time ----


def generate_stubs(workdir):
    """Compiles renamed copies of the reflection and health protos into workdir/gen and
    puts it on sys.path. Returns the imported modules."""
    src = os.path.join(workdir, "src")
    gen = os.path.join(workdir, "gen")
    os.makedirs(src)
    os.makedirs(gen)
    copies = {
        "grpc/reflection/v1alpha/reflection.proto": "reflection_v1alpha.proto",
        "grpc/reflection/v1/reflection.proto": "reflection_v1.proto",
        "grpc/health/v1/health.proto": "health_v1.proto",
    }
    for orig, renamed in copies.items():
        shutil.copyfile(os.path.join(GRPC_PROTO_DIR, orig), os.path.join(src, renamed))
    files = [os.path.join(src, f) for f in copies.values()]
    # _pb2 from the system protoc (3.21); _pb2_grpc from grpc_tools (its protoc is 3.5)
    subprocess.run(["protoc", "-I" + src, "--python_out=" + gen] + files, check=True)
    subprocess.run(
        ["/usr/bin/python3", "-m", "grpc_tools.protoc", "-I" + src, "--grpc_python_out=" + gen]
        + files,
        check=True,
    )
    sys.path.insert(0, gen)
    import health_v1_pb2
    import health_v1_pb2_grpc
    import reflection_v1_pb2
    import reflection_v1_pb2_grpc
    import reflection_v1alpha_pb2
    import reflection_v1alpha_pb2_grpc

    return {
        "v1alpha": (reflection_v1alpha_pb2, reflection_v1alpha_pb2_grpc),
        "v1": (reflection_v1_pb2, reflection_v1_pb2_grpc),
        "health": (health_v1_pb2, health_v1_pb2_grpc),
    }


def protoc_descriptors(proto_dir, workdir):
    """The repo's tally/v1 files as protoc compiles them: name -> FileDescriptorProto."""
    out = os.path.join(workdir, "tally.desc")
    files = sorted(
        os.path.join("tally/v1", f)
        for f in os.listdir(os.path.join(proto_dir, "tally/v1"))
        if f.endswith(".proto")
    )
    subprocess.run(
        ["protoc", "-I" + proto_dir, "--include_imports", "--descriptor_set_out=" + out] + files,
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return {fd.name: fd for fd in fds.file}


# ---- a reflection client (what grpcurl does) ----


class Reflection:
    def __init__(self, channel, stubs, version):
        self.pb2, pb2_grpc = stubs[version]
        self.stub = pb2_grpc.ServerReflectionStub(channel)
        self.version = version

    def ask(self, **kw):
        """One request on one stream; returns the single response."""
        req = self.pb2.ServerReflectionRequest(host="", **kw)
        responses = list(self.stub.ServerReflectionInfo(iter([req]), timeout=RPC_TIMEOUT))
        expect(len(responses) == 1, f"{len(responses)} responses to one request")
        return responses[0]

    def list_services(self):
        r = self.ask(list_services="")
        expect(r.WhichOneof("message_response") == "list_services_response", str(r))
        return [s.name for s in r.list_services_response.service]

    def files(self, **kw):
        """FileDescriptorProtos answering file_by_filename / file_containing_symbol."""
        r = self.ask(**kw)
        kind = r.WhichOneof("message_response")
        if kind == "error_response":
            raise LookupError(
                f"error_response {r.error_response.error_code}: {r.error_response.error_message}"
            )
        expect(kind == "file_descriptor_response", str(r))
        out = []
        for blob in r.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(blob)
            out.append(fd)
        return out

    def error_code(self, **kw):
        r = self.ask(**kw)
        expect(r.WhichOneof("message_response") == "error_response", f"not an error: {r}")
        return r.error_response.error_code

    def pool_for_symbol(self, symbol):
        """A DescriptorPool built only from reflection, holding `symbol`'s file and every
        file it imports (fetched by name when the server did not send it along)."""
        have = {}
        for fd in self.files(file_containing_symbol=symbol):
            have[fd.name] = fd
        todo = [d for fd in list(have.values()) for d in fd.dependency]
        while todo:
            name = todo.pop()
            if name in have:
                continue
            for fd in self.files(file_by_filename=name):
                have.setdefault(fd.name, fd)
                todo.extend(fd.dependency)
        pool = descriptor_pool.DescriptorPool()
        added = set()
        while len(added) < len(have):  # dependencies first
            progress = False
            for name, fd in have.items():
                if name not in added and all(d in added for d in fd.dependency):
                    pool.Add(fd)
                    added.add(name)
                    progress = True
            expect(progress, f"unresolvable imports among {sorted(have)}")
        return pool, have


def dynamic_call(channel, pool, service, method, request_fields=None, metadata=None):
    """Calls service/method with message classes made from `pool` only. Returns
    (status code name, response or first streamed message or None)."""
    sd = pool.FindServiceByName(service)
    md = sd.methods_by_name[method]
    factory = message_factory.MessageFactory(pool)
    req_cls = factory.GetPrototype(md.input_type)
    resp_cls = factory.GetPrototype(md.output_type)
    req = req_cls(**(request_fields or {}))
    path = f"/{service}/{method}"
    try:
        if md.server_streaming:
            call = channel.unary_stream(
                path,
                request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString,
            )(req, timeout=RPC_TIMEOUT, metadata=metadata)
            first = next(iter(call), None)
            call.cancel()
            return "OK", first
        resp = channel.unary_unary(
            path,
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        )(req, timeout=RPC_TIMEOUT, metadata=metadata)
        return "OK", resp
    except grpc.RpcError as e:
        return e.code().name, None


# ---- the checks ----


def check_daemon(res, stubs, name, addr, own_service, token, repo_files):
    channel = grpc.insecure_channel(addr)
    try:
        ready = res.check(
            f"{name}: channel ready",
            lambda: grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT) or True,
        )
        if not ready:
            return  # every other check would wait for its deadline
        for version in ("v1alpha", "v1"):
            refl = Reflection(channel, stubs, version)

            def listed():
                services = set(refl.list_services())
                want = STANDARD_SERVICES | {own_service}
                expect(want <= services, f"missing {sorted(want - services)} in {sorted(services)}")
                others = (set(SERVICE_FILE) - {own_service}) & services
                expect(not others, f"serves another daemon's service: {sorted(others)}")
                return True

            res.check(f"{name}: reflection {version} list_services", listed)

            def by_symbol():
                fds = refl.files(file_containing_symbol=own_service)
                names = [fd.name for fd in fds]
                expect(SERVICE_FILE[own_service] in names, f"got {names}")
                return True

            res.check(f"{name}: reflection {version} file_containing_symbol", by_symbol)

            def by_method_symbol():
                method = {
                    "tally.v1.CommandService": "OpenAccount",
                    "tally.v1.QueryService": "GetAccount",
                    "tally.v1.SubscriptionService": "Subscribe",
                }[own_service]
                fds = refl.files(file_containing_symbol=f"{own_service}.{method}")
                expect(SERVICE_FILE[own_service] in [fd.name for fd in fds], "file not sent")
                return True

            res.check(f"{name}: reflection {version} method symbol", by_method_symbol)

            def by_filename():
                fds = refl.files(file_by_filename="tally/v1/types.proto")
                expect(fds and fds[0].name == "tally/v1/types.proto", [f.name for f in fds])
                return True

            res.check(f"{name}: reflection {version} file_by_filename", by_filename)

            res.check(
                f"{name}: reflection {version} unknown symbol is NOT_FOUND",
                lambda: expect(
                    refl.error_code(file_containing_symbol="tally.v1.NoSuchThing")
                    == grpc.StatusCode.NOT_FOUND.value[0],
                    "wrong error code",
                )
                or True,
            )

        refl = Reflection(channel, stubs, "v1")

        def same_as_repo():
            _, have = refl.pool_for_symbol(own_service)
            for fname, fd in have.items():
                if not fname.startswith("tally/"):
                    continue
                expect(fname in repo_files, f"{fname} is not in the repo")
                expect(fd == repo_files[fname], f"{fname} differs from protoc's descriptor")
            return True

        res.check(f"{name}: reflected tally descriptors equal protoc's", same_as_repo)

        # health, through the static (renamed) stubs
        health_pb2, health_grpc = stubs["health"]
        health = health_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING

        res.check(
            f"{name}: health Check('') SERVING (static stub)",
            lambda: health.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT).status
            == serving,
        )
        res.check(
            f"{name}: health Check('{own_service}') SERVING",
            lambda: health.Check(
                health_pb2.HealthCheckRequest(service=own_service), timeout=RPC_TIMEOUT
            ).status
            == serving,
        )

        def watch_health():
            stream = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT)
            try:
                first = next(stream)
            finally:
                stream.cancel()
            expect(first.status == serving, f"first status {first.status}")
            return True

        res.check(f"{name}: health Watch('') sends SERVING", watch_health)

        def unknown_health():
            try:
                health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT)
            except grpc.RpcError as e:
                expect(e.code() == grpc.StatusCode.NOT_FOUND, e.code())
                return True
            raise AssertionError("answered OK")

        res.check(f"{name}: health Check(unknown) NOT_FOUND", unknown_health)

        # grpcurl's way: the health descriptor fetched by reflection, then a dynamic call
        def reflected_health():
            pool, _ = refl.pool_for_symbol("grpc.health.v1.Health")
            code, resp = dynamic_call(channel, pool, "grpc.health.v1.Health", "Check", {"service": ""})
            expect(code == "OK", code)
            status_enum = pool.FindEnumTypeByName("grpc.health.v1.HealthCheckResponse.ServingStatus")
            expect(
                resp.status == status_enum.values_by_name["SERVING"].number, f"status {resp.status}"
            )
            return True

        res.check(f"{name}: health Check through the reflected descriptor", reflected_health)

        # the tally RPCs, through descriptors obtained only by reflection
        pool = res.check(
            f"{name}: descriptor pool for {own_service} from reflection",
            lambda: refl.pool_for_symbol(own_service)[0],
        )
        if pool is None:
            return
        headers = {
            "none": None,
            "bad": [("authorization", "Bearer not-a-valid-token")],
            "good": [("authorization", f"Bearer {token}")],
        }
        for service, method, auth, allowed in TALLY_CALLS:
            if service != own_service:
                continue

            def call_it(service=service, method=method, auth=auth, allowed=allowed):
                code, _ = dynamic_call(channel, pool, service, method, metadata=headers[auth])
                expect(code in allowed, f"got {code}, want one of {sorted(allowed)}")
                return code

            res.check(f"{name}: {service}/{method} with {auth} token", call_it)
    finally:
        channel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--command", required=True, help="tally-command address")
    ap.add_argument("--query", required=True, help="tally-query address")
    ap.add_argument("--projector", required=True, help="tally-projector address")
    ap.add_argument("--token", required=True, help="a valid bearer token")
    ap.add_argument("--proto-dir", required=True, help="the repo's proto/ folder")
    args = ap.parse_args()

    res = Results()
    workdir = tempfile.mkdtemp(prefix="tally-bb-py.")
    try:
        stubs = res.check("generate reflection/health stubs", lambda: generate_stubs(workdir))
        repo_files = res.check(
            "compile the repo's tally/v1 descriptors", lambda: protoc_descriptors(args.proto_dir, workdir)
        )
        if stubs is not None and repo_files is not None:
            for name, addr, service in (
                ("tally-command", args.command, "tally.v1.CommandService"),
                ("tally-query", args.query, "tally.v1.QueryService"),
                ("tally-projector", args.projector, "tally.v1.SubscriptionService"),
            ):
                check_daemon(res, stubs, name, addr, service, args.token, repo_files)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{res.passed} passed, {res.failed} failed")
    return 0 if res.failed == 0 and res.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
