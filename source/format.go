package source

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Options say how to read an input.
type Options struct {
	// Format is the input's format. The empty Format means: tell it from the file name
	// (.csv, .tsv, .jsonl or .ndjson, each optionally followed by .gz or .zst).
	Format Format
	// Delimiter separates CSV and TSV fields. Zero means ',' for CSV and '\t' for TSV.
	// It is ignored for JSONL.
	Delimiter rune
	// Encoding names the input's character encoding as LookupEncoding takes it
	// ("windows-1252", "utf-16le", …); empty is UTF-8. Offsets, Raw and spills stay in the
	// input's own bytes; cells and members are decoded to UTF-8.
	Encoding string
	// MaxRecordBytes is the largest record, in bytes of the input, that is read into
	// memory; a larger one comes back with Err.Code "row_too_large" and its bytes in a
	// Spill, having taken about this much memory. Zero is no limit.
	MaxRecordBytes int64
	// SpillDir is the folder for spills; empty is the system's temporary folder.
	SpillDir string
	// Stdin is what the path "-" reads: the process's standard input, as the caller has it.
	Stdin io.Reader
}

// DefaultMaxRecordBytes is the record size limit a command line gives by default: the
// Profiles API refuses a larger request body.
const DefaultMaxRecordBytes = 1 << 20

// compressedExts are the file name extensions of the compressions an input may have. The
// reader goes by the file's first bytes, not by its name; the name only has to say the
// format underneath.
var compressedExts = []string{".gz", ".zst"}

// TrimCompression returns name without a compression extension (.gz or .zst, any case).
func TrimCompression(name string) string {
	for _, ext := range compressedExts {
		if len(name) > len(ext) && strings.EqualFold(name[len(name)-len(ext):], ext) {
			return name[:len(name)-len(ext)]
		}
	}
	return name
}

// DetectFormat tells an input's format from its file name: .csv, .tsv, .jsonl or .ndjson,
// each optionally followed by .gz or .zst (then compressed is true). The match ignores
// case. An unknown extension is an error that names the file.
func DetectFormat(name string) (f Format, compressed bool, err error) {
	base := filepath.Base(name)
	if trimmed := TrimCompression(base); trimmed != base {
		compressed, base = true, trimmed
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".csv":
		return CSV, compressed, nil
	case ".tsv":
		return TSV, compressed, nil
	case ".jsonl", ".ndjson":
		return JSONL, compressed, nil
	}
	return "", false, fmt.Errorf("%s: unknown format: the name should end in .csv, .tsv, .jsonl or .ndjson (optionally .gz or .zst), or the format be given", displayName(name))
}

// resolve fills in the defaults of opts for the input called name and checks them.
func (opts Options) resolve(name string) (Options, error) {
	if opts.MaxRecordBytes < 0 {
		return opts, fmt.Errorf("%s: the record size limit %d is negative", displayName(name), opts.MaxRecordBytes)
	}
	if opts.Format == "" {
		f, _, err := DetectFormat(name)
		if err != nil {
			return opts, err
		}
		opts.Format = f
	}
	switch opts.Format {
	case CSV:
		if opts.Delimiter == 0 {
			opts.Delimiter = ','
		}
	case TSV:
		if opts.Delimiter == 0 {
			opts.Delimiter = '\t'
		}
	case JSONL:
		opts.Delimiter = 0
		return opts, nil
	default:
		return opts, fmt.Errorf("%s: unknown format %q: want %q, %q or %q", displayName(name), opts.Format, CSV, TSV, JSONL)
	}
	d := opts.Delimiter
	if d == '"' || d == '\r' || d == '\n' || d == utf8.RuneError || !utf8.ValidRune(d) {
		return opts, fmt.Errorf("%s: delimiter %q cannot separate fields", displayName(name), d)
	}
	return opts, nil
}

// config is what the decoders take of resolved options.
func (opts Options) config(name string) (readConfig, error) {
	cs, err := lookupCharset(opts.Encoding)
	if err != nil {
		return readConfig{}, fmt.Errorf("%s: %w", displayName(name), err)
	}
	if opts.Format != JSONL {
		if err := cs.checkDelimiter(opts.Delimiter); err != nil {
			return readConfig{}, fmt.Errorf("%s: %w", displayName(name), err)
		}
	}
	cfg := readConfig{name: displayName(name), delim: opts.Delimiter, cs: cs, max: opts.MaxRecordBytes, spillDir: opts.SpillDir}
	if cs == nil {
		cfg.hint = new(string) // text that is not UTF-8 gets a guess of its encoding
	}
	return cfg, nil
}

// displayName is how messages name an input: "-" reads as "stdin".
func displayName(name string) string {
	if name == "-" || name == "" {
		return "stdin"
	}
	return name
}
