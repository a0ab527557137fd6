package main

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// The workload is a pure function of (seed, N): every child process derives
// the same keys, values and orders without holding them in memory, so the
// peak RSS a child reports is the store's, not the generator's.

const (
	batchSize     = 1000
	night2HitPct  = 98 // night-2 rows whose profile is in the store
	changedPerMil = 31 // of the hits, ≈3% of N: body changed, put again
	valueLen      = 24 // 16-byte digest + 8-byte unix nanoseconds
	night1Base    = int64(1_767_225_600_000_000_000)
	night2Base    = night1Base + 86_400_000_000_000
)

var firsts = []string{"anna", "ben", "carla", "david", "emma", "felix", "greta", "hugo", "ines", "jonas", "karin", "leo", "mia", "noah", "olga", "paul"}
var lasts = []string{"smith", "meyer", "garcia", "rossi", "dubois", "kowalski", "nielsen", "silva", "novak", "jansen", "murphy", "schmidt"}

// mix is the splitmix64 finaliser: a cheap, well-spread 64-bit hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

type workload struct {
	n    uint64
	seed uint64
	p1   perm // night-1 file order
	p2   perm // night-2 file order
}

func newWorkload(n, seed uint64) *workload {
	return &workload{n: n, seed: seed, p1: newPerm(n, seed^0x1111), p2: newPerm(n, seed^0x2222)}
}

// key appends profile p's match-key value: 70% customer ids, 30% emails.
func (w *workload) key(buf []byte, p uint64) []byte {
	h := mix(p ^ w.seed*0x5851f42d4c957f2d)
	buf = buf[:0]
	if h%10 < 7 {
		var d [20]byte
		s := strconv.AppendUint(d[:0], p, 10)
		buf = append(buf, 'C')
		for i := len(s); i < 7; i++ {
			buf = append(buf, '0')
		}
		return append(buf, s...)
	}
	buf = append(buf, firsts[(h>>8)%uint64(len(firsts))]...)
	buf = append(buf, '.')
	buf = append(buf, lasts[(h>>16)%uint64(len(lasts))]...)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, p, 10)
	return append(buf, "@example.com"...)
}

// value appends the 24-byte record of profile p written on the given night at
// file position i.
func (w *workload) value(buf []byte, p uint64, night int, i uint64) []byte {
	d := mix(w.seed ^ p*0x9e3779b97f4a7c15 ^ uint64(night)*0xd1b54a32d192ed03)
	buf = binary.LittleEndian.AppendUint64(buf[:0], d)
	buf = binary.LittleEndian.AppendUint64(buf, mix(d))
	base := night1Base
	if night == 2 {
		base = night2Base
	}
	return binary.BigEndian.AppendUint64(buf, uint64(base+int64(i)))
}

// night1 gives the profile at night-1 file position i.
func (w *workload) night1(i uint64) uint64 { return w.p1.at(i) }

// night2Row is one row of night 2.
type night2Row struct {
	profile uint64
	hit     bool // the profile is in the store after night 1
	put     bool // the row's digest is stored after the row (changed, or new and accepted)
}

// night2 gives the row at night-2 file position i: 98% profiles of night 1
// (≈3% of N changed), 2% profiles never seen, half of which the API accepts
// (1% of N new keys stored); the other half are rows it rejected.
func (w *workload) night2(i uint64) night2Row {
	q := w.p2.at(i)
	if q%100 >= night2HitPct {
		return night2Row{profile: w.n + q, put: (q/100)%2 == 0}
	}
	return night2Row{profile: q, hit: true, put: mix(q^w.seed^0xc4a7)%1000 < changedPerMil}
}

// perm is a keyed bijection of [0, n): a 4-round Feistel network on the
// smallest even power of two ≥ n, cycle-walked into range. O(1) memory.
type perm struct {
	n    uint64
	half uint
	mask uint64
	keys [4]uint64
}

func newPerm(n, seed uint64) perm {
	bits := uint(2)
	for uint64(1)<<bits < n {
		bits++
	}
	if bits%2 == 1 {
		bits++
	}
	p := perm{n: n, half: bits / 2, mask: uint64(1)<<(bits/2) - 1}
	for r := range p.keys {
		p.keys[r] = mix(seed + uint64(r)*0x632be59bd9b4e019)
	}
	return p
}

// inv is the inverse of at.
func (p perm) inv(x uint64) uint64 {
	for {
		l, r := x>>p.half, x&p.mask
		for k := len(p.keys) - 1; k >= 0; k-- {
			l, r = r^(mix(l^p.keys[k])&p.mask), l
		}
		x = l<<p.half | r
		if x < p.n {
			return x
		}
	}
}

// profileOf parses a key made by key back into its profile number.
func profileOf(key []byte) (uint64, bool) {
	s := string(key)
	if strings.HasPrefix(s, "C") {
		p, err := strconv.ParseUint(s[1:], 10, 64)
		return p, err == nil
	}
	s, ok := strings.CutSuffix(s, "@example.com")
	if !ok {
		return 0, false
	}
	p, err := strconv.ParseUint(s[strings.LastIndexByte(s, '.')+1:], 10, 64)
	return p, err == nil
}

func (p perm) at(i uint64) uint64 {
	x := i
	for {
		l, r := x>>p.half, x&p.mask
		for _, k := range p.keys {
			l, r = r, l^(mix(r^k)&p.mask)
		}
		x = l<<p.half | r
		if x < p.n {
			return x
		}
	}
}
