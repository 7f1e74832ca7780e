package idempotency

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidKeyPart is wrapped by the error [Key] returns for a part it
// cannot encode: a func, a channel, an unsafe pointer, a cyclic value, a
// value nested deeper than [MaxKeyDepth], a NaN, or a marshal method that
// failed. The error names the part, the path inside it (its first
// levels, then "…" and how many more) and the type. It wraps [ErrInvalid].
var ErrInvalidKeyPart = newWrapped("idempotency: invalid key part", ErrInvalid)

// wrapped is a sentinel error that wraps another.
type wrapped struct {
	msg string
	of  error
}

// newWrapped returns a sentinel error with message msg that wraps of.
func newWrapped(msg string, of error) error { return &wrapped{msg: msg, of: of} }

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.of }

// MaxKeyDepth is how deeply a key part's values may nest: pointers,
// interfaces, slices, arrays and maps inside each other, each counting one
// level (struct fields do not count). [Key] returns an error wrapping
// [ErrInvalidKeyPart] for a deeper value, such as a linked list of more
// than 1,000 nodes, instead of recursing until the stack overflows.
const MaxKeyDepth = 1000

// Key returns the hex SHA-256 of a canonical encoding of parts: equal
// inputs give equal keys on every run and platform, and different inputs
// give different keys. Use it for idempotency keys and payload
// fingerprints; namespace a key with its first parts (for example the
// executor and the operation: Key("payments", "charge", req)).
//
// The encoding is type-tagged and length-prefixed, so 0, "0", false, "" and
// nil all differ, and ("a", "bc") differs from ("ab", "c"). Values are
// encoded as follows:
//
//   - booleans, strings and []byte (distinct from string);
//   - integers of every size and signedness by value (int8(5) and
//     uint64(5) are the same number); floats by value, -0 as 0, float32
//     widened to float64; NaN is an error; integers and floats differ;
//   - time.Time as its instant in UTC with nanoseconds (location and
//     monotonic reading dropped);
//   - a type with a MarshalJSON method, or else a MarshalText method, by
//     the bytes the method returns (methods with pointer receivers are used
//     for values too, so Key(v) == Key(&v));
//   - pointers and interfaces by what they point to, nil as null; slices
//     and arrays as lists (a nil slice is null, an empty one is not); maps
//     with their entries sorted by the encoding of their keys;
//   - structs by their fields as encoding/json sees them: exported fields
//     and the fields promoted from embedded structs, named by their json
//     tag, "-" skipped, omitempty and omitzero honoured, in sorted name
//     order (so reordering the declaration does not change the key).
//
// Funcs, channels, unsafe pointers, cyclic values and values nested
// deeper than [MaxKeyDepth] are an error wrapping [ErrInvalidKeyPart]; so
// is a call with no parts.
//
// Small inputs are encoded on the stack and hashed in one pass; larger ones
// are streamed into the hash in chunks. The struct layouts Key derives from
// reflection are cached per type in a package-level cache (as
// encoding/json does): it holds only facts about the program's types, never
// values or configuration, and is safe for concurrent use. Key is safe for
// concurrent use.
func Key(parts ...any) (string, error) {
	if len(parts) == 0 {
		return "", fmt.Errorf("%w: Key needs at least one part", ErrInvalidKeyPart)
	}
	var stack [256]byte
	e := encoder{top: true}
	b, err := e.parts(stack[:0], parts)
	if err != nil {
		return "", err
	}
	var sum [sha256.Size]byte
	if e.big == nil {
		sum = sha256.Sum256(b)
	} else {
		e.flush(b)
		copy(sum[:], e.big.h.Sum(nil))
	}
	var out [2 * sha256.Size]byte
	for i := 0; i < sha256.Size; i += 4 {
		binary.BigEndian.PutUint64(out[2*i:], hex8(binary.BigEndian.Uint32(sum[i:])))
	}
	return string(out[:]), nil
}

// hex8 returns the 8 lowercase hex digits of x as the bytes of a
// big-endian uint64, computed on all digits at once: each nibble is spread
// into a byte of its own, then turned into '0'-'9' or 'a'-'f'.
func hex8(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f0f0f0f0f
	letters := (v + 0x0606060606060606) >> 4 & 0x0101010101010101 // 1 where the nibble is ≥ 10
	return v + 0x3030303030303030 + letters*('a'-'0'-10)
}

