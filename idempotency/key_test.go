package idempotency

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encode returns the canonical encoding of parts, unhashed.
func encode(t *testing.T, parts ...any) []byte {
	t.Helper()
	e := encoder{}
	b, err := e.parts(nil, parts)
	require.NoError(t, err)
	return b
}

func mustKey(t *testing.T, parts ...any) string {
	t.Helper()
	k, err := Key(parts...)
	require.NoError(t, err)
	return k
}

type order struct {
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Note     string `json:"note,omitempty"`
}

// orderReordered has the fields of order declared in another order.
type orderReordered struct {
	Note     string `json:"note,omitempty"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Customer string `json:"customer"`
}

func TestKeyEncodingBytes(t *testing.T) {
	// The encoding is the spec that golden keys depend on: pin it.
	tests := []struct {
		name string
		part any
		want []byte
	}{
		{"nil", nil, []byte{1, 'n'}},
		{"false", false, []byte{1, 'f'}},
		{"true", true, []byte{1, 't'}},
		{"zero", 0, []byte{1, 'i', 0}},
		{"300", 300, []byte{1, 'i', 0xac, 0x02}},
		{"minus one", -1, []byte{1, 'j', 0}},
		{"min int64", int64(math.MinInt64), append([]byte{1, 'j'}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)},
		{"max uint64", uint64(math.MaxUint64), append([]byte{1, 'i'}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"empty string", "", []byte{1, 0xa0}},
		{"short string", "ab", []byte{1, 0xa2, 'a', 'b'}},
		{"32-byte string", strings.Repeat("x", 32), append([]byte{1, 's', 32}, strings.Repeat("x", 32)...)},
		{"bytes", []byte("ab"), []byte{1, 'b', 2, 'a', 'b'}},
		{"float one", 1.0, []byte{1, 'd', 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}},
		{"negative zero", math.Copysign(0, -1), []byte{1, 'd', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"list", []int{1, 2}, []byte{1, 'l', 2, 'i', 1, 'i', 2}},
		{"nil slice", []int(nil), []byte{1, 'n'}},
		{"map", map[string]int{"b": 2, "a": 1}, []byte{1, 'm', 2, 0xa1, 'a', 'i', 1, 0xa1, 'b', 'i', 2}},
		{"struct", struct {
			B int `json:"b"`
			A int
		}{B: 2, A: 1}, []byte{1, 'o', 0xa1, 'A', 'i', 1, 0xa1, 'b', 'i', 2, 'e'}},
		{"time", time.Unix(1, 5), []byte{1, 'T', 2, 5}},
		{"text marshaler", netip.MustParseAddr("10.0.0.1"), append([]byte{1, 'X', 8}, "10.0.0.1"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, encode(t, tt.part))
		})
	}
}

func TestKeyGolden(t *testing.T) {
	// Hard-coded keys: they must never change, on any platform, or every
	// stored record becomes unreachable. A change of encoding needs a new
	// encodingVersion and new vectors.
	at := time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)
	tests := []struct {
		name  string
		parts []any
		want  string
	}{
		{"string", []any{"hello"}, "6cbd2c18ca78d405be546de2eb8b6071f764d1e86758b337bc8baaeb97b2d182"},
		{"int", []any{42}, "5cab01050d2b5f6b6794c1caefe2a1b0d0481722bbf1f61819c5ae820fac9dfe"},
		{"nil", []any{nil}, "19041ad672875015bc4041c24b581eafc0869aab38ecd09ff94ede44648b50a3"},
		{"namespaced struct", []any{"payments", "charge", order{Customer: "cus_123", Amount: 4200, Currency: "EUR"}}, "38bc26e462cfa42c3ca7acfa65050d855eafe49a05b2e04e2fe93033b83a0448"},
		{"time", []any{at}, "afdec62890c851e0e6aef0e7000039dac1d04ed1eb20fe27acacbd6f5b10e0d3"},
		{"map", []any{map[string]any{"b": []int{1, 2}, "a": nil, "c": 1.5}}, "22fe3ffa7b452104adba798988d3867ebba6e33925539e9cc512dc1e389b66d6"},
		{"bytes and bool", []any{[]byte{0, 1, 2}, true, false}, "d41094afbdd35c630fad33b9dc0dd56bca33b113bceb0e59449dcf73e23f2fee"},
		{"negative and unsigned", []any{int8(-7), uint16(7)}, "b90a34b6dc5efef701b8069885ba1c2657c997f152a4e12372c6659bf1508a22"},
		{"long string", []any{strings.Repeat("0123456789", 10)}, "d15fd2ca5ee02e608946e28433eb8e132528388423ff401c4ee0a0987bf71b63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mustKey(t, tt.parts...))
		})
	}
}

func TestKeyIsHexSHA256OfEncoding(t *testing.T) {
	parts := []any{"payments", order{Customer: "c", Amount: 1, Currency: "EUR"}}
	sum := sha256.Sum256(encode(t, parts...))
	assert.Equal(t, hex.EncodeToString(sum[:]), mustKey(t, parts...))
}

func TestKeyLargeInputIsStreamed(t *testing.T) {
	// More than flushAt bytes: Key hashes in chunks; the result must equal
	// the hash of the whole encoding.
	big := make([]string, 2000)
	for i := range big {
		big[i] = strings.Repeat("v", i%50)
	}
	m := map[int]string{}
	for i := range 500 {
		m[i] = strings.Repeat("m", i%40)
	}
	parts := []any{"ns", big, m, strings.Repeat("s", 10000), []byte(strings.Repeat("b", 9000))}
	enc := encode(t, parts...)
	require.Greater(t, len(enc), 4*flushAt)
	sum := sha256.Sum256(enc)
	assert.Equal(t, hex.EncodeToString(sum[:]), mustKey(t, parts...))
}

func TestKeyDistinguishes(t *testing.T) {
	var nilPtr *int
	values := map[string][]any{
		"0":               {0},
		`"0"`:             {"0"},
		"false":           {false},
		`""`:              {""},
		"nil":             {nil},
		"empty bytes":     {[]byte{}},
		"bytes 0":         {[]byte("0")},
		"float 0":         {0.0},
		"empty list":      {[]int{}},
		"empty map":       {map[string]int{}},
		"empty struct":    {struct{}{}},
		"a,bc":            {"a", "bc"},
		"ab,c":            {"ab", "c"},
		"abc":             {"abc"},
		"[a bc]":          {[]string{"a", "bc"}},
		"1":               {1},
		"-1":              {-1},
		"1.0":             {1.0},
		"true":            {true},
		"[nil]":           {[]any{nil}},
		"nil,nil":         {nil, nil},
		"map a:1":         {map[string]int{"a": 1}},
		"struct a:1":      {struct{ A int }{1}},
		"time 0":          {time.Unix(0, 0)},
		"time 1ns":        {time.Unix(0, 1)},
		"complex 1":       {complex(1, 0)},
		"string 31 bytes": {strings.Repeat("x", 31)},
		"string 32 bytes": {strings.Repeat("x", 32)},
	}
	seen := map[string]string{}
	for name, parts := range values {
		k := mustKey(t, parts...)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s have the same key", name, other)
		}
		seen[k] = name
	}
	// A nil pointer is null, as in encoding/json.
	assert.Equal(t, mustKey(t, nil), mustKey(t, nilPtr))
}

type textID struct{ v string }

func (id *textID) MarshalText() ([]byte, error) { return []byte("id-" + id.v), nil }

type jsonMoney struct{ cents int64 }

func (m jsonMoney) MarshalJSON() ([]byte, error) {
	return []byte(`{"cents":` + strconv.FormatInt(m.cents, 10) + `}`), nil
}

func TestKeyEqualities(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	utc := time.Date(2024, 5, 1, 10, 0, 0, 42, time.UTC)
	five := 5
	tests := []struct {
		name string
		a, b any
	}{
		{"integer widths and signedness", int8(5), uint64(5)},
		{"int and int64", 5, int64(5)},
		{"float32 widened", float32(1.5), 1.5},
		{"negative zero", math.Copysign(0, -1), 0.0},
		{"pointer followed", &five, 5},
		{"interface followed", any(any(5)), 5},
		{"time zone dropped", utc, utc.In(paris)},
		{"declaration order ignored", order{Customer: "c", Amount: 1, Currency: "EUR"}, orderReordered{Customer: "c", Amount: 1, Currency: "EUR"}},
		{"omitempty field absent", order{Customer: "c"}, struct {
			Customer string `json:"customer"`
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		}{Customer: "c"}},
		{"array and slice", [2]int{1, 2}, []int{1, 2}},
		{"pointer-receiver marshaler on value", textID{"x"}, &textID{"x"}},
		{"named string", namedString("x"), "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, mustKey(t, tt.a), mustKey(t, tt.b))
		})
	}
	t.Run("monotonic reading dropped", func(t *testing.T) {
		now := time.Now() // carries a monotonic reading; Round(0) strips it
		assert.Equal(t, mustKey(t, now), mustKey(t, now.Round(0)))
	})
}

type namedString string

func TestKeyMapOrderNeverShows(t *testing.T) {
	want := ""
	for range 50 {
		m := map[string]int{}
		for i := range 64 {
			m[string(rune('A'+i))] = i
		}
		k := mustKey(t, m)
		if want == "" {
			want = k
		}
		require.Equal(t, want, k)
	}
	// Keys that are pointers to equal values encode alike; the order of
	// their entries is still fixed, by the whole entry.
	a, b := 1, 1
	m1 := map[*int]string{&a: "x", &b: "y"}
	m2 := map[*int]string{&b: "x", &a: "y"}
	assert.Equal(t, mustKey(t, m1), mustKey(t, m2))
}

type inner struct {
	ID   string `json:"id"`
	Deep string
}

type Embedded struct {
	Shared string
	Own    int
}

type other struct {
	Shared string
}

type withEmbedding struct {
	Embedded         // promoted: Shared, Own
	*inner           // unexported embedded struct pointer: id, Deep promoted
	Top       string `json:"top"`
	skipped   string
	Dash      string    `json:"-"`
	Price     jsonMoney `json:"price"`
	Zero      time.Time `json:"zero,omitzero"`
	EmptyList []int     `json:"list,omitempty"`
}

type ambiguous struct {
	Embedded
	other // Shared at the same depth twice, neither tagged: dropped
}

func TestKeyStructFieldsAsEncodingJSON(t *testing.T) {
	v := withEmbedding{
		Embedded: Embedded{Shared: "s", Own: 1},
		inner:    &inner{ID: "i", Deep: "d"},
		Top:      "t",
		skipped:  "hidden",
		Dash:     "hidden too",
		Price:    jsonMoney{cents: 250},
	}
	want := []byte{1, 'o'}
	for _, kv := range [][2]string{{"Deep", "d"}, {"Own", ""}, {"Shared", "s"}, {"id", "i"}, {"price", ""}, {"top", "t"}} {
		want = append(want, 0xa0|byte(len(kv[0])))
		want = append(want, kv[0]...)
		switch kv[0] {
		case "Own":
			want = append(want, 'i', 1)
			continue
		case "price": // MarshalJSON's output
			want = append(want, 'J', 13)
			want = append(want, `{"cents":250}`...)
			continue
		}
		want = append(want, 0xa0|byte(len(kv[1])))
		want = append(want, kv[1]...)
	}
	want = append(want, 'e')
	assert.Equal(t, want, encode(t, v))

	// Unexported fields, "-" and empty omitempty/omitzero fields do not
	// count; a nil embedded pointer contributes nothing.
	v2 := v
	v2.skipped, v2.Dash = "other", "other"
	assert.Equal(t, mustKey(t, v), mustKey(t, v2))
	v3 := v
	v3.inner = nil
	assert.NotContains(t, string(encode(t, v3)), "Deep")

	amb := ambiguous{Embedded: Embedded{Shared: "a", Own: 2}, other: other{Shared: "b"}}
	assert.Equal(t, []byte{1, 'o', 0xa3, 'O', 'w', 'n', 'i', 2, 'e'}, encode(t, amb))
}

type opaque struct{ secret string }

type failingText struct{}

func (failingText) MarshalText() ([]byte, error) { return nil, errors.New("boom") }

type node struct {
	Name string
	Next *node
}

func TestKeyErrors(t *testing.T) {
	cyclic := &node{Name: "a"}
	cyclic.Next = cyclic
	cyclicMap := map[string]any{}
	cyclicMap["self"] = cyclicMap
	cyclicSlice := []any{nil}
	cyclicSlice[0] = cyclicSlice
	var x int
	tests := []struct {
		name  string
		parts []any
		want  string
	}{
		{"no parts", nil, "Key needs at least one part"},
		{"func", []any{"ns", func() {}}, "part 1: unsupported type func()"},
		{"chan in struct", []any{struct{ C chan int }{}}, "part 0.C: unsupported type chan int"},
		{"unsafe pointer", []any{unsafe.Pointer(&x)}, "part 0: unsupported type unsafe.Pointer"},
		{"NaN", []any{math.NaN()}, "part 0: NaN (float64) has no canonical value"},
		{"NaN in map", []any{map[string]float64{"x": math.NaN()}}, `part 0["x"]: NaN (float64)`},
		{"NaN in list", []any{[]any{1, complex(math.NaN(), 0)}}, "part 0[1]: NaN (complex128)"},
		{"pointer cycle", []any{cyclic}, "cyclic value of type *idempotency.node"},
		{"map cycle", []any{cyclicMap}, "cyclic value of type map[string]interface {}"},
		{"slice cycle", []any{cyclicSlice}, "cyclic value of type []interface {}"},
		{"opaque struct", []any{opaque{"s"}}, "struct type idempotency.opaque has only unexported fields"},
		{"marshaler error", []any{failingText{}}, "MarshalText of idempotency.failingText: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Key(tt.parts...)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidKeyPart)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, k)
		})
	}
}

func TestKeyDeepAcyclicValueIsFine(t *testing.T) {
	// Deeper than cycleCheckDepth but not cyclic; shared (non-cyclic)
	// pointers are fine too.
	var head *node
	for i := range cycleCheckDepth + 50 {
		head = &node{Name: string(rune('a' + i%26)), Next: head}
	}
	shared := &node{Name: "shared"}
	_, err := Key(head, []*node{shared, shared})
	require.NoError(t, err)
}

func TestKeyConcurrentUse(t *testing.T) {
	type fresh struct {
		A string `json:"a"`
		B []int  `json:"b"`
	}
	want := mustKey(t, fresh{A: "x", B: []int{1}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				k, err := Key(fresh{A: "x", B: []int{1}})
				assert.NoError(t, err)
				assert.Equal(t, want, k)
			}
		})
	}
	wg.Wait()
}

func TestKeySmallStructAllocatesOnlyTheResult(t *testing.T) {
	// The parts are converted to any once, outside the measurement: that
	// conversion is the caller's (and costs the same for json.Marshal).
	parts := []any{"payments", "charge", order{Customer: "cus_123", Amount: 4200, Currency: "EUR", Note: "x"}}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Key(parts...); err != nil {
			t.Fatal(err)
		}
	})
	assert.Equal(t, 1.0, allocs, "only the returned string may be allocated")
}

func FuzzKey(f *testing.F) {
	f.Add("a", "bc", int64(0), 0.0, []byte{}, false)
	f.Add("ab", "c", int64(-1), math.Inf(1), []byte("x"), true)
	f.Add("", "", int64(math.MinInt64), math.Copysign(0, -1), []byte(nil), false)
	f.Fuzz(func(t *testing.T, s1, s2 string, i int64, fl float64, b []byte, flag bool) {
		type payload struct {
			S     string            `json:"s"`
			I     int64             `json:"i"`
			F     float64           `json:"f"`
			B     []byte            `json:"b,omitempty"`
			Flag  bool              `json:"flag"`
			M     map[string]string `json:"m"`
			Inner *payload          `json:"inner,omitempty"`
		}
		p := payload{S: s1, I: i, F: fl, B: b, Flag: flag, M: map[string]string{s1: s2, s2: s1}, Inner: &payload{S: s2}}
		k1, err1 := Key(s1, s2, p)
		k2, err2 := Key(s1, s2, p)
		if math.IsNaN(fl) {
			if err1 == nil || !errors.Is(err1, ErrInvalidKeyPart) {
				t.Fatalf("NaN accepted: %v", err1)
			}
			return
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("Key failed: %v, %v", err1, err2)
		}
		if k1 != k2 {
			t.Fatalf("same input, different keys: %s %s", k1, k2)
		}
		if len(k1) != 64 {
			t.Fatalf("key %q is not 64 hex digits", k1)
		}
		// Moving bytes between adjacent parts changes the key.
		if s2 != "" {
			k3, err := Key(s1+s2[:1], s2[1:], p)
			if err != nil || k3 == k1 {
				t.Fatalf("(%q,%q) and (%q,%q) collide or fail: %v", s1, s2, s1+s2[:1], s2[1:], err)
			}
		}
	})
}

var sinkKey string

func BenchmarkKey(b *testing.B) {
	o := order{Customer: "cus_123", Amount: 4200, Currency: "EUR", Note: "x"}
	b.Run("small-struct", func(b *testing.B) {
		parts := []any{o} // converted to any once: the caller's cost, as for json.Marshal
		b.ReportAllocs()
		for b.Loop() {
			sinkKey, _ = Key(parts...)
		}
	})
	b.Run("namespaced-small-struct", func(b *testing.B) {
		parts := []any{"payments", "charge", o}
		b.ReportAllocs()
		for b.Loop() {
			sinkKey, _ = Key(parts...)
		}
	})
	b.Run("strings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkKey, _ = Key("payments", "charge", "cus_123", "order-981")
		}
	})
	b.Run("map-8", func(b *testing.B) {
		m := map[string]any{"a": 1, "b": "two", "c": 3.0, "d": true, "e": nil, "f": []int{1}, "g": "x", "h": 8}
		parts := []any{m}
		b.ReportAllocs()
		for b.Loop() {
			sinkKey, _ = Key(parts...)
		}
	})
}

// BenchmarkKeyBaselineJSON is what Key replaces: canonical JSON (sorted
// map keys, as encoding/json writes them) plus SHA-256, hex-encoded.
func BenchmarkKeyBaselineJSON(b *testing.B) {
	o := order{Customer: "cus_123", Amount: 4200, Currency: "EUR", Note: "x"}
	b.Run("small-struct", func(b *testing.B) {
		var v any = o
		b.ReportAllocs()
		for b.Loop() {
			j, _ := json.Marshal(v)
			sum := sha256.Sum256(j)
			sinkKey = hex.EncodeToString(sum[:])
		}
	})
	b.Run("namespaced-small-struct", func(b *testing.B) {
		v := []any{"payments", "charge", o}
		b.ReportAllocs()
		for b.Loop() {
			j, _ := json.Marshal(v)
			sum := sha256.Sum256(j)
			sinkKey = hex.EncodeToString(sum[:])
		}
	})
}

// BenchmarkStructFieldsUncached is what Key would pay on every call for a
// struct without its per-type cache: building the field list.
func BenchmarkStructFieldsUncached(b *testing.B) {
	t := reflect.TypeFor[order]()
	b.ReportAllocs()
	for b.Loop() {
		_ = structFields(t)
	}
}

func TestHex8(t *testing.T) {
	for _, x := range []uint32{0, 1, 9, 10, 15, 16, 0x89abcdef, 0x01234567, 0xffffffff, 0xa0b0c0d0} {
		var got [8]byte
		binary.BigEndian.PutUint64(got[:], hex8(x))
		var want [4]byte
		binary.BigEndian.PutUint32(want[:], x)
		assert.Equal(t, hex.EncodeToString(want[:]), string(got[:]), "%#x", x)
	}
}
