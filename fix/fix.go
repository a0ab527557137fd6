// Package fix names what a person can do about an error: the libraries say which fix
// applies, as a type, and this package alone says it in the command's words, naming its
// flags. A flag renamed is one line here; TestFixWords (cmd/cdpload) checks that every
// flag these words name is one the command has.
package fix

import "fmt"

// Fix is one thing a person can do about an error.
type Fix int

// The fixes. Each one's words stand after a colon or a semicolon in a message.
const (
	None          Fix = iota // nothing to offer
	Restart                  // load the input again from its first row
	SameRun                  // run again as the checkpoint was made, or start over
	StateDir                 // choose another state folder
	Format                   // say the input's format
	Encoding                 // read the input in another encoding; Arg is the encoding's name
	Delimiter                // split the columns on another delimiter; Arg is the delimiter
	MaxRowBytes              // the row limit
	Mapping                  // the mapping file: where to map or drop a column
	BaseURL                  // the API's base URL
	BaseURLOrCA              // the base URL, or the CA that signs the server's certificate
	CAFile                   // the CA that signs the server's certificate
	Scheme                   // the base URL's scheme
	Proxy                    // the proxy's settings
	ResetDigests             // start the digest store afresh
	RemovedResume            // a resume of a load begun without --removed
	RemovedLoad              // an input not loaded to its end with --removed
	Removed                  // the removed list's flag, as a name
)

// words are the fixes in the command's words; %s is the fix's Arg.
var words = map[Fix]string{
	Restart:       "run with --restart to load the input again from its first row",
	SameRun:       "run with the same input and options, or with --restart to start over",
	StateDir:      "choose a writable folder with --state-dir",
	Format:        "give --format csv, tsv or jsonl",
	Encoding:      "try --encoding %s",
	Delimiter:     "if that separates the columns, give --delimiter %s",
	MaxRowBytes:   "--max-row-bytes",
	Mapping:       "in --mapping",
	BaseURL:       "check --base-url",
	BaseURLOrCA:   "check --base-url, or pass the right CA with --ca-file",
	CAFile:        "if it is signed by a private CA, pass that CA with --ca-file",
	Scheme:        "check the scheme of --base-url (http:// or https://)",
	Proxy:         "check HTTPS_PROXY",
	ResetDigests:  "run once with --reset-digests to start it afresh (that run sends every row)",
	RemovedResume: "run without --removed, or with --restart to read the input again from its first row",
	RemovedLoad:   "load it again to its end with --removed (--restart reads it from its first row)",
	Removed:       "--removed",
}

// Say returns the fix in words, with arg where the fix takes one.
func (f Fix) Say(arg string) string {
	w, ok := words[f]
	if !ok {
		return ""
	}
	if arg != "" {
		return fmt.Sprintf(w, arg)
	}
	return w
}

// String returns the fix in words, for a fix that takes no argument.
func (f Fix) String() string { return f.Say("") }

// All returns every fix, for tests of the words.
func All() []Fix {
	var all []Fix
	for f := range words {
		all = append(all, f)
	}
	return all
}

// Error is an error with what a person can do about it.
type Error struct {
	Err error
	Fix Fix
}

// Error is the error's text, then the fix in words.
func (e *Error) Error() string { return e.Err.Error() + "; " + e.Fix.String() }

// Unwrap returns the error without its fix.
func (e *Error) Unwrap() error { return e.Err }

// With returns err with the fix f.
func With(f Fix, err error) error { return &Error{Err: err, Fix: f} }
