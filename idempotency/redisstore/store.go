package redisstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/internal/sat"
	"github.com/redis/go-redis/v9"
)

// ErrInvalid is wrapped by the error of a function or method given nil or
// invalid input: a nil client, an unparsable address, a lease or TTL that
// is not positive, a nil *Store. The call changed nothing. It wraps
// idempotency.ErrInvalid, so either sentinel matches.
var ErrInvalid error = &invalidError{}

type invalidError struct{}

func (*invalidError) Error() string { return "redisstore: invalid input" }
func (*invalidError) Unwrap() error { return idempotency.ErrInvalid }

var errNilStore = invalid(nil, "redisstore: nil *Store")

// inputError is an error of invalid input: its own message, wrapping
// ErrInvalid and the cause, if any.
type inputError struct {
	msg   string
	cause error
}

func (e *inputError) Error() string { return e.msg }
func (e *inputError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.cause}
}

// invalid returns an inputError with the formatted message (followed by
// ": " and the cause's, if there is a cause).
func invalid(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &inputError{msg: msg, cause: cause}
}

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
	// codec, and the same result types: a replay checks the stored value's
	// Go type by package path and name, so a type moved to another package
	// is another type (ErrDecode).
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
// Leases and TTLs are rounded up to whole milliseconds and saturate: one
// of math.MaxInt64 (the usual "forever") becomes the longest expiry, about
// 292 years, rather than wrapping around to a negative expiry, which
// would delete the record. Every record this package writes has an
// expiry. An in-progress record that has none (an operator's PERSIST,
// another program's write) gets the lease of the next claim that meets
// it, so it blocks its key for one lease at most; a completed record
// without an expiry is replayed until someone forgets it.
//
// Next to each value, a record keeps the Go type it was encoded from (a
// "type" field): a replay into another type is an error wrapping
// idempotency.ErrDecode, whatever the codec, unless the caller's result
// type is an interface. Records written before the field existed are
// decoded without the check (the default codec is strict: see
// [JSONCodec]). A record this package cannot read (a hash in an unknown
// state, a completed one with neither value nor error) is an error; the
// Manager reports it wrapping idempotency.ErrStore. A stored error whose
// message was empty comes back as "idempotency: stored error with no
// message".
//
// A Redis failure is returned as an error starting with "redisstore:"
// that wraps go-redis's error; the Manager then fails closed at a claim
// (idempotency.ErrStore: the operation does not run) and reports a
// failure to record a result (idempotency.ErrNotRecorded). Each call is
// bounded by its context and by the client's timeouts.
//
// A Store is safe for concurrent use. Its methods on a nil *Store return
// an error wrapping [ErrInvalid].
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
// close it. New does not contact Redis. It returns an error wrapping
// [ErrInvalid] if client is nil.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, invalid(nil, "redisstore: New: nil client")
	}
	if v := reflect.ValueOf(client); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, invalid(nil, "redisstore: New: nil client (%T)", client)
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
// An addr that does not parse is an error wrapping [ErrInvalid].
func Dial(ctx context.Context, addr string, cfg Config) (*Store, error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			return nil, invalid(err, "redisstore: Dial")
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
	if s == nil {
		return nil
	}
	err := s.renew.close()
	if !s.owned {
		return err
	}
	return errors.Join(s.client.Close(), err)
}

// Claim implements [idempotency.Store.Claim]. It returns an error
// wrapping [ErrInvalid] if lease is not positive, and an error if Redis
// fails. A claim whose answer was lost
// (its context ended, or the connection broke, after Redis ran it) holds
// the key until its lease runs out; nobody can complete or release it.
func (s *Store) Claim(ctx context.Context, key, owner, fingerprint string, lease time.Duration) (idempotency.Record, bool, error) {
	if s == nil {
		return idempotency.Record{}, false, errNilStore
	}
	if lease <= 0 {
		return idempotency.Record{}, false, invalid(nil, "redisstore: Claim: lease must be positive, got %v", lease)
	}
	ms := millis(lease)
	start := time.Now()
	rk := s.prefix + key
	reply, err := claimScript.Run(ctx, s.client, []string{rk, genKey(rk)}, owner, fingerprint, ms).Slice()
	if err != nil {
		return idempotency.Record{}, false, failed("claim", key, err)
	}
	if len(reply) == 1 {
		gen, err := generation(reply[0])
		if err != nil {
			return idempotency.Record{}, false, failed("claim", key, err)
		}
		return idempotency.Record{State: idempotency.InProgress, Owner: owner, Fingerprint: fingerprint, Generation: gen, Expires: start.Add(fromMillis(ms))}, true, nil
	}
	rec, err := s.record(reply, start)
	if err != nil {
		return idempotency.Record{}, false, failed("claim", key, err)
	}
	return rec, false, nil
}

