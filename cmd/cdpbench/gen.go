package main

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// header is the example schema's columns (examples/schema.json), in file order.
var header = []string{"customer_id", "email", "first_name", "last_name", "phone", "tier", "city",
	"country", "birth_date", "created_at", "last_order_at", "lifetime_value", "orders_count", "opted_in"}

// profile is one generated row. Field order and tags give the JSONL line.
type profile struct {
	CustomerID    string      `json:"customer_id"`
	Email         string      `json:"email"`
	FirstName     string      `json:"first_name"`
	LastName      string      `json:"last_name"`
	Phone         string      `json:"phone"`
	Tier          string      `json:"tier"`
	City          string      `json:"city"`
	Country       string      `json:"country"`
	BirthDate     string      `json:"birth_date"`
	CreatedAt     string      `json:"created_at"`
	LastOrderAt   string      `json:"last_order_at"`
	LifetimeValue json.Number `json:"lifetime_value"`
	OrdersCount   int         `json:"orders_count"`
	OptedIn       bool        `json:"opted_in"`
}

func (p *profile) csvRecord() []string {
	return []string{p.CustomerID, p.Email, p.FirstName, p.LastName, p.Phone, p.Tier, p.City,
		p.Country, p.BirthDate, p.CreatedAt, p.LastOrderAt, string(p.LifetimeValue),
		strconv.Itoa(p.OrdersCount), strconv.FormatBool(p.OptedIn)}
}

// Names and places mix ASCII with accented and non-Latin scripts, and a few hold a comma
// or a quote, so CSV quoting and UTF-8 handling are on the measured path.
var (
	firstNames = []string{"Mateo", "Priya", "Amélie", "Jürgen", "Søren", "Zoë", "Chloé", "José",
		"Łukasz", "Ingrid", "Oluwaseun", "Aleksandr", "Siobhán", "Yuki", "Mohammed", "Anaïs",
		"Björn", "Emily", "Noah", "Olivia", "Liam", "Ava", "Kenji", "Ana María", "François",
		"Dvořák", "Ελένη", "Дмитрий", "美咲", "지민"}
	lastNames = []string{"Nakamura", "Smith", "Müller", "García", "O'Brien", "Nguyễn", "Kowalski",
		"Ólafsdóttir", "Rossi", "Dubois", "Johansson", "Papadopoulos", "Иванов", "van der Berg",
		"Smith-Jones", "Fernández", "Østergaard", "Kim", "Chen", "Patel", "Okafor", "Silva",
		"\"Doc\" Brown", "Wójcik", "佐藤", "Brown, Jr."}
	cities = []struct{ city, country string }{
		{"Mumbai", "IN"}, {"Madrid", "ES"}, {"São Paulo", "BR"}, {"Kraków", "PL"}, {"Zürich", "CH"},
		{"Москва", "RU"}, {"東京", "JP"}, {"New York", "US"}, {"Washington, D.C.", "US"},
		{"Reykjavík", "IS"}, {"Montréal", "CA"}, {"Lagos", "NG"}, {"Αθήνα", "GR"}, {"서울", "KR"},
		{"London", "GB"}, {"Berlin", "DE"}, {"Paris", "FR"}, {"Sydney", "AU"}}
	tiers   = []string{"bronze", "silver", "gold", "platinum"}
	domains = []string{"example.com", "example.org", "mail.example.net", "corp.example.co.uk"}
)

// dupShare is the share of rows that update a profile an earlier row already gave.
const dupShare = 0.03

var epoch = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)

// generator yields the same rows for the same seed, whatever the format they are written in.
type generator struct {
	rng  *rand.Rand
	n    int      // rows made so far
	keys []string // emails of the profiles made so far, by number-1
}

func newGenerator(seed uint64) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// next makes the next row. A duplicate reuses an earlier customer_id and its email (email is
// an identity key, so it must stay with its profile) with the other fields changed.
func (g *generator) next() profile {
	r := g.rng
	g.n++
	var id, email, first, last string
	if len(g.keys) > 10 && r.Float64() < dupShare {
		k := r.IntN(len(g.keys))
		id = fmt.Sprintf("C%08d", k+1)
		email = g.keys[k]
		first, last = g.pick(firstNames), g.pick(lastNames)
	} else {
		first, last = g.pick(firstNames), g.pick(lastNames)
		num := len(g.keys) + 1
		id = fmt.Sprintf("C%08d", num)
		email = fmt.Sprintf("%s.%s.%d@%s", asciiLocal(first), asciiLocal(last), num, g.pick(domains))
		g.keys = append(g.keys, email)
	}
	c := cities[r.IntN(len(cities))]
	created := epoch.Add(time.Duration(r.Int64N(int64(10 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	lastOrder := created.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Second)
	birth := time.Date(1940+r.IntN(65), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	return profile{
		CustomerID:    id,
		Email:         email,
		FirstName:     first,
		LastName:      last,
		Phone:         fmt.Sprintf("+%d-%03d-%03d-%04d", 1+r.IntN(98), r.IntN(1000), r.IntN(1000), r.IntN(10000)),
		Tier:          g.pick(tiers),
		City:          c.city,
		Country:       c.country,
		BirthDate:     birth.Format(time.DateOnly),
		CreatedAt:     created.Format(time.RFC3339),
		LastOrderAt:   lastOrder.Format(time.RFC3339),
		LifetimeValue: json.Number(strconv.FormatFloat(float64(r.IntN(2_000_000))/100, 'f', 2, 64)),
		OrdersCount:   r.IntN(500),
		OptedIn:       r.IntN(2) == 1,
	}
}

// asciiLocal makes an email local part from a name: lower-case ASCII letters, else "x".
func asciiLocal(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// writeProfiles writes rows generated from seed to w as "csv" (with the header) or "jsonl".
func writeProfiles(w io.Writer, format string, rows int, seed uint64) error {
	g := newGenerator(seed)
	bw := bufio.NewWriterSize(w, 1<<16)
	switch format {
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(header); err != nil {
			return err
		}
		for range rows {
			p := g.next()
			if err := cw.Write(p.csvRecord()); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	case "jsonl":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for range rows {
			p := g.next()
			if err := enc.Encode(&p); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown format %q (csv or jsonl)", format)
	}
	return bw.Flush()
}

// generateFile writes writeProfiles' output to path.
func generateFile(path, format string, rows int, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeProfiles(f, format, rows, seed); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// compressFile writes src compressed as ext says (.gz or .zst) to src+ext, at the default
// level of each, as an export job would.
func compressFile(src, ext string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := src + ext
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	var w io.WriteCloser
	switch ext {
	case ".gz":
		w = gzip.NewWriter(out)
	case ".zst":
		if w, err = zstd.NewWriter(out); err != nil {
			out.Close()
			return "", err
		}
	default:
		out.Close()
		return "", fmt.Errorf("no compressor for %q", ext)
	}
	_, err = io.Copy(w, in)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("compressing %s: %w", filepath.Base(src), err)
	}
	return dst, nil
}
