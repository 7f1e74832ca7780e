package redisstore

import "encoding/json"

// Codec encodes the results a Store keeps in Redis and decodes them into
// the caller's result type. Its methods must be safe for concurrent use.
type Codec interface {
	// Marshal encodes v, the value an operation returned.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer to the caller's
	// result type, as json.Unmarshal does.
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json. A result round-trips if
// encoding/json can encode it and decode it back into its type: exported
// fields, no channels or funcs, and interfaces only where the caller's
// type can hold what JSON decodes. It is safe for concurrent use.
type JSONCodec struct{}

// Marshal returns the JSON encoding of v.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
