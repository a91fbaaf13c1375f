package cache_test

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
)

func accessorEntry() cache.Entry {
	refresh := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)
	last := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	v := func(s string) *string { return &s }
	return cache.Entry{Doc: &cache.Doc{ID: "inst1", Config: map[string]cache.ConfigValue{
		"channel":      {Value: v("#alerts"), Type: "STRING"},
		"severity":     {Value: v("warning"), Type: "PICKLIST"},
		"syncFreq":     {Value: v("0 * * * *"), Type: "SCHEDULE"},
		"future":       {Value: v("x"), Type: "HOLOGRAM"},
		"notify":       {Value: v("true"), Type: "BOOLEAN"},
		"notifyBad":    {Value: v("perhaps"), Type: "BOOLEAN"},
		"batch":        {Value: v("200"), Type: "NUMBER"},
		"batchFloat":   {Value: v("200.0"), Type: "NUMBER"},
		"ratio":        {Value: v("0.25"), Type: "NUMBER"},
		"numBad":       {Value: v("lots"), Type: "NUMBER"},
		"mapping":      {Value: v(`{"Email":"email"}`), Type: "JSONFORM"},
		"mentionUsers": {Value: v(`["@oncall"]`), Type: "STRING"},
		"empty":        {Value: nil, Type: "STRING"},
		"sf":           {Type: "CONNECTION", Status: "ACTIVE", RefreshAt: &refresh, LastSuccessfulRefreshAt: &last},
		"apiKey":       {Type: "CREDENTIAL"},
	}}}
}

func TestEntryAccessors(t *testing.T) {
	e := accessorEntry()
	read := map[string]func(key string) (any, error){
		"String": func(k string) (any, error) { return e.String(k) },
		"Bool":   func(k string) (any, error) { return e.Bool(k) },
		"Int":    func(k string) (any, error) { return e.Int(k) },
		"Float":  func(k string) (any, error) { return e.Float(k) },
		"JSON": func(k string) (any, error) {
			var v any
			err := e.JSON(k, &v)
			return v, err
		},
		"Connection": func(k string) (any, error) { return e.Connection(k) },
	}
	for _, tc := range []struct {
		accessor, key string
		want          any
		wantErr       error  // a sentinel, or nil
		errHas        string // text the error must contain
	}{
		{"String", "channel", "#alerts", nil, ""},
		{"String", "severity", "warning", nil, ""},
		{"String", "syncFreq", "0 * * * *", nil, ""},
		{"String", "future", "x", nil, ""}, // types this version does not know read as text
		{"String", "mentionUsers", `["@oncall"]`, nil, ""},
		{"String", "missing", nil, cache.ErrNoSuchKey, `"missing"`},
		{"String", "empty", nil, cache.ErrNullValue, `"empty"`},
		{"String", "batch", nil, cache.ErrWrongType, `"batch": dataType NUMBER cannot be read as string`},
		{"String", "notify", nil, cache.ErrWrongType, "BOOLEAN"},
		{"String", "mapping", nil, cache.ErrWrongType, "JSONFORM"},
		{"String", "sf", nil, cache.ErrWrongType, "CONNECTION"},
		{"Bool", "notify", true, nil, ""},
		{"Bool", "notifyBad", nil, strconv.ErrSyntax, `"notifyBad"`},
		{"Bool", "channel", nil, cache.ErrWrongType, "STRING cannot be read as bool"},
		{"Int", "batch", int64(200), nil, ""},
		{"Int", "batchFloat", int64(200), nil, ""},
		{"Int", "ratio", nil, nil, "not a whole number"},
		{"Int", "numBad", nil, strconv.ErrSyntax, `"numBad"`},
		{"Int", "channel", nil, cache.ErrWrongType, "cannot be read as int"},
		{"Float", "ratio", 0.25, nil, ""},
		{"Float", "batch", 200.0, nil, ""},
		{"Float", "notify", nil, cache.ErrWrongType, "BOOLEAN"},
		{"JSON", "mapping", map[string]any{"Email": "email"}, nil, ""},
		{"JSON", "mentionUsers", []any{"@oncall"}, nil, ""}, // collections hold JSON text
		{"JSON", "batch", 200.0, nil, ""},
		{"JSON", "channel", nil, nil, `"channel" (STRING) as JSON: invalid character`},
		{"JSON", "empty", nil, cache.ErrNullValue, ""},
		{"JSON", "sf", nil, cache.ErrWrongType, "CONNECTION"},
		{"JSON", "missing", nil, cache.ErrNoSuchKey, ""},
		{"Connection", "sf", cache.ConnectionState{Status: "ACTIVE",
			RefreshAt:               time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC),
			LastSuccessfulRefreshAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}, nil, ""},
		{"Connection", "apiKey", cache.ConnectionState{}, nil, ""},
		{"Connection", "channel", nil, cache.ErrWrongType, "STRING cannot be read as connection"},
		{"Connection", "missing", nil, cache.ErrNoSuchKey, ""},
	} {
		t.Run(tc.accessor+"/"+tc.key, func(t *testing.T) {
			got, err := read[tc.accessor](tc.key)
			if tc.wantErr == nil && tc.errHas == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("= %#v, want %#v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("= %#v, want an error", got)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not contain %q", err, tc.errHas)
			}
			var ce *cache.ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Errorf("error %v is not a *ConfigError for key %s", err, tc.key)
			}
		})
	}

	var noDoc cache.Entry
	if _, err := noDoc.String("x"); !errors.Is(err, cache.ErrNoSuchKey) {
		t.Errorf("String on an entry without a document: %v, want ErrNoSuchKey", err)
	}
	if noDoc.Age() != 0 {
		t.Errorf("Age without a fetch time = %v, want 0", noDoc.Age())
	}
	if age := (cache.Entry{FetchedAt: time.Now().Add(-time.Hour)}).Age(); age < time.Hour || age > 2*time.Hour {
		t.Errorf("Age of an hour-old fetch = %v", age)
	}
}
