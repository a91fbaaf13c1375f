package gqlexec

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r", "\x00\x1f", "<html>&", "é ✓ 😀", "\u2028\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, b, err)
		}
		if got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	})
}

func TestObjectMarshalJSON(t *testing.T) {
	o := &Object{Fields: []Field{
		{"b", 1}, {"a", []any{"x<y", true, nil, &Object{}}}, {"f", 1.5}, {"n", (*Object)(nil)}, {"i64", int64(-3)},
	}}
	b, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"b":1,"a":["x<y",true,null,{}],"f":1.5,"n":null,"i64":-3}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