// parts appends the canonical encoding of parts to b: the version byte,
// then each part. Every value's encoding is self-delimiting, so the parts
// follow each other without a count.
func (e *encoder) parts(b []byte, parts []any) ([]byte, error) {
	b = append(b, encodingVersion)
	for i, p := range parts {
		var err *keyError
		if b, err = e.value(b, reflect.ValueOf(p)); err != nil {
			return b, err.withPart(i)
		}
	}
	return b, nil
}

// encodingVersion is the first byte of every encoding; it changes if the
// encoding ever does, so keys of different versions never collide.
const encodingVersion = 1

// Type tags of the canonical encoding. Every value starts with one byte
// that says what follows; uvarint is encoding/binary's unsigned varint.
const (
	tagNull     = 'n'
	tagFalse    = 'f'
	tagTrue     = 't'
	tagUint     = 'i'  // non-negative integer: uvarint(v)
	tagNegInt   = 'j'  // negative integer: uvarint(^v)
	tagFloat    = 'd'  // 8 bytes, big-endian IEEE 754
	tagComplex  = 'c'  // two floats: this tag and the real part, tagFloat and the imaginary part
	tagString   = 's'  // a string of 32 bytes or more: uvarint(len) bytes
	tagShortStr = 0xa0 // a string of n < 32 bytes: the byte 0xa0|n, then the bytes
	tagBytes    = 'b'  // uvarint(len) bytes
	tagTime     = 'T'  // varint(unix seconds) uvarint(nanoseconds)
	tagJSON     = 'J'  // uvarint(len) MarshalJSON output
	tagText     = 'X'  // uvarint(len) MarshalText output
	tagList     = 'l'  // uvarint(len) values
	tagMap      = 'm'  // uvarint(len) (key value) pairs in key order
	tagStruct   = 'o'  // (name value)* tagStructEn, names encoded as strings
	tagStructEn = 'e'
)

const (
	// flushAt is the size at which the top-level encoder hands its bytes
	// to the hash instead of growing further.
	flushAt = 4096
	// cycleCheckDepth is the depth after which the encoder starts
	// recording visited pointers, slices and maps to detect cycles (as
	// encoding/json does): ordinary values never pay for the bookkeeping,
	// and a cycle is found (and named as one) well before MaxKeyDepth.
	cycleCheckDepth = 100
	// maxPathSegments is how many levels of the path to a value an error
	// names; deeper levels are counted, not listed, so that the error of a
	// cyclic or deep value stays short.
	maxPathSegments = 8
	// maxSegmentLen bounds one level's name in an error path (a long map
	// key is cut), and maxPathLen the whole path.
	maxSegmentLen = 24
	maxPathLen    = 120
)

// encoder appends the canonical encoding of values to a byte slice, in the
// style of strconv.AppendInt: the buffer is passed and returned, never
// stored, so that Key's buffer stays on the stack. The top-level encoder
// hands the bytes to a SHA-256 hash whenever they pass flushAt; the
// encoders of map entries only collect bytes to be sorted.
type encoder struct {
	top   bool
	big   *hasher // nil until the encoding outgrows flushAt
	depth int
	seen  map[visit]struct{}
}

// hasher streams a large encoding into SHA-256. Bytes reach the hash only
// through spill, a heap copy, so that the buffer itself never escapes.
type hasher struct {
	h     hash.Hash
	spill []byte
}

// visit identifies a pointer-like value on the current path, for cycle
// detection.
type visit struct {
	typ reflect.Type
	ptr uintptr
	len int
}

// keyError is an encoding failure with the path to the offending value.
type keyError struct {
	// path holds the outermost maxPathSegments levels seen so far,
	// innermost first; levels are added from the inside out, so the
	// innermost ones are dropped (and counted in elided) to make room.
	path   []string
	elided int
	reason string
}

