package loader

import (
	"fmt"
	"testing"
	"time"
)

// The parking lot gives rows back in file order per profile, each profile when its wait
// is over, and holds at most maxParked profiles.
func TestParkingLot(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	// Each row has a body from the pool, as the reader's do: drop gives them back, and a
	// nil one given back would reach the reader of another test in this process.
	row := func(key string, num int64) *job {
		return &job{key: key, pos: rowPos{num: num}, body: bodyPool.Get().(*[]byte)}
	}
	var lot parkingLot
	lot.park(row("A", 1), t0.Add(2*time.Second))
	lot.park(row("B", 2), t0.Add(time.Second))
	if !lot.join(row("A", 3)) || lot.join(row("C", 4)) {
		t.Fatal("join: a row of a parked profile queues behind it, another does not")
	}
	if j := lot.ready(t0); j != nil {
		t.Fatalf("ready before any wait is over: %+v", j)
	}
	if e := lot.earliest(); !e.Equal(t0.Add(time.Second)) {
		t.Errorf("earliest %v, want B's", e)
	}
	var got []string
	for _, at := range []time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second} {
		if j := lot.ready(t0.Add(at)); j != nil {
			got = append(got, fmt.Sprintf("%s%d", j.key, j.pos.num))
		}
	}
	if fmt.Sprint(got) != "[B2 A1 A3]" || !lot.empty() {
		t.Errorf("rows given back %v, want [B2 A1 A3] and an empty lot", got)
	}
	// A row taken from its lane and parked again goes back to the head, before the rows
	// that joined behind it.
	lot.park(row("D", 5), t0)
	lot.join(row("D", 6))
	head := lot.ready(t0)
	lot.park(head, t0.Add(time.Second))
	if j := lot.ready(t0.Add(time.Second)); j == nil || j.pos.num != 5 {
		t.Errorf("after parking again: %+v, want row 5 first", j)
	}
	lot.drop()
	for i := range maxParked {
		if lot.full() {
			t.Fatalf("full with %d profiles, maxParked %d", i, maxParked)
		}
		lot.park(row(fmt.Sprint("K", i), int64(i)), t0)
	}
	if !lot.full() {
		t.Errorf("not full with %d profiles", maxParked)
	}
}
