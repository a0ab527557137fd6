package loader

import (
	"sync"
	"time"

	"cdpload/digest"
	"cdpload/source"
)

// job is one mapped row on its way to a worker.
type job struct {
	pos  rowPos
	key  string
	body *[]byte
	raw  []byte
	try  tries      // its attempts so far, kept while it waits between them
	sum  digest.Sum // with Skip: its body's digest, recorded once the API accepts it
	kind int        // with Skip: bodyNew or bodyChanged
}

// tries is what a row's attempts so far tell the decision on its next one.
type tries struct {
	attempts, transient, limited int
	firstFail, prevFail          time.Time // when its first and latest failed attempts were sent
}

// rowPos is where a row sits in the input, for the watermark and the rejects log, and
// the bytes of the read-ahead it holds until a checkpoint covers it.
type rowPos struct {
	num, line, end, nextLine int64
	weight                   int64
}

// outcome is a finished row: accepted when reject is nil, unless it is another shard's.
type outcome struct {
	pos    rowPos
	raw    []byte
	spill  *source.Spill // the row's bytes instead of raw, for a row over the size limit
	reject *Reject
	other  bool // another shard's row: neither sent nor rejected here
	// kind is, with Skip, bodyNew or bodyChanged for a row the API accepted, bodyUnchanged
	// for a row not sent because the API has its body already.
	kind int
}

// bodyPool holds request body buffers for reuse; getBody and putBody use it.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// keepBodyBytes is the largest body buffer put back for reuse: a buffer grown by a wide row
// is left to the collector, so that a few wide rows do not keep their size in every lane.
const keepBodyBytes = 64 << 10

func getBody() *[]byte { return bodyPool.Get().(*[]byte) }

// putBody gives a body buffer back once nothing refers to it.
func putBody(b *[]byte) {
	if cap(*b) <= keepBodyBytes {
		bodyPool.Put(b)
	}
}
