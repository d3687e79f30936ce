// Command tally-flow is the tally example flow in Go: two accounts, a deposit, a transfer
// that waits for its saga, read-your-writes, the transfer's events on a subscription, and
// the error codes.
//
//	tally-flow [-command ADDR] [-query ADDR] [-subscribe ADDR] [-token TOKEN]
//
// Defaults come from TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR and TALLY_TOKEN.
// Prints one line per check and, last, "N passed, M failed"; exits 1 on any failure.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"tally/clients/go/tallyclient"
	tallyv1 "tally/gen/go/tally/v1"
)

const (
	callTimeout     = 10 * time.Second
	transferTimeout = 20 * time.Second // the saga runs in tally-projector
)

var (
	transferEvents = []string{"TransferRequested", "TransferDebited", "TransferCredited",
		"TransferCompleted"}
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// checks counts named checks; one failure never hides the next.
type checks struct{ passed, failed int }

// run runs fn and prints "ok NAME[: detail]" or "FAIL NAME: why". It reports success.
func (c *checks) run(name string, fn func() (string, error)) bool {
	detail, err := protect(fn)
	if err != nil {
		c.failed++
		if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
			fmt.Printf("FAIL %s: %s: %s\n", name, codeName(s.Code()), s.Message())
		} else {
			fmt.Printf("FAIL %s: %v\n", name, err)
		}
		return false
	}
	c.passed++
	if detail != "" {
		fmt.Printf("ok   %s: %s\n", name, detail)
	} else {
		fmt.Printf("ok   %s\n", name)
	}
	return true
}

