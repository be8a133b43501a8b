package main

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
)

// jsonSafe returns v as plain maps and slices with non-finite floats (the
// SQNR of identical outputs is +Inf) written as strings, which
// encoding/json cannot encode as numbers.
func jsonSafe(v any) any { return jsonValue(reflect.ValueOf(v)) }

var marshaler = reflect.TypeFor[json.Marshaler]()

func jsonValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(marshaler) && v.Kind() != reflect.Pointer {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return jsonValue(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			fd := t.Field(i)
			if !fd.IsExported() {
				continue
			}
			name := fd.Name
			tag := fd.Tag.Get("json")
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
			m[name] = jsonValue(v.Field(i))
		}
		return m
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonValue(v.Index(i))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = jsonValue(v.MapIndex(k))
		}
		return out
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return f
	}
	return v.Interface()
}
