package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cdpload/digest"
	"cdpload/sink"
)

// recordingSender accepts every upsert, but for the bodies refuse names, and keeps the
// bodies it was sent.
type recordingSender struct {
	mu     sync.Mutex
	bodies []string
	refuse func(body string) bool
}

func (s *recordingSender) Upsert(_ context.Context, body []byte) sink.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, string(body))
	if s.refuse != nil && s.refuse(string(body)) {
		return sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"}
	}
	return sink.Result{Outcome: sink.Accepted, Status: 200}
}

func (s *recordingSender) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

// Three nights: the first sends every row, the second only the changed, new and earlier
// refused rows, the third (the same rows in another order) nothing. A profile's rows are
// compared with the body the API last accepted for it, earlier rows of the night included.
func TestSkipUnchangedNights(t *testing.T) {
	s := &recordingSender{}
	cfg := csvConfig(t, "", s)
	state := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	cfg.Skip = &SkipUnchanged{StateDir: state, Destination: digest.Destination{BaseURL: "https://api.example.com/public/v1"},
		Now: func() time.Time { return now }}
	night := func(text string, want Summary, sent ...string) {
		t.Helper()
		if err := os.WriteFile(cfg.Path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, err := Run(context.Background(), cfg)
		if err != nil && !errors.Is(err, ErrInterrupted) && sum.Rejected == 0 {
			t.Fatalf("run: %v", err)
		}
		got := fmt.Sprintf("accepted %d new %d changed %d unchanged %d rejected %d",
			sum.Accepted, sum.New, sum.Changed, sum.Unchanged, sum.Rejected)
		wantText := fmt.Sprintf("accepted %d new %d changed %d unchanged %d rejected %d",
			want.Accepted, want.New, want.Changed, want.Unchanged, want.Rejected)
		if got != wantText {
			t.Errorf("summary: %s; want %s", got, wantText)
		}
		bodies := s.take()
		var ids []string
		for _, b := range bodies {
			i := strings.Index(b, `"customer_id":"`)
			ids = append(ids, b[i+15:i+15+strings.Index(b[i+15:], `"`)])
		}
		if fmt.Sprint(ids) != fmt.Sprint(sent) {
			t.Errorf("sent %v, want %v", ids, sent)
		}
	}
	cfg.Workers, cfg.Restart = 1, true // Restart: a night's file may be the same as the last's
	s.refuse = func(b string) bool { return strings.Contains(b, `"orders_count":99`) }
	night("customer_id,orders_count\nA,1\nB,1\nC,99\nD,1\nA,2\n",
		Summary{Accepted: 4, New: 3, Changed: 1, Rejected: 1}, "A", "B", "C", "D", "A")
	s.refuse = nil
	// B unchanged, C refused last night (sent again), A back to 1 (changed from 2), E new,
	// D changed then back: its second row equals what the first left.
	night("customer_id,orders_count\nB,1\nC,99\nA,1\nE,1\nD,2\nD,2\n",
		Summary{Accepted: 4, New: 2, Changed: 2, Unchanged: 2}, "C", "A", "E", "D")
	night("customer_id,orders_count\nD,2\nE,1\nA,1\nC,99\nB,1\n",
		Summary{Unchanged: 5})
	// --resend-after: a digest a day old no longer counts.
	cfg.Skip.ResendAfter = 24 * time.Hour
	now = now.Add(25 * time.Hour)
	night("customer_id,orders_count\nB,1\n", Summary{Accepted: 1, New: 1}, "B")
	night("customer_id,orders_count\nB,1\n", Summary{Unchanged: 1})
	// --reset-digests: every row is sent again.
	cfg.Skip.Reset = true
	night("customer_id,orders_count\nB,1\nA,1\n", Summary{Accepted: 2, New: 2}, "B", "A")
}
