package onnx

import (
	"strings"
	"testing"
	"unsafe"
)

func eq[T any](t *testing.T, got, want T) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Errorf("got %v, want %v (%s)", got, want, d)
	}
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// wantErr checks that err is non-nil and mentions every one of parts.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one mentioning %q", what, parts)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not mention %q", what, err, p)
		}
	}
}