func (e *keyError) in(segment string) *keyError {
	if len(segment) > maxSegmentLen {
		cut := maxSegmentLen
		for cut > 0 && !utf8.RuneStart(segment[cut]) {
			cut--
		}
		segment = segment[:cut] + "…"
	}
	if len(e.path) == maxPathSegments {
		copy(e.path, e.path[1:])
		e.path = e.path[:len(e.path)-1]
		e.elided++
	}
	e.path = append(e.path, segment)
	return e
}

func (e *keyError) withPart(i int) error {
	var b strings.Builder
	b.WriteString("part ")
	b.WriteString(strconv.Itoa(i))
	for j := len(e.path) - 1; j >= 0; j-- {
		if b.Len()+len(e.path[j]) > maxPathLen {
			e.elided += j + 1
			break
		}
		b.WriteString(e.path[j])
	}
	if e.elided > 0 {
		fmt.Fprintf(&b, "… (%d more levels)", e.elided)
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidKeyPart, b.String(), e.reason)
}

func failf(format string, args ...any) *keyError {
	return &keyError{reason: fmt.Sprintf(format, args...)}
}

// flush hands b to the hash and returns b emptied.
func (e *encoder) flush(b []byte) []byte {
	if e.big == nil {
		e.big = &hasher{h: sha256.New()}
	}
	h := e.big
	if cap(h.spill) < len(b) {
		h.spill = make([]byte, len(b))
	}
	n := copy(h.spill, b)
	h.h.Write(h.spill[:n])
	return b[:0]
}

func (e *encoder) maybeFlush(b []byte) []byte {
	if e.top && len(b) >= flushAt {
		return e.flush(b)
	}
	return b
}

func appendBytes(b []byte, tag byte, p []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// appendString appends s in its one canonical form: short strings (the
// common case: names, codes, identifiers) in one header byte.
func appendString(b []byte, s string) []byte {
	if len(s) < 32 {
		b = append(b, tagShortStr|byte(len(s)))
	} else {
		b = binary.AppendUvarint(append(b, tagString), uint64(len(s)))
	}
	return append(b, s...)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return binary.AppendUvarint(append(b, tagNegInt), uint64(^v))
	}
	return binary.AppendUvarint(append(b, tagUint), uint64(v))
}

func appendUint(b []byte, v uint64) []byte {
	return binary.AppendUvarint(append(b, tagUint), v)
}

