package idempotency

import (
	"cmp"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// typeCache maps a reflect.Type to its *typeInfo. It is the package's only
// package-level variable that changes: a cache of facts derived from the
// program's types (like encoding/json's field cache), bounded by the number
// of types the program encodes, holding no values and no configuration.
// Without it, Key would rebuild a struct's field list (one allocation per
// field, plus sorting) on every call, several times its budget.
var typeCache sync.Map

// special says how a type is encoded when not by its kind.
type special uint8

const (
	plain special = iota
	isTime
	jsonMarshaler
	textMarshaler
)

// typeInfo is what Key needs to know about a defined or struct type.
type typeInfo struct {
	special special
	ptrRecv bool    // the marshal method has a pointer receiver
	fields  []field // struct types only, sorted by name
	// opaque: a struct whose only fields are unexported, so that every
	// value would encode alike; Key refuses it.
	opaque bool
}

// field is one struct field as encoding/json sees it.
type field struct {
	name       string
	encName    []byte // the name encoded as a string
	index      []int  // path through embedded structs
	typ        reflect.Type
	scalar     bool // typ is a predeclared boolean, number or string type: encode by kind
	omitEmpty  bool
	omitZero   bool
	zeroMethod bool // typ has an IsZero() bool method
}

// predeclared holds, for each scalar kind, its predeclared type (bool,
// int, ..., string), so that the common case needs no PkgPath lookup.
var predeclared = [...]reflect.Type{
	reflect.Bool:       reflect.TypeFor[bool](),
	reflect.Int:        reflect.TypeFor[int](),
	reflect.Int8:       reflect.TypeFor[int8](),
	reflect.Int16:      reflect.TypeFor[int16](),
	reflect.Int32:      reflect.TypeFor[int32](),
	reflect.Int64:      reflect.TypeFor[int64](),
	reflect.Uint:       reflect.TypeFor[uint](),
	reflect.Uint8:      reflect.TypeFor[uint8](),
	reflect.Uint16:     reflect.TypeFor[uint16](),
	reflect.Uint32:     reflect.TypeFor[uint32](),
	reflect.Uint64:     reflect.TypeFor[uint64](),
	reflect.Uintptr:    reflect.TypeFor[uintptr](),
	reflect.Float32:    reflect.TypeFor[float32](),
	reflect.Float64:    reflect.TypeFor[float64](),
	reflect.Complex64:  reflect.TypeFor[complex64](),
	reflect.Complex128: reflect.TypeFor[complex128](),
	reflect.String:     reflect.TypeFor[string](),
}

// isPredeclared reports whether t is one of the predeclared scalar types,
// which have no methods.
func isPredeclared(t reflect.Type) bool {
	k := t.Kind()
	return int(k) < len(predeclared) && predeclared[k] == t
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType      = reflect.TypeFor[isZeroer]()
)

// infoOf returns the cached typeInfo of t, building it on first use.
func infoOf(t reflect.Type) *typeInfo {
	if info, ok := typeCache.Load(t); ok {
		return info.(*typeInfo)
	}
	info, _ := typeCache.LoadOrStore(t, buildInfo(t))
	return info.(*typeInfo)
}

func buildInfo(t reflect.Type) *typeInfo {
	info := &typeInfo{}
	info.special, info.ptrRecv = specialOf(t)
	if info.special == plain && t.Kind() == reflect.Struct {
		info.fields = structFields(t)
		info.opaque = len(info.fields) == 0 && hasHidden(t)
	}
	return info
}

// specialOf reports how values of t encode when not by their kind, in
// encoding/json's order of preference: MarshalJSON, then MarshalText.
// time.Time comes first: Key encodes it as an instant in UTC.
func specialOf(t reflect.Type) (special, bool) {
	if t == timeType {
		return isTime, false
	}
	if t.Kind() == reflect.Interface || t.Kind() == reflect.Pointer {
		return plain, false // encoded through the value they hold
	}
	pt := reflect.PointerTo(t)
	switch {
	case t.Implements(jsonMarshalerType):
		return jsonMarshaler, false
	case pt.Implements(jsonMarshalerType):
		return jsonMarshaler, true
	case t.Implements(textMarshalerType):
		return textMarshaler, false
	case pt.Implements(textMarshalerType):
		return textMarshaler, true
	}
	return plain, false
}

// structFields lists the fields of struct type t that encoding/json would
// encode: exported fields, and the fields of embedded structs promoted by
// the rules encoding/json applies (a shallower field hides a deeper one of
// the same name; at equal depth a tagged field wins; two equal contenders
// hide each other). The result is sorted by name.
func structFields(t reflect.Type) []field {
	type embedded struct {
		typ   reflect.Type
		index []int
	}
	type candidate struct {
		field
		depth  int
		tagged bool
	}
	var (
		cands   []candidate
		visited = map[reflect.Type]bool{}
		next    = []embedded{{typ: t}}
	)
	for depth := 0; len(next) > 0; depth++ {
		current := next
		next = nil
		// An embedded type met twice at one depth is ambiguous: its
		// fields are added twice so that they hide each other.
		times := map[reflect.Type]int{}
		for _, em := range current {
			times[em.typ]++
		}
		for _, em := range current {
			if visited[em.typ] {
				continue
			}
			visited[em.typ] = true
			for i := range em.typ.NumField() {
				sf := em.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(slices.Clone(em.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, embedded{typ: ft, index: index})
					continue
				}
				c := candidate{depth: depth, tagged: name != ""}
				if name == "" {
					name = sf.Name
				}
				c.field = field{
					name:      name,
					index:     index,
					typ:       sf.Type,
					omitEmpty: hasOption(opts, "omitempty"),
					omitZero:  hasOption(opts, "omitzero"),
				}
				cands = append(cands, c)
				if times[em.typ] > 1 {
					cands = append(cands, c)
				}
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(a.depth, b.depth); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return 0
	})
	var fields []field
	for i := 0; i < len(cands); {
		j := i + 1
		for j < len(cands) && cands[j].name == cands[i].name {
			j++
		}
		first := cands[i]
		ambiguous := j-i > 1 && cands[i+1].depth == first.depth && cands[i+1].tagged == first.tagged
		if !ambiguous {
			fields = append(fields, first.field)
		}
		i = j
	}
	for i := range fields {
		f := &fields[i]
		f.encName = appendString(nil, f.name)
		f.scalar = isPredeclared(f.typ)
		f.zeroMethod = f.typ.Implements(isZeroerType)
	}
	return fields
}

// hasHidden reports whether struct type t has a named unexported field:
// data that Key cannot see.
func hasHidden(t reflect.Type) bool {
	for i := range t.NumField() {
		if sf := t.Field(i); !sf.IsExported() && !sf.Anonymous && sf.Name != "_" {
			return true
		}
	}
	return false
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}