// Extend implements [idempotency.Store.Extend]. It returns an error
// wrapping [ErrInvalid] if lease is not positive, and an error if Redis
// fails.
func (s *Store) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if s == nil {
		return errNilStore
	}
	if lease <= 0 {
		return invalid(nil, "redisstore: Extend: lease must be positive, got %v", lease)
	}
	code, err := extendScript.Run(ctx, s.client, []string{s.prefix + key}, owner, millis(lease)).Int64()
	return s.settle("extend", key, code, err)
}

// Complete implements [idempotency.Store.Complete]. A value is encoded
// with the store's Codec, an error kept as its message. It returns an
// error, changing nothing, if ttl is not positive ([ErrInvalid]) or the
// value does not encode (marked [idempotency.Permanent], so that it is not
// retried); and an error if Redis fails. If the codec panics, Complete
// releases the claim and panics again with the codec's panic value: the
// panic reaches the caller, and the key is free for a retry.
func (s *Store) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	if s == nil {
		return errNilStore
	}
	if ttl <= 0 {
		return invalid(nil, "redisstore: Complete: ttl must be positive, got %v", ttl)
	}
	field, payload, typ, err := s.encode(ctx, key, owner, out)
	if err != nil {
		// Permanent: the Manager does not retry a write that cannot succeed.
		return idempotency.Permanent(fmt.Errorf("redisstore: complete %q: encode %T: %w", key, out.Value, err))
	}
	code, err := completeScript.Run(ctx, s.client, []string{s.prefix + key}, owner, millis(ttl), field, payload, typ).Int64()
	return s.settle("complete", key, code, err)
}

// encode returns the field ("value" or "error"), the payload and the type
// of a value that out is stored as: a value encoded with the codec, or an
// error's message. If the codec (or the error's Error method) panics, it
// releases owner's claim on key, so that the key is not held until the
// lease runs out (forever, with an endless lease) by an operation whose
// result cannot be recorded, and panics again with the same value.
func (s *Store) encode(ctx context.Context, key, owner string, out idempotency.Outcome) (field, payload, typ string, err error) {
	done := false
	defer func() {
		if done {
			return
		}
		p := recover()                                        // nil if the codec called runtime.Goexit, which goes on
		_ = s.Release(context.WithoutCancel(ctx), key, owner) // best effort: else the lease runs out
		if p != nil {
			panic(p)
		}
	}()
	if out.Err != nil {
		payload = out.Err.Error()
		done = true
		return "error", payload, "", nil
	}
	data, err := s.codec.Marshal(out.Value)
	done = true
	typ = nilType // nil: no type to name, but not an unknown one
	if out.Value != nil {
		typ = typeName(reflect.TypeOf(out.Value))
	}
	return "value", string(data), typ, err
}

// nilType is the "type" of a nil value (the nil of an interface type):
// it decodes only into an interface type. No typeName is "nil" (a type
// named nil has a package path).
const nilType = "nil"

// Release implements [idempotency.Store.Release]. It returns an error if
// Redis fails.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if s == nil {
		return errNilStore
	}
	code, err := releaseScript.Run(ctx, s.client, []string{s.prefix + key}, owner).Int64()
	return s.settle("release", key, code, err)
}

// Forget implements [idempotency.Store.Forget]: it deletes key's record
// if it is completed, atomically. It returns an error if Redis fails.
func (s *Store) Forget(ctx context.Context, key string) (bool, error) {
	if s == nil {
		return false, errNilStore
	}
	rk := s.prefix + key
	n, err := forgetScript.Run(ctx, s.client, []string{rk, genKey(rk)}).Int64()
	if err != nil {
		return false, failed("forget", key, err)
	}
	return n == 1, nil
}

