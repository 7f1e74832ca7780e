package redisstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Codec encodes the results a Store keeps in Redis and decodes them into
// the caller's result type. Its methods must be safe for concurrent use.
//
// Whatever the codec, the Store records the Go type of each value next to
// its encoding and refuses (idempotency.ErrDecode) to decode it into
// another type, unless the caller's result type is an interface.
type Codec interface {
	// Marshal encodes v, the value an operation returned.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer to the caller's
	// result type, as json.Unmarshal does. It should return an error for
	// data that does not decode exactly into v: a replay is then
	// idempotency.ErrDecode rather than a value partly made up.
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json, strictly. A result
// round-trips if encoding/json can encode it and decode it back into its
// type: exported fields, no channels or funcs, and interfaces only where
// the caller's type can hold what JSON decodes. Decoding refuses what
// encoding/json would silently drop: an object field the type does not
// have (DisallowUnknownFields) and data after the value. A field missing
// from the data is left at its zero value, as encoding/json does; the
// Store's type check (see [Codec]) makes sure the data was encoded from
// the same type, so a field is missing only where the type's own encoding
// leaves it out (omitempty, omitzero, "-"). It is safe for concurrent use.
type JSONCodec struct{}

// Marshal returns the JSON encoding of v.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes the JSON value data into v. It returns an error if
// data is not one JSON value, or holds an object field that v's type has
// not.
func (JSONCodec) Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}

var errTrailingData = errors.New("redisstore: JSON value followed by more data")
