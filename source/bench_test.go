package source

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

const benchRows = 10_000

func BenchmarkCSVNext(b *testing.B) {
	var in bytes.Buffer
	in.WriteString("id,email,first_name,last_name,city,note\n")
	for i := range benchRows {
		fmt.Fprintf(&in, "%d,user%d@example.com,Ann,Lee,Paris,\"likes \"\"tea\"\", and cake\"\n", i, i)
	}
	benchRead(b, in.Bytes(), "bench.csv")
}

func BenchmarkJSONLNext(b *testing.B) {
	var in bytes.Buffer
	for i := range benchRows {
		fmt.Fprintf(&in, `{"id":%d,"email":"user%d@example.com","first_name":"Ann","last_name":"Lee","city":"Paris","tags":["a","b"],"score":12.5}`+"\n", i, i)
	}
	benchRead(b, in.Bytes(), "bench.jsonl")
}

// benchRead reads all of data per iteration; allocations are per input, so divide by
// benchRows for a record's share.
func benchRead(b *testing.B, data []byte, name string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), name, Options{}, Position{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rec.Err != nil {
				b.Fatal(err, rec.Err)
			}
			n++
		}
		if n != benchRows {
			b.Fatalf("read %d records", n)
		}
	}
}
