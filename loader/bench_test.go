package loader

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"cdpload/examples"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

// benchInput generates n profile rows in the given format, with realistic widths and some
// non-ASCII text.
func benchInput(format source.Format, n int) []byte {
	var b bytes.Buffer
	if format == source.CSV {
		b.WriteString("customer_id,email,first_name,last_name,tier,city,country,last_order_at,lifetime_value,orders_count,opted_in\n")
	}
	for i := 0; i < n; i++ {
		if format == source.CSV {
			fmt.Fprintf(&b, "C%08d,user.%d@example.com,Zoë,\"O'Brien, Jr\",gold,Zürich,CH,2026-04-%02dT12:00:00Z,%d.50,%d,yes\n",
				i, i, 1+i%28, i%5000, i%90)
		} else {
			fmt.Fprintf(&b, `{"customer_id":"C%08d","email":"user.%d@example.com","first_name":"Zoë","last_name":"O'Brien, Jr","tier":"gold","city":"Zürich","country":"CH","last_order_at":"2026-04-%02dT12:00:00Z","lifetime_value":%d.50,"orders_count":%d,"opted_in":true}`+"\n",
				i, i, 1+i%28, i%5000, i%90)
		}
	}
	return b.Bytes()
}

// BenchmarkRowPath measures the per-row work before the network: parse, map and encode
// the request body. Allocations per row are reported as allocs/op.
func BenchmarkRowPath(b *testing.B) {
	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []source.Format{source.CSV, source.JSONL} {
		b.Run(string(format), func(b *testing.B) {
			const rows = 20000
			data := benchInput(format, rows)
			b.SetBytes(int64(len(data) / rows))
			b.ReportAllocs()
			var (
				in  *source.Reader
				mp  *mapper.Mapper
				buf []byte
			)
			open := func() {
				in, err = source.NewReader(bytes.NewReader(data), "bench."+string(format), source.Options{}, source.Position{})
				if err != nil {
					b.Fatal(err)
				}
				mp, err = mapper.New(schema, format, in.Header(), nil, mapper.Options{})
				if err != nil {
					b.Fatal(err)
				}
			}
			open()
			for b.Loop() {
				rec, err := in.Next()
				if err == io.EOF {
					b.StopTimer()
					open()
					b.StartTimer()
					rec, err = in.Next()
				}
				if err != nil || rec.Err != nil {
					b.Fatal(err, rec.Err)
				}
				if buf, _, err = mp.Map(&rec, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
