package redisstore

import (
	"reflect"
	"strconv"
)

// typeName names t for the "type" field of a record, so that a replay
// into another type is an error rather than whatever the codec makes of
// it: a defined type by its full package path and name
// ("example.com/shop/billing.Charge"), a pointer, slice, array or map by
// what it is made of, any other type by reflect's String. nil (the value
// nil) is "".
func typeName(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t.Name() != "" {
		if t.PkgPath() != "" {
			return t.PkgPath() + "." + t.Name()
		}
		return t.Name() // predeclared: int, string, error, ...
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.String()
}