// protect runs fn, turning a panic into an error: a bug fails its check, not the run.
func protect(fn func() (string, error)) (detail string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

func (c *checks) skip(name, why string) {
	c.failed++
	fmt.Printf("FAIL %s: not run (%s)\n", name, why)
}

// codeName spells a status code as the gRPC spec does: INVALID_ARGUMENT.
func codeName(c codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return c.String()
}

func fail(format string, args ...interface{}) error { return fmt.Errorf(format, args...) }

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func flow(t, anon *tallyclient.Client, c *checks) {
	var a, b string

	// ---- two accounts and a deposit ----
	open := func(owner string, id *string) func() (string, error) {
		return func() (string, error) {
			ctx, cancel := timeout(callTimeout)
			defer cancel()
			r, err := t.Command.OpenAccount(ctx, &tallyv1.OpenAccountRequest{Owner: owner, Currency: "EUR"})
			if err != nil {
				return "", err
			}
			if !uuidRE.MatchString(r.GetAccountId()) {
				return "", fail("account id %q", r.GetAccountId())
			}
			if r.GetResult().GetVersion() != 1 {
				return "", fail("version %d, want 1", r.GetResult().GetVersion())
			}
			*id = r.GetAccountId()
			return *id, nil
		}
	}
	okA := c.run("OpenAccount alice (EUR)", open("alice", &a))
	okB := c.run("OpenAccount bob (EUR)", open("bob", &b))
	if !okA || !okB {
		c.skip("the rest of the flow", "no accounts")
		return
	}
	deposited := c.run("Deposit 100.00 EUR to alice", func() (string, error) {
		ctx, cancel := timeout(callTimeout)
		defer cancel()
		r, err := t.Command.Deposit(ctx, &tallyv1.DepositRequest{
			AccountId: a, Amount: tallyclient.Money(10000, "EUR"), Reference: "salary",
			IdempotencyKey: "deposit-" + a})
		if err != nil {
			return "", err
		}
		if r.GetVersion() != 2 {
			return "", fail("version %d, want 2", r.GetVersion())
		}
		if r.GetPosition().GetGlobalPosition() <= 0 {
			return "", fail("no position")
		}
		return "", nil
	})

	// ---- a live subscription to the transfer's flow, open before the transfer ----
	corr := newUUID() // the transfer's correlation id, chosen by the client
	flowFilter := &tallyv1.EventFilter{CorrelationId: corr}
	liveCtx, liveCancel := timeout(transferTimeout + 15*time.Second)
	defer liveCancel() // ends the stream
	var live tallyv1.SubscriptionService_SubscribeClient
	c.run("Subscribe from the end by correlation id: caught_up", func() (string, error) {
		stream, err := t.Subscription.Subscribe(liveCtx, &tallyv1.SubscribeRequest{
			Start: tallyv1.SubscribeRequest_START_END, Filter: flowFilter})
		if err != nil {
			return "", err
		}
		for { // nothing is stored after the end: caught_up comes first
			msg, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = fail("the stream ended before caught_up")
				}
				return "", err
			}
			if msg.GetCaughtUp() != nil {
				live = stream
				return "", nil
			}
			if ev := msg.GetEvent(); ev != nil {
				return "", fail("an event before caught_up: %s", ev.GetEventType())
			}
		}
	})

	// ---- a transfer that waits for its saga ----
	var tr *tallyv1.TransferResponse
	transferred := c.run("Transfer 30.00 EUR alice -> bob, wait=true: SUCCEEDED", func() (string, error) {
		ctx, cancel := timeout(transferTimeout)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-correlation-id", corr)
		r, err := t.Command.Transfer(ctx, &tallyv1.TransferRequest{
			SourceAccountId: a, DestinationAccountId: b, Amount: tallyclient.Money(3000, "EUR"),
			Reference: "rent", Wait: true})
		if err != nil {
			return "", err
		}
		if r.GetStatus() != tallyv1.OperationStatus_OPERATION_STATUS_SUCCEEDED {
			return "", fail("status %v (%q)", r.GetStatus(), r.GetFailureReason())
		}
		if r.GetResult().GetCorrelationId() != corr {
			return "", fail("correlation id %s, want %s", r.GetResult().GetCorrelationId(), corr)
		}
		if !uuidRE.MatchString(r.GetTransferId()) {
			return "", fail("transfer id %q", r.GetTransferId())
		}
		tr = r
		return "", nil
	})

	// ---- read-your-writes: the balances as of the transfer's position ----
	balance := func(account string, wantMinor, wantVersion int64) func() (string, error) {
		return func() (string, error) {
			ctx, cancel := timeout(callTimeout)
			defer cancel()
			r, err := t.Query.GetAccount(ctx, &tallyv1.GetAccountRequest{
				AccountId: account, MinPosition: tr.GetResult().GetPosition()})
			if err != nil {
				return "", err
			}
			if r.GetBalance().GetCurrency() != "EUR" || r.GetBalance().GetMinorUnits() != wantMinor {
				return "", fail("balance %v, want %d EUR", r.GetBalance(), wantMinor)
			}
			if r.GetVersion() != wantVersion {
				return "", fail("version %d, want %d", r.GetVersion(), wantVersion)
			}
			return "", nil
		}
	}
	if transferred {
		c.run("GetAccount alice with min_position = transfer's: 70.00 EUR", balance(a, 7000, 3))
		c.run("GetAccount bob with min_position = transfer's: 30.00 EUR", balance(b, 3000, 2))
	} else {
		c.skip("GetAccount with min_position", "the transfer failed")
	}

	// ---- the transfer's events: live, and again from the start of the log ----
	// transferEventsOn reads the events on stream up to the transfer's outcome and checks them.
	transferEventsOn := func(stream tallyv1.SubscriptionService_SubscribeClient) ([]*tallyv1.Event, error) {
		var events []*tallyv1.Event
		for {
			msg, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = fail("the stream ended after %d events", len(events))
				}
				return nil, err
			}
			ev := msg.GetEvent()
			if ev == nil {
				continue // checkpoint, caught_up, heartbeat
			}
			events = append(events, ev)
			if ev.GetEventType() == "TransferCompleted" || ev.GetEventType() == "TransferFailed" {
				break
			}
		}
		var got []string
		for i, ev := range events {
			got = append(got, ev.GetEventType())
			if ev.GetMetadata().GetCorrelationId() != corr {
				return nil, fail("%s: other correlation id", ev.GetEventType())
			}
			if i > 0 && !tallyclient.Before(events[i-1].GetPosition(), ev.GetPosition()) {
				return nil, fail("not in log order")
			}
		}
		if !reflect.DeepEqual(got, transferEvents) {
			return nil, fail("events %v, want %v", got, transferEvents)
		}
		req, debit, credit, done := events[0], events[1], events[2], events[3]
		if req.GetAggregateId() != tr.GetTransferId() || done.GetAggregateId() != tr.GetTransferId() {
			return nil, fail("transfer stream")
		}
		if debit.GetAggregateId() != a || debit.GetTransferDebited().GetAmount().GetMinorUnits() != 3000 {
			return nil, fail("debit is not 30.00 EUR from alice")
		}
		if credit.GetAggregateId() != b || credit.GetTransferCredited().GetAmount().GetMinorUnits() != 3000 {
			return nil, fail("credit is not 30.00 EUR to bob")
		}
		return events, nil
	}
	names := strings.Join(transferEvents, ", ")
	if transferred && live != nil {
		c.run("Subscribe from the end: "+names+" live", func() (string, error) {
			defer liveCancel()
			_, err := transferEventsOn(live)
			return "", err
		})
	} else if live != nil {
		liveCancel()
		c.skip("Subscribe from the end", "the transfer failed")
	}
	if transferred {
		var events []*tallyv1.Event
		subscribed := c.run("Subscribe from the beginning: "+names, func() (string, error) {
			ctx, cancel := timeout(15 * time.Second)
			defer cancel() // ends the stream
			stream, err := t.Subscription.Subscribe(ctx, &tallyv1.SubscribeRequest{
				Start: tallyv1.SubscribeRequest_START_BEGINNING, Filter: flowFilter})
			if err != nil {
				return "", err
			}
			events, err = transferEventsOn(stream)
			return "", err
		})
		// The balances above are only guaranteed if the token covers the saga's legs.
		if subscribed {
			c.run("Transfer wait=true: its position covers TransferCompleted (read-your-writes)", func() (string, error) {
				done := events[len(events)-1].GetPosition()
				if tallyclient.Before(tr.GetResult().GetPosition(), done) {
					p := tr.GetResult().GetPosition()
					return "", fail("position (%d, %d) is before TransferCompleted's (%d, %d): min_position does not cover the debit and credit",
						p.GetTxId(), p.GetGlobalPosition(), done.GetTxId(), done.GetGlobalPosition())
				}
				return "", nil
			})
		}
		c.run("ListEventsByCorrelation: the same events", func() (string, error) {
			ctx, cancel := timeout(callTimeout)
			defer cancel()
			r, err := t.Query.ListEventsByCorrelation(ctx, &tallyv1.ListEventsByCorrelationRequest{CorrelationId: corr})
			if err != nil {
				return "", err
			}
			var got []string
			for i, ev := range r.GetEvents() {
				got = append(got, ev.GetEventType())
				if subscribed && i < len(events) && ev.GetEventId() != events[i].GetEventId() {
					return "", fail("not the events Subscribe delivered")
				}
			}
			if !reflect.DeepEqual(got, transferEvents) {
				return "", fail("events %v, want %v", got, transferEvents)
			}
			return strings.Join(got, ", "), nil
		})
	} else {
		c.skip("Subscribe by correlation id", "the transfer failed")
	}

	// ---- time travel: alice as of version 2 (after the deposit) ----
	if deposited {
		c.run("GetAccountAt alice version 2: 100.00 EUR", func() (string, error) {
			ctx, cancel := timeout(callTimeout)
			defer cancel()
			r, err := t.Query.GetAccountAt(ctx, &tallyv1.GetAccountAtRequest{
				AccountId: a, At: &tallyv1.GetAccountAtRequest_Version{Version: 2}})
			if err != nil {
				return "", err
			}
			if r.GetBalance().GetMinorUnits() != 10000 || r.GetVersion() != 2 {
				return "", fail("balance %d at version %d, want 10000 at 2",
					r.GetBalance().GetMinorUnits(), r.GetVersion())
			}
			return "", nil
		})
	}

	// ---- error codes ----
	expectCode := func(name string, want codes.Code, call func(ctx context.Context) error) {
		c.run(name, func() (string, error) {
			ctx, cancel := timeout(callTimeout)
			defer cancel()
			if got := status.Code(call(ctx)); got != want {
				return "", fail("got %s, want %s", codeName(got), codeName(want))
			}
			return "", nil
		})
	}
	unknown := newUUID()
	expectCode("Deposit of 0.00 EUR: INVALID_ARGUMENT", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := t.Command.Deposit(ctx, &tallyv1.DepositRequest{AccountId: a, Amount: tallyclient.Money(0, "EUR")})
		return err
	})
	expectCode("Deposit of -5.00 EUR: INVALID_ARGUMENT", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := t.Command.Deposit(ctx, &tallyv1.DepositRequest{AccountId: a, Amount: tallyclient.Money(-500, "EUR")})
		return err
	})
	expectCode("Deposit to an unknown account: NOT_FOUND", codes.NotFound, func(ctx context.Context) error {
		_, err := t.Command.Deposit(ctx, &tallyv1.DepositRequest{AccountId: unknown, Amount: tallyclient.Money(100, "EUR")})
		return err
	})
	expectCode("GetAccount of an unknown account: NOT_FOUND", codes.NotFound, func(ctx context.Context) error {
		_, err := t.Query.GetAccount(ctx, &tallyv1.GetAccountRequest{AccountId: unknown})
		return err
	})
	expectCode("Withdraw 30.01 EUR from bob (30.00): FAILED_PRECONDITION", codes.FailedPrecondition, func(ctx context.Context) error {
		_, err := t.Command.Withdraw(ctx, &tallyv1.WithdrawRequest{AccountId: b, Amount: tallyclient.Money(3001, "EUR")})
		return err
	})
	c.run("Transfer beyond bob's balance, wait=true: FAILED", func() (string, error) {
		ctx, cancel := timeout(transferTimeout)
		defer cancel()
		r, err := t.Command.Transfer(ctx, &tallyv1.TransferRequest{
			SourceAccountId: b, DestinationAccountId: a, Amount: tallyclient.Money(1000000, "EUR"), Wait: true})
		if err != nil {
			return "", err
		}
		if r.GetStatus() != tallyv1.OperationStatus_OPERATION_STATUS_FAILED {
			return "", fail("status %v, want FAILED", r.GetStatus())
		}
		if !strings.Contains(r.GetFailureReason(), "insufficient funds") {
			return "", fail("reason %q", r.GetFailureReason())
		}
		return r.GetFailureReason(), nil
	})
	expectCode("OpenAccount without a token: UNAUTHENTICATED", codes.Unauthenticated, func(ctx context.Context) error {
		_, err := anon.Command.OpenAccount(ctx, &tallyv1.OpenAccountRequest{Owner: "eve", Currency: "EUR"})
		return err
	})
	expectCode("GetAccount without a token: UNAUTHENTICATED", codes.Unauthenticated, func(ctx context.Context) error {
		_, err := anon.Query.GetAccount(ctx, &tallyv1.GetAccountRequest{AccountId: a})
		return err
	})
	expectCode("Subscribe without a token: UNAUTHENTICATED", codes.Unauthenticated, func(ctx context.Context) error {
		stream, err := anon.Subscription.Subscribe(ctx, &tallyv1.SubscribeRequest{})
		if err != nil {
			return err
		}
		for {
			if _, err := stream.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	})
}

