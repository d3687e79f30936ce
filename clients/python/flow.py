#!/usr/bin/python3
"""The tally example flow from Python: two accounts, a deposit, a transfer that waits for
its saga, read-your-writes, the transfer's events on a subscription, and the error codes.

    /usr/bin/python3 flow.py [--command ADDR] [--query ADDR] [--subscribe ADDR]
                             [--token TOKEN] [--proto-dir DIR] [--gen-dir DIR]

Addresses and token default to TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR and
TALLY_TOKEN (as tallyctl). TALLY_TLS_CA set: TLS to every daemon, verified against that CA
(TALLY_TLS_CERT/TALLY_TLS_KEY: mutual TLS; TALLY_TLS_SERVER_NAME: the certificates' name),
plus one check that a plaintext channel is refused. The stubs are generated into --gen-dir (default: a temporary
directory, removed at exit). Prints one line per check and, last, "N passed, M failed";
exits 1 on any failure.
"""

import argparse
import os
import shutil
import sys
import tempfile
import uuid

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tally_client  # noqa: E402

TRANSFER_TIMEOUT = 20.0  # the saga runs in tally-projector; wait=true blocks until it ends
TRANSFER_EVENTS = ["TransferRequested", "TransferDebited", "TransferCredited",
                   "TransferCompleted"]