// Get implements [idempotency.Store.Get]. It returns an error if Redis
// fails.
func (s *Store) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	if s == nil {
		return idempotency.Record{}, false, errNilStore
	}
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
// fingerprint, kind, payload, pttl, type, gen} (see read in record.lua). start
// is when the call began, for Expires. A reply that is not a record (a
// hash someone else wrote, a record in an unknown state, a completed one
// holding neither a value nor an error) is an error.
func (s *Store) record(reply []any, start time.Time) (idempotency.Record, error) {
	if len(reply) != 8 {
		return idempotency.Record{}, fmt.Errorf("unexpected reply %v", reply)
	}
	var f [8]string // f[5] stays empty: pttl is a number
	for i, v := range reply {
		if i == 5 {
			continue
		}
		var ok bool
		if f[i], ok = v.(string); !ok {
			return idempotency.Record{}, fmt.Errorf("unexpected reply %v", reply)
		}
	}
	pttl, ok := reply[5].(int64)
	if !ok {
		return idempotency.Record{}, fmt.Errorf("unexpected reply %v", reply)
	}
	state, owner, fingerprint, kind, payload, typ := f[0], f[1], f[2], f[3], f[4], f[6]
	gen, err := generation(f[7])
	if err != nil {
		return idempotency.Record{}, err
	}
	rec := idempotency.Record{Owner: owner, Fingerprint: fingerprint, Generation: gen}
	if pttl > 0 { // -1: the key has no expiry (someone removed it)
		rec.Expires = start.Add(fromMillis(pttl))
	}
	switch state {
	case stateInProgress:
		rec.State = idempotency.InProgress
	case stateCompleted:
		rec.State = idempotency.Completed
		switch kind {
		case "e":
			if payload == "" {
				payload = noMessage
			}
			rec.Err = errors.New(payload)
		case "v":
			rec.Data = []byte(payload)
			rec.Decode = s.decoder(typ)
		default:
			return idempotency.Record{}, errors.New("completed record holds neither a value nor an error")
		}
	default:
		return idempotency.Record{}, fmt.Errorf("record in unknown state %q", state)
	}
	return rec, nil
}

// noMessage stands in for the message of a stored error that had none, so
// that its replay still says something.
const noMessage = "idempotency: stored error with no message"

// decoder returns the Decode of a value stored as a typ ("" if unknown:
// an older version stored it): the codec's Unmarshal, after checking that
// the caller's type is typ. A caller whose result type is an interface
// gets what the codec decodes into it. A nil value (typ nilType) decodes
// as nil into an interface type and is an error for any other type,
// whatever the codec would make of its encoding (JSON null leaves an int
// at 0).
func (s *Store) decoder(typ string) func(data []byte, v any) error {
	switch typ {
	case "":
		return s.decode
	case nilType:
		return decodeNil
	}
	return func(data []byte, v any) error {
		if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() != reflect.Interface {
			if want := typeName(t.Elem()); want != typ {
				return fmt.Errorf("stored value is of type %s", typ)
			}
		}
		return s.decode(data, v)
	}
}

// decodeNil is the Decode of a nil value: v, a pointer to the caller's
// result type, is left at nil if that type is an interface.
func decodeNil(_ []byte, v any) error {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		if t.Elem().Kind() == reflect.Interface {
			return nil
		}
		t = t.Elem()
	}
	return fmt.Errorf("stored value is nil (of an interface type), not %v", t)
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

// millis returns d in whole milliseconds, the precision of Redis
// expiries, rounded up so that a lease is never shorter than asked. It
// saturates: math.MaxInt64 nanoseconds is 9,223,372,036,855 ms (about 292
// years), which PEXPIRE accepts (its limit is the server's clock in
// milliseconds plus the expiry not overflowing an int64, far beyond).
func millis(d time.Duration) int64 { return sat.Millis(d) }

// fromMillis returns ms milliseconds as a Duration, saturating at about
// 292 years (a PTTL of a saturated expiry is a hair too long for a
// Duration).
func fromMillis(ms int64) time.Duration { return sat.MulInt(time.Millisecond, ms) }

// genKey returns the name of the key that keeps the generation of the
// record named rk: in the same Redis Cluster slot, by rk's own hash tag if
// it has one, or by making rk the tag.
func genKey(rk string) string {
	if i := strings.IndexByte(rk, '{'); i >= 0 {
		if j := strings.IndexByte(rk[i+1:], '}'); j > 0 {
			return rk + ":gen" // rk's tag decides the slot of both
		}
	}
	return "{" + rk + "}:gen"
}

// generation parses a generation from a script's reply.
func generation(v any) (uint64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("unexpected generation %v", v)
	}
	g, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected generation %q", s)
	}
	return g, nil
}