func main() { os.Exit(run()) }

// run returns the exit status; the deferred Close calls run before os.Exit.
func run() int {
	cfg := tallyclient.FromEnv()
	flag.StringVar(&cfg.CommandAddr, "command", cfg.CommandAddr, "tally-command address")
	flag.StringVar(&cfg.QueryAddr, "query", cfg.QueryAddr, "tally-query address")
	flag.StringVar(&cfg.SubscribeAddr, "subscribe", cfg.SubscribeAddr, "tally-projector address")
	flag.StringVar(&cfg.Token, "token", cfg.Token, "bearer token")
	flag.Parse()
	if cfg.Token == "" {
		fmt.Fprintln(os.Stderr, "tally-flow: no token: pass -token or set TALLY_TOKEN")
		return 2
	}

	c := &checks{}
	defer func() { fmt.Printf("%d passed, %d failed\n", c.passed, c.failed) }()
	t, err := tallyclient.Dial(cfg)
	if err != nil {
		c.run("dial", func() (string, error) { return "", err })
		return 1
	}
	defer t.Close()
	noToken := cfg
	noToken.Token = ""
	anon, err := tallyclient.Dial(noToken)
	if err != nil {
		c.run("dial without a token", func() (string, error) { return "", err })
		return 1
	}
	defer anon.Close()
	flow(t, anon, c)
	if c.failed > 0 || c.passed == 0 {
		return 1
	}
	return 0
}
