package loader

import "time"

// maxParked is how many profiles one worker may hold back at once after ambiguous
// failures while it sends other rows. Past it the worker waits: in an outage of timeouts
// or gateway errors the pool then sends little more than one request per worker at a time.
const maxParked = 4

// parkingLot holds a worker's rows that wait before their next attempt, each profile's in
// file order: the row that failed first, then the rows of that profile that came after
// it. Only its worker uses it.
type parkingLot struct {
	lanes []*lane
}

type lane struct {
	key   string
	until time.Time // the head may be sent from then on
	jobs  []*job
}

// park holds j until until. A row of a profile already parked goes back to the head of
// its lane: it is the row that was taken from there.
func (l *parkingLot) park(j *job, until time.Time) {
	if ln := l.find(j.key); ln != nil {
		ln.jobs = append([]*job{j}, ln.jobs...)
		ln.until = until
		return
	}
	l.lanes = append(l.lanes, &lane{key: j.key, until: until, jobs: []*job{j}})
}

// join queues j behind its profile's parked rows, and reports whether there were any.
func (l *parkingLot) join(j *job) bool {
	ln := l.find(j.key)
	if ln == nil {
		return false
	}
	ln.jobs = append(ln.jobs, j)
	return true
}

// ready takes the head of a lane whose wait is over at now, or returns nil. The rows
// behind it become ready at once: their order is kept, and they are sent after it.
func (l *parkingLot) ready(now time.Time) *job {
	for i, ln := range l.lanes {
		if ln.until.After(now) {
			continue
		}
		j := ln.jobs[0]
		ln.jobs = ln.jobs[1:]
		if len(ln.jobs) == 0 {
			l.lanes = append(l.lanes[:i], l.lanes[i+1:]...)
		}
		return j
	}
	return nil
}

func (l *parkingLot) find(key string) *lane {
	for _, ln := range l.lanes {
		if ln.key == key {
			return ln
		}
	}
	return nil
}

func (l *parkingLot) empty() bool { return len(l.lanes) == 0 }
func (l *parkingLot) full() bool  { return len(l.lanes) >= maxParked }

// earliest is when the first lane's wait ends; the lot must not be empty.
func (l *parkingLot) earliest() time.Time {
	t := l.lanes[0].until
	for _, ln := range l.lanes[1:] {
		if ln.until.Before(t) {
			t = ln.until
		}
	}
	return t
}

// drop gives the parked rows' bodies back: the run halted, and they are left unsent.
func (l *parkingLot) drop() {
	for _, ln := range l.lanes {
		for _, j := range ln.jobs {
			putBody(j.body)
		}
	}
	l.lanes = nil
}
