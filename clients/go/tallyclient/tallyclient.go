// Package tallyclient connects to the three tally daemons over stubs generated from
// proto/tally/v1 (package tallyv1, import path "tally/gen/go/tally/v1"; see build.sh).
//
//	c, err := tallyclient.Dial(tallyclient.Config{
//		CommandAddr: "127.0.0.1:50051", QueryAddr: "127.0.0.1:50052",
//		SubscribeAddr: "127.0.0.1:50053", Token: token})
//	if err != nil { ... }
//	defer c.Close()
//	acc, err := c.Command.OpenAccount(ctx, &tallyv1.OpenAccountRequest{Owner: "alice", Currency: "EUR"})
//	_, err = c.Command.Deposit(ctx, &tallyv1.DepositRequest{
//		AccountId: acc.AccountId, Amount: tallyclient.Money(1234, "EUR")}) // 12.34 EUR
//
// Every call carries `authorization: Bearer TOKEN` (per-RPC credentials). Pass each call a
// context with a deadline. With Config.TLSCA set (FromEnv: TALLY_TLS_CA) the connections
// use TLS and verify the daemons' certificates against that CA; TLSCert and TLSKey add a
// client certificate (mutual TLS).
package tallyclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	tallyv1 "tally/gen/go/tally/v1"
)

// Config says where the daemons listen and how to authenticate.
type Config struct {
	CommandAddr   string // tally-command (CommandService)
	QueryAddr     string // tally-query (QueryService)
	SubscribeAddr string // tally-projector (SubscriptionService)
	Token         string // bearer token from `tally-admin token create`; "" sends none
	// TLS: PEM files. TLSCA "" = plaintext; else the CA the daemons' certificates must
	// chain to. TLSCert and TLSKey (both or neither): a client certificate for mutual
	// TLS. TLSServerName: the name the certificates must carry ("" = the address's host).
	TLSCA, TLSCert, TLSKey, TLSServerName string
}

// FromEnv reads TALLY_ADDR, TALLY_QUERY_ADDR, TALLY_SUBSCRIBE_ADDR, TALLY_TOKEN and
// TALLY_TLS_CA, TALLY_TLS_CERT, TALLY_TLS_KEY, TALLY_TLS_SERVER_NAME (as tallyctl does),
// with the default ports for unset addresses.
func FromEnv() Config {
	get := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	return Config{
		CommandAddr:   get("TALLY_ADDR", "127.0.0.1:50051"),
		QueryAddr:     get("TALLY_QUERY_ADDR", "127.0.0.1:50052"),
		SubscribeAddr: get("TALLY_SUBSCRIBE_ADDR", "127.0.0.1:50053"),
		Token:         os.Getenv("TALLY_TOKEN"),
		TLSCA:         os.Getenv("TALLY_TLS_CA"),
		TLSCert:       os.Getenv("TALLY_TLS_CERT"),
		TLSKey:        os.Getenv("TALLY_TLS_KEY"),
		TLSServerName: os.Getenv("TALLY_TLS_SERVER_NAME"),
	}
}

// transportCredentials: TLS from cfg's files, or nil for plaintext (no TLSCA).
func transportCredentials(cfg Config) (credentials.TransportCredentials, error) {
	if cfg.TLSCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate", cfg.TLSCA)
	}
	conf := &tls.Config{RootCAs: pool, ServerName: cfg.TLSServerName, MinVersion: tls.VersionTLS12}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("TLS: a client certificate needs its key and the reverse")
	}
	if cfg.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(conf), nil
}

// Client holds one connection per daemon and the service stubs. Safe for concurrent use.
type Client struct {
	Command      tallyv1.CommandServiceClient
	Query        tallyv1.QueryServiceClient
	Subscription tallyv1.SubscriptionServiceClient
	conns        []*grpc.ClientConn
}

// bearer sends the token on every call. tally may listen in plaintext on loopback or
// behind a TLS-terminating proxy, so the credentials do not require transport security.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// Dial connects (lazily: the first call waits for the connection) to the three daemons.
func Dial(cfg Config) (*Client, error) {
	c := &Client{}
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if creds != nil {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.Token)))
	}
	for _, addr := range []string{cfg.CommandAddr, cfg.QueryAddr, cfg.SubscribeAddr} {
		conn, err := grpc.Dial(addr, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		c.conns = append(c.conns, conn)
	}
	c.Command = tallyv1.NewCommandServiceClient(c.conns[0])
	c.Query = tallyv1.NewQueryServiceClient(c.conns[1])
	c.Subscription = tallyv1.NewSubscriptionServiceClient(c.conns[2])
	return c, nil
}

// Close closes the connections; the stubs must not be used afterwards.
func (c *Client) Close() error {
	var first error
	for _, conn := range c.conns {
		if err := conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.conns = nil
	return first
}

// Money is an amount in the currency's minor unit (cents for EUR, yen for JPY).
func Money(minorUnits int64, currency string) *tallyv1.Money {
	return &tallyv1.Money{MinorUnits: minorUnits, Currency: currency}
}

// Before reports whether position a comes before b in the global log.
func Before(a, b *tallyv1.Position) bool {
	if a.GetTxId() != b.GetTxId() {
		return a.GetTxId() < b.GetTxId()
	}
	return a.GetGlobalPosition() < b.GetGlobalPosition()
}
