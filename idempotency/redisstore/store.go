package redisstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the Prefix of a Config left at its zero value.
const DefaultPrefix = "bulwark:idempotency:"

// Config configures a [Store]. The zero value gives the documented
// defaults.
type Config struct {
	// Prefix is put before every key in Redis, to keep the store's
	// records apart from other data in the same database, and the records
	// of different applications apart from each other. "" means
	// DefaultPrefix ("bulwark:idempotency:"). On Redis Cluster, leave hash
	// tags ("{...}") out of it: they would put every record in one slot.
	Prefix string

	// Codec encodes results into Redis and decodes them on replay. nil
	// means JSONCodec. Every process sharing a Prefix must use the same
	// codec.
	Codec Codec
}

// Store is an [idempotency.Store] kept in Redis, for Managers in several
// processes that must share keys. Each operation is one Lua script that
// Redis runs atomically on the key's record (a hash): a claim succeeds
// only where no live record exists, and only the claim's owner can
// extend, complete or release it. Leases and TTLs are Redis
// key expiries, so they run on the Redis server's clock: the clocks of the
// processes do not matter. Completed records vanish after their TTL
// without any sweeping.
//
// Results are encoded with the Config's Codec: a replay hands back the
// encoded bytes with the codec's decoder (Record.Data and Record.Decode),
// and a stored error comes back as an error with its message. Expires of a
// returned record is this process's time of the call plus what Redis
// reported left of the lease or TTL (exact to the call's round trip).
//
// A Redis failure is returned as an error starting with "redisstore:"
// that wraps go-redis's error; the Manager then fails closed at a claim
// (idempotency.ErrStore: the operation does not run) and reports a
// failure to record a result (idempotency.ErrNotRecorded). Each call is
// bounded by its context and by the client's timeouts.
//
// A Store is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	codec  Codec
	decode func(data []byte, v any) error // codec.Unmarshal, made once
	owned  bool                           // Close closes client
	renew  renewal                        // ExtendMany's own connection
}

// New returns a Store that keeps its records through client, which may
// be a *redis.Client, a *redis.ClusterClient, a failover client or a
// *redis.Ring. The client stays the caller's: [Store.Close] does not
// close it. New does not contact Redis. It returns an error if client is
// nil.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New: nil client")
	}
	if v := reflect.ValueOf(client); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("redisstore: New: nil client (%T)", client)
	}
	s := &Store{client: client, prefix: cfg.Prefix, codec: cfg.Codec}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.codec == nil {
		s.codec = JSONCodec{}
	}
	s.decode = s.codec.Unmarshal
	return s, nil
}

// Dial connects to the Redis server at addr and returns a Store over a
// client of its own, which [Store.Close] closes. addr is host:port, or a
// URL as go-redis's ParseURL reads it (redis://user:password@host:port/db,
// rediss:// for TLS, options as query parameters). Dial pings the server
// within ctx and returns an error if it does not answer; the client
// otherwise has go-redis's default pool and timeouts (3s reads and
// writes, 5s dials). For other settings, make the client and use [New].
func Dial(ctx context.Context, addr string, cfg Config) (*Store, error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			return nil, fmt.Errorf("redisstore: Dial: %w", err)
		}
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		// opts.Addr, not addr: a URL may hold a password.
		return nil, fmt.Errorf("redisstore: Dial %s: %w", opts.Addr, err)
	}
	s, err := New(client, cfg)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Close closes the client if the store made it ([Dial]); a client given
// to [New] is left open. It also closes the connection [Store.ExtendMany]
// made for itself, if any. The store must not be used after Close.
func (s *Store) Close() error {
	err := s.renew.close()
	if !s.owned {
		return err
	}
	return errors.Join(s.client.Close(), err)
}

// Claim implements [idempotency.Store.Claim]. It returns an error if
// lease is not positive, or if Redis fails. A claim whose answer was lost
// (its context ended, or the connection broke, after Redis ran it) holds
// the key until its lease runs out; nobody can complete or release it.
func (s *Store) Claim(ctx context.Context, key, owner, fingerprint string, lease time.Duration) (idempotency.Record, bool, error) {
	if lease <= 0 {
		return idempotency.Record{}, false, fmt.Errorf("redisstore: Claim: lease must be positive, got %v", lease)
	}
	lease = roundUp(lease)
	start := time.Now()
	reply, err := claimScript.Run(ctx, s.client, []string{s.prefix + key}, owner, fingerprint, lease.Milliseconds()).Slice()
	if err != nil {
		return idempotency.Record{}, false, failed("claim", key, err)
	}
	if len(reply) == 0 {
		return idempotency.Record{State: idempotency.InProgress, Owner: owner, Fingerprint: fingerprint, Expires: start.Add(lease)}, true, nil
	}
	rec, err := s.record(reply, start)
	if err != nil {
		return idempotency.Record{}, false, failed("claim", key, err)
	}
	return rec, false, nil
}