func appendFloat(b []byte, tag byte, f float64) []byte {
	if f == 0 {
		f = 0 // -0 and +0 are equal
	}
	return binary.BigEndian.AppendUint64(append(b, tag), math.Float64bits(f))
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(append(b, tagTime), t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// value appends the encoding of v to b. It is the only recursive
// function of the encoder, on purpose: Go's escape analysis keeps Key's
// stack buffer on the stack through self-recursion, not through mutual
// recursion, so the list, struct and pointer cases are written inline.
func (e *encoder) value(b []byte, v reflect.Value) ([]byte, *keyError) {
	if !v.IsValid() {
		return append(b, tagNull), nil
	}
	t := v.Type()
	// Only defined types can carry marshal methods or be time.Time (an
	// unnamed struct can embed one); predeclared and unnamed non-struct
	// types skip the lookup.
	if !isPredeclared(t) && (t.Kind() == reflect.Struct || t.PkgPath() != "") {
		info := infoOf(t)
		if info.special == isTime {
			if tm, ok := reflect.TypeAssert[time.Time](v); ok {
				return appendTime(b, tm), nil
			}
		}
		if info.special != plain {
			if out, ok, err := e.special(v, info); ok || err != nil {
				b = append(b, out...)
				return e.maybeFlush(b), err
			}
			// Not callable (reached through an unexported embedded
			// field): encode by kind.
			if t.Kind() == reflect.Struct {
				info = &typeInfo{fields: structFields(t)}
			}
		}
		if t.Kind() == reflect.Struct {
			if info.opaque {
				return b, failf("struct type %s has only unexported fields, so all its values would give one key; "+
					"give it a MarshalText method or pass its data instead", t)
			}
			b = append(b, tagStruct)
		fields:
			for i := range info.fields {
				f := &info.fields[i]
				fv := v
				if len(f.index) == 1 {
					fv = v.Field(f.index[0])
				} else {
					for _, j := range f.index {
						if fv.Kind() == reflect.Pointer {
							if fv.IsNil() {
								continue fields // promoted through a nil embedded pointer
							}
							fv = fv.Elem()
						}
						fv = fv.Field(j)
					}
				}
				if f.omitEmpty && isEmpty(fv) || f.omitZero && isZero(fv, f) {
					continue
				}
				b = append(b, f.encName...)
				var err *keyError
				if f.scalar {
					b, err = appendScalar(b, fv)
				} else {
					b, err = e.value(b, fv)
				}
				if err != nil {
					return b, err.in("." + f.name)
				}
			}
			return e.maybeFlush(append(b, tagStructEn)), nil
		}
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return append(b, tagNull), nil
		}
		if err := e.nest(); err != nil {
			return b, err
		}
		b, err := e.value(b, v.Elem())
		e.depth--
		return b, err
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, tagNull), nil
		}
		if err := e.enter(v, t, 0); err != nil {
			return b, err
		}
		b, err := e.value(b, v.Elem())
		e.leave(v, t, 0)
		return b, err
	case reflect.Slice, reflect.Array:
		n := v.Len()
		if v.Kind() == reflect.Slice {
			if v.IsNil() {
				return append(b, tagNull), nil
			}
			if t.Elem().Kind() == reflect.Uint8 {
				return e.maybeFlush(appendBytes(b, tagBytes, v.Bytes())), nil
			}
			if err := e.enter(v, t, n); err != nil {
				return b, err
			}
		} else if err := e.nest(); err != nil {
			return b, err
		}
		b = binary.AppendUvarint(append(b, tagList), uint64(n))
		var err *keyError
		for i := 0; i < n && err == nil; i++ {
			if b, err = e.value(b, v.Index(i)); err != nil {
				err = err.in("[" + strconv.Itoa(i) + "]")
			}
			b = e.maybeFlush(b)
		}
		if v.Kind() == reflect.Slice {
			e.leave(v, t, n)
		} else {
			e.depth--
		}
		return b, err
	case reflect.Map:
		if v.IsNil() {
			return append(b, tagNull), nil
		}
		if err := e.enter(v, t, 0); err != nil {
			return b, err
		}
		entries, err := e.mapEntries(v)
		e.leave(v, t, 0)
		if err != nil {
			return b, err
		}
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(entries)))
		for _, en := range entries {
			b = e.maybeFlush(append(b, en...))
		}
		return b, nil
	}
	return appendScalar(b, v)
}

// appendScalar appends a boolean, number or string by its kind; other
// kinds left here (func, chan, unsafe.Pointer) are an error.
func appendScalar(b []byte, v reflect.Value) ([]byte, *keyError) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return appendUint(b, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) {
			return b, failf("NaN (%s) has no canonical value", v.Type())
		}
		return appendFloat(b, tagFloat, f), nil
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		if math.IsNaN(real(c)) || math.IsNaN(imag(c)) {
			return b, failf("NaN (%s) has no canonical value", v.Type())
		}
		b = appendFloat(b, tagComplex, real(c))
		return appendFloat(b, tagFloat, imag(c)), nil
	case reflect.String:
		return appendString(b, v.String()), nil
	}
	return b, failf("unsupported type %s", v.Type()) // func, chan, unsafe.Pointer
}

// nest counts one more level of nesting (an interface or an array), or
// fails past MaxKeyDepth. Every successful nest is paired with a
// decrement of e.depth.
func (e *encoder) nest() *keyError {
	if e.depth >= MaxKeyDepth {
		return tooDeep()
	}
	e.depth++
	return nil
}

func tooDeep() *keyError {
	return failf("value nested more than MaxKeyDepth (%d) levels deep", MaxKeyDepth)
}

// enter counts one more level of pointer, slice or map nesting, or fails
// past MaxKeyDepth, and past cycleCheckDepth records v to detect a cycle.
// Every successful enter is paired with a leave.
func (e *encoder) enter(v reflect.Value, t reflect.Type, n int) *keyError {
	if e.depth >= MaxKeyDepth {
		return tooDeep()
	}
	e.depth++
	if e.depth <= cycleCheckDepth {
		return nil
	}
	key := visit{typ: t, ptr: uintptr(v.UnsafePointer()), len: n}
	if e.seen == nil {
		e.seen = make(map[visit]struct{})
	}
	if _, ok := e.seen[key]; ok {
		e.depth--
		return failf("cyclic value of type %s", t)
	}
	e.seen[key] = struct{}{}
	return nil
}

