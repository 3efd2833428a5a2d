package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fields that come from unauthenticated requests are bounded, so refused
// requests cannot write kilobytes each to the disk.
func TestWriterBoundsFields(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewWriter(&buf, time.Now)
	long := strings.Repeat("é", MaxFieldBytes) // two bytes each
	w.Record(context.Background(), SignInFailed(long, long, ReasonUnknownUser))
	var e Event
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"username": e.Username, "client_id": e.ClientID} {
		if len(v) > MaxFieldBytes+len("…") || !strings.HasSuffix(v, "…") || !utf8.ValidString(v) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, want at most %d and cut at a character", name, len(v), utf8.ValidString(v), MaxFieldBytes)
		}
	}
}