// Extend implements [idempotency.Store.Extend]. It returns an error if
// lease is not positive, or if Redis fails.
func (s *Store) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("redisstore: Extend: lease must be positive, got %v", lease)
	}
	code, err := extendScript.Run(ctx, s.client, []string{s.prefix + key}, owner, roundUp(lease).Milliseconds()).Int64()
	return s.settle("extend", key, code, err)
}

// Complete implements [idempotency.Store.Complete]. A value is encoded
// with the store's Codec, an error kept as its message. It returns an
// error, changing nothing, if ttl is not positive or the value does not
// encode (marked [idempotency.Permanent], so that it is not retried); and
// an error if Redis fails.
func (s *Store) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: Complete: ttl must be positive, got %v", ttl)
	}
	field, payload := "error", ""
	if out.Err != nil {
		payload = out.Err.Error()
	} else {
		data, err := s.codec.Marshal(out.Value)
		if err != nil {
			// Permanent: the Manager does not retry a write that cannot succeed.
			return idempotency.Permanent(fmt.Errorf("redisstore: complete %q: encode %T: %w", key, out.Value, err))
		}
		field, payload = "value", string(data)
	}
	code, err := completeScript.Run(ctx, s.client, []string{s.prefix + key}, owner, roundUp(ttl).Milliseconds(), field, payload).Int64()
	return s.settle("complete", key, code, err)
}

// Release implements [idempotency.Store.Release]. It returns an error if
// Redis fails.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	code, err := releaseScript.Run(ctx, s.client, []string{s.prefix + key}, owner).Int64()
	return s.settle("release", key, code, err)
}

// Forget implements [idempotency.Store.Forget]: it deletes key's record
// if it is completed, atomically. It returns an error if Redis fails.
func (s *Store) Forget(ctx context.Context, key string) (bool, error) {
	n, err := forgetScript.Run(ctx, s.client, []string{s.prefix + key}).Int64()
	if err != nil {
		return false, failed("forget", key, err)
	}
	return n == 1, nil
}

// Get implements [idempotency.Store.Get]. It returns an error if Redis
// fails.
func (s *Store) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	start := time.Now()
	reply, err := getScript.Run(ctx, s.client, []string{s.prefix + key}).Slice()
	if err != nil {
		return idempotency.Record{}, false, failed("get", key, err)
	}
	if len(reply) == 0 {
		return idempotency.Record{}, false, nil
	}
	rec, err := s.record(reply, start)
	if err != nil {
		return idempotency.Record{}, false, failed("get", key, err)
	}
	return rec, true, nil
}

// record reads a record from a script's reply: {state, owner,
// fingerprint, kind, payload, pttl} (see read in record.lua). start is
// when the call began, for Expires.
func (s *Store) record(reply []any, start time.Time) (idempotency.Record, error) {
	if len(reply) != 6 {
		return idempotency.Record{}, fmt.Errorf("unexpected reply %v", reply)
	}
	state, _ := reply[0].(string)
	owner, _ := reply[1].(string)
	fingerprint, _ := reply[2].(string)
	kind, _ := reply[3].(string)
	payload, _ := reply[4].(string)
	pttl, _ := reply[5].(int64)
	rec := idempotency.Record{Owner: owner, Fingerprint: fingerprint}
	if pttl > 0 { // -1: the key has no expiry (someone removed it)
		rec.Expires = start.Add(time.Duration(pttl) * time.Millisecond)
	}
	switch state {
	case stateInProgress:
		rec.State = idempotency.InProgress
	case stateCompleted:
		rec.State = idempotency.Completed
		if kind == "e" {
			rec.Err = errors.New(payload)
		} else {
			rec.Data = []byte(payload)
			rec.Decode = s.decode
		}
	default:
		return idempotency.Record{}, fmt.Errorf("record in unknown state %q", state)
	}
	return rec, nil
}

// settle turns the answer of an extend, complete or release script into
// the operation's error.
func (s *Store) settle(op, key string, code int64, err error) error {
	if err != nil {
		return failed(op, key, err)
	}
	var why string
	switch code {
	case heldByOwner:
		return nil
	case heldNone:
		why = "no live claim (its lease ran out, or it was released)"
	case heldOther:
		why = "another owner holds the claim"
	case heldDone:
		why = "already completed"
	default:
		return failed(op, key, fmt.Errorf("unexpected reply %d", code))
	}
	return fmt.Errorf("redisstore: %s %q: %w: %s", op, key, idempotency.ErrLeaseLost, why)
}

// failed names the store, the operation and the key in a Redis error.
func failed(op, key string, err error) error {
	return fmt.Errorf("redisstore: %s %q: %w", op, key, err)
}

// roundUp rounds d up to whole milliseconds, the precision of Redis
// expiries, so that a lease is never shorter than asked.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