func (e *encoder) leave(v reflect.Value, t reflect.Type, n int) {
	if e.depth > cycleCheckDepth {
		delete(e.seen, visit{typ: t, ptr: uintptr(v.UnsafePointer()), len: n})
	}
	e.depth--
}

// mapEntries encodes the entries of map v, each key followed by its value,
// sorted by the encoding of their keys (and by the encoding of the whole
// entry if two keys encode alike, as distinct pointers to equal values
// do), so that iteration order never shows.
func (e *encoder) mapEntries(v reflect.Value) ([][]byte, *keyError) {
	sub := encoder{depth: e.depth, seen: e.seen}
	defer func() { e.seen = sub.seen }()
	entries := make([][]byte, 0, v.Len())
	keyLens := make(map[int]int, v.Len()) // entry index → length of its key
	it := v.MapRange()
	for it.Next() {
		en, err := sub.value(nil, it.Key())
		if err != nil {
			return nil, err.in("[map key]")
		}
		keyLen := len(en)
		if en, err = sub.value(en, it.Value()); err != nil {
			return nil, err.in("[" + shortKey(it.Key()) + "]")
		}
		keyLens[len(entries)] = keyLen
		// Store a copy: a result of value must never flow to the heap, or
		// escape analysis moves every caller's buffer there.
		entries = append(entries, bytes.Clone(en))
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		ex, ey := entries[x], entries[y]
		if c := bytes.Compare(ex[:keyLens[x]], ey[:keyLens[y]]); c != 0 {
			return c
		}
		return bytes.Compare(ex, ey)
	})
	sorted := make([][]byte, len(entries))
	for i, j := range order {
		sorted[i] = entries[j]
	}
	return sorted, nil
}

// shortKey formats a map key for an error path.
func shortKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return strconv.Quote(k.String())
	}
	if k.CanInterface() {
		return fmt.Sprint(k.Interface())
	}
	return k.Type().String()
}

// special returns the encoding of a value of a type with its own: time.Time
// or a marshal method. ok is false if the method cannot be called (the
// value was reached through an unexported embedded field); the caller then
// encodes v by its kind.
func (e *encoder) special(v reflect.Value, info *typeInfo) (out []byte, ok bool, err *keyError) {
	if info.ptrRecv {
		if v.CanAddr() {
			v = v.Addr()
		} else {
			// A method with a pointer receiver needs an addressable
			// value; copy v so that Key(v) and Key(&v) agree.
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			v = p
		}
	}
	if !v.CanInterface() {
		return nil, false, nil
	}
	switch info.special {
	case isTime:
		t, _ := reflect.TypeAssert[time.Time](v)
		return appendTime(nil, t), true, nil
	case jsonMarshaler:
		m, _ := reflect.TypeAssert[json.Marshaler](v)
		raw, err := m.MarshalJSON()
		if err != nil {
			return nil, false, failf("MarshalJSON of %s: %v", v.Type(), err)
		}
		return appendBytes(nil, tagJSON, raw), true, nil
	default: // textMarshaler
		m, _ := reflect.TypeAssert[encoding.TextMarshaler](v)
		raw, err := m.MarshalText()
		if err != nil {
			return nil, false, failf("MarshalText of %s: %v", v.Type(), err)
		}
		return appendBytes(nil, tagText, raw), true, nil
	}
}

// isEmpty reports whether v is empty in the sense of encoding/json's
// omitempty.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

type isZeroer interface{ IsZero() bool }

// isZero reports whether v is zero in the sense of encoding/json's
// omitzero: its IsZero method if it has one, else the zero value.
func isZero(v reflect.Value, f *field) bool {
	if f.zeroMethod && v.CanInterface() {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		if z, ok := reflect.TypeAssert[isZeroer](v); ok {
			return z.IsZero()
		}
	}
	return v.IsZero()
}