class Checks:
    """Runs named checks; one failure never hides the next."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        """fn() returns a value (kept and returned) or raises; None is returned on failure."""
        try:
            value = fn()
        except grpc.RpcError as e:
            self.failed += 1
            print(f"FAIL {name}: {e.code().name}: {e.details()}")
            return None
        except Exception as e:  # an assertion or a bug: report it and go on
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            return None
        self.passed += 1
        print(f"ok   {name}" + (f": {value}" if isinstance(value, str) else ""))
        return value if value is not None else True

    def skip(self, name, why):
        """A check that cannot run because an earlier one failed counts as failed."""
        self.failed += 1
        print(f"FAIL {name}: not run ({why})")


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def pos_key(p):
    return (p.tx_id, p.global_position)


def flow(t, anon, checks):
    pb = t.pb
    run = checks.run

    # ---- two accounts and a deposit ----
    def open_account(owner):
        r = t.command.OpenAccount(pb.OpenAccountRequest(owner=owner, currency="EUR"))
        uuid.UUID(r.account_id)  # canonical UUID text
        expect(r.result.version == 1, f"version {r.result.version}, want 1")
        return r.account_id

    a = run("OpenAccount alice (EUR)", lambda: open_account("alice"))
    b = run("OpenAccount bob (EUR)", lambda: open_account("bob"))
    if not (a and b):
        checks.skip("the rest of the flow", "no accounts")
        return

    def deposit():
        r = t.command.Deposit(pb.DepositRequest(
            account_id=a, amount=t.money(10000, "EUR"), reference="salary",
            idempotency_key=f"deposit-{a}"))
        expect(r.version == 2, f"version {r.version}, want 2")
        expect(r.position.global_position > 0, "no position")
        return r

    dep = run("Deposit 100.00 EUR to alice", deposit)

    # ---- a live subscription to the transfer's flow, open before the transfer ----
    corr = str(uuid.uuid4())  # the transfer's correlation id, chosen by the client
    flow_filter = pb.EventFilter(correlation_id=corr)

    def subscribe_live():
        stream = t.subscription.Subscribe(
            pb.SubscribeRequest(start=pb.SubscribeRequest.START_END, filter=flow_filter),
            timeout=TRANSFER_TIMEOUT + 15)
        try:
            for msg in stream:  # nothing is stored after the end: caught_up comes first
                kind = msg.WhichOneof("message")
                if kind == "caught_up":
                    return stream
                expect(kind != "event", f"an event before caught_up: {msg.event.event_type}")
            raise AssertionError("the stream ended before caught_up")
        except BaseException:
            stream.cancel()
            raise

    live = run("Subscribe from the end by correlation id: caught_up", subscribe_live)

    # ---- a transfer that waits for its saga ----
    def transfer():
        r = t.command.Transfer(
            pb.TransferRequest(source_account_id=a, destination_account_id=b,
                               amount=t.money(3000, "EUR"), reference="rent", wait=True),
            metadata=[("x-correlation-id", corr)], timeout=TRANSFER_TIMEOUT)
        expect(r.status == pb.OPERATION_STATUS_SUCCEEDED,
               f"status {pb.OperationStatus.Name(r.status)} ({r.failure_reason!r})")
        expect(r.result.correlation_id == corr,
               f"correlation id {r.result.correlation_id}, want {corr}")
        uuid.UUID(r.transfer_id)
        return r

    tr = run("Transfer 30.00 EUR alice -> bob, wait=true: SUCCEEDED", transfer)

    # ---- read-your-writes: the balances as of the transfer's position ----
    def balance(account, want_minor, want_version):
        r = t.query.GetAccount(pb.GetAccountRequest(account_id=account,
                                                    min_position=tr.result.position))
        expect(r.balance.currency == "EUR", f"currency {r.balance.currency}")
        expect(r.balance.minor_units == want_minor,
               f"balance {r.balance.minor_units}, want {want_minor}")
        expect(r.version == want_version, f"version {r.version}, want {want_version}")
        return f"{r.balance.minor_units / 100:.2f} EUR"  # display only

    if tr:
        run("GetAccount alice with min_position = transfer's: 70.00 EUR",
            lambda: balance(a, 7000, 3))
        run("GetAccount bob with min_position = transfer's: 30.00 EUR",
            lambda: balance(b, 3000, 2))
    else:
        checks.skip("GetAccount with min_position", "the transfer failed")

    # ---- the transfer's events: live, and again from the start of the log ----
    def transfer_events(stream):
        """The events on stream up to the transfer's outcome, checked; cancels stream."""
        events = []
        try:
            for msg in stream:
                if msg.WhichOneof("message") != "event":
                    continue  # checkpoint, caught_up, heartbeat
                events.append(msg.event)
                if msg.event.event_type in ("TransferCompleted", "TransferFailed"):
                    break
        finally:
            stream.cancel()
        got = [e.event_type for e in events]
        expect(got == TRANSFER_EVENTS, f"events {got}, want {TRANSFER_EVENTS}")
        for e in events:
            expect(e.metadata.correlation_id == corr, f"{e.event_type}: other correlation id")
        keys = [pos_key(e.position) for e in events]
        expect(keys == sorted(keys) and len(set(keys)) == len(keys), "not in log order")
        req_ev, debit, credit, done = events
        expect(req_ev.aggregate_id == tr.transfer_id == done.aggregate_id, "transfer stream")
        expect(debit.aggregate_id == a and debit.transfer_debited.amount.minor_units == 3000,
               "debit is not 30.00 EUR from alice")
        expect(credit.aggregate_id == b and credit.transfer_credited.amount.minor_units == 3000,
               "credit is not 30.00 EUR to bob")
        return events

    def catch_up():
        return transfer_events(t.subscription.Subscribe(
            pb.SubscribeRequest(start=pb.SubscribeRequest.START_BEGINNING, filter=flow_filter),
            timeout=15.0))

    names = ", ".join(TRANSFER_EVENTS)
    events = None
    if tr and live:
        run(f"Subscribe from the end: {names} live", lambda: transfer_events(live))
    elif live:
        live.cancel()
        checks.skip("Subscribe from the end", "the transfer failed")
    if tr:
        events = run(f"Subscribe from the beginning: {names}", catch_up)

        # The balances above are only guaranteed if the token covers the saga's legs.
        def token_covers_outcome():
            done = events[-1].position
            expect(pos_key(tr.result.position) >= pos_key(done),
                   f"position {pos_key(tr.result.position)} is before TransferCompleted's "
                   f"{pos_key(done)}: min_position does not cover the debit and credit")

        if events:
            run("Transfer wait=true: its position covers TransferCompleted (read-your-writes)",
                token_covers_outcome)

        def by_correlation():
            r = t.query.ListEventsByCorrelation(
                pb.ListEventsByCorrelationRequest(correlation_id=corr))
            got = [e.event_type for e in r.events]
            expect(got == TRANSFER_EVENTS, f"events {got}, want {TRANSFER_EVENTS}")
            if events:
                expect([e.event_id for e in r.events] == [e.event_id for e in events],
                       "not the events Subscribe delivered")
            return ", ".join(got)

        run("ListEventsByCorrelation: the same events", by_correlation)
    else:
        checks.skip("Subscribe by correlation id", "the transfer failed")

    # ---- time travel: alice as of version 2 (after the deposit) ----
    def account_at():
        r = t.query.GetAccountAt(pb.GetAccountAtRequest(account_id=a, version=2))
        expect(r.balance.minor_units == 10000, f"balance {r.balance.minor_units}, want 10000")
        expect(r.version == 2, f"version {r.version}")

    if dep:
        run("GetAccountAt alice version 2: 100.00 EUR", account_at)

    # ---- error codes ----
    def status(name, want, call):
        def fn():
            got = tally_client.status_of(call)
            expect(got == want, f"got {got}, want {want}")
        run(name, fn)

    status("Deposit of 0.00 EUR: INVALID_ARGUMENT", "INVALID_ARGUMENT",
           lambda: t.command.Deposit(pb.DepositRequest(account_id=a, amount=t.money(0, "EUR"))))
    status("Deposit of -5.00 EUR: INVALID_ARGUMENT", "INVALID_ARGUMENT",
           lambda: t.command.Deposit(pb.DepositRequest(account_id=a,
                                                       amount=t.money(-500, "EUR"))))
    unknown = str(uuid.uuid4())
    status("Deposit to an unknown account: NOT_FOUND", "NOT_FOUND",
           lambda: t.command.Deposit(pb.DepositRequest(account_id=unknown,
                                                       amount=t.money(100, "EUR"))))
    status("GetAccount of an unknown account: NOT_FOUND", "NOT_FOUND",
           lambda: t.query.GetAccount(pb.GetAccountRequest(account_id=unknown)))
    status("Withdraw 30.01 EUR from bob (30.00): FAILED_PRECONDITION", "FAILED_PRECONDITION",
           lambda: t.command.Withdraw(pb.WithdrawRequest(account_id=b,
                                                         amount=t.money(3001, "EUR"))))

    def transfer_too_much():
        r = t.command.Transfer(
            pb.TransferRequest(source_account_id=b, destination_account_id=a,
                               amount=t.money(1_000_000, "EUR"), wait=True),
            timeout=TRANSFER_TIMEOUT)
        expect(r.status == pb.OPERATION_STATUS_FAILED,
               f"status {pb.OperationStatus.Name(r.status)}, want FAILED")
        expect("insufficient funds" in r.failure_reason, f"reason {r.failure_reason!r}")
        return r.failure_reason

    run("Transfer beyond bob's balance, wait=true: FAILED", transfer_too_much)

    status("OpenAccount without a token: UNAUTHENTICATED", "UNAUTHENTICATED",
           lambda: anon.command.OpenAccount(pb.OpenAccountRequest(owner="eve", currency="EUR")))
    status("GetAccount without a token: UNAUTHENTICATED", "UNAUTHENTICATED",
           lambda: anon.query.GetAccount(pb.GetAccountRequest(account_id=a)))
    status("Subscribe without a token: UNAUTHENTICATED", "UNAUTHENTICATED",
           lambda: list(anon.subscription.Subscribe(pb.SubscribeRequest(), timeout=10.0)))


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--command", default=env("TALLY_ADDR", "127.0.0.1:50051"))
    ap.add_argument("--query", default=env("TALLY_QUERY_ADDR", "127.0.0.1:50052"))
    ap.add_argument("--subscribe", default=env("TALLY_SUBSCRIBE_ADDR", "127.0.0.1:50053"))
    ap.add_argument("--token", default=env("TALLY_TOKEN"))
    ap.add_argument("--proto-dir", default=os.path.join(HERE, "..", "..", "proto"))
    ap.add_argument("--gen-dir", help="where to generate the stubs (default: a temp dir)")
    args = ap.parse_args()
    if not args.token:
        ap.error("no token: pass --token or set TALLY_TOKEN")

    checks = Checks()
    gen = args.gen_dir or tempfile.mkdtemp(prefix="tally-py-")
    try:
        ok = checks.run("generate stubs (protoc --python_out, grpc_tools --grpc_python_out)",
                        lambda: tally_client.generate(args.proto_dir, gen))
        if ok:
            addrs = dict(command=args.command, query=args.query, subscribe=args.subscribe)
            tls = tally_client.TlsConfig.from_env()
            with tally_client.Tally(token=args.token, tls=tls, **addrs) as t, \
                    tally_client.Tally(token=None, tls=tls, **addrs) as anon:
                flow(t, anon, checks)
            if tls:
                with tally_client.Tally(token=args.token, **addrs) as plain:
                    def refused():
                        got = tally_client.status_of(lambda: plain.command.OpenAccount(
                            plain.pb.OpenAccountRequest(owner="eve", currency="EUR")))
                        expect(got == "UNAVAILABLE", f"got {got}, want UNAVAILABLE")
                    checks.run("plaintext channel to the TLS tally-command: UNAVAILABLE",
                               refused)
    finally:
        if not args.gen_dir:
            shutil.rmtree(gen, ignore_errors=True)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
